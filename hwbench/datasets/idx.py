"""The IDX format of MNIST-style files (gzip-compressed or not)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from hwbench.datasets.download import open_payload
from hwbench.datasets.extract import FLOOR_BYTES, ArchiveTooLargeError, current_limits, read_bounded

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801


REFETCH = (
    "Delete it and fetch it again (snakemake --forcerun fetch_raw <its "
    "data/raw/<dataset>/verified/<file>.json>), or replace it with an intact copy."
)


class IdxFormatError(ValueError):
    """An IDX file is not what its name says; the message names the file."""


def read_idx(path: str | os.PathLike, ndim: int, expected_size: int | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``ndim`` dimensions, checking magic and size.

    A gzip file is decompressed to its end (CRC checked) but no further than
    ``expected_size`` (the registry's payload size) or the archive ratio cap.
    """
    path = Path(path)
    if expected_size is None:
        lim = current_limits()
        by_ratio = max(int(lim.max_ratio * path.stat().st_size), FLOOR_BYTES)
        expected_size = min(by_ratio, lim.max_unpacked_bytes)
    try:
        with open_payload(path) as stream:
            data = read_bounded(stream, expected_size, str(path))
    except ArchiveTooLargeError as exc:
        raise IdxFormatError(f"{exc}. {REFETCH}") from exc
    except (OSError, EOFError) as exc:
        raise IdxFormatError(f"{path}: cannot be read as IDX ({exc}). {REFETCH}") from exc
    return parse_idx(data, ndim, str(path))


def parse_idx(data: bytes, ndim: int, path: str) -> np.ndarray:
    """Parse IDX bytes (already decompressed); ``path`` names the source in errors."""
    expected_magic = IMAGES_MAGIC if ndim == 3 else LABELS_MAGIC
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{path}: {len(data)} bytes, shorter than an IDX header. {REFETCH}")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        kind = "images (idx3)" if ndim == 3 else "labels (idx1)"
        raise IdxFormatError(
            f"{path}: magic number {magic:#010x}, expected {expected_magic:#010x} for {kind} "
            f"of unsigned bytes; the file is not an MNIST-style IDX file. {REFETCH}"
        )
    dims = struct.unpack(">" + "I" * ndim, data[4:header])
    need = int(np.prod(dims))
    if len(data) - header != need:
        raise IdxFormatError(
            f"{path}: header says {' x '.join(map(str, dims))} = {need:,} bytes of data, "
            f"file holds {len(data) - header:,}; it is truncated or corrupt. {REFETCH}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_pair(images_path, labels_path, n_classes: int, size: int = 28, expected=(None, None)):
    """Images and labels of one split, checked against each other.

    ``expected``: the registry's unpacked sizes of the two files (None: unknown).
    """
    images = read_idx(images_path, 3, expected[0])
    labels = read_idx(labels_path, 1, expected[1])
    if images.shape[1:] != (size, size):
        raise IdxFormatError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected {size}x{size}"
        )
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_path} holds {len(images):,} images but {labels_path} {len(labels):,} labels"
        )
    if len(labels) and labels.max() >= n_classes:
        raise IdxFormatError(
            f"{labels_path}: label {int(labels.max())} out of range 0..{n_classes - 1}"
        )
    return images, labels
