"""Datasets the OneModel study adds: download from a local server, verify, read."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from hwbench.datasets import registry
from hwbench.datasets.prepare import build_arrays, fetch_file, record_path
from hwbench.store import load_processed
from tests._datasets_support import served_spec, tar_gz_bytes, wav_bytes

FAST = {"timeout_s": 5, "retries": 1, "backoff_s": 0.01}


def cifar100_fixture(n_train=6, n_test=4):
    """A cifar-100-python.tar.gz in the published layout, 3 classes, known pixels."""
    rng = np.random.default_rng(0)
    names = ["apple", "aquarium_fish", "baby"]
    split = {}
    for key, n in (("train", n_train), ("test", n_test)):
        split[key] = (
            rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            rng.integers(0, len(names), n).tolist(),
        )
    members = {
        "cifar-100-python/meta": pickle.dumps({"fine_label_names": names}),
        **{
            f"cifar-100-python/{key}": pickle.dumps({"data": data, "fine_labels": labels})
            for key, (data, labels) in split.items()
        },
    }
    return tar_gz_bytes(members), names, split


def test_cifar100_end_to_end(tmp_path, server):
    archive, names, split = cifar100_fixture()
    spec = served_spec(registry.CIFAR100, server, {"cifar-100-python.tar.gz": archive})
    root = tmp_path / "raw"
    fetch_file("cifar100", "cifar-100-python.tar.gz", root, download_options=FAST, spec=spec)
    out = tmp_path / "processed"
    build_arrays(
        "cifar100",
        [record_path("cifar100", "cifar-100-python.tar.gz", root)],
        out,
        raw_root=root,
        spec=spec,
    )
    data = load_processed(out)
    assert data.images.shape == (10, 32, 32, 3)
    first = split["train"][0][0]
    # channel planes of 1024 values, row-major: pixel (r, c) of channel k is data[k*1024 + 32r + c]
    assert data.images[0, 0, 0].tolist() == [first[0], first[1024], first[2048]]
    assert data.images[0, 2, 5, 1] == first[1024 + 2 * 32 + 5]
    labels = split["train"][1] + split["test"][1]
    assert data.meta.label.tolist() == labels
    assert data.meta.label_name.tolist() == [names[i] for i in labels]
    assert data.meta.source_split.tolist() == ["train"] * 6 + ["test"] * 4
    assert set(data.meta.script) == {""}


def test_cifar100_wrong_archive_is_named(tmp_path):
    from hwbench.datasets.cifar import read_cifar100

    path = tmp_path / "cifar-100-python.tar.gz"
    path.write_bytes(tar_gz_bytes({"cifar-10-batches-py/data_batch_1": b"x"}))
    with pytest.raises(ValueError, match="no member 'cifar-100-python/meta'"):
        read_cifar100({"cifar-100-python.tar.gz": path})


def tone(bin_, n_fft=64, seconds=0.5):
    t = np.arange(int(16000 * seconds)) / 16000
    return 0.5 * np.sin(2 * np.pi * bin_ * 16000 / n_fft * t)


def speech_fixture():
    """Three words, two speakers, official lists, background noise to be skipped."""
    clips = {
        "yes/aa11_nohash_0.wav": tone(4),
        "yes/bb22_nohash_0.wav": tone(4),
        "no/aa11_nohash_0.wav": tone(8),
        "no/bb22_nohash_1.wav": tone(8, seconds=1.5),  # longer than a second: cut
        "up/bb22_nohash_0.wav": tone(12),
    }
    members = {f"./{p}": wav_bytes(s * 32767) for p, s in clips.items()}
    members["./_background_noise_/white_noise.wav"] = wav_bytes(tone(2) * 32767)
    members["./testing_list.txt"] = b"no/aa11_nohash_0.wav\n"
    members["./validation_list.txt"] = b"up/bb22_nohash_0.wav\n"
    return tar_gz_bytes(members)


def test_speech_commands_end_to_end(tmp_path, server):
    spec = served_spec(
        registry.SPEECH_COMMANDS, server, {"speech_commands_v0.01.tar.gz": speech_fixture()}
    )
    root = tmp_path / "raw"
    fetch_file("speech_commands", spec.files[0].name, root, download_options=FAST, spec=spec)
    out = tmp_path / "processed"
    build_arrays(
        "speech_commands",
        [record_path("speech_commands", spec.files[0].name, root)],
        out,
        {"n_fft": 64, "hop": 32},
        raw_root=root,
        spec=spec,
    )
    data = load_processed(out)
    assert data.images.shape == (5, 33, 16000 // 32 + 1) and data.images.dtype == np.uint8
    # sorted paths: no/aa11, no/bb22, up/bb22, yes/aa11, yes/bb22; words sorted no, up, yes
    assert data.meta.label_name.tolist() == ["no", "no", "up", "yes", "yes"]
    assert data.meta.label.tolist() == [0, 0, 1, 2, 2]
    assert data.meta.writer.tolist() == ["aa11", "bb22", "bb22", "aa11", "bb22"]
    assert data.meta.source_split.tolist() == ["test", "train", "validation", "train", "train"]
    # each tone peaks at its frequency row; the padded half second is silent
    peaks = data.images[:, :, :200].astype(float).mean(axis=2).argmax(axis=1)
    assert peaks.tolist() == [8, 8, 12, 4, 4]
    assert data.images[0, :, 300:].max() == 0 and data.images[1, :, 300:].max() > 0


def test_speech_commands_wrong_format_is_named(tmp_path):
    from hwbench.datasets.speech import read_wav

    with pytest.raises(ValueError, match="x.wav: expected 16 kHz 16-bit mono, got 8000 Hz"):
        read_wav(wav_bytes(tone(4) * 32767, rate=8000), "x.wav")
    with pytest.raises(ValueError, match="y.wav: not a readable WAV"):
        read_wav(b"RIFF....", "y.wav")


def imdb_fixture():
    reviews = {
        "aclImdb/train/pos/1_9.txt": "Great film!<br />Loved it",
        "aclImdb/train/neg/2_1.txt": "Awful. Why?",
        "aclImdb/test/pos/3_8.txt": "great great",
        "aclImdb/train/unsup/4_0.txt": "not labelled",
        "aclImdb/imdb.vocab": "great\nfilm",
    }
    return tar_gz_bytes({k: v.encode() for k, v in reviews.items()})


def test_imdb_end_to_end(tmp_path, server):
    from hwbench.datasets.imdb import clean_words, word_vector

    assert clean_words("Great film!<br />It's 10/10?") == [
        "great", "film", "exclamation_mark", "it", "s", "10", "10", "questionmark",
    ]  # fmt: skip
    spec = served_spec(registry.IMDB, server, {"aclImdb_v1.tar.gz": imdb_fixture()})
    root = tmp_path / "raw"
    fetch_file("imdb", "aclImdb_v1.tar.gz", root, download_options=FAST, spec=spec)
    out = tmp_path / "processed"
    records = [record_path("imdb", "aclImdb_v1.tar.gz", root)]
    build_arrays("imdb", records, out, {"embed_dim": 8, "max_words": 4}, raw_root=root, spec=spec)
    data = load_processed(out)
    assert data.images.shape == (3, 8, 4)  # unsup and the vocabulary file are skipped
    # sorted: train/neg, train/pos, test/pos
    assert data.meta.label_name.tolist() == ["negative", "positive", "positive"]
    assert data.meta.label.tolist() == [0, 1, 1]
    assert data.meta.source_split.tolist() == ["train", "train", "test"]
    great = word_vector("great", 8)
    assert great.min() >= 1 and np.array_equal(great, word_vector("great", 8))
    assert np.array_equal(data.images[1][:, 0], great)  # "great film ! loved" -> 4 columns
    assert np.array_equal(data.images[2][:, 0], data.images[2][:, 1])  # "great great"
    assert data.images[2][:, 2:].max() == 0  # padding
    assert np.array_equal(data.images[0][:, 2], word_vector("questionmark", 8))
