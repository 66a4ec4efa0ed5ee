"""Per dataset: download from a local server, verify, read, write processed data or a manifest."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hwbench.datasets import registry, select_nist, transfer_split
from hwbench.datasets.idx import IdxFormatError, read_idx
from hwbench.datasets.manual import ManualDatasetError
from hwbench.datasets.nist import NistFormatError
from hwbench.datasets.prepare import build_arrays, build_manifest, fetch_file, record_path
from hwbench.datasets.vocab import AMHARIC77, ARABIC_DIGITS, KANNADA_DIGITS, NIST62
from hwbench.store import META_COLUMNS, load_processed
from tests._datasets_support import (
    amharic_folder,
    deepwriting_tar,
    emnist_zip,
    idx_bytes,
    madbase_csv_zip,
    madbase_rars,
    mnist_like,
    nist_fixture,
    served_spec,
    write,
)

HAS_RAR_TOOL = any(shutil.which(t) for t in ("bsdtar", "unar", "7z", "unrar"))
FAST = {"timeout_s": 5, "retries": 1, "backoff_s": 0.01}


def fetch_all(spec, root, variant=None):
    records = []
    for entry in spec.files_for(variant):
        fetch_file(spec.name, entry.name, root, variant=variant, download_options=FAST, spec=spec)
        records.append(record_path(spec.name, entry.name, root))
    return records


def arrays(spec, tmp_path, options=None, variant=None):
    root = tmp_path / "raw"
    records = fetch_all(spec, root, variant)
    out = tmp_path / "processed" / spec.name
    build_arrays(spec.name, records, out, options or {}, raw_root=root, spec=spec)
    return load_processed(out)


def test_mnist_end_to_end(tmp_path, server):
    names = tuple(f.name for f in registry.MNIST.files)
    contents, (xtr, ytr, xte, yte) = mnist_like(names)
    data = arrays(served_spec(registry.MNIST, server, contents), tmp_path)
    assert data.images.shape == (len(ytr) + len(yte), 28, 28) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images, np.concatenate([xtr, xte]))
    assert list(data.meta.columns[:6]) == META_COLUMNS
    assert data.meta.label.tolist() == ytr.tolist() + yte.tolist()
    assert data.meta.label_name.tolist() == [str(v) for v in np.concatenate([ytr, yte])]
    assert set(data.meta.script) == {"latin"} and set(data.meta.writer) == {""}
    assert data.meta.source_split.tolist() == ["train"] * len(ytr) + ["test"] * len(yte)


def test_kannada_and_dig_mnist(tmp_path, server):
    names = tuple(f.name for f in registry.KANNADA_MNIST.files)
    names = (names[0], names[1], names[2], names[3])
    contents, (xtr, ytr, xte, yte) = mnist_like(names, seed=3)
    data = arrays(served_spec(registry.KANNADA_MNIST, server, contents), tmp_path)
    assert data.meta.label_name.tolist()[: len(ytr)] == [KANNADA_DIGITS[v] for v in ytr]
    assert set(data.meta.script) == {"kannada"}
    dig_names = [f.name for f in registry.DIG_MNIST.files_for()]
    contents, (x, y, _, _) = mnist_like((dig_names[0], dig_names[1], "a", "b"), seed=4)
    contents = {k: contents[k] for k in dig_names}
    dig = arrays(served_spec(registry.DIG_MNIST, server, contents), tmp_path / "dig")
    np.testing.assert_array_equal(dig.images, x)
    assert set(dig.meta.source_split) == {"test"}


def test_wrong_idx_magic_names_the_file(tmp_path):
    bad = write(tmp_path / "x-idx3-ubyte.gz", idx_bytes(np.zeros((2, 28, 28)), magic=0x801))
    with pytest.raises(IdxFormatError, match=r"x-idx3-ubyte\.gz: magic number 0x00000801"):
        read_idx(bad, 3)
    short = write(tmp_path / "y-idx1-ubyte", idx_bytes(np.zeros(5), compress=False)[:-2])
    with pytest.raises(IdxFormatError, match=r"y-idx1-ubyte: header says 5"):
        read_idx(short, 1)


def test_label_out_of_range_names_the_file(tmp_path, server):
    names = tuple(f.name for f in registry.MNIST.files)
    contents, _ = mnist_like(names)
    contents[names[1]] = idx_bytes(np.full(12, 10, np.uint8))
    with pytest.raises(IdxFormatError, match=r"train-labels-idx1-ubyte\.gz: label 10 out of range"):
        arrays(served_spec(registry.MNIST, server, contents), tmp_path)


def test_emnist_is_transposed_back(tmp_path, server):
    archive, (xtr, ytr, xte, yte, chars) = emnist_zip()
    data = arrays(served_spec(registry.EMNIST, server, {"gzip.zip": archive}), tmp_path)
    np.testing.assert_array_equal(data.images, np.concatenate([xtr, xte]))
    assert data.meta.label_name.tolist() == [chars[v] for v in np.concatenate([ytr, yte])]
    assert data.meta.label_name.tolist() == [NIST62[v] for v in np.concatenate([ytr, yte])]


def test_madbase_csv_mirror(tmp_path, server):
    archive, (xtr, ytr, xte, yte) = madbase_csv_zip()
    spec = served_spec(registry.MADBASE, server, {"madbase_csv.zip": archive})
    data = arrays(spec, tmp_path, {"variant": "csv"}, variant="csv")
    np.testing.assert_array_equal(data.images, np.concatenate([xtr, xte]))
    assert data.meta.label_name.tolist() == [ARABIC_DIGITS[v] for v in np.concatenate([ytr, yte])]
    assert set(data.meta.script) == {"arabic"} and set(data.meta.writer) == {""}


def test_madbase_csv_local_copy_by_its_published_name(tmp_path):
    archive, (xtr, _, _, _) = madbase_csv_zip()
    mine = write(tmp_path / "mine" / "Arabic Handwritten Digits Dataset CSV.zip", archive)
    spec = registry.MADBASE.with_files(
        [
            f.__class__(**{**f.__dict__, "urls": ("http://127.0.0.1:9/x",)})
            for f in registry.MADBASE.files
        ]
    )
    got = fetch_file(
        "madbase",
        "madbase_csv.zip",
        tmp_path / "raw",
        local_copy=str(mine.parent),
        variant="csv",
        spec=spec,
    )
    assert got.checked == "format" and got.source == str(mine)


@pytest.mark.skipif(
    not HAS_RAR_TOOL, reason="no RAR extractor installed (apt-get install libarchive-tools)"
)
def test_madbase_rar_keeps_writers(tmp_path, server):
    archives, expected = madbase_rars()
    spec = served_spec(registry.MADBASE, server, archives, hashes=False)
    data = arrays(spec, tmp_path, {"variant": "rar"}, variant="rar")
    expected.sort(key=lambda e: (e[0] != "train", e[1], e[2], e[3]))
    assert len(data.images) == len(expected) == 60
    assert data.meta.writer.tolist() == [f"{s}_w{w:03d}" for s, w, _, _, _ in expected]
    assert data.meta.label.tolist() == [d for *_, d, _ in expected]
    assert data.meta.source_split.tolist() == [s for s, *_ in expected]
    # black-on-white BMPs come out white-on-black like MNIST
    np.testing.assert_array_equal(data.images, np.stack([img for *_, img in expected]))


def test_nist_join_gives_label_writer_and_partition(tmp_path, server):
    contents, expected = nist_fixture()
    spec = served_spec(registry.NIST, server, contents)
    root = tmp_path / "raw"
    records = fetch_all(spec, root)
    assert not (root / "nist" / "by_class.zip").exists()  # optional, not needed
    frame = build_manifest("nist", records, raw_root=root, spec=spec)
    manifest = pd.read_csv(
        root / "nist" / "manifest.csv", keep_default_na=False, dtype={"writer": str}
    )
    assert len(manifest) == len(frame) == len(expected)
    want = {name: rest for name, *rest in expected}
    for row in manifest.itertuples():
        label, char, writer, partition = want[row.file]
        assert (row.label, row.label_name, row.writer, row.source_split) == (
            label,
            char,
            writer,
            partition,
        )
        with Image.open(root / "nist" / row.file) as img:
            assert img.size == (128, 128)
    assert set(manifest.source_split) == {"hsf_0", "hsf_4", "hsf_6"}


def test_nist_corrupt_member_is_named(tmp_path, server):
    contents, expected = nist_fixture()
    lines = contents["by_write_md5.log"].decode().splitlines()
    lines[0] = "0" * 32 + lines[0][32:]
    contents["by_write_md5.log"] = ("\n".join(lines) + "\n").encode()
    spec = served_spec(registry.NIST, server, contents)
    records = fetch_all(spec, tmp_path)
    with pytest.raises(NistFormatError, match=expected[0][0] + ".*by_write_md5.log says 0000"):
        build_manifest("nist", records, raw_root=tmp_path, spec=spec)


def test_nist_subsets_and_transfer_split():
    from hwbench.store import Processed

    labels = np.array([0, 9, 10, 35, 36, 61])
    meta = pd.DataFrame(
        {
            "label": labels,
            "label_name": [NIST62[v] for v in labels],
            "script": "latin",
            "writer": "f0000_14",
            "pen": "",
            "source_split": ["hsf_0", "hsf_4", "hsf_1", "hsf_4", "hsf_7", "hsf_6"],
        }
    )
    data = Processed(np.zeros((6, 28, 28), np.uint8), meta)
    digits, letters, everything = (select_nist(data, s) for s in ("digits", "letters", "all"))
    assert digits.meta.label.tolist() == [0, 9]
    assert letters.meta.label.tolist() == [0, 25, 26, 51]
    assert letters.meta.label_name.tolist() == ["A", "Z", "a", "z"]
    assert everything.meta.label.tolist() == labels.tolist()
    assert transfer_split(meta).tolist() == ["train", "test", "train", "test", "train", "train"]
    with pytest.raises(ValueError, match="hsf_N"):
        transfer_split(meta.assign(source_split="train"))


def test_deepwriting_renders_characters_with_writers(tmp_path, server):
    archive, expected = deepwriting_tar(container="zip")
    spec = served_spec(
        registry.DEEPWRITING, server, {"deepwriting_dataset.zip": archive}, hashes=False
    )
    root = tmp_path / "raw"
    records = fetch_all(spec, root)
    build_manifest(
        "deepwriting", records, {"image_size": 64, "pen_width": 2}, raw_root=root, spec=spec
    )
    manifest = pd.read_csv(root / "deepwriting" / "manifest.csv", keep_default_na=False, dtype=str)
    got = list(zip(manifest.source_split, manifest.label_name, manifest.writer, strict=False))
    assert sorted(got) == sorted(expected)
    alphabet = ["\x00"] + list(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.,-()/"
    )
    pairs = zip(manifest.label, manifest.label_name, strict=True)
    assert all(alphabet[int(label)] == name for label, name in pairs)
    for file in manifest.file:
        img = np.asarray(Image.open(root / "deepwriting" / file))
        assert img.shape == (64, 64)
        ink = img < 128
        assert 20 < ink.sum() < 64 * 64 / 2  # strokes drawn, background white
        assert img[0, 0] == 255


def test_amharic_manual_folder(tmp_path):
    user = amharic_folder(tmp_path / "mine", AMHARIC77, per_class=2, by_char=(3, 76))
    frame = build_manifest("amharic", [], {"local_copy": str(user)}, raw_root=tmp_path / "raw")
    assert len(frame) == 77 * 2
    assert frame.label.tolist() == [i for i in range(77) for _ in range(2)]
    assert frame.label_name.tolist()[6] == AMHARIC77[3] == "ላ"
    assert set(frame.script) == {"ethiopic"}
    for file in frame.file:
        assert (tmp_path / "raw" / "amharic" / file).is_file()


def test_amharic_says_exactly_what_is_missing(tmp_path):
    user = amharic_folder(tmp_path / "mine", AMHARIC77, per_class=1, skip=(5, 40))
    (user / "stray").mkdir()
    write(user / "07" / "broken.png", b"not an image")
    with pytest.raises(ManualDatasetError) as err:
        build_manifest("amharic", [], {"local_copy": str(user)}, raw_root=tmp_path / "raw")
    text = str(err.value)
    assert f"2 of 77 classes have no folder: 5 ({AMHARIC77[5]}), 40 ({AMHARIC77[40]})" in text
    assert "stray" in text and "broken.png" in text
    # issue 25: a local copy's error names the key that points at it
    assert f"{user} (config key data.amharic.local_copy) is incomplete" in text
    with pytest.raises(ManualDatasetError, match="data.amharic.local_copy"):
        build_manifest("amharic", [], {}, raw_root=tmp_path / "empty")


def test_deepwriting_preprocessing_is_undone_up_to_translation():
    from hwbench.datasets.deepwriting import absolute_strokes, char_segments

    rng = np.random.default_rng(1)
    absolute = np.column_stack([rng.random(9) * 40, rng.random(9) * 10, np.zeros(9)])
    lo, hi = np.array([0.0, 0.0, 0.0]), np.array([50.0, 20.0, 1.0])
    scaled = absolute.copy()
    scaled[:, :2] = (absolute[:, :2] - lo[:2]) / (hi - lo)[:2]  # json_to_numpy --scale
    scaled[:, :2] -= scaled[0, :2]  # origin_translation
    rel = scaled.copy()
    rel[1:, :2] = np.diff(scaled[:, :2], axis=0)  # relative_representation
    mean, std = np.array([0.01, -0.02, 0]), np.array([0.3, 0.2, 1])
    rel[:, :2] = (rel[:, :2] - mean[:2]) / std[:2]  # normalization
    steps = np.array(["scale", "origin_translation", "relative_representation", "normalization"])
    data = {"preprocessing": steps, "mean": mean, "std": std, "min": lo, "max": hi}
    back = absolute_strokes(rel, data)
    np.testing.assert_allclose(back[:, :2] - back[0, :2], absolute[:, :2] - absolute[0, :2])
    labels, eoc = np.array([3, 3, 3, 0, 5, 5, 5, 5, 2]), np.array([0, 0, 1, 0, 0, 1, 0, 1, 1])
    assert list(char_segments(labels, eoc)) == [
        (0, 3, 3),
        (3, 4, 0),
        (4, 6, 5),
        (6, 8, 5),
        (8, 9, 2),
    ]


def test_nist_at_128_px_has_the_rows_of_the_28_px_set(tmp_path, server):
    """The transfer preset's nist128 (preprocess.native_size): the raw scans, ink only,
    with the same labels, writers and partitions, row by row, as the 28 px nist."""
    from hwbench.preprocess import preprocess_manifest

    contents, expected = nist_fixture()
    spec = served_spec(registry.NIST, server, contents)
    root = tmp_path / "raw"
    build_manifest("nist", fetch_all(spec, root), raw_root=root, spec=spec)
    manifest = root / "nist" / "manifest.csv"
    preprocess_manifest(manifest, tmp_path / "nist", workers=1, progress=False)
    preprocess_manifest(manifest, tmp_path / "nist128", native=True, workers=1, progress=False)
    small, large = (
        load_processed(tmp_path / "nist"),
        load_processed(tmp_path / "nist128", mmap=True),
    )
    assert small.images.shape == (len(expected), 28, 28)
    assert large.images.shape == (len(expected), 128, 128)
    assert isinstance(large.images, np.memmap)
    pd.testing.assert_frame_equal(large.meta, small.meta)
    files = pd.read_csv(manifest, keep_default_na=False)["file"]
    for i, name in enumerate(files):
        with Image.open(root / "nist" / name) as img:
            scan = np.asarray(img.convert("L"))
        np.testing.assert_array_equal(large.images[i], 255 - scan)  # no crop, blur or resize
    want = {name: rest for name, *rest in expected}
    assert large.meta.source_split.tolist() == [want[f][3] for f in files]
    assert large.meta.writer.tolist() == [want[f][2] for f in files]
