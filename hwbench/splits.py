"""Split schemes: which row of a processed dataset goes to which split.

A split file ``data/splits/<dataset>/<scheme>.csv`` has one row per (image,
resample) with columns ``index`` (row of images.npy), ``split``, and, for the
writer-based schemes, ``writer`` (and ``resample`` for ``adaptation``).

- ``stratified``: train / val / test. The source's own test split is kept when
  meta.source_split has ``test`` rows; otherwise a class-stratified test share
  (test_fraction) is drawn. val is a class-stratified val_fraction of train.
- ``writer``: writer-disjoint train / val / app. The most prolific writers go to
  ``app`` until it holds about app_fraction of the images; the other writers are
  shuffled and split by writer count (writer_val_fraction to val).
- ``adaptation``: inside each app writer, adaptation / test (test share
  adaptation_test_fraction) stratified by label, drawn independently for each
  resample id 0..adaptation_resamples-1.

Stratification (:func:`holdout_mask`) apportions the held-out count to classes by
largest remainder, as scikit-learn's StratifiedShuffleSplit does, but it also
works where that one refuses: when the holdout is smaller than the number of
classes (10% of a NIST writer's ~230 images over 62 labels) and for classes with
a single member. A class always keeps at least one member on the kept side
(train, or adaptation), so single-image classes are never held out.

Everything is a pure function of the metadata, the parameters and the seed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

SCHEMES = ("stratified", "writer", "adaptation")
# The splits config keys each scheme reads: a split job gets only its scheme's keys
# (workflow/rules/splits.smk), so changing another key reruns nothing.
SCHEME_KEYS = {
    "stratified": ("seed", "val_fraction", "test_fraction"),
    "writer": ("seed", "app_fraction", "writer_val_fraction"),
    "adaptation": (
        "seed",
        "app_fraction",
        "writer_val_fraction",
        "adaptation_test_fraction",
        "adaptation_resamples",
    ),
}
# Fixed stream ids: each scheme draws from its own random stream of the seed, so
# adding a scheme or changing one's parameters never moves another's split.
_STREAM = {"stratified": 1, "writer": 2, "adaptation": 3}


class SplitError(ValueError):
    """A split scheme cannot be applied to a dataset."""


def _round(x: float) -> int:
    """Round half up (Python's round() sends 2.5 to 2)."""
    return math.floor(x + 0.5)


def _rng(seed: int, scheme: str, *more: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _STREAM[scheme], *more])


def holdout_mask(labels, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of a class-stratified holdout of about ``fraction`` of the rows.

    The holdout size is fraction * n rounded half up. Each class gets its proportional
    share rounded down; the remaining slots go to the classes with the largest
    remainders (ties broken at random). A class never gives up its last member,
    so a single-member class stays entirely on the kept side; if that makes the
    target unreachable the holdout is smaller. Members are drawn at random.
    """
    labels = np.asarray(labels)
    n = len(labels)
    mask = np.zeros(n, bool)
    if n == 0:
        return mask
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    cap = counts - 1
    n_hold = min(_round(fraction * n), int(cap.sum()))
    if n_hold <= 0:
        return mask
    exact = counts * (n_hold / n)
    take = np.minimum(np.floor(exact).astype(np.int64), cap)
    remainder = exact - take
    tiebreak = rng.random(len(counts))
    while (left := n_hold - int(take.sum())) > 0:
        order = np.lexsort((tiebreak, -remainder))
        order = order[take[order] < cap[order]][:left]
        take[order] += 1
        remainder[order] -= 1.0
    # pick take[k] random members of each class k: rank rows within their class
    # by a random key and keep the first take[k]
    order = np.lexsort((rng.random(n), inverse))
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    mask[:] = rank < take[inverse]
    return mask


def _frame(index: np.ndarray, split: np.ndarray, **extra) -> pd.DataFrame:
    frame = pd.DataFrame({"index": np.asarray(index, np.int64), "split": split, **extra})
    return frame.sort_values("index", kind="stable").reset_index(drop=True)


def stratified_split(
    meta: pd.DataFrame, *, seed: int, val_fraction: float, test_fraction: float
) -> pd.DataFrame:
    """train / val / test, class-balanced; the source's test split kept when it has one."""
    rng = _rng(seed, "stratified")
    labels = meta["label"].to_numpy()
    split = np.full(len(meta), "train", dtype=object)
    source = meta["source_split"].astype(str).to_numpy() if "source_split" in meta else None
    if source is not None and (source == "test").any():
        is_test = source == "test"
    else:
        is_test = holdout_mask(labels, test_fraction, rng)
    split[is_test] = "test"
    pool = np.flatnonzero(~is_test)
    split[pool[holdout_mask(labels[pool], val_fraction, rng)]] = "val"
    return _frame(np.arange(len(meta)), split)


def _writers(meta: pd.DataFrame, where: str) -> np.ndarray:
    if "writer" not in meta:
        raise SplitError(f"{where}: no 'writer' column; the writer-based schemes need writer ids")
    writers = meta["writer"].astype(str).to_numpy()
    unknown = int((writers == "").sum())
    if unknown:
        raise SplitError(
            f"{where}: {unknown} of {len(writers)} rows have no writer id; the writer and "
            "adaptation schemes need one for every image. Use the stratified scheme for this "
            "dataset (config splits.schemes)."
        )
    return writers


def writer_split(
    meta: pd.DataFrame,
    *,
    seed: int,
    app_fraction: float,
    writer_val_fraction: float,
    where: str = "meta",
) -> pd.DataFrame:
    """Writer-disjoint train / val / app (columns index, split, writer)."""
    writers = _writers(meta, where)
    names, inverse, counts = np.unique(writers, return_inverse=True, return_counts=True)
    if len(names) < 3:
        raise SplitError(
            f"{where}: {len(names)} writer(s); the writer scheme needs at least 3 "
            "(one each for train, val and app)"
        )
    rng = _rng(seed, "writer")
    # most prolific first; equal counts in a seeded random order
    order = rng.permutation(len(names))
    order = order[np.argsort(-counts[order], kind="stable")]
    # the prefix whose image count is closest to the target, leaving >= 2 writers
    cumulative = np.cumsum(counts[order])[: len(names) - 2]
    n_app = int(np.argmin(np.abs(cumulative - app_fraction * len(writers)))) + 1
    role = np.full(len(names), "train", dtype=object)
    role[order[:n_app]] = "app"
    rest = rng.permutation(order[n_app:])
    n_val = min(max(_round(writer_val_fraction * len(rest)), 1), len(rest) - 1)
    role[rest[:n_val]] = "val"
    return _frame(np.arange(len(meta)), role[inverse], writer=writers)


def adaptation_split(
    meta: pd.DataFrame,
    writer_frame: pd.DataFrame,
    *,
    seed: int,
    test_fraction: float,
    resamples: int,
    where: str = "meta",
) -> pd.DataFrame:
    """For each app writer of ``writer_frame``: adaptation / test per resample id.

    Columns index, split (adaptation | test), resample, writer; ordered by
    resample, writer, index.
    """
    if resamples < 1:
        raise SplitError(f"adaptation_resamples must be >= 1, got {resamples}")
    app = writer_frame.loc[writer_frame["split"] == "app", "index"].to_numpy()
    if len(app) == 0:
        raise SplitError(f"{where}: the writer split has no app writers")
    labels = meta["label"].to_numpy()[app]
    writers = _writers(meta, where)[app]
    groups = [np.flatnonzero(writers == w) for w in np.unique(writers)]
    parts = []
    for resample in range(resamples):
        rng = _rng(seed, "adaptation", resample)
        split = np.full(len(app), "adaptation", dtype=object)
        for rows in groups:
            split[rows[holdout_mask(labels[rows], test_fraction, rng)]] = "test"
        parts.append(
            pd.DataFrame(
                {"index": app, "split": split, "resample": resample, "writer": writers}
            ).sort_values(["writer", "index"], kind="stable")
        )
    return pd.concat(parts, ignore_index=True)


def read_meta(path: str | os.PathLike) -> pd.DataFrame:
    """meta.csv of a processed dataset, read as hwbench.store reads it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: build it first, e.g. `snakemake --cores all {path}`"
        )
    meta = pd.read_csv(path, keep_default_na=False, dtype={"label_name": str, "writer": str})
    for column in ("label", "source_split"):
        if column not in meta:
            raise SplitError(f"{path}: no '{column}' column")
    return meta


def make_split(
    scheme: str, meta: pd.DataFrame, params: dict, *, where: str = "meta"
) -> pd.DataFrame:
    """The split frame of ``scheme`` from the config's ``splits`` section (``params``)."""
    seed = params["seed"]
    if scheme == "stratified":
        return stratified_split(
            meta,
            seed=seed,
            val_fraction=params["val_fraction"],
            test_fraction=params["test_fraction"],
        )
    writer = writer_split(
        meta,
        seed=seed,
        app_fraction=params["app_fraction"],
        writer_val_fraction=params["writer_val_fraction"],
        where=where,
    )
    if scheme == "writer":
        return writer
    if scheme == "adaptation":
        return adaptation_split(
            meta,
            writer,
            seed=seed,
            test_fraction=params["adaptation_test_fraction"],
            resamples=params["adaptation_resamples"],
            where=where,
        )
    raise SplitError(f"unknown split scheme {scheme!r}; known: {', '.join(SCHEMES)}")
