"""Issue #28 item 3: a job's resume fingerprint of data taken from a processed store
is the store's recorded digest (digest.json) plus a hash of the selected rows: no
image is read, and a changed store still changes it."""

import hashlib
import logging
import time

import numpy as np
import pandas as pd
import pytest
import torch

from hwbench import data as hwdata
from hwbench.engine import data_fingerprint
from hwbench.rows import StoredRows, origin_of, rows_or_resident, store_origin
from hwbench.store import IMAGES_FILE, recorded_digest, save_processed, write_digest
from hwbench.studies.onemodel.sensory import CanvasTransform, ImageBlock

N = 30


def meta(n=N):
    return pd.DataFrame(
        {
            "label": np.arange(n) % 3,
            "label_name": [str(i % 3) for i in range(n)],
            "script": "latin",
            "writer": [f"w{i % 5}" for i in range(n)],
            "pen": "",
            "source_split": np.where(np.arange(n) < 20, "train", "test"),
        }
    )


def store(folder, seed=0):
    images = np.random.default_rng(seed).integers(0, 256, (N, 8, 8), dtype=np.uint8)
    save_processed(folder, images, meta())
    return folder / IMAGES_FILE, images


@pytest.fixture
def no_reads(monkeypatch):
    """Any read of image rows fails the test: the fingerprint must not need one."""

    def refuse(self, positions):
        raise AssertionError(f"read {len(positions)} rows of {self.path}")

    monkeypatch.setattr(StoredRows, "read", refuse)


def test_stored_rows_are_fingerprinted_by_digest_and_rows_without_reading(tmp_path, no_reads):
    path, _ = store(tmp_path)
    rows = np.array([4, 2, 9, 9])
    record = recorded_digest(tmp_path)
    entry = data_fingerprint({"train": {"x": StoredRows(path, rows)}})["train.x"]
    rows_hash = hashlib.blake2b(rows.astype(np.int64).tobytes(), digest_size=16).hexdigest()
    assert entry == [
        [4, 8, 8],
        "torch.uint8",
        f"store blake2b-128:{record['digest']} rows 4:{rows_hash}",
    ]
    other_rows = data_fingerprint({"train": {"x": StoredRows(path, rows[::-1])}})["train.x"]
    assert other_rows != entry


def test_a_changed_store_changes_the_fingerprint(tmp_path):
    path, images = store(tmp_path / "a")
    before = data_fingerprint({"train": {"x": StoredRows(path, np.arange(10))}})
    same = data_fingerprint({"train": {"x": StoredRows(path, np.arange(10))}})
    assert same == before
    images[25, 3, 3] ^= 1  # one pixel, outside the selected rows: another store all the same
    save_processed(tmp_path / "a", images, meta())
    after = data_fingerprint({"train": {"x": StoredRows(path, np.arange(10))}})
    assert after != before


def test_tensors_read_from_a_store_carry_its_origin(tmp_path, monkeypatch):
    path, images = store(tmp_path)
    part = hwdata.select(tmp_path, splits=["train"])
    x, y = part.tensors()
    assert torch.equal(x, torch.from_numpy(images[:20]))
    assert origin_of(x) == store_origin(path, np.arange(20))
    resident = rows_or_resident(path, np.array([3, 1]), budget_mb=None)
    assert origin_of(resident) == store_origin(path, np.array([3, 1]))
    # the fingerprint takes the origin; labels (no origin) are hashed as before
    hashed = []
    real = hashlib.blake2b
    monkeypatch.setattr(hashlib, "blake2b", lambda *a, **k: hashed.append(a) or real(*a, **k))
    fp = data_fingerprint({"train": {"x": x, "y": y}})
    assert fp["train.x"][2] == origin_of(x)
    assert len(hashed) == 1 and fp["train.y"][2] == real(y.numpy(), digest_size=16).hexdigest()


def test_without_a_digest_record_the_rows_are_hashed(tmp_path, caplog):
    path, images = store(tmp_path)
    (tmp_path / "digest.json").unlink()
    rows = np.array([1, 5])
    with caplog.at_level(logging.WARNING, logger="hwbench.rows"):
        entry = data_fingerprint({"train": {"x": StoredRows(path, rows)}})["train.x"]
    assert "digest.json not found" in caplog.text and "hashing the rows' bytes" in caplog.text
    assert entry[2] == hashlib.blake2b(images[rows].tobytes(), digest_size=16).hexdigest()


def test_a_record_of_another_file_size_is_not_trusted(tmp_path, caplog):
    path, images = store(tmp_path)
    save_processed(tmp_path / "other", images[:10], meta(10))
    (tmp_path / "digest.json").write_bytes((tmp_path / "other" / "digest.json").read_bytes())
    with caplog.at_level(logging.WARNING, logger="hwbench.rows"):
        assert store_origin(path, np.arange(3)) is None
    assert "does not describe the file" in caplog.text


def test_canvas_blocks_from_a_store_are_not_hashed(tmp_path, no_reads):
    path, _ = store(tmp_path)
    block = ImageBlock("latin/train", StoredRows(path, np.arange(20)), None)
    transform = CanvasTransform((1, 16, 16), [block])
    assert store_origin(path, np.arange(20)) in repr(transform)


def test_a_13_gb_store_fingerprints_in_under_a_tenth_of_a_second(tmp_path):
    """The transfer study's largest store: 128 x 128 px, about 13 GB. The file is
    sparse (no disk used); its record is written as a writer would."""
    rows, side = 800_000, 128
    path = tmp_path / IMAGES_FILE
    header = {"descr": "|u1", "fortran_order": False, "shape": (rows, side, side)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.truncate(f.tell() + rows * side * side)
    write_digest(tmp_path, "0" * 32)
    selected = np.random.default_rng(0).permutation(rows)[: rows * 9 // 10]
    start = time.process_time()
    entry = data_fingerprint({"train": {"x": StoredRows(path, selected)}})["train.x"]
    seconds = time.process_time() - start
    assert entry[2].startswith("store blake2b-128:" + "0" * 32)
    assert seconds < 0.1, f"{seconds:.3f} s of CPU"
