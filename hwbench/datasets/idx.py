"""The IDX format of MNIST-style files (gzip-compressed or not)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from hwbench.datasets.download import open_payload

IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801


class IdxFormatError(ValueError):
    """An IDX file is not what its name says; the message names the file."""


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``ndim`` dimensions, checking magic and size."""
    path = Path(path)
    try:
        with open_payload(path) as stream:
            data = stream.read()
    except (OSError, EOFError) as exc:
        raise IdxFormatError(f"{path}: cannot be read as IDX ({exc})") from exc
    return parse_idx(data, ndim, str(path))


def parse_idx(data: bytes, ndim: int, path: str) -> np.ndarray:
    """Parse IDX bytes (already decompressed); ``path`` names the source in errors."""
    expected_magic = IMAGES_MAGIC if ndim == 3 else LABELS_MAGIC
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxFormatError(f"{path}: {len(data)} bytes, shorter than an IDX header")
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        kind = "images (idx3)" if ndim == 3 else "labels (idx1)"
        raise IdxFormatError(
            f"{path}: magic number {magic:#010x}, expected {expected_magic:#010x} for {kind} "
            "of unsigned bytes; the file is not an MNIST-style IDX file"
        )
    dims = struct.unpack(">" + "I" * ndim, data[4:header])
    need = int(np.prod(dims))
    if len(data) - header != need:
        raise IdxFormatError(
            f"{path}: header says {' x '.join(map(str, dims))} = {need:,} bytes of data, "
            f"file holds {len(data) - header:,}; it is truncated or corrupt"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_pair(images_path, labels_path, n_classes: int, size: int = 28):
    """Images and labels of one split, checked against each other."""
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1)
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
