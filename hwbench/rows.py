"""Rows of a processed ``images.npy`` read from disk one batch at a time.

A job whose selected images are larger than its budget keeps only their row numbers
and reads each batch's rows with ``pread``: its resident memory no longer grows with
the dataset. The reads go through the page cache, which the kernel shares between the
jobs on a node that read the same dataset and reclaims under pressure; a memory map
would do the same but count every page a job touched in its RSS (which SLURM and
``benchmarks/memory.py`` watch) for the rest of the job.

Training reads a batch's rows ahead of the step that uses them: :class:`Prefetcher`
runs the reads in a thread, at most two batches ahead, and :func:`take_rows` reads
into staging memory that is pinned when the batch goes to a CUDA device, so its
copy there is asynchronous (a copy from pageable memory waits for the GPU's work).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import astuple
from pathlib import Path

import numpy as np
import torch

from hwbench.store import DatasetFormatError, npy_layout, rebuild_hint

DIGEST_CHUNK_BYTES = 64 * 2**20
ORIGIN_ATTR = "hwbench_origin"  # set on a tensor holding exactly some rows of a store

log = logging.getLogger("hwbench.rows")


def store_origin(path: str | os.PathLike, rows: np.ndarray) -> str | None:
    """What identifies rows ``rows`` of the store ``path`` (an images.npy) without
    reading them: the store's recorded digest (digest.json, written with the store)
    and a hash of the row numbers. None, with a log line, when the record is missing
    or does not describe the file as it is: the caller then hashes the rows' bytes."""
    from hwbench.store import recorded_digest  # store imports nothing of this module

    path = Path(path)
    try:
        record = recorded_digest(path.parent)
    except ValueError as err:  # DatasetFormatError: missing or garbled record
        log.warning("%s; hashing the rows' bytes instead", err)
        return None
    if record["file"] != path.name or record["bytes"] != os.path.getsize(path):
        log.warning(
            "%s: its digest record (%s bytes) does not describe the file (%s bytes); "
            "hashing the rows' bytes instead",
            path,
            record["bytes"],
            os.path.getsize(path),
        )
        return None
    index = np.ascontiguousarray(rows, dtype=np.int64)
    rows_hash = hashlib.blake2b(index.tobytes(), digest_size=16).hexdigest()
    return f"store {record['algorithm']}:{record['digest']} rows {len(index)}:{rows_hash}"


def with_origin(tensor: torch.Tensor, origin: str | None) -> torch.Tensor:
    """Mark ``tensor`` as holding exactly what ``origin`` identifies
    (:func:`store_origin`), so a fingerprint need not hash its bytes."""
    if origin is not None:
        setattr(tensor, ORIGIN_ATTR, origin)
    return tensor


def cat_with_origin(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(tensors)``, marked with their origins in order when all have one."""
    origins = [origin_of(t) for t in tensors]
    joined = " + ".join(origins) if origins and None not in origins else None
    return with_origin(torch.cat(list(tensors)), joined)


def origin_of(data) -> str | None:
    """The store origin of a :class:`StoredRows` or of a marked tensor, else None."""
    if isinstance(data, StoredRows):
        return data.origin()
    return getattr(data, ORIGIN_ATTR, None)


class StoredRows:
    """Rows ``rows`` of the uint8 array in ``path``, read when indexed.

    Behaves as a read-only uint8 tensor of shape ``(len(rows), *row_shape)`` for what
    the batch transforms need: ``len``, ``shape``, ``ndim``, ``dtype`` and indexing by
    an index tensor, array or slice (returning a CPU tensor). The file must not change
    while a job reads it; its content hash (:meth:`digest`) goes in the job's
    checkpoint fingerprint through :meth:`origin` (the store's recorded digest and the
    row numbers), or :meth:`digest` where the store has no digest record.
    """

    dtype = torch.uint8
    device = torch.device("cpu")  # where an indexed batch comes out
    _fd: int | None = None  # opened on the first read, per process
    _pid: int | None = None

    def __init__(self, path: str | os.PathLike, rows: Sequence[int] | np.ndarray | None = None):
        self.path = Path(path)
        # the store's one checked opener: header, no pickle, C order, file length
        shape, dtype, self._offset = astuple(npy_layout(self.path))
        if dtype != np.uint8 or len(shape) < 2:
            raise DatasetFormatError(
                f"{self.path}: expected uint8 N x ..., got {dtype} {shape}: "
                + rebuild_hint(self.path)
            )
        n = shape[0]
        self.row_shape = tuple(shape[1:])
        self.row_bytes = math.prod(self.row_shape)
        self.rows = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows, np.int64)
        if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= n):
            raise IndexError(f"{self.path}: rows outside 0..{n - 1}")
        self._digests: dict[int, str] = {}
        self._origin: list[str | None] = []  # computed once

    # --- what a tensor would answer ---------------------------------------------------

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.rows), *self.row_shape))

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    @property
    def nbytes(self) -> int:
        return len(self.rows) * self.row_bytes

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, slice):
            positions = np.arange(len(self.rows))[index]
        else:
            positions = np.asarray(torch.as_tensor(index).cpu(), dtype=np.int64).reshape(-1)
        return torch.from_numpy(self.read(positions))

    def __repr__(self) -> str:
        return f"StoredRows({self.path}, {len(self)} of {'x'.join(map(str, self.row_shape))})"

    # --- reading ----------------------------------------------------------------------

    def _file(self) -> int:
        # One descriptor per process: a forked worker must not share the parent's.
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def read(self, positions: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The images at ``positions`` (into ``rows``), as a new uint8 array or in ``out``.

        The file rows are read in ascending order, one ``pread`` per run of
        consecutive rows, so a pass in file order reads the file sequentially.
        """
        positions = np.asarray(positions, dtype=np.int64)
        if len(positions) and (positions.min() < -len(self.rows) or positions.max() >= len(self)):
            raise IndexError(f"{self!r}: positions outside 0..{len(self) - 1}")
        file_rows = self.rows[positions]
        order = np.argsort(file_rows, kind="stable")
        ordered = file_rows[order]
        buffer = np.empty((len(ordered), self.row_bytes), dtype=np.uint8)
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        for run in np.split(np.arange(len(ordered)), breaks):
            if len(run):
                self._pread(buffer[run[0] : run[-1] + 1], int(ordered[run[0]]))
        shape = (len(positions), *self.row_shape)
        if out is None:
            out = np.empty(shape, dtype=np.uint8)
        elif out.shape != shape or out.dtype != np.uint8 or not out.flags.c_contiguous:
            raise ValueError(f"{self!r}: out must be contiguous uint8 {shape}, got {out.shape}")
        out.reshape(len(positions), self.row_bytes)[order] = buffer
        return out

    def take(self, positions, pin: bool = False) -> torch.Tensor:
        """The images at ``positions`` as a uint8 tensor, in pinned memory when ``pin``."""
        positions = np.asarray(torch.as_tensor(positions), dtype=np.int64).reshape(-1)
        out = torch.empty((len(positions), *self.row_shape), dtype=torch.uint8, pin_memory=pin)
        self.read(positions, out.numpy())
        return out

    def _pread(self, into: np.ndarray, first_row: int) -> None:
        view, offset = memoryview(into).cast("B"), self._offset + first_row * self.row_bytes
        while len(view):
            got = os.preadv(self._file(), [view], offset)
            if got == 0:
                raise OSError(f"{self.path}: ended early at byte {offset}; rebuild it")
            view, offset = view[got:], offset + got

    def digest(self, digest_size: int = 8) -> str:
        """BLAKE2b of the selected rows' bytes in order: the hash of the array in memory."""
        if digest_size not in self._digests:
            h = hashlib.blake2b(digest_size=digest_size)
            step = max(1, DIGEST_CHUNK_BYTES // self.row_bytes)
            for start in range(0, len(self), step):
                h.update(self.read(np.arange(start, min(start + step, len(self)))))
            self._digests[digest_size] = h.hexdigest()
        return self._digests[digest_size]

    def origin(self) -> str | None:
        """The store digest and a hash of :attr:`rows` (:func:`store_origin`): no read."""
        if not self._origin:
            self._origin.append(store_origin(self.path, self.rows))
        return self._origin[0]

    def __del__(self):
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)

    def __getstate__(self):  # a pickled copy opens its own descriptor
        return {**self.__dict__, "_fd": None, "_pid": None}


def take_rows(source: torch.Tensor | StoredRows, index: torch.Tensor, pin: bool) -> torch.Tensor:
    """Rows ``index`` (a CPU tensor) of a host tensor or :class:`StoredRows`, as a new
    tensor, pinned when ``pin``.

    Pinned blocks come from torch's caching host allocator, which reuses one only
    after the asynchronous copies that read it have finished.
    """
    if isinstance(source, StoredRows):
        return source.take(index, pin)
    out = torch.empty((len(index), *source.shape[1:]), dtype=source.dtype, pin_memory=pin)
    return torch.index_select(source, 0, index, out=out)


class Prefetcher:
    """``make(item)`` for each of ``items``, in order, run by a reader thread ahead of
    the consumer: at most ``waiting`` made items wait, while one more is being made
    (the default: two batches ahead). A context manager: leaving it stops the thread.
    An error in the thread is raised to the consumer, at that item.
    """

    def __init__(self, make: Callable, items: Iterable, waiting: int = 1):
        if waiting < 1:
            raise ValueError(f"waiting={waiting}: at least one item must wait ready")
        self._items = list(items)
        self._queue: queue.Queue = queue.Queue(maxsize=waiting)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._fill, args=(make,), name="hwbench-prefetch", daemon=True
        )
        if self._items:
            self._thread.start()

    def _fill(self, make: Callable) -> None:
        for item in self._items:
            try:
                result = (True, make(item))
            except BaseException as err:  # handed to the consumer
                result = (False, err)
            if not self._put(result) or not result[0]:
                return

    def _put(self, result) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(result, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        for _ in self._items:
            ok, value = self._queue.get()
            if not ok:
                raise value
            yield value

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def rows_or_resident(
    path: str | os.PathLike, rows: np.ndarray, budget_mb: float | None
) -> StoredRows | torch.Tensor:
    """Rows ``rows`` of ``path``: read per batch when larger than ``budget_mb`` MiB,
    else read now into a CPU tensor marked with their origin (None: always into memory)."""
    stored = StoredRows(path, rows)
    if budget_mb is not None and stored.nbytes > budget_mb * 2**20:
        return stored
    return with_origin(torch.from_numpy(stored.read(np.arange(len(stored)))), stored.origin())


def batch_source(images: np.ndarray | torch.Tensor | StoredRows) -> torch.Tensor | StoredRows:
    """What a batch is indexed from: a tensor sharing in-memory images, or the StoredRows."""
    return torch.from_numpy(images) if isinstance(images, np.ndarray) else images
