"""The processed format: grey N x H x W images, or colour N x H x W x 3; the
content digest recorded beside images.npy; damaged stores and storage faults."""

import errno
import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwbench import store
from hwbench.store import (
    DIGEST_FILE,
    META_COLUMNS,
    DatasetFormatError,
    load_processed,
    recorded_digest,
    save_processed,
    store_digest,
)


def meta(n):
    return pd.DataFrame({c: [""] * n for c in META_COLUMNS}).assign(label=range(n))


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 32, 32, 3)])
def test_round_trip_grey_and_colour(tmp_path, shape):
    images = np.arange(np.prod(shape), dtype=np.uint64).reshape(shape).astype(np.uint8)
    save_processed(tmp_path, images, meta(4))
    back = load_processed(tmp_path)
    assert back.images.shape == shape and np.array_equal(back.images, images)
    assert back.subset([1, 3]).images.shape == (2, *shape[1:])


@pytest.mark.parametrize("shape", [(4, 28), (4, 8, 8, 2), (4, 8, 8, 3, 1)])
def test_other_shapes_are_refused(tmp_path, shape):
    with pytest.raises(DatasetFormatError, match="N x H x W"):
        save_processed(tmp_path, np.zeros(shape, np.uint8), meta(4))
    np.save(tmp_path / "images.npy", np.zeros(shape, np.uint8))
    meta(4).to_csv(tmp_path / "meta.csv", index=False)
    with pytest.raises(DatasetFormatError, match="expected uint8 N x H x W"):
        load_processed(tmp_path)


# --------------------------------------------------------------- storage faults (issue 25)

ENOSPC_TEXT = "No space left on device"


def _full_disk_save(real_save, nbytes=64):
    """A save that writes ``nbytes`` of the file, then finds the disk full."""

    def save(file, *args, **kwargs):
        file.write(b"\0" * nbytes)  # numpy writes through the store's hashing writer
        raise OSError(errno.ENOSPC, ENOSPC_TEXT)

    return save


def _names_path_space_and_remedy(message: str, path) -> None:
    assert message.startswith(f"{path}: could not be written: ")
    assert re.search(r"[\d,.]+ MiB free on the file system holding /", message)
    assert "Free space there" in message and "rerun the same command" in message


def test_full_disk_during_a_store_write_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    save_processed(tmp_path, np.ones((4, 28, 28), np.uint8), meta(4))
    before = (tmp_path / "images.npy").read_bytes()
    monkeypatch.setattr(np, "save", _full_disk_save(np.save))
    with pytest.raises(store.StorageError) as caught:
        save_processed(tmp_path, np.zeros((6, 28, 28), np.uint8), meta(6))
    assert caught.value.errno == errno.ENOSPC
    _names_path_space_and_remedy(str(caught.value), tmp_path / "images.npy")
    assert "the disk is full (ENOSPC)" in str(caught.value)
    assert (tmp_path / "images.npy").read_bytes() == before  # nothing written is lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digest.json", "images.npy", "meta.csv"]
    assert recorded_digest(tmp_path)["digest"] == store_digest(tmp_path / "images.npy")


def test_io_error_during_a_table_write_is_reported(tmp_path, monkeypatch):
    def broken(self, path, *args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(store.StorageError, match=r"table\.csv: could not be written: .*EIO"):
        store.write_csv(tmp_path / "table.csv", meta(2))
    assert list(tmp_path.iterdir()) == []


def test_torch_short_write_of_a_checkpoint_is_named_as_a_full_disk(tmp_path, monkeypatch):
    # what torch.save raised with ~2 MB free: a RuntimeError naming no path
    torch = pytest.importorskip("torch")
    checkpoint = tmp_path / "run" / "checkpoint.pt"
    with store.atomic_path(checkpoint) as tmp:
        torch.save({"epoch": 3}, tmp)
    before = checkpoint.read_bytes()

    def short(obj, file, *args, **kwargs):
        Path(file).write_bytes(b"PK\x03\x04")
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . unexpected pos 476736 vs 476628"
        )

    monkeypatch.setattr(torch, "save", short)
    with pytest.raises(store.StorageError) as caught, store.atomic_path(checkpoint) as tmp:
        torch.save({"epoch": 4}, tmp)
    _names_path_space_and_remedy(str(caught.value), checkpoint)
    assert "most likely the disk is full" in str(caught.value)
    assert "unexpected pos 476736" in str(caught.value)  # the original error, kept
    assert checkpoint.read_bytes() == before
    assert [p.name for p in checkpoint.parent.iterdir()] == ["checkpoint.pt"]


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(ValueError, match="not a storage fault"), store.atomic_path(tmp_path / "x"):
        raise ValueError("not a storage fault")
    with pytest.raises(RuntimeError, match="CUDA out of memory"), store.atomic_path(tmp_path / "y"):
        raise RuntimeError("CUDA out of memory")
    assert list(tmp_path.iterdir()) == []


def test_reserve_reports_a_full_disk_before_a_memory_mapped_write(tmp_path, monkeypatch):
    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, ENOSPC_TEXT)

    monkeypatch.setattr(os, "posix_fallocate", full)
    target = tmp_path / "images.npy"
    with pytest.raises(store.StorageError) as caught, store.atomic_path(target) as tmp:
        tmp.write_bytes(b"\0" * 100)
        store.reserve(tmp, 10**6)
    _names_path_space_and_remedy(str(caught.value), target)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------ damaged stores (issue 25, item 1)


def _store(folder, n=6):
    save_processed(folder, np.full((n, 28, 28), 7, np.uint8), meta(n))
    return folder / "images.npy"


def _refused(folder, *patterns):
    for mmap in (True, False):
        with pytest.raises(DatasetFormatError) as caught:
            load_processed(folder, mmap=mmap)
        message = str(caught.value)
        assert message.startswith(f"{folder / 'images.npy'}: ")
        assert f"snakemake --cores all --force {folder / 'images.npy'}" in message
        for pattern in patterns:
            assert re.search(pattern, message), message


def test_truncated_store_is_refused_naming_the_file_and_the_rebuild(tmp_path):
    # was: ValueError: mmap length is greater than file size (no file named)
    images = _store(tmp_path)
    images.write_bytes(images.read_bytes()[:-100])
    _refused(tmp_path, r"bytes, but its header .* needs", r"truncated")


def test_junk_store_is_refused(tmp_path):
    images = _store(tmp_path)
    images.write_bytes(np.random.default_rng(0).bytes(images.stat().st_size))
    _refused(tmp_path, r"not a readable \.npy file")


def test_pickled_store_is_refused_before_numpy_reads_it(tmp_path):
    # was: numpy's "This file contains pickled (object) data" (no file named)
    _store(tmp_path)
    np.save(tmp_path / "images.npy", np.array([{"a": 1}] * 6, dtype=object), allow_pickle=True)
    _refused(tmp_path, r"Python objects \(a pickle\), never loaded")


def test_store_and_meta_that_disagree_are_refused(tmp_path):
    _store(tmp_path)
    meta(5).to_csv(tmp_path / "meta.csv", index=False)
    _refused(tmp_path, r"6 images, but .*meta\.csv has 5 rows")


def test_store_with_trailing_bytes_is_refused(tmp_path):
    images = _store(tmp_path)
    with open(images, "ab") as f:
        f.write(b"\0" * 784)
    _refused(tmp_path, r"longer than its header says")


# --------------------------------------------------------------------------- digest


def fresh_digest(path) -> str:
    """blake2b-128 of the whole file, computed here without hwbench."""
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


@pytest.mark.parametrize("shape", [(5, 28, 28), (3, 32, 32, 3), (0, 28, 28)])
def test_digest_is_the_hash_of_the_written_file(tmp_path, shape):
    rng = np.random.default_rng(0)
    save_processed(tmp_path, rng.integers(0, 256, shape, dtype=np.uint8), meta(shape[0]))
    record = recorded_digest(tmp_path)
    images = tmp_path / "images.npy"
    assert record == {
        "file": "images.npy",
        "algorithm": "blake2b-128",
        "digest": fresh_digest(images),
        "bytes": images.stat().st_size,
        "shape": list(shape),
        "dtype": "uint8",
    }
    assert store_digest(images) == record["digest"]
    assert json.loads((tmp_path / DIGEST_FILE).read_text()) == record


def test_store_digest_streams_files_larger_than_its_block(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_READ_BLOCK", 1000)  # many blocks and a partial last one
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4321, dtype=np.uint8).tobytes())
    assert store_digest(path) == fresh_digest(path)


def test_a_changed_store_gives_a_changed_digest(tmp_path):
    images = np.zeros((4, 28, 28), np.uint8)
    save_processed(tmp_path / "a", images, meta(4))
    changed = images.copy()
    changed[2, 14, 14] = 1  # one pixel
    save_processed(tmp_path / "b", changed, meta(4))
    save_processed(tmp_path / "c", images, meta(4))
    a, b, c = (recorded_digest(tmp_path / x)["digest"] for x in "abc")
    assert a != b and a == c
    # a store damaged after it was written no longer matches its record
    path = tmp_path / "a" / "images.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert store_digest(path) != a


def test_a_missing_digest_names_the_file_and_the_rebuild(tmp_path):
    save_processed(tmp_path, np.zeros((2, 28, 28), np.uint8), meta(2))
    (tmp_path / DIGEST_FILE).unlink()
    with pytest.raises(DatasetFormatError) as err:
        recorded_digest(tmp_path)
    assert str(tmp_path / DIGEST_FILE) in str(err.value) and "not found" in str(err.value)
    assert f"snakemake --cores all --force {tmp_path / DIGEST_FILE}" in str(err.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not a JSON digest record"),
        ("[1, 2]", "expected the keys"),
        ('{"file": "images.npy"}', "expected the keys"),
        ("BAD_ALGORITHM", "expected 'images.npy' with 'blake2b-128'"),
        ("SHORT_DIGEST", "is not 32 lower-case hex digits"),
    ],
)
def test_a_garbled_digest_names_the_file(tmp_path, text, problem):
    save_processed(tmp_path, np.zeros((2, 28, 28), np.uint8), meta(2))
    path = tmp_path / DIGEST_FILE
    good = json.loads(path.read_text())
    if text == "BAD_ALGORITHM":
        text = json.dumps({**good, "algorithm": "md5"})
    elif text == "SHORT_DIGEST":
        text = json.dumps({**good, "digest": good["digest"][:8]})
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match=problem) as err:
        recorded_digest(tmp_path)
    assert str(path) in str(err.value) and "--force" in str(err.value)
