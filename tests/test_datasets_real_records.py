"""Every reader on the real datasets' own records (issue 23).

Each test builds its fixture from what the real files hold, copied from the
dataset, its documentation, or what public loaders and dataset repositories print
or hold; the source is named in the test's docstring. Pixels (and, where a
source prints only some of them, the remaining label values) are generated;
headers, names, layouts, keys, encodings and byte layouts are not. Where a
small real file is public its bytes are rebuilt here from the facts and checked
against the checksum the registry pins for it.
"""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest

from hwbench.datasets import registry
from hwbench.datasets.idx import IdxFormatError
from hwbench.datasets.idx_datasets import (
    read_dig_mnist,
    read_kannada_mnist,
    read_mnist,
    read_npz_array,
)
from hwbench.datasets.vocab import KANNADA_DIGITS
from tests._datasets_support import (
    KANNADA_LABEL_FILES,
    KANNADA_LABEL_NPZ,
    idx_bytes,
    kannada_label_gz,
    kannada_label_npz,
    kannada_labels,
    savez_bytes,
    write,
)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def blank_images(count: int) -> np.ndarray:
    """Generated pixels (a bright bar whose row follows the image index)."""
    images = np.zeros((count, 28, 28), np.uint8)
    images[np.arange(count), np.arange(count) % 28, 4:24] = 255
    return images


# ---------------------------------------------------------------------- MNIST

# http://yann.lecun.com/exdb/mnist/ ("FILE FORMATS FOR THE MNIST DATABASE"):
# train-images-idx3-ubyte: 0x00000803(2051) magic number, 60000 number of images,
# 28 number of rows, 28 number of columns, then unsigned bytes row-wise;
# train-labels-idx1-ubyte: 0x00000801(2049) magic number (MSB first), 60000 items.
MNIST_TRAIN_IMAGES_HEADER = bytes.fromhex("000008030000ea600000001c0000001c")
MNIST_TRAIN_LABELS_HEADER = bytes.fromhex("000008010000ea60")
# The first and last three labels, as Keras' mnist.load_data() prints them
# (github.com/thunderpy/learn-deep-learning-with-python, test1.py):
# train_labels array([5, 0, 4, ..., 5, 6, 8]), test_labels array([7, 2, 1, ..., 4, 5, 6]).
MNIST_TRAIN_ENDS = ([5, 0, 4], [5, 6, 8])
MNIST_TEST_ENDS = ([7, 2, 1], [4, 5, 6])


def _mnist_labels(count, ends):
    labels = (np.arange(count) % 10).astype(np.uint8)  # generated, but for the printed ends
    labels[:3], labels[-3:] = ends
    return labels


def test_mnist_reads_the_real_headers_and_sizes(tmp_path):
    """The real IDX headers (LeCun's page) at the real counts, read under the registry's
    payload sizes (a reader bound one byte short would stop a real run)."""
    counts = {"train": 60000, "t10k": 10000}
    ends = {"train": MNIST_TRAIN_ENDS, "t10k": MNIST_TEST_ENDS}
    files = {}
    for part, count in counts.items():
        images = idx_bytes(blank_images(count), compress=False)
        labels = idx_bytes(_mnist_labels(count, ends[part]), compress=False)
        if part == "train":
            assert images[:16] == MNIST_TRAIN_IMAGES_HEADER
            assert labels[:8] == MNIST_TRAIN_LABELS_HEADER
        for kind, data in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{part}-{kind}-ubyte.gz"
            payload = registry.MNIST.file(name).payload
            assert len(data) == payload.size  # the registry's decompressed size
            files[name] = write(tmp_path / name, gzip.compress(data, compresslevel=1))
    images, meta = read_mnist(files)
    assert images.shape == (70000, 28, 28)
    assert meta.source_split.value_counts().to_dict() == {"train": 60000, "test": 10000}
    train, test = meta.label[meta.source_split == "train"], meta.label[meta.source_split == "test"]
    assert train.tolist()[:3] == [5, 0, 4] and train.tolist()[-3:] == [5, 6, 8]
    assert test.tolist()[:3] == [7, 2, 1] and test.tolist()[-3:] == [4, 5, 6]
    assert meta.label_name.tolist()[:3] == ["5", "0", "4"]
    np.testing.assert_array_equal(images[:60000], blank_images(60000))


# ---------------------------------------------------- Kannada-MNIST, Dig-MNIST

# The first 16 bytes of the published X_dig_MNIST-idx3-ubyte (decompressed), of
# github.com/vinayprabhu/Kannada_MNIST, data/output_tensors/MNIST_format/.
DIG_IMAGES_HEADER = bytes.fromhex("00000803000028000000001c0000001c")


@pytest.mark.parametrize("name", sorted(KANNADA_LABEL_FILES))
def test_kannada_label_files_are_the_published_bytes(name):
    """The rebuilt label files are the published ones: size and MD5 as the registry pins
    them (github.com/vinayprabhu/Kannada_MNIST, data/output_tensors/MNIST_format/)."""
    entry = next(
        f for s in (registry.KANNADA_MNIST, registry.DIG_MNIST) for f in s.files if f.name == name
    )
    data = kannada_label_gz(name)
    assert md5(data) == entry.md5
    assert entry.size in (None, len(data))
    assert len(gzip.decompress(data)) == entry.payload.size


@pytest.mark.parametrize("name", sorted(KANNADA_LABEL_NPZ))
def test_kannada_label_npz_are_the_published_bytes(name):
    """The np.savez label files beside the IDX files (same folder), pinned by MD5."""
    entry = next(
        f for s in (registry.KANNADA_MNIST, registry.DIG_MNIST) for f in s.files if f.name == name
    )
    data = kannada_label_npz(name)
    assert (md5(data), len(data)) == (entry.md5, entry.size)


def test_dig_mnist_idx_reads_the_published_label_file(tmp_path):
    """y_dig_MNIST-idx1-ubyte.gz as published, images under the published header."""
    images = blank_images(10240)
    assert idx_bytes(images, compress=False)[:16] == DIG_IMAGES_HEADER
    files = {
        "X_dig_MNIST-idx3-ubyte.gz": write(tmp_path / "X.gz", idx_bytes(images)),
        "y_dig_MNIST-idx1-ubyte.gz": write(
            tmp_path / "y.gz", kannada_label_gz("y_dig_MNIST-idx1-ubyte.gz")
        ),
    }
    got, meta = read_dig_mnist(files)
    np.testing.assert_array_equal(got, images)
    assert meta.label.tolist() == kannada_labels(10240).tolist()
    assert meta.label_name.tolist()[:3] == KANNADA_DIGITS[:3]
    assert set(meta.script) == {"kannada"} and set(meta.source_split) == {"test"}


def _kannada_files(tmp_path, variant):
    parts = {"train": 60000, "test": 10000}
    files, expected = {}, []
    for split, count in parts.items():
        images = blank_images(count)
        expected.append(images)
        if variant == "idx":
            x, y = (
                f"X_kannada_MNIST_{split}-idx3-ubyte.gz",
                f"y_kannada_MNIST_{split}-idx1-ubyte.gz",
            )
            files[x] = write(tmp_path / x, gzip.compress(idx_bytes(images, False), 1))
            files[y] = write(tmp_path / y, kannada_label_gz(y))
        else:
            x, y = f"X_kannada_MNIST_{split}.npz", f"y_kannada_MNIST_{split}.npz"
            files[x] = write(tmp_path / x, savez_bytes(images))
            files[y] = write(tmp_path / y, kannada_label_npz(y))
    return files, np.concatenate(expected)


@pytest.mark.parametrize("variant", ["idx", "npz"])
def test_kannada_mnist_both_published_forms(tmp_path, variant):
    """Kannada-MNIST as IDX gz (default) and as np.savez files (key arr_0; the same GitHub
    folder, and the Kaggle dataset higgstachyon/kannada-mnist, Kannada_MNIST_npz/, which
    public loaders read with np.load(...)['arr_0']): the same rows either way."""
    files, images = _kannada_files(tmp_path, variant)
    got, meta = read_kannada_mnist(files, {"variant": variant} if variant == "npz" else {})
    np.testing.assert_array_equal(got, images)
    assert meta.source_split.value_counts().to_dict() == {"train": 60000, "test": 10000}
    assert meta.label.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_dig_mnist_npz(tmp_path):
    """Dig-MNIST's np.savez pair (X_dig_MNIST.npz, y_dig_MNIST.npz; key arr_0)."""
    images = blank_images(10240)
    files = {
        "X_dig_MNIST.npz": write(tmp_path / "X_dig_MNIST.npz", savez_bytes(images)),
        "y_dig_MNIST.npz": write(tmp_path / "y.npz", kannada_label_npz("y_dig_MNIST.npz")),
    }
    got, meta = read_dig_mnist(files, {"variant": "npz"})
    np.testing.assert_array_equal(got, images)
    assert meta.label.tolist() == kannada_labels(10240).tolist()


def _kaggle_csv(first: str, labels, images) -> bytes:
    header = first + "," + ",".join(f"pixel{i}" for i in range(784))
    rows = [
        f"{y}," + ",".join(map(str, x.reshape(-1))) for y, x in zip(labels, images, strict=True)
    ]
    return ("\n".join([header, *rows]) + "\n").encode()


def test_dig_mnist_kaggle_csv(tmp_path):
    """Dig-MNIST.csv of the Kaggle competition Kannada-MNIST: header label,pixel0..pixel783,
    (10240, 785) as pd.read_csv loads it (a public notebook prints that shape; search
    "(10240, 785) -> (10240, 1)"), pixel{x} with x = 28 * row + column as in the MNIST
    competition's format (kaggle.com/c/Kannada-MNIST: "the same format as the MNIST
    competition"; a course repository's Readme quotes "a name like pixel{x}, where x is an
    integer between 0 and 783")."""
    labels = kannada_labels(10240)
    images = blank_images(10240)
    images[0, 2, 5] = 77  # pixel61 = row 2, column 5
    path = write(tmp_path / "Dig-MNIST.csv", _kaggle_csv("label", labels, images))
    got, meta = read_dig_mnist({"Dig-MNIST.csv": path}, {"variant": "csv"})
    np.testing.assert_array_equal(got, images)
    assert got[0, 2, 5] == 77
    assert meta.label.tolist() == labels.tolist() and set(meta.source_split) == {"test"}


def test_kaggle_test_csv_without_labels_is_refused_naming_the_forms(tmp_path):
    """The competition's test.csv starts id,pixel0,... (no labels): it cannot serve."""
    path = write(tmp_path / "Dig-MNIST.csv", _kaggle_csv("id", range(3), blank_images(3)))
    with pytest.raises(IdxFormatError, match=r"Dig-MNIST.csv: header \['id'.*github.com"):
        read_dig_mnist({"Dig-MNIST.csv": path}, {"variant": "csv"})


def test_kaggle_csv_bad_value_names_the_line(tmp_path):
    images = blank_images(4)
    images = images.astype(np.int64)
    images[2, 0, 0] = 300
    path = write(tmp_path / "Dig-MNIST.csv", _kaggle_csv("label", [0, 1, 2, 3], images))
    with pytest.raises(IdxFormatError, match="Dig-MNIST.csv line 4"):
        read_dig_mnist({"Dig-MNIST.csv": path}, {"variant": "csv"})


def test_kannada_npz_with_other_keys_is_refused(tmp_path):
    np.savez(tmp_path / "X_kannada_MNIST_train", images=blank_images(2))
    with pytest.raises(IdxFormatError, match=r"holds \['images'\].*arr_0"):
        read_npz_array(tmp_path / "X_kannada_MNIST_train.npz", 3)


def test_unknown_kannada_variant_names_the_forms_and_where():
    with pytest.raises(ValueError, match=r"data.kannada_mnist.variant = 'csv'.*idx.*npz"):
        read_kannada_mnist({}, {"variant": "csv"})


def test_registry_variants_list_each_form():
    assert registry.KANNADA_MNIST.variants == ("idx", "npz")
    assert registry.DIG_MNIST.variants == ("idx", "npz", "csv")
    assert [f.name for f in registry.DIG_MNIST.files_for()] == [
        "X_dig_MNIST-idx3-ubyte.gz",
        "y_dig_MNIST-idx1-ubyte.gz",
    ]
    assert [f.name for f in registry.DIG_MNIST.files_for("csv")] == ["Dig-MNIST.csv"]
    assert struct.unpack(">I", DIG_IMAGES_HEADER[4:8])[0] == 10240
