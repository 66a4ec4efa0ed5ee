"""Split schemes: determinism, stratification, writer-disjointness, adaptation resamples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hwbench import splits
from hwbench.store import read_split

PARAMS = dict(
    seed=0,
    val_fraction=0.16,
    test_fraction=0.2,
    app_fraction=0.1,
    writer_val_fraction=0.1,
    adaptation_test_fraction=0.1,
    adaptation_resamples=3,
)


def half_up(x: float) -> int:
    """The holdout sizes round half up (Python's round() sends 2.5 to 2)."""
    return math.floor(x + 0.5)


def make_meta(n_writers: int = 60, seed: int = 0, source_split: str = "") -> pd.DataFrame:
    """Unbalanced writers (like NIST: a few write a lot) over 12 unbalanced labels."""
    rng = np.random.default_rng(seed)
    counts = np.maximum(5, (400 * rng.pareto(1.5, n_writers)).astype(int) % 900)
    rows = []
    for w, n in enumerate(counts):
        labels = rng.choice(12, size=n, p=np.linspace(2, 1, 12) / np.linspace(2, 1, 12).sum())
        rows += [(int(label), f"w{w:03d}") for label in labels]
    meta = pd.DataFrame(rows, columns=["label", "writer"])
    meta["label_name"] = meta["label"].astype(str)
    meta["script"], meta["pen"], meta["source_split"] = "latin", "", source_split
    return meta


def writer_counts(meta: pd.DataFrame) -> pd.Series:
    return meta.groupby("writer").size()


# --------------------------------------------------------------------------- holdout_mask


def test_holdout_mask_is_stratified_and_exact():
    labels = np.repeat(np.arange(5), [100, 50, 30, 13, 7])
    mask = splits.holdout_mask(labels, 0.2, np.random.default_rng(0))
    assert mask.sum() == 40
    for label, n in zip(range(5), [100, 50, 30, 13, 7], strict=True):
        assert abs(mask[labels == label].sum() - 0.2 * n) < 1


def test_holdout_smaller_than_the_number_of_classes_and_singletons():
    # 23 holdout slots over 62 classes (a NIST writer's 10%), one single-image class
    labels = np.concatenate([np.repeat(np.arange(61), 4)[:229], [99]])
    mask = splits.holdout_mask(labels, 0.1, np.random.default_rng(1))
    assert mask.sum() == 23
    assert not mask[labels == 99].any()  # a single image stays on the kept side
    per_class = pd.Series(mask).groupby(labels).sum()
    assert per_class.max() == 1  # spread over classes, never two from one class
    # every class keeps at least one member even at a large fraction
    mask = splits.holdout_mask(np.array([0, 0, 1, 2, 2, 2]), 0.9, np.random.default_rng(0))
    assert mask.sum() == 3 and not mask[2] and mask[:2].sum() == 1 and mask[3:].sum() == 2


# --------------------------------------------------------------------------- stratified


def test_stratified_proportions_and_val_share():
    meta = make_meta()
    frame = splits.make_split("stratified", meta, PARAMS)
    assert list(frame["index"]) == list(range(len(meta)))
    split = frame["split"].to_numpy()
    n_test, n_val, n_train = (
        (split == "test").sum(),
        (split == "val").sum(),
        (split == "train").sum(),
    )
    assert n_test == half_up(0.2 * len(meta))
    assert n_val == half_up(0.16 * (n_train + n_val))
    for label, rows in meta.groupby("label").groups.items():
        s = split[rows]
        assert abs((s == "test").sum() - 0.2 * len(s)) < 1, label
        pool = (s != "test").sum()
        assert abs((s == "val").sum() - 0.16 * pool) < 1, label


def test_stratified_keeps_the_source_test_split():
    meta = make_meta()
    meta["source_split"] = np.where(np.arange(len(meta)) % 5 == 0, "test", "train")
    split = splits.make_split("stratified", meta, PARAMS)["split"].to_numpy()
    np.testing.assert_array_equal(split == "test", meta["source_split"].to_numpy() == "test")
    train_pool = (split != "test").sum()
    assert (split == "val").sum() == half_up(0.16 * train_pool)


def test_stratified_with_tiny_classes_does_not_crash():
    meta = make_meta(n_writers=5)
    meta.loc[0, "label"], meta.loc[1, "label"], meta.loc[2, "label"] = 50, 51, 51
    split = splits.make_split("stratified", meta, PARAMS)["split"].to_numpy()
    assert split[0] == "train"  # a single image can only be trained on
    assert sorted(split[1:3]) in (["train", "train"], ["test", "train"], ["train", "val"])


# --------------------------------------------------------------------------- writer


def test_writer_split_is_writer_disjoint_with_prolific_app_writers():
    meta = make_meta()
    frame = splits.make_split("writer", meta, PARAMS)
    assert set(frame["split"]) == {"train", "val", "app"}
    per_writer = frame.groupby("writer")["split"].nunique()
    assert (per_writer == 1).all()  # every writer in exactly one split
    role = frame.groupby("writer")["split"].first()
    counts = writer_counts(meta)
    app = role[role == "app"].index
    # the app set: the most prolific writers, about 10% of the images
    assert counts[app].min() >= counts.drop(app).max()
    share = counts[app].sum() / len(meta)
    assert abs(share - 0.1) <= counts[app].min() / len(meta) / 2 + 1e-9
    # the rest split 9:1 by writer count
    n_rest = (role != "app").sum()
    assert (role == "val").sum() == half_up(0.1 * n_rest)


def test_equal_writers_get_a_seeded_app_choice():
    meta = pd.DataFrame(
        {
            "label": np.tile(np.arange(10), 24),
            "writer": np.repeat([f"s{i:02d}" for i in range(24)], 10),
        }
    )
    meta["source_split"] = ""
    frames = [splits.make_split("writer", meta, {**PARAMS, "seed": s}) for s in range(4)]
    apps = [tuple(sorted(set(f.loc[f["split"] == "app", "writer"]))) for f in frames]
    assert all(len(a) == 2 for a in apps)  # 2 of 24 equal writers = 8.3%, nearest to 10%
    assert len(set(apps)) > 1


def test_writer_schemes_need_writer_ids():
    meta = make_meta(n_writers=4)
    meta.loc[::3, "writer"] = ""
    for scheme in ("writer", "adaptation"):
        with pytest.raises(splits.SplitError, match="rows have no writer id.*stratified"):
            splits.make_split(scheme, meta, PARAMS, where="data/processed/x/meta.csv")
    with pytest.raises(splits.SplitError, match="at least 3"):
        splits.make_split("writer", make_meta(n_writers=2), PARAMS)


# --------------------------------------------------------------------------- adaptation


def test_adaptation_is_90_10_per_writer_and_label_for_each_resample():
    meta = make_meta()
    writer = splits.make_split("writer", meta, PARAMS)
    frame = splits.make_split("adaptation", meta, PARAMS)
    app = set(writer.loc[writer["split"] == "app", "index"])
    assert sorted(frame["resample"].unique()) == [0, 1, 2]
    labels = meta["label"].to_numpy()
    for (resample, w), part in frame.groupby(["resample", "writer"]):
        assert set(part["index"]) <= app and len(part) == len(set(part["index"]))
        assert set(meta.loc[part["index"], "writer"]) == {w}
        n_test = (part["split"] == "test").sum()
        assert n_test == half_up(0.1 * len(part)), (resample, w)
        for _, rows in part.groupby(labels[part["index"]]):
            if len(rows) == 1:
                assert rows["split"].iloc[0] == "adaptation"
            assert abs((rows["split"] == "test").sum() - 0.1 * len(rows)) < 1
    for resample in range(3):
        assert set(frame.loc[frame["resample"] == resample, "index"]) == app
    tests = [
        set(frame.loc[(frame["resample"] == r) & (frame["split"] == "test"), "index"])
        for r in range(3)
    ]
    assert tests[0] != tests[1] and tests[1] != tests[2]


def test_splits_are_deterministic_and_seeded():
    meta = make_meta()
    for scheme in splits.SCHEMES:
        a = splits.make_split(scheme, meta, PARAMS)
        b = splits.make_split(scheme, meta, PARAMS)
        pd.testing.assert_frame_equal(a, b)
        c = splits.make_split(scheme, meta, {**PARAMS, "seed": 1})
        assert not a.equals(c), scheme


def test_split_files_round_trip_through_store(tmp_path):
    meta = make_meta(n_writers=12)
    meta.to_csv(tmp_path / "meta.csv", index=False)
    read = splits.read_meta(tmp_path / "meta.csv")
    frame = splits.make_split("adaptation", read, PARAMS)
    frame.to_csv(tmp_path / "adaptation.csv", index=False)
    back = read_split(tmp_path / "adaptation.csv")
    assert list(back.columns) == ["index", "split", "resample", "writer"]
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


def test_rule_params_cover_what_each_scheme_reads():
    """A split job gets only its scheme's SCHEME_KEYS (splits.smk): they must suffice."""
    keys = splits.SCHEME_KEYS
    assert set(keys) == set(splits.SCHEMES)
    meta = make_meta(n_writers=12)
    for scheme, names in keys.items():
        full = splits.make_split(scheme, meta, PARAMS)
        only = splits.make_split(scheme, meta, {k: PARAMS[k] for k in names})
        pd.testing.assert_frame_equal(full, only)
