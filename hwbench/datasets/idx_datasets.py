"""Readers of the 28x28 IDX datasets: MNIST, Kannada-MNIST, Dig-MNIST, EMNIST."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from hwbench.datasets import registry
from hwbench.datasets.common import concat, make_meta
from hwbench.datasets.extract import ArchiveError, gunzip_bounded, open_zip, read_zip_member
from hwbench.datasets.idx import REFETCH, IdxFormatError, parse_idx, read_pair
from hwbench.datasets.vocab import KANNADA_DIGITS, LATIN_DIGITS


def _payload_size(name: str) -> int | None:
    """The registry's unpacked size of ``name`` (the bound on decompressing it)."""
    for spec in registry.REGISTRY.values():
        for entry in spec.files:
            if entry.name == name and entry.payload is not None:
                return entry.payload.size
    return None


def _split(files, images, labels, names, split):
    expected = (_payload_size(images), _payload_size(labels))
    x, y = read_pair(files[images], files[labels], len(names), expected=expected)
    return x, make_meta(y, names, split)


def read_mnist(files: dict[str, Path], options: dict | None = None):
    return concat(
        [
            _split(
                files,
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                LATIN_DIGITS,
                "train",
            ),
            _split(
                files,
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
                LATIN_DIGITS,
                "test",
            ),
        ]
    )


def read_kannada_mnist(files: dict[str, Path], options: dict | None = None):
    names = KANNADA_DIGITS
    return concat(
        [
            _split(
                files,
                "X_kannada_MNIST_train-idx3-ubyte.gz",
                "y_kannada_MNIST_train-idx1-ubyte.gz",
                names,
                "train",
            ),
            _split(
                files,
                "X_kannada_MNIST_test-idx3-ubyte.gz",
                "y_kannada_MNIST_test-idx1-ubyte.gz",
                names,
                "test",
            ),
        ]
    )


def read_dig_mnist(files: dict[str, Path], options: dict | None = None):
    # Dig-MNIST is an out-of-distribution test set (other volunteers, other sheets).
    return concat(
        [
            _split(
                files,
                "X_dig_MNIST-idx3-ubyte.gz",
                "y_dig_MNIST-idx1-ubyte.gz",
                KANNADA_DIGITS,
                "test",
            )
        ]
    )


EMNIST_SPLITS = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")


def _emnist_mapping(text: str, where: str) -> dict[int, str]:
    """``label ascii [ascii]`` lines -> label -> character (first code: upper case for letters)."""
    mapping = {}
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            mapping[int(parts[0])] = chr(int(parts[1]))
        except (ValueError, IndexError):
            raise IdxFormatError(
                f"{where} line {number}: expected 'label ascii', got {line!r}"
            ) from None
    return mapping


def read_emnist(files: dict[str, Path], options: dict | None = None):
    """One EMNIST split from gzip.zip, transposed back to MNIST orientation."""
    split = (options or {}).get("split", "byclass")
    if split not in EMNIST_SPLITS:
        raise ValueError(f"config data.emnist.split = {split!r}; choose one of {EMNIST_SPLITS}")
    archive = files["gzip.zip"]
    wanted = {
        f"emnist-{split}-{part}": None
        for part in (
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "test-images-idx3-ubyte.gz",
            "test-labels-idx1-ubyte.gz",
            "mapping.txt",
        )
    }
    # members streamed one at a time and counted against the archive limits
    with open_zip(archive, lambda name: PurePosixPath(name).name in wanted) as (zf, infos):
        for info in infos:
            wanted[PurePosixPath(info.filename).name] = read_zip_member(zf, info)
    missing = [k for k, v in wanted.items() if v is None]
    if missing:
        raise IdxFormatError(f"{archive}: members {missing} not found; is this EMNIST gzip.zip?")
    mapping = _emnist_mapping(wanted[f"emnist-{split}-mapping.txt"].decode(), f"{archive}:mapping")
    names = [mapping.get(i, "") for i in range(max(mapping) + 1)]
    parts = []
    for part in ("train", "test"):
        images = _idx_member(wanted, f"emnist-{split}-{part}-images-idx3-ubyte.gz", 3, archive)
        labels = _idx_member(wanted, f"emnist-{split}-{part}-labels-idx1-ubyte.gz", 1, archive)
        if len(images) != len(labels):
            raise IdxFormatError(
                f"{archive}: {part} has {len(images)} images, {len(labels)} labels"
            )
        unknown = sorted(set(np.unique(labels).tolist()) - set(mapping))
        if unknown:
            raise IdxFormatError(f"{archive}: {part} labels {unknown} missing from the mapping")
        # EMNIST stores each image transposed relative to MNIST.
        parts.append(
            (np.ascontiguousarray(images.transpose(0, 2, 1)), make_meta(labels, names, part))
        )
    return concat(parts)


def _idx_member(members, name, ndim, archive):
    data = members[name]
    where = f"{archive}:{name}"
    if data[:2] == b"\x1f\x8b":
        try:
            data = gunzip_bounded(data, where)
        except ArchiveError as exc:
            raise IdxFormatError(f"{exc}. {REFETCH}") from exc
        except (OSError, EOFError) as exc:
            raise IdxFormatError(f"{where}: corrupt gzip member ({exc}). {REFETCH}") from exc
    return parse_idx(data, ndim, where)
