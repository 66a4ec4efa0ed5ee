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
import io
import struct

import numpy as np
import pytest

from hwbench.datasets import registry
from hwbench.datasets.cifar import read_cifar100
from hwbench.datasets.deepwriting import build_deepwriting_manifest
from hwbench.datasets.idx import IdxFormatError
from hwbench.datasets.idx_datasets import (
    read_dig_mnist,
    read_emnist,
    read_kannada_mnist,
    read_mnist,
    read_npz_array,
)
from hwbench.datasets.imdb import clean_words, read_imdb
from hwbench.datasets.madbase import read_bmp_folder, read_madbase_csv
from hwbench.datasets.manual import ManualDatasetError, build_amharic_manifest
from hwbench.datasets.nist import NistFormatError, build_nist_manifest
from hwbench.datasets.speech import read_speech_commands
from hwbench.datasets.vocab import AMHARIC77, ARABIC_DIGITS, KANNADA_DIGITS
from tests._datasets_support import (
    KANNADA_LABEL_FILES,
    KANNADA_LABEL_NPZ,
    bmp_bytes,
    idx_bytes,
    kannada_label_gz,
    kannada_label_npz,
    kannada_labels,
    png_bytes,
    py2_pickle,
    savez_bytes,
    tar_gz_bytes,
    wav_bytes,
    write,
    zip_bytes,
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
    with pytest.raises(IdxFormatError, match=r"Dig-MNIST.csv:4: pixel outside 0..255.*'2,300,0"):
        read_dig_mnist({"Dig-MNIST.csv": path}, {"variant": "csv"})


def test_kaggle_csv_undecodable_byte_names_file_and_line(tmp_path):
    """A user's CSV copy with a non-UTF-8 byte: the error names file:line and the byte."""
    path = write(tmp_path / "Dig-MNIST.csv", _kaggle_csv("label", [0, 1, 2], blank_images(3)))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = b"1\xe9" + lines[2][1:]  # the row of label 1
    path.write_bytes(b"".join(lines))
    with pytest.raises(IdxFormatError, match=r"Dig-MNIST.csv:3: byte e9 at column 2"):
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


# -------------------------------------------------------------------- MADBase


def test_madbase_bmp_folders_as_published(tmp_path):
    """The extracted AUC archive: MAHDBase_TrainingSet/Part01 ... Part12 holding BMPs named
    writer001_pass01_digit7.bmp, dark ink on white, read as 3-channel BMPs
    (github.com/imunderthetree/NNMinst: README.md "Expected layout" and
    training/nnminst.ipynb, which counts "Total images: 60000" there and labels each file
    by its digitD suffix)."""
    folder = tmp_path / "MAHDBase_TrainingSet"
    expected = {}
    for part, writer, rep, digit in ((1, 1, 1, 7), (1, 1, 2, 0), (12, 600, 10, 9)):
        ink = np.full((28, 28, 3), 255, np.uint8)  # generated pixels, dark ink on white
        ink[4 + digit : 8 + digit, 6:22] = 0
        name = f"Part{part:02d}/writer{writer:03d}_pass{rep:02d}_digit{digit}.bmp"
        write(folder / name, bmp_bytes(ink))
        expected[(writer, rep, digit)] = 255 - ink[:, :, 0]
    images, meta = read_bmp_folder(folder, "train")
    assert meta.label.tolist() == [7, 0, 9]  # sorted by (writer, pass, digit)
    assert meta.writer.tolist() == ["train_w001", "train_w001", "train_w600"]
    assert meta.label_name.tolist() == [ARABIC_DIGITS[7], ARABIC_DIGITS[0], ARABIC_DIGITS[9]]
    for image, key in zip(images, sorted(expected), strict=True):
        np.testing.assert_array_equal(image, expected[key])  # white ink on black, like MNIST


def test_madbase_csv_zip_as_published(tmp_path):
    """The CSV mirror (github.com/mloey/Arabic-Handwritten-Digits-Dataset, "Arabic
    Handwritten Digits Dataset CSV.zip") as the stable_datasets loader
    (stable_datasets ArabicDigits builder) opens it: members at the zip's root named
    "csvTrainImages 60k x 784.csv", "csvTrainLabel 60k x 1.csv", "csvTestImages.csv",
    "csvTestLabel 10k x 1.csv"; no header row (np.loadtxt; other loaders pass
    header=None), 784 comma-separated values per image in Fortran (MATLAB) order, one
    label per line."""
    rng = np.random.default_rng(0)
    x = {s: rng.integers(0, 60, (n, 28, 28)).astype(np.uint8) for s, n in (("tr", 6), ("te", 4))}
    x["tr"][0, 3, 20] = 250  # row 3, column 20: value 20 * 28 + 3 of the line
    y = {"tr": [1, 0, 3, 9, 2, 5], "te": [4, 4, 8, 0]}

    def rows(images):
        return "".join(",".join(map(str, im.flatten(order="F"))) + "\n" for im in images)

    members = {
        "csvTrainImages 60k x 784.csv": rows(x["tr"]),
        "csvTrainLabel 60k x 1.csv": "".join(f"{v}\n" for v in y["tr"]),
        "csvTestImages.csv": rows(x["te"]),
        "csvTestLabel 10k x 1.csv": "".join(f"{v}\n" for v in y["te"]),
    }
    assert rows(x["tr"][:1]).split(",")[20 * 28 + 3] == "250"
    archive = write(
        tmp_path / "madbase_csv.zip", zip_bytes({k: v.encode() for k, v in members.items()})
    )
    images, meta = read_madbase_csv(archive)
    np.testing.assert_array_equal(images, np.concatenate([x["tr"], x["te"]]))  # dark border: kept
    assert images[0, 3, 20] == 250
    assert meta.label.tolist() == y["tr"] + y["te"]
    assert meta.source_split.tolist() == ["train"] * 6 + ["test"] * 4
    assert set(meta.writer) == {""}


# ------------------------------------------------------------------ NIST SD19


def _sd19_png(k: int) -> bytes:
    image = np.full((128, 128), 255, np.uint8)  # generated pixels, black ink on white
    image[30 + k : 90, 40 : 50 + k] = 0
    return png_bytes(image)


def test_nist_sd19_second_edition_layout(tmp_path):
    """SD19 2nd edition as published: by_write.zip members
    by_write/hsf_0/f0000_14/d0000_14/d0000_14_00000.png (member names as a public SD19
    loader documents them: "the paths are exactly the archive member names"), writer
    folders holding <d|u|l|c>WWWW_TT sub-folders beside .mis files
    (by_write\\hsf_0\\f0039_14\\l0039_14.mis, a public C++ converter); by_class/30/ holding
    hsf_0 ... hsf_7, their .mit files and train_30 (a LEAF user's listing:
    "hsf_0  hsf_0.mit ... hsf_7.mit  train_30"; LEAF keeps the hsf folders only); the two
    checksum logs with one "<md5> <path>" per line, the path reaching by_class/ or
    by_write/ (public loaders split each line in two and look for "/by_class/")."""
    writer = "f0000_14"
    members, write_log, class_log = {}, [], []
    images = [("d", "30", 0), ("u", "41", 1), ("l", "7a", 2), ("c", "65", 3)]
    for kind, hexcode, k in images:
        folder = f"{kind}{writer[1:]}"
        name = f"by_write/hsf_0/{writer}/{folder}/{folder}_{k:05d}.png"
        members[name] = data = _sd19_png(k)
        digest = md5(data)
        write_log.append(f"{digest}  /sd19/{name}")
        class_log.append(f"{digest}  /sd19/by_class/{hexcode}/hsf_0/hsf_0_{k:05d}.png")
        class_log.append(
            f"{digest}  /sd19/by_class/{hexcode}/train_{hexcode}/train_{hexcode}_{k:05d}.png"
        )
        members[f"by_write/hsf_0/{writer}/{folder}.mis"] = b""  # not read (not a PNG)
    class_log += [f"{md5(b'mit')}  /sd19/by_class/30/hsf_0.mit"]
    files = {
        "by_write.zip": write(tmp_path / "by_write.zip", zip_bytes(members)),
        "by_write_md5.log": write(tmp_path / "w.log", ("\n".join(write_log) + "\n").encode()),
        "by_class_md5.log": write(tmp_path / "c.log", ("\n".join(class_log) + "\n").encode()),
    }
    frame = build_nist_manifest(files, tmp_path / "raw")
    assert frame.label_name.tolist() == ["e", "0", "z", "A"]  # sorted by file: c, d, l, u
    assert set(frame.writer) == {writer} and set(frame.source_split) == {"hsf_0"}
    assert frame.file.tolist()[1] == "by_write/hsf_0/f0000_14/d0000_14/d0000_14_00000.png"
    assert (tmp_path / "raw" / frame.file.tolist()[1]).read_bytes() == _sd19_png(0)


def test_nist_first_edition_is_refused_naming_the_supported_one(tmp_path):
    """A by_write.zip without PNGs (the 1st edition's MIS files) names the 2nd edition."""
    files = {
        "by_write.zip": write(
            tmp_path / "b.zip", zip_bytes({"by_write/hsf_0/f0000_14/d0000_14.mis": b"x"})
        ),
        "by_write_md5.log": write(tmp_path / "w.log", b"0" * 32 + b"  by_write/hsf_0/x.png\n"),
        "by_class_md5.log": write(tmp_path / "c.log", b"0" * 32 + b"  by_class/30/hsf_0/x.png\n"),
    }
    with pytest.raises(NistFormatError, match="2nd edition.*nist-srd/SD19/by_write.zip"):
        build_nist_manifest(files, tmp_path / "raw")


# ---------------------------------------------------------------- DeepWriting

# github.com/emreaksan/deepwriting, data_scripts/json_to_numpy.py: the keys it saves
# with np.savez_compressed, its alphabet, and char_labels encoded by a scikit-learn
# LabelEncoder fitted on that alphabet; dataset_hw.py reads 'samples' (or 'strokes'),
# 'preprocessing', 'mean'/'std', 'min'/'max' and decodes labels with a LabelEncoder.
DW_ALPHABET = ["\x00"] + list(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.,-()/"
)
DW_PER_POINT = (
    "char_labels",
    "word_labels",
    "eow_labels",
    "bow_labels",
    "eoc_labels",
    "boc_labels",
)


def _dw_npz(texts, subjects) -> bytes:
    from sklearn.preprocessing import LabelEncoder

    encoder = LabelEncoder().fit(DW_ALPHABET)
    data = {key: [] for key in ("samples", *DW_PER_POINT)}
    for text in texts:
        points, chars = [], []
        for k, char in enumerate(text):  # generated strokes: 5 points a character
            xy = np.stack([np.linspace(0, 1, 5) + 2 * k, np.linspace(0, 3, 5) * (k + 1)], 1)
            points.append(np.column_stack([xy, [0, 0, 0, 0, 1]]))
            chars += [char] * 5
        absolute = np.concatenate(points)
        relative = absolute.copy()
        relative[1:, :2] = np.diff(absolute[:, :2], axis=0)
        relative[0, :2] = 0
        codes = encoder.transform(chars)
        ends = np.zeros(len(codes))
        ends[4::5] = 1
        data["samples"].append(relative.astype(np.float32))
        data["char_labels"].append(codes)
        data["eoc_labels"].append(ends)
        for key in ("word_labels", "eow_labels", "bow_labels", "boc_labels"):
            data[key].append(np.zeros(len(codes)))
    arrays = {key: np.array(value + [None], dtype=object)[:-1] for key, value in data.items()}
    arrays.update(
        subject_labels=np.array(subjects),
        texts=np.array(texts),
        alphabet=np.array(DW_ALPHABET),  # NumPy stores '\x00' as ''
        preprocessing=np.array(["origin_translation", "relative_representation"]),
    )
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("archive", ["deepwriting_dataset.zip", "deepwriting_dataset.tar.gz"])
def test_deepwriting_labels_are_label_encoder_codes(tmp_path, archive):
    """char_labels are LabelEncoder codes (positions in the sorted alphabet), not positions
    in 'alphabet': 'a' is code 44 but alphabet[44] is 'H'. The archive is the zip the
    authors' README links since 2023-11 (files.ait.ethz.ch/projects/deepwriting/
    deepwriting_dataset.zip) or the former tar.gz, holding deepwriting_training.npz and
    deepwriting_validation.npz (config.py's training_data / validation_data)."""
    from sklearn.preprocessing import LabelEncoder

    assert LabelEncoder().fit(DW_ALPHABET).transform(["a"])[0] == 44
    assert DW_ALPHABET[44] == "H"
    members = {
        "deepwriting_training.npz": _dw_npz(["aI(", "Z9"], [12, 294]),
        "deepwriting_validation.npz": _dw_npz(["/"], [3]),
    }
    data = zip_bytes(members) if archive.endswith(".zip") else tar_gz_bytes(members)
    files = {archive: write(tmp_path / archive, data)}
    frame = build_deepwriting_manifest(files, tmp_path / "raw", {"image_size": 32})
    got = list(zip(frame.source_split, frame.label_name, frame.writer, strict=True))
    assert got == [
        ("train", "a", "12"),
        ("train", "I", "12"),
        ("train", "(", "12"),
        ("train", "Z", "294"),
        ("train", "9", "294"),
        ("validation", "/", "3"),
    ]
    assert frame.label.tolist() == [DW_ALPHABET.index(c) for c in "aI(Z9/"]
    assert registry.DEEPWRITING.classes[11] == "a"  # the stand-ins' classes: same indices


# ------------------------------------------------------------------ CIFAR-100

# The 20 coarse class names of CIFAR-100 (www.cs.toronto.edu/~kriz/cifar.html, in
# label order); with registry.CIFAR100_FINE they rebuild the published meta file.
CIFAR100_COARSE = (
    "aquatic_mammals fish flowers food_containers fruit_and_vegetables "
    "household_electrical_devices household_furniture insects large_carnivores "
    "large_man-made_outdoor_things large_natural_outdoor_scenes large_omnivores_and_herbivores "
    "medium_mammals non-insect_invertebrates people reptiles small_mammals trees vehicles_1 "
    "vehicles_2"
).split()
# torchvision.datasets.CIFAR100 (torchvision/datasets/cifar.py): meta's MD5.
CIFAR100_META_MD5 = "7973b15100ade9c7d40fb424638fde48"


def cifar100_meta() -> bytes:
    return py2_pickle(
        {"fine_label_names": list(registry.CIFAR100_FINE), "coarse_label_names": CIFAR100_COARSE}
    )


def test_cifar100_meta_is_the_published_pickle():
    """cifar-100-python/meta rebuilt as Python 2's cPickle protocol 2 wrote it matches the
    MD5 torchvision checks: the pickle's byte layout (py2 str keys and names) and the
    registry's fine class names are the real ones."""
    assert md5(cifar100_meta()) == CIFAR100_META_MD5


def test_cifar100_reads_python2_pickles(tmp_path):
    """cifar-100-python.tar.gz: cifar-100-python/{meta,train,test} (torchvision's base_folder
    and member names; the real archive also holds an empty file.txt~, as a public
    repository that committed the extracted folder shows: 130726/130726,
    cifar-100-python/file.txt~). Train/test are py2 cPickle dicts with keys, in order,
    b'filenames', b'batch_label', b'fine_labels', b'coarse_labels', b'data' (printed by
    several public loaders with pickle.load(..., encoding='bytes')); data is uint8
    N x 3072 (1024 red, 1024 green, 1024 blue); the first training images are
    bos_taurus_s_000507.png, stegosaurus_s_000125.png, mcintosh_s_000643.png,
    altar_boy_s_001435.png, cichlid_s_000031.png (fine classes cattle, dinosaur, apple,
    boy, aquarium_fish)."""
    fine = registry.CIFAR100_FINE
    first = ["cattle", "dinosaur", "apple", "boy", "aquarium_fish"]
    coarse = ["large_omnivores_and_herbivores", "reptiles", "fruit_and_vegetables", "people"]
    coarse.append("fish")
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (5, 3072)).astype(np.uint8)  # generated pixels
    data[0, :3] = 255
    train = {
        "filenames": [
            b"bos_taurus_s_000507.png",
            b"stegosaurus_s_000125.png",
            b"mcintosh_s_000643.png",
            b"altar_boy_s_001435.png",
            b"cichlid_s_000031.png",
        ],
        "batch_label": b"training batch 1 of 1",  # not read
        "fine_labels": [fine.index(c) for c in first],
        "coarse_labels": [CIFAR100_COARSE.index(c) for c in coarse],
        "data": data,
    }
    test = dict(train, batch_label=b"testing batch 1 of 1", data=data[::-1].copy())
    members = {
        "cifar-100-python/file.txt~": b"",
        "cifar-100-python/train": py2_pickle(train),
        "cifar-100-python/test": py2_pickle(test),
        "cifar-100-python/meta": cifar100_meta(),
    }
    archive = write(tmp_path / "cifar-100-python.tar.gz", tar_gz_bytes(members))
    images, meta = read_cifar100({"cifar-100-python.tar.gz": archive})
    assert images.shape == (10, 32, 32, 3)
    assert meta.label.tolist()[:5] == [19, 29, 0, 11, 1]
    assert meta.label_name.tolist()[:5] == first
    assert tuple(images[0, 0, 0]) == (255, data[0, 1024], data[0, 2048])  # R, G, B planes
    np.testing.assert_array_equal(images[1, 0, 1], data[1, [1, 1025, 2049]])


# ------------------------------------------------------------ Speech Commands


@pytest.mark.parametrize("prefix", ["", "./"])
def test_speech_commands_published_layout(tmp_path, prefix):
    """speech_commands_v0.01.tar.gz: <word>/<speaker>_nohash_<k>.wav, 16-bit mono PCM at
    16 kHz, one second or less (Warden 2018, arXiv:1804.03209); validation_list.txt and
    testing_list.txt hold one such relative path per line: 'right/a69b9b3e_nohash_0.wav'
    in validation_list.txt (a public torchaudio-style loader's comment),
    'bed/0c40e715_nohash_0.wav' in testing_list.txt (a public test's expected testing
    names); _background_noise_/ holds running_tap.wav and others plus a README.md
    (tensorflow_datasets' speech_commands builder, which compares archive paths with the
    list lines). Members are tried with and without a leading './'."""
    tone = (8000 * np.sin(np.arange(16000) / 5)).astype(np.int16)  # generated audio
    members = {
        "LICENSE": b"CC BY 4.0",  # not read
        "README.md": b"",  # not read
        "validation_list.txt": b"right/a69b9b3e_nohash_0.wav\n",
        "testing_list.txt": b"bed/0c40e715_nohash_0.wav\n",
        "_background_noise_/README.md": b"",
        "_background_noise_/running_tap.wav": wav_bytes(np.tile(tone, 3)),
        "bed/00176480_nohash_0.wav": wav_bytes(tone),
        "bed/0c40e715_nohash_0.wav": wav_bytes(tone[:8000]),  # shorter than a second
        "right/a69b9b3e_nohash_0.wav": wav_bytes(tone),
    }
    archive = tmp_path / "speech_commands_v0.01.tar.gz"
    write(archive, tar_gz_bytes({prefix + k: v for k, v in members.items()}))
    images, meta = read_speech_commands({"speech_commands_v0.01.tar.gz": archive})
    assert images.shape == (3, 129, 126)
    assert meta.label_name.tolist() == ["bed", "bed", "right"]
    assert meta.label.tolist() == [0, 0, 1]
    assert meta.writer.tolist() == ["00176480", "0c40e715", "a69b9b3e"]
    assert meta.source_split.tolist() == ["train", "test", "validation"]
    # the half-second clip is zero-padded: its last frames are silent
    assert images[1][:, -10:].max() == 0 and images[0][:, -10:].max() > 0


# ----------------------------------------------------------------------- IMDB

# aclImdb/train/pos/0_9.txt and aclImdb/train/neg/0_3.txt, verbatim as a public fastai
# walk-through prints them (`cat $path/train/pos/0_9.txt`), with the listing
# `ls $path/train/pos | head -5`: 0_9.txt 10000_8.txt 10001_10.txt 10002_7.txt 10003_8.txt.
IMDB_POS_0_9 = (
    "Bromwell High is a cartoon comedy. It ran at the same time as some other programs about "
    'school life, such as "Teachers". My 35 years in the teaching profession lead me to believe '
    'that Bromwell High\'s satire is much closer to reality than is "Teachers". The scramble '
    "to survive financially, the insightful students who can see right through their pathetic "
    "teachers' pomp, the pettiness of the whole situation, all remind me of the schools I knew "
    "and their students. When I saw the episode in which a student repeatedly tried to burn "
    "down the school, I immediately recalled ......... at .......... High. A classic line: "
    "INSPECTOR: I'm here to sack one of your teachers. STUDENT: Welcome to Bromwell High. I "
    "expect that many adults of my age think that Bromwell High is far fetched. What a pity "
    "that it isn't!"
)
IMDB_NEG_0_3 = (
    "Story of a man who has unnatural feelings for a pig. Starts out with a opening scene that "
    "is a terrific example of absurd comedy. A formal orchestra audience is turned into an "
    "insane, violent mob by the crazy chantings of it's singers. Unfortunately it stays absurd "
    "the WHOLE time with no general narrative eventually making it just too off putting. Even "
    "those from the era should be turned off. The cryptic dialogue would make Shakespeare seem "
    "easy to a third grader. On a technical level it's better than you might think with some "
    "good cinematography by future great Vilmos Zsigmond. Future stars Sally Kirkland and "
    "Frederic Forrest can be seen briefly."
)


def test_imdb_published_layout_and_reviews(tmp_path):
    """aclImdb_v1.tar.gz: aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt (the dataset's
    README at ai.stanford.edu/~amaas/data/sentiment/; the listings above), beside
    labeledBow.feat, unsupBow.feat and the unlabelled train/unsup/<id>_0.txt, which are not
    read; two real reviews, UTF-8 text without a trailing newline."""
    members = {
        "aclImdb/README": b"",
        "aclImdb/imdb.vocab": b"the\nand\n",
        "aclImdb/train/labeledBow.feat": b"9 0:9 1:1\n",
        "aclImdb/train/unsupBow.feat": b"0 0:1\n",
        "aclImdb/train/unsup/0_0.txt": b"not read",
        "aclImdb/train/pos/0_9.txt": IMDB_POS_0_9.encode(),
        "aclImdb/train/neg/0_3.txt": IMDB_NEG_0_3.encode(),
        # a real test name (DL4J's IMDB example reads aclImdb/test/pos/0_10.txt); its text
        # here is the train review again
        "aclImdb/test/pos/0_10.txt": IMDB_POS_0_9.encode(),
    }
    archive = write(tmp_path / "aclImdb_v1.tar.gz", tar_gz_bytes(members))
    images, meta = read_imdb({"aclImdb_v1.tar.gz": archive}, {"embed_dim": 8, "max_words": 300})
    assert images.shape == (3, 8, 300)
    assert meta.label_name.tolist() == ["negative", "positive", "positive"]
    assert meta.source_split.tolist() == ["train", "train", "test"]
    words = clean_words(IMDB_POS_0_9)
    assert words[:8] == ["bromwell", "high", "is", "a", "cartoon", "comedy", "it", "ran"]
    assert words[-4:] == ["it", "isn", "t", "exclamation_mark"]
    used = (images[1] > 0).any(axis=0)  # one column per word, zero after the last
    assert used.sum() == len(words) and used[: len(words)].all()


# ---------------------------------------------------------------------- EMNIST


def test_emnist_letters_mapping_has_three_columns(tmp_path):
    """gzip.zip members gzip/emnist-<split>-{train,test}-{images-idx3,labels-idx1}-ubyte.gz
    and gzip/emnist-<split>-mapping.txt (a public EMNIST checker lists the zip's members);
    the letters mapping has 26 lines of three numbers, label then the upper- and
    lower-case ASCII codes, labels counting from 1 (a public C++ test of
    emnist-letters-mapping.txt expects 26 lines of 3 values; a loader reads the columns as
    ("EMNIST", "UP", "LO") and subtracts 1)."""
    labels = np.array([1, 26, 5], np.uint8)
    images = blank_images(3)
    mapping = "".join(f"{i} {64 + i} {96 + i}\n" for i in range(1, 27))
    members = {"gzip/emnist-letters-mapping.txt": mapping.encode()}
    for part in ("train", "test"):
        members[f"gzip/emnist-letters-{part}-images-idx3-ubyte.gz"] = idx_bytes(
            images.transpose(0, 2, 1)  # EMNIST stores each image transposed
        )
        members[f"gzip/emnist-letters-{part}-labels-idx1-ubyte.gz"] = idx_bytes(labels)
    archive = write(tmp_path / "gzip.zip", zip_bytes(members))
    got, meta = read_emnist({"gzip.zip": archive}, {"split": "letters"})
    assert meta.label_name.tolist()[:3] == ["A", "Z", "E"]
    assert meta.label.tolist()[:3] == [1, 26, 5]
    np.testing.assert_array_equal(got[:3], images)
    assert registry.EMNIST_CLASSES["letters"][26] == "Z"


# --------------------------------------------------------------------- Amharic


def test_amharic_has_no_public_records_so_the_contract_is_hwbench_own(tmp_path):
    """UNVERIFIED: the multiscript paper's 77-class Amharic set (Gondere et al.,
    arXiv:1909.12943; data of Assabie & Bigun) has no public copy, so no real record could
    be checked. The folder layout is hwbench's own contract (docs/datasets.md): one folder
    per class named by index or by character, optional writer sub-folders."""
    assert registry.AMHARIC.manual and not registry.AMHARIC.files
    root = tmp_path / "mine"
    for index, name in ((0, "00"), (76, AMHARIC77[76])):
        image = np.full((40, 30), 255, np.uint8)
        image[10:30, 10 + index % 5 : 20] = 0
        write(root / name / "w7" / "a.png", png_bytes(image))
    with pytest.raises(ManualDatasetError, match="75 of 77 classes have no folder"):
        build_amharic_manifest({}, tmp_path / "raw", {"local_copy": str(root)})
