"""Rows of images.npy read from disk per batch: the same bytes as the array in memory."""

import hashlib
import os
import pickle
import threading
import time

import numpy as np
import pytest
import torch

from hwbench import rows as rows_module
from hwbench.rows import Prefetcher, StoredRows, rows_or_resident, take_rows


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
    # issue 25: one checked opener (hwbench.store.npy_layout) for StoredRows and the store
    pickled = tmp_path / "pickled.npy"
    np.save(pickled, np.array([{}, {}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"pickled\.npy: holds Python objects.*--force"):
        StoredRows(pickled)


def test_the_budget_decides_disk_or_memory(stored):
    path, images = stored
    rows = np.arange(10)
    in_memory = rows_or_resident(path, rows, budget_mb=1)  # a few KB: under 1 MiB
    assert isinstance(in_memory, torch.Tensor)
    assert np.array_equal(in_memory.numpy(), images[:10])
    assert isinstance(rows_or_resident(path, rows, budget_mb=0), StoredRows)
    assert isinstance(rows_or_resident(path, rows, budget_mb=None), torch.Tensor)


def test_take_reads_into_a_new_tensor_as_indexing_does(stored):
    path, images = stored
    rows = StoredRows(path, np.arange(5, 30))
    positions = np.array([3, 1, 2, 7])
    taken = take_rows(rows, torch.from_numpy(positions), pin=False)
    assert torch.equal(taken, torch.from_numpy(images[5:30][positions]))
    memory = torch.from_numpy(images[5:30])
    assert torch.equal(take_rows(memory, torch.from_numpy(positions), pin=False), taken)
    with pytest.raises(ValueError, match="out must be contiguous uint8"):
        rows.read(positions, np.empty((4, 2), np.uint8))


def test_prefetcher_keeps_order_reads_at_most_two_ahead_and_stops():
    made, release = [], threading.Event()

    def make(item):
        made.append(item)
        if item >= 3:
            release.wait(5)
        return item * 10

    with Prefetcher(make, range(8)) as ahead:
        it = iter(ahead)
        assert next(it) == 0
        time.sleep(0.3)
        assert made == [0, 1, 2]  # 1 handed out, 1 waiting ready, 1 being made
        release.set()
        assert list(it) == [10, 20, 30, 40, 50, 60, 70]

    blocked = Prefetcher(lambda item: item, range(100))
    next(iter(blocked))
    blocked.close()  # the thread stops though 98 items were never taken
    assert not blocked._thread.is_alive()


def test_prefetcher_raises_the_readers_error_at_its_item():
    def make(item):
        if item == 2:
            raise OSError("images.npy: ended early")
        return item

    with Prefetcher(make, range(5)) as ahead:
        got = []
        with pytest.raises(OSError, match="ended early"):
            for value in ahead:
                got.append(value)
    assert got == [0, 1]
