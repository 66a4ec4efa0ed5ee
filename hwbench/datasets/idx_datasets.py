"""Readers of the 28x28 IDX datasets: MNIST, Kannada-MNIST, Dig-MNIST, EMNIST."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from hwbench.datasets import registry, safe_pickle
from hwbench.datasets.common import concat, make_meta
from hwbench.datasets.extract import ArchiveError, gunzip_bounded, open_zip, read_zip_member
from hwbench.datasets.idx import REFETCH, IdxFormatError, parse_idx, read_pair
from hwbench.datasets.textrecords import locate_decode_error, locate_parse_error, record_error
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


# The published forms of Kannada-MNIST and Dig-MNIST (registry variants): per split,
# the (images, labels) files. github.com/vinayprabhu/Kannada_MNIST holds the IDX gz
# and np.savez files side by side in data/output_tensors/MNIST_format/.
KANNADA_FORMS = {
    "idx": {
        "train": ("X_kannada_MNIST_train-idx3-ubyte.gz", "y_kannada_MNIST_train-idx1-ubyte.gz"),
        "test": ("X_kannada_MNIST_test-idx3-ubyte.gz", "y_kannada_MNIST_test-idx1-ubyte.gz"),
    },
    "npz": {
        "train": ("X_kannada_MNIST_train.npz", "y_kannada_MNIST_train.npz"),
        "test": ("X_kannada_MNIST_test.npz", "y_kannada_MNIST_test.npz"),
    },
}
DIG_FORMS = {
    "idx": ("X_dig_MNIST-idx3-ubyte.gz", "y_dig_MNIST-idx1-ubyte.gz"),
    "npz": ("X_dig_MNIST.npz", "y_dig_MNIST.npz"),
    "csv": ("Dig-MNIST.csv",),
}
CSV_COLUMNS = ["label"] + [f"pixel{i}" for i in range(784)]
WHERE_FORMS = (
    "idx and npz: github.com/vinayprabhu/Kannada_MNIST, data/output_tensors/MNIST_format/ "
    "(the npz also in the Kaggle dataset higgstachyon/kannada-mnist); csv (Dig-MNIST only): "
    "Dig-MNIST.csv of the Kaggle competition Kannada-MNIST"
)


def _variant(options: dict | None, dataset: str, forms) -> str:
    variant = (options or {}).get("variant") or "idx"
    if variant not in forms:
        raise ValueError(
            f"config data.{dataset}.variant = {variant!r}: {dataset} is read as one of "
            f"{sorted(forms)} ({WHERE_FORMS})"
        )
    return variant


def read_npz_array(path: Path, ndim: int) -> np.ndarray:
    """The one uint8 array (key ``arr_0``, as ``np.savez`` names it) of a Kannada npz."""
    try:
        arrays = safe_pickle.load_npz(path)
    except (ArchiveError, ValueError) as exc:
        raise IdxFormatError(f"{path}: not a readable npz ({exc}). {REFETCH}") from exc
    if list(arrays) != ["arr_0"]:
        raise IdxFormatError(
            f"{path}: holds {sorted(arrays)}; the published file holds one array, arr_0. {REFETCH}"
        )
    array = arrays["arr_0"]
    shape = "N x 28 x 28" if ndim == 3 else "N"
    if array.dtype != np.uint8 or array.ndim != ndim or (ndim == 3 and array.shape[1:] != (28, 28)):
        raise IdxFormatError(
            f"{path}: arr_0 is {array.dtype} {array.shape}, expected uint8 {shape}. {REFETCH}"
        )
    return array


def _npz_split(files, images, labels, names, split):
    x, y = read_npz_array(files[images], 3), read_npz_array(files[labels], 1)
    if len(x) != len(y) or (len(y) and y.max() >= len(names)):
        raise IdxFormatError(
            f"{files[images]} holds {len(x):,} images, {files[labels]} {len(y):,} labels "
            f"(largest {int(y.max()) if len(y) else None}, expected < {len(names)})"
        )
    return x, make_meta(y, names, split)


def _csv_lines(path: Path) -> list[bytes]:
    """The raw lines of a CSV, read again only to name the line an error is on."""
    return path.read_bytes().splitlines()


def read_kaggle_csv(path: Path, names, split):
    """A Kaggle CSV: header ``label,pixel0,...,pixel783``, one row-major image per row."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=np.int64)
    except UnicodeDecodeError as exc:  # name the line, not a byte offset
        raise locate_decode_error(_csv_lines(path), path, "utf-8", IdxFormatError) from exc
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        message = f"not a numeric CSV ({exc})"
        raise locate_parse_error(_csv_lines(path), path, message, IdxFormatError) from exc
    if list(frame.columns) != CSV_COLUMNS:
        raise IdxFormatError(
            f"{path}: header {list(frame.columns)[:3]}... ({frame.shape[1]} columns); expected "
            "label,pixel0,...,pixel783 (785 columns). The competition's test.csv (id, no "
            f"labels) cannot be read. {WHERE_FORMS}"
        )
    values = frame.to_numpy()
    pixels_bad = (values[:, 1:] < 0).any(1) | (values[:, 1:] > 255).any(1)
    bad = np.flatnonzero(pixels_bad | (values[:, 0] < 0) | (values[:, 0] >= len(names)))
    if len(bad):
        number = int(bad[0]) + 2  # line 1 is the header
        problem = f"pixel outside 0..255 or label outside 0..{len(names) - 1}"
        raise record_error(path, number, _csv_lines(path)[number - 1], problem, IdxFormatError)
    images = values[:, 1:].astype(np.uint8).reshape(-1, 28, 28)  # pixel{28 * row + col}
    return images, make_meta(values[:, 0], names, split)


def read_kannada_mnist(files: dict[str, Path], options: dict | None = None):
    variant = _variant(options, "kannada_mnist", KANNADA_FORMS)
    read = _split if variant == "idx" else _npz_split
    return concat(
        [
            read(files, *KANNADA_FORMS[variant][split], KANNADA_DIGITS, split)
            for split in ("train", "test")
        ]
    )


def read_dig_mnist(files: dict[str, Path], options: dict | None = None):
    # Dig-MNIST is an out-of-distribution test set (other volunteers, other sheets).
    variant = _variant(options, "dig_mnist", DIG_FORMS)
    if variant == "csv":
        return concat([read_kaggle_csv(files["Dig-MNIST.csv"], KANNADA_DIGITS, "test")])
    read = _split if variant == "idx" else _npz_split
    return concat([read(files, *DIG_FORMS[variant], KANNADA_DIGITS, "test")])


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
