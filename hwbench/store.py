"""The processed-dataset format and atomic file writes.

A processed dataset is a folder with ``images.npy`` (uint8, N x 28 x 28, white
ink on black like MNIST; colour datasets such as CIFAR-100 are N x H x W x 3),
``meta.csv`` (one row per image) and ``digest.json`` (the content digest of
images.npy, computed while it is written: a job can fingerprint the store without
reading it). Every writer in hwbench goes through :func:`atomic_path` so a killed
job never leaves a file that looks complete. :func:`open_images` is the one way to
open images.npy: its header, length and rows are checked before numpy reads it.

Storage faults: a write that fails because the disk is full (ENOSPC), a quota
is exceeded (EDQUOT) or the device reports an I/O error (EIO) raises
:class:`StorageError` naming the file, the free space where it was going and
what to do. :func:`atomic_path` does this for every output (stores, tables,
checkpoints); the download writer and local copies use :func:`storage_faults`.
The file being replaced is untouched and the temporary is removed, so nothing
already written is lost.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where a CSV is read: a training job starts without pandas
    import pandas as pd

META_COLUMNS = ["label", "label_name", "script", "writer", "pen", "source_split"]
IMAGES_FILE = "images.npy"
META_FILE = "meta.csv"
DIGEST_FILE = "digest.json"
DIGEST_ALGORITHM = "blake2b-128"
_DIGEST_KEYS = {"file", "algorithm", "digest", "bytes", "shape", "dtype"}
_READ_BLOCK = 8 << 20  # bytes per read when hashing a file


class DatasetFormatError(ValueError):
    """A processed dataset on disk does not have the expected layout."""


def _temp_prefix(path: Path) -> str:
    return f".{path.stem}."


def _host() -> str:
    return socket.gethostname().replace(".", "_")  # no dots: the name is split on them


def _owner_tag() -> str:
    """Host and process that own a temporary file (encoded in its name)."""
    return f"{_host()}-{os.getpid()}"


def _sweep_orphans(path: Path) -> None:
    """Remove temporaries of ``path`` left by a killed process of this host.

    A SIGKILL (out of memory, a cluster's time limit) skips the ``finally`` that
    removes the temporary; the next write of the same file cleans up after it.
    Only files whose owning process is gone are removed: the host must be this
    one and its process id must not be alive.
    """
    host = _host()
    for tmp in path.parent.glob(f"{_temp_prefix(path)}*{path.suffix}"):
        owner = tmp.name[len(_temp_prefix(path)) :].split(".", 1)[0]
        owner_host, _, pid = owner.rpartition("-")
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, another user's
    return True


class StorageError(OSError):
    """A write failed for lack of space or a device error; the message says where,
    how much space is free there, and what to do."""

    def __str__(self) -> str:
        return self.strerror  # the whole message, without OSError's "[Errno n]" prefix


_STORAGE_FAULTS = {
    errno.ENOSPC: "the disk is full (ENOSPC)",
    errno.EDQUOT: "the disk quota is exceeded (EDQUOT)",
    errno.EIO: "the device reported an I/O error (EIO: a failing disk or a lost network mount)",
}
# torch.save's zip writer reports a short write as a RuntimeError, not an OSError,
# e.g. "[enforce fail at inline_container.cc:672] . unexpected pos 476736 vs 476628".
_TORCH_SHORT_WRITE = ("unexpected pos", "PytorchStreamWriter failed writing")


def _fault(exc: BaseException) -> str | None:
    """What storage fault ``exc`` is (None: not one)."""
    if isinstance(exc, OSError) and exc.errno in _STORAGE_FAULTS:
        return _STORAGE_FAULTS[exc.errno]
    if isinstance(exc, RuntimeError) and any(k in str(exc) for k in _TORCH_SHORT_WRITE):
        return "the write stopped short (torch's file writer; most likely the disk is full)"
    return None


def free_space(path: str | os.PathLike) -> str:
    """Free space on the file system holding ``path`` (its nearest existing folder)."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        return f"free space unknown ({exc.strerror})"
    return f"{free / 2**20:,.1f} MiB free on the file system holding {folder}"


def storage_error(path: str | os.PathLike, exc: BaseException) -> StorageError | None:
    """The :class:`StorageError` for ``exc`` raised while writing ``path``, or None."""
    fault = _fault(exc)
    if fault is None:
        return None
    code = exc.errno if isinstance(exc, OSError) else errno.ENOSPC
    return StorageError(
        code,
        f"{path}: could not be written: {fault}; {free_space(path)}. Free space there (or "
        "move the folder to a larger disk) and rerun the same command: everything already "
        "written is kept (the previous file is untouched, a download or training job "
        f"resumes where it stopped). Error: {type(exc).__name__}: {exc}",
    )


@contextlib.contextmanager
def storage_faults(path: str | os.PathLike) -> Iterator[None]:
    """Turn a storage fault raised inside the block into :class:`StorageError` for ``path``."""
    try:
        yield
    except StorageError:
        raise
    except (OSError, RuntimeError) as exc:
        error = storage_error(path, exc)
        if error is None:
            raise
        raise error from exc


def reserve(path: str | os.PathLike, nbytes: int) -> None:
    """Allocate ``nbytes`` for ``path`` now, so a memory-mapped writer meets a full disk
    as an OSError here (a :class:`StorageError` inside :func:`atomic_path`), not as a
    SIGBUS mid-write."""
    with open(path, "r+b") as file:
        try:
            os.posix_fallocate(file.fileno(), 0, nbytes)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            # a file system without allocation: writes will tell


def current_umask() -> int:
    """The process's umask (reading it means setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file keeps the target's suffix so libraries that pick a
    format from the extension (numpy, matplotlib, torch) behave the same; its
    name carries the host and process id, so a later write can tell an
    orphan of a killed job from a live one (:func:`_sweep_orphans`).
    """
    path = Path(path)
    with storage_faults(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        _sweep_orphans(path)
        fd, tmp = tempfile.mkstemp(
            prefix=f"{_temp_prefix(path)}{_owner_tag()}.", suffix=path.suffix, dir=path.parent
        )
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes 0600 files; outputs are shared results, so honour the umask instead.
    os.chmod(tmp_path, 0o666 & ~current_umask())
    try:
        with storage_faults(path):
            yield tmp_path
            os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: str | os.PathLike, frame: pd.DataFrame, **kwargs) -> None:
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)


def new_hasher():
    """The hash of a store's digest (:data:`DIGEST_ALGORITHM`)."""
    return hashlib.blake2b(digest_size=16)


class _HashingWriter:
    """A binary file that hashes what is written to it (numpy writes .npy files
    through ``write``, header first, then the data in blocks)."""

    def __init__(self, raw, hasher) -> None:
        self._raw, self._hasher = raw, hasher

    def write(self, data) -> int:
        self._hasher.update(data)
        return self._raw.write(data)


def save_npy(path: str | os.PathLike, array: np.ndarray) -> str:
    """``np.save`` to ``path`` (in place, not atomic); returns the digest of the
    file's bytes, computed while writing them (no second read)."""
    hasher = new_hasher()
    with open(path, "wb") as raw:
        np.save(_HashingWriter(raw, hasher), array, allow_pickle=False)
    return hasher.hexdigest()


def write_npy(path: str | os.PathLike, array: np.ndarray) -> str:
    """Write ``array`` to the .npy file ``path`` atomically; returns its digest."""
    with atomic_path(path) as tmp:
        digest = save_npy(tmp, array)
    return digest


def store_digest(images_path: str | os.PathLike) -> str:
    """The hex digest of a file's bytes (:data:`DIGEST_ALGORITHM`), read in blocks."""
    hasher = new_hasher()
    block = bytearray(_READ_BLOCK)
    view = memoryview(block)
    with open(images_path, "rb") as f:
        while n := f.readinto(block):
            hasher.update(view[:n])
    return hasher.hexdigest()


def write_digest(folder: str | os.PathLike, digest: str) -> None:
    """Record ``digest`` (of the folder's images.npy, as the writer computed it) in
    ``digest.json``, with the file's size, shape and dtype, atomically."""
    folder = Path(folder)
    images_path = folder / IMAGES_FILE
    layout = npy_layout(images_path)
    record = {
        "file": IMAGES_FILE,
        "algorithm": DIGEST_ALGORITHM,
        "digest": digest,
        "bytes": images_path.stat().st_size,
        "shape": list(layout.shape),
        "dtype": str(layout.dtype),
    }
    write_json(folder / DIGEST_FILE, record)


def recorded_digest(folder: str | os.PathLike) -> dict:
    """The digest record of the store in ``folder`` (see :func:`write_digest`).

    A missing or garbled ``digest.json`` raises :class:`DatasetFormatError` naming it."""
    path = Path(folder) / DIGEST_FILE
    if not path.exists():
        raise DatasetFormatError(
            f"{path} not found: every writer of {IMAGES_FILE} records its digest there; "
            + rebuild_hint(path)
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetFormatError(
            f"{path}: not a JSON digest record ({err}); " + rebuild_hint(path)
        ) from err
    problem = _digest_problem(record)
    if problem:
        raise DatasetFormatError(f"{path}: {problem}; " + rebuild_hint(path))
    return record


def _digest_problem(record) -> str | None:
    """What is wrong with a parsed digest record, or None."""
    if not isinstance(record, dict) or set(record) != _DIGEST_KEYS:
        keys = sorted(record) if isinstance(record, dict) else type(record).__name__
        return f"expected the keys {sorted(_DIGEST_KEYS)}, got {keys}"
    if record["file"] != IMAGES_FILE or record["algorithm"] != DIGEST_ALGORITHM:
        return (
            f"records {record['file']!r} hashed with {record['algorithm']!r}; "
            f"expected {IMAGES_FILE!r} with {DIGEST_ALGORITHM!r}"
        )
    digest = record["digest"]
    if not isinstance(digest, str) or not re.fullmatch("[0-9a-f]{32}", digest):
        return f"digest {digest!r} is not 32 lower-case hex digits"
    return None


@dataclass
class Processed:
    """A processed dataset held in memory."""

    images: np.ndarray  # uint8, N x 28 x 28
    meta: pd.DataFrame  # META_COLUMNS, N rows
    folder: Path | None = None  # where it was read from (None: a subset or built in memory)

    def subset(self, mask_or_index) -> Processed:
        index = np.asarray(mask_or_index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return Processed(self.images[index], self.meta.iloc[index].reset_index(drop=True))


def validate_meta(meta: pd.DataFrame, n_images: int, where: str) -> None:
    missing = [c for c in META_COLUMNS if c not in meta.columns]
    if missing:
        raise DatasetFormatError(f"{where}: missing columns {missing}; expected {META_COLUMNS}")
    if len(meta) != n_images:
        raise DatasetFormatError(f"{where}: {len(meta)} rows but {n_images} images")


def _shape_ok(shape: tuple[int, ...]) -> bool:
    """Grey N x H x W, or colour N x H x W x 3 (e.g. CIFAR-100 for the OneModel study)."""
    return len(shape) == 3 or (len(shape) == 4 and shape[3] == 3)


def _image_shape_ok(images: np.ndarray) -> bool:
    return _shape_ok(images.shape)


def save_processed(folder: str | os.PathLike, images: np.ndarray, meta: pd.DataFrame) -> None:
    """Write ``images.npy``, its ``digest.json`` and ``meta.csv`` into ``folder``
    (each atomically)."""
    folder = Path(folder)
    images = np.ascontiguousarray(images, dtype=np.uint8)
    if not _image_shape_ok(images):
        raise DatasetFormatError(
            f"{folder}: images must be N x H x W (or N x H x W x 3), got shape {images.shape}"
        )
    validate_meta(meta, len(images), str(folder / META_FILE))  # before writing anything
    write_digest(folder, write_npy(folder / IMAGES_FILE, images))
    save_meta(folder, meta, len(images))


def save_meta(folder: str | os.PathLike, meta: pd.DataFrame, n_images: int) -> None:
    """Write ``meta.csv`` of ``n_images`` images (the store's columns first), atomically.

    For writers that fill ``images.npy`` themselves (memory-mapped, see
    hwbench.preprocess); they record its digest with :func:`write_digest`."""
    folder = Path(folder)
    validate_meta(meta, n_images, str(folder / META_FILE))
    write_csv(folder / META_FILE, meta[META_COLUMNS + [c for c in meta if c not in META_COLUMNS]])


def rebuild_hint(path: str | os.PathLike) -> str:
    """What to run to rebuild a store file: the rule that writes it, forced."""
    return (
        f"rebuild it with `snakemake --cores all --force {path}` (reruns the rule that writes it)"
    )


@dataclass(frozen=True)
class NpyLayout:
    """What an .npy file's header says: shape, dtype, and where the data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int


def npy_layout(path: str | os.PathLike) -> NpyLayout:
    """Shape, dtype and data offset of a C-ordered .npy file, from its header alone,
    checked against the file's length. Errors name the file and how to rebuild it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: build it first, e.g. `snakemake --cores all {path}`"
        )
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read = {
                (1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0,
            }.get(version)
            if read is None:
                raise ValueError(f".npy format version {version} is not one numpy writes for uint8")
            shape, fortran, dtype = read(f)
        except (ValueError, SyntaxError, EOFError) as err:
            raise DatasetFormatError(
                f"{path}: not a readable .npy file ({err}); damaged or overwritten: "
                + rebuild_hint(path)
            ) from err
        offset = f.tell()
    if dtype.hasobject:
        raise DatasetFormatError(
            f"{path}: holds Python objects (a pickle), never loaded; a store holds uint8 "
            "pixels: " + rebuild_hint(path)
        )
    if fortran:
        raise DatasetFormatError(
            f"{path}: Fortran-ordered, a store is C-ordered: " + rebuild_hint(path)
        )
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        how = (
            "truncated, or still being written"
            if actual < expected
            else "longer than its header says"
        )
        raise DatasetFormatError(
            f"{path}: {actual:,} bytes, but its header ({dtype} {tuple(shape)}) needs "
            f"{expected:,} ({how}): " + rebuild_hint(path)
        )
    return NpyLayout(tuple(shape), dtype, offset)


def images_layout(path: str | os.PathLike, n_rows: int | None = None) -> NpyLayout:
    """:func:`npy_layout` of a store's images.npy, also checking it holds uint8
    N x H x W (or N x H x W x 3) images, ``n_rows`` of them when given (meta.csv's rows)."""
    layout = npy_layout(path)
    if layout.dtype != np.uint8 or not _shape_ok(layout.shape):
        raise DatasetFormatError(
            f"{path}: expected uint8 N x H x W (or N x H x W x 3), got {layout.dtype} "
            f"{layout.shape}: " + rebuild_hint(path)
        )
    if n_rows is not None and layout.shape[0] != n_rows:
        raise DatasetFormatError(
            f"{path}: {layout.shape[0]} images, but {Path(path).with_name(META_FILE)} has "
            f"{n_rows} rows (one of them is stale or damaged): " + rebuild_hint(path)
        )
    return layout


def open_images(
    path: str | os.PathLike, n_rows: int | None = None, mmap: bool = False
) -> np.ndarray:
    """A store's images.npy, checked (:func:`images_layout`) before numpy reads or
    memory-maps a byte of it; ``mmap`` maps it read-only."""
    images_layout(path, n_rows)
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def load_processed(folder: str | os.PathLike, mmap: bool = False) -> Processed:
    """Read a processed dataset, checking that images and meta agree."""
    folder = Path(folder)
    images_path, meta_path = folder / IMAGES_FILE, folder / META_FILE
    for p in (images_path, meta_path):
        if not p.exists():
            raise FileNotFoundError(
                f"{p} not found: build it first, e.g. `snakemake --cores all {p}`"
            )
    import pandas as pd

    meta = pd.read_csv(meta_path, keep_default_na=False, dtype={"label_name": str, "writer": str})
    images = open_images(images_path, len(meta), mmap=mmap)
    validate_meta(meta, len(images), str(meta_path))
    return Processed(images, meta, folder)


def read_split(path: str | os.PathLike) -> pd.DataFrame:
    """Read a split file: ``index``, ``split`` (and ``resample`` where the scheme has them)."""
    import pandas as pd

    frame = pd.read_csv(path)
    if not {"index", "split"} <= set(frame.columns):
        raise DatasetFormatError(f"{path}: a split file needs columns 'index' and 'split'")
    return frame
