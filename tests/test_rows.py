"""Rows of images.npy read from disk per batch: the same bytes as the array in memory."""

import hashlib
import os
import pickle

import numpy as np
import pytest
import torch

from hwbench import rows as rows_module
from hwbench.rows import StoredRows, rows_or_resident


@pytest.fixture(params=[(50, 7, 5), (40, 4, 6, 3)], ids=["grey", "colour"])
def stored(request, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, request.param, dtype=np.uint8)
    path = tmp_path / "images.npy"
    np.save(path, images)
    return path, images


def test_rows_read_as_the_array_indexes_them(stored):
    path, images = stored
    rows = np.array([9, 3, 4, 5, 30, 3, 0, len(images) - 1])  # unsorted, a duplicate
    view = StoredRows(path, rows)
    assert len(view) == 8 and view.shape == (8, *images.shape[1:]) and view.ndim == images.ndim
    assert view.dtype == torch.uint8 and view.nbytes == images[rows].nbytes
    for index in (torch.tensor([7, 0, 5, 5, 2]), np.array([1, 2, 3]), [4], slice(2, None, 3)):
        expected = images[rows][index]
        got = view[index]
        assert isinstance(got, torch.Tensor) and np.array_equal(got.numpy(), expected)
    assert np.array_equal(StoredRows(path)[:].numpy(), images)  # rows=None: every row


def test_consecutive_rows_are_one_read(stored, monkeypatch):
    path, images = stored
    calls = []
    real = os.preadv
    monkeypatch.setattr(
        os, "preadv", lambda fd, bufs, off: calls.append(off) or real(fd, bufs, off)
    )
    view = StoredRows(path)
    got = view[torch.tensor([7, 5, 6, 20, 21])]  # runs 5-7 and 20-21
    assert len(calls) == 2
    assert np.array_equal(got.numpy(), images[[7, 5, 6, 20, 21]])


def test_digest_is_the_hash_of_the_rows_in_memory(stored, monkeypatch):
    path, images = stored
    rows = np.array([3, 1, 2, 39, 8])
    expected = hashlib.blake2b(np.ascontiguousarray(images[rows]), digest_size=8).hexdigest()
    assert StoredRows(path, rows).digest() == expected
    monkeypatch.setattr(rows_module, "DIGEST_CHUNK_BYTES", 1)  # one row per update
    assert StoredRows(path, rows).digest() == expected


def test_a_pickled_copy_reads_on_its_own(stored):
    path, images = stored
    view = StoredRows(path, [2, 4])
    view[[0]]  # opens the parent's descriptor
    twin = pickle.loads(pickle.dumps(view))
    assert twin._fd is None
    assert np.array_equal(twin[[1, 0]].numpy(), images[[4, 2]])


def test_bad_files_and_rows_are_named(tmp_path, stored):
    path, images = stored
    with pytest.raises(IndexError, match="rows outside"):
        StoredRows(path, [0, len(images)])
    with pytest.raises(IndexError, match="positions outside"):
        StoredRows(path, [0, 1])[[2]]
    truncated = tmp_path / "truncated.npy"
    truncated.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match=r"truncated\.npy.*truncated.*rebuild"):
        StoredRows(truncated)
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not an npy file at all")
    with pytest.raises(ValueError, match=r"junk\.npy: not a readable \.npy"):
        StoredRows(junk)
    floats = tmp_path / "floats.npy"
    np.save(floats, np.zeros((3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="expected uint8"):
        StoredRows(floats)


def test_the_budget_decides_disk_or_memory(stored):
    path, images = stored
    rows = np.arange(10)
    in_memory = rows_or_resident(path, rows, budget_mb=1)  # a few KB: under 1 MiB
    assert isinstance(in_memory, torch.Tensor)
    assert np.array_equal(in_memory.numpy(), images[:10])
    assert isinstance(rows_or_resident(path, rows, budget_mb=0), StoredRows)
    assert isinstance(rows_or_resident(path, rows, budget_mb=None), torch.Tensor)
