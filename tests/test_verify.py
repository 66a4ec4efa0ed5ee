"""Issue 25 item 1: `snakemake verify` rehashes each store against the digest recorded
when it was written; a store with an intact header and damaged pixels is caught."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hwbench import store, verify
from tests.conftest import planned_jobs, write_config


def _store(folder, n=5, seed=0):
    images = np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)
    meta = pd.DataFrame({c: [""] * n for c in store.META_COLUMNS}).assign(label=range(n))
    store.save_processed(folder, images, meta)
    return folder / store.IMAGES_FILE


def test_intact_stores_pass_and_the_table_is_written(tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    for i, folder in enumerate(folders):
        _store(folder, n=4 + i, seed=i)
    out = tmp_path / "reports" / "verify.csv"
    table = verify.verify_stores(folders, out)
    written = pd.read_csv(out, keep_default_na=False)
    assert written.status.tolist() == ["ok", "ok"] and written.images.tolist() == [4, 5]
    assert written.digest.tolist() == [store.recorded_digest(f)["digest"] for f in folders]
    assert table.store.tolist() == [str(f) for f in folders]


def test_damaged_pixels_under_an_intact_header_are_caught(tmp_path):
    images = _store(tmp_path / "a")
    data = bytearray(images.read_bytes())
    data[-10] ^= 0xFF  # one pixel: header, size and shape all still agree
    images.write_bytes(bytes(data))
    store.load_processed(tmp_path / "a")  # the opener cannot see it...
    row = verify.verify_store(tmp_path / "a")  # ...the rehash does
    assert row["status"] == "failed"
    assert row["problem"].startswith(f"{images}: its content hashes to ")
    assert "recorded" in row["problem"] and f"--force {images}" in row["problem"]


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("truncate", r"images\.npy: .* bytes, but its header .* needs"),
        ("no_digest", r"digest\.json not found"),
        ("stale_digest", r"header says uint8 \(5, 14, 56\), but its digest record says"),
        ("fewer_meta_rows", r"images\.npy: 5 images, but .*meta\.csv has 4 rows"),
    ],
)
def test_each_damage_fails_the_job_naming_the_store(tmp_path, damage, expected):
    good, bad = tmp_path / "good", tmp_path / "bad"
    _store(good)
    images = _store(bad)
    if damage == "truncate":
        images.write_bytes(images.read_bytes()[:-28])
    elif damage == "no_digest":
        (bad / store.DIGEST_FILE).unlink()
    elif damage == "stale_digest":  # a store rewritten by hand, its record left behind
        np.save(images, np.zeros((5, 14, 56), np.uint8))  # same size, other shape
    else:
        pd.read_csv(bad / store.META_FILE).head(4).to_csv(bad / store.META_FILE, index=False)
    out = tmp_path / "verify.csv"
    with pytest.raises(verify.StoreDigestError, match=r"1 of 2 store\(s\) failed") as caught:
        verify.verify_stores([good, bad], out)
    assert re.search(expected, str(caught.value))
    assert str(good) not in str(caught.value).split("failed verification:")[1]
    assert not out.exists()


def test_verify_is_a_target_of_the_configs_stores(workdir):
    write_config(workdir)
    jobs = planned_jobs(workdir, "verify")
    assert jobs["verify"] == 1 and jobs["preprocess"] >= 1  # its stores come first
