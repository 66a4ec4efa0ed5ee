"""The processed format: grey N x H x W images, or colour N x H x W x 3, and the
content digest recorded beside images.npy."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwbench import store
from hwbench.store import (
    DIGEST_FILE,
    META_COLUMNS,
    DatasetFormatError,
    load_processed,
    recorded_digest,
    save_processed,
    store_digest,
)


def meta(n):
    return pd.DataFrame({c: [""] * n for c in META_COLUMNS}).assign(label=range(n))


@pytest.mark.parametrize("shape", [(4, 28, 28), (4, 32, 32, 3)])
def test_round_trip_grey_and_colour(tmp_path, shape):
    images = np.arange(np.prod(shape), dtype=np.uint64).reshape(shape).astype(np.uint8)
    save_processed(tmp_path, images, meta(4))
    back = load_processed(tmp_path)
    assert back.images.shape == shape and np.array_equal(back.images, images)
    assert back.subset([1, 3]).images.shape == (2, *shape[1:])


@pytest.mark.parametrize("shape", [(4, 28), (4, 8, 8, 2), (4, 8, 8, 3, 1)])
def test_other_shapes_are_refused(tmp_path, shape):
    with pytest.raises(DatasetFormatError, match="N x H x W"):
        save_processed(tmp_path, np.zeros(shape, np.uint8), meta(4))
    np.save(tmp_path / "images.npy", np.zeros(shape, np.uint8))
    meta(4).to_csv(tmp_path / "meta.csv", index=False)
    with pytest.raises(DatasetFormatError, match="expected uint8 N x H x W"):
        load_processed(tmp_path)


# --------------------------------------------------------------------------- digest


def fresh_digest(path) -> str:
    """blake2b-128 of the whole file, computed here without hwbench."""
    return hashlib.blake2b(Path(path).read_bytes(), digest_size=16).hexdigest()


@pytest.mark.parametrize("shape", [(5, 28, 28), (3, 32, 32, 3), (0, 28, 28)])
def test_digest_is_the_hash_of_the_written_file(tmp_path, shape):
    rng = np.random.default_rng(0)
    save_processed(tmp_path, rng.integers(0, 256, shape, dtype=np.uint8), meta(shape[0]))
    record = recorded_digest(tmp_path)
    images = tmp_path / "images.npy"
    assert record == {
        "file": "images.npy",
        "algorithm": "blake2b-128",
        "digest": fresh_digest(images),
        "bytes": images.stat().st_size,
        "shape": list(shape),
        "dtype": "uint8",
    }
    assert store_digest(images) == record["digest"]
    assert json.loads((tmp_path / DIGEST_FILE).read_text()) == record


def test_store_digest_streams_files_larger_than_its_block(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "_READ_BLOCK", 1000)  # many blocks and a partial last one
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4321, dtype=np.uint8).tobytes())
    assert store_digest(path) == fresh_digest(path)


def test_a_changed_store_gives_a_changed_digest(tmp_path):
    images = np.zeros((4, 28, 28), np.uint8)
    save_processed(tmp_path / "a", images, meta(4))
    changed = images.copy()
    changed[2, 14, 14] = 1  # one pixel
    save_processed(tmp_path / "b", changed, meta(4))
    save_processed(tmp_path / "c", images, meta(4))
    a, b, c = (recorded_digest(tmp_path / x)["digest"] for x in "abc")
    assert a != b and a == c
    # a store damaged after it was written no longer matches its record
    path = tmp_path / "a" / "images.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert store_digest(path) != a


def test_a_missing_digest_names_the_file_and_the_rebuild(tmp_path):
    save_processed(tmp_path, np.zeros((2, 28, 28), np.uint8), meta(2))
    (tmp_path / DIGEST_FILE).unlink()
    with pytest.raises(DatasetFormatError) as err:
        recorded_digest(tmp_path)
    assert str(tmp_path / DIGEST_FILE) in str(err.value) and "not found" in str(err.value)
    assert f"snakemake --cores all --force {tmp_path / DIGEST_FILE}" in str(err.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{not json", "not a JSON digest record"),
        ("[1, 2]", "expected the keys"),
        ('{"file": "images.npy"}', "expected the keys"),
        ("BAD_ALGORITHM", "expected 'images.npy' with 'blake2b-128'"),
        ("SHORT_DIGEST", "is not 32 lower-case hex digits"),
    ],
)
def test_a_garbled_digest_names_the_file(tmp_path, text, problem):
    save_processed(tmp_path, np.zeros((2, 28, 28), np.uint8), meta(2))
    path = tmp_path / DIGEST_FILE
    good = json.loads(path.read_text())
    if text == "BAD_ALGORITHM":
        text = json.dumps({**good, "algorithm": "md5"})
    elif text == "SHORT_DIGEST":
        text = json.dumps({**good, "digest": good["digest"][:8]})
    path.write_text(text)
    with pytest.raises(DatasetFormatError, match=problem) as err:
        recorded_digest(tmp_path)
    assert str(path) in str(err.value) and "--force" in str(err.value)
