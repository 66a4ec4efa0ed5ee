"""The adaptation study's report: Table 3 with the paper's values beside ours, the
diagnostics, the base CNN's accuracies and the per-writer figure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hwbench import report
from hwbench.studies.adaptation.loop import writer_scores
from hwbench.studies.adaptation.spec import KNN_KS, PAPER_BASE, PAPER_BASE_COLUMNS, WRITER_SPLITS

# Paper values (Table 3 and section 4.5), in percent where a rate.
PAPER = {
    "nist": {
        "writers": 200,
        "test_images": 81685,
        "base_acc": 87.24,
        "improved_acc": 89.60,
        "gain": 2.36,
        "upper_bound": 91.42,
        "writers_improved": 167,
        "writers_tied": 9,
        "writers_worse": 24,
    },
    "deepwriting": {
        "writers": 25,
        "test_images": 37672,
        "base_acc": 82.05,
        "improved_acc": 84.77,
        "gain": 2.72,
        "upper_bound": 86.38,
        "writers_improved": 24,
        "writers_tied": 0,
        "writers_worse": 1,
    },
}


# --------------------------------------------------------------------------- the report

TABLE_KEYS = ["dataset", "knn_weights"]
RATE_METRICS = ["base_acc", "improved_acc", "gain", "upper_bound"]
COUNT_METRICS = ["writers", "test_images", "writers_improved", "writers_tied", "writers_worse"]
DIAG_METRICS = [
    "knn_any",
    "knn_chosen",
    "changed",
    "fixed",
    "broken",
    "base_acc_knn_any",
    "base_acc_no_knn",
]
PAPER_RESAMPLES = 10  # the paper's counts of test images are totals over 10 resamples


def paper_value(paper: str | None, metric: str) -> float:
    """The paper's value of ``metric`` for its dataset ``paper`` (NaN where none).

    Test images are per resample, as ours: the paper's total over its 10 resamples / 10.
    """
    if paper is None or metric not in PAPER[paper]:
        return np.nan
    value = float(PAPER[paper][metric])
    return value / PAPER_RESAMPLES if metric == "test_images" else value


def adaptation_table(
    scores: pd.DataFrame, papers: dict[str, str | None]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Aggregate per-resample scores (:func:`resample_scores` plus dataset, knn_weights)
    over resamples; the paper's values beside. Returns (numbers, display table)."""

    metrics = COUNT_METRICS[:2] + RATE_METRICS + COUNT_METRICS[2:]
    agg = report.aggregate(scores, TABLE_KEYS, metrics, seed_col="resample")
    for m in metrics:
        paper = agg[TABLE_KEYS].copy()
        paper["paper"] = [paper_value(papers.get(d), m) for d in agg["dataset"]]
        agg = report.join_paper(agg, paper, TABLE_KEYS, m)
    rates = report.format_table(agg, TABLE_KEYS, RATE_METRICS, digits=2)
    counts = report.format_table(agg, TABLE_KEYS, COUNT_METRICS, digits=1)
    display = agg[TABLE_KEYS].copy()
    display["resamples"] = agg["base_acc_n"].astype(int)
    for m in metrics:
        src = rates if m in RATE_METRICS else counts
        for col in (m, f"{m}_paper", f"{m}_diff"):
            display[col] = src[col]
    return agg, display


def writer_figure(records: Sequence[pd.DataFrame], path, ks: Sequence[int] = KNN_KS) -> None:
    """Per writer (pooled over resamples): base vs adapted accuracy, one panel per run.

    ``records``: :func:`run_adaptation` frames with ``dataset`` and ``knn_weights``
    columns. Points above the diagonal are writers adaptation helped.
    """

    fig, axes = report.new_figure(
        1, len(records), figsize=(4 * len(records), 4), squeeze=False, sharey=True
    )
    for ax, rec in zip(axes[0], records, strict=True):
        w = writer_scores(rec.assign(resample=0), ks)
        ax.plot([0, 1], [0, 1], color="0.7", lw=1)
        ax.scatter(w["base_acc"], w["improved_acc"], s=14)
        ax.set_title(f"{rec['dataset'].iloc[0]}, {rec['knn_weights'].iloc[0]} KNN")
        ax.set_xlabel("base CNN accuracy per writer")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("adapted accuracy per writer")
    report.save_figure(fig, path)


def base_cnn_table(datasets: Sequence[str], eval_files: Sequence[str | Path]) -> pd.DataFrame:
    """One row per dataset from the base CNN jobs' result records (eval.json)."""
    rows = []
    for dataset, path in zip(datasets, eval_files, strict=True):
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        rows.append(
            {"dataset": dataset, "num_classes": record["num_classes"], **record["metrics"]}
            | {"device": record["fit"]["device"]}
        )
    return pd.DataFrame(rows)


def build_report(
    *,
    runs: Sequence[tuple[str, str]],
    scores_files: Sequence[str | Path],
    prediction_files: Sequence[str | Path],
    quality_files: Sequence[str | Path],
    datasets: Sequence[str],
    eval_files: Sequence[str | Path],
    papers: dict[str, str | None],
    knn_ks: Sequence[int],
    prov: dict,
    out: dict[str, str | Path],
) -> pd.DataFrame:
    """Read the jobs' files and write every output of the report (``out`` keys: csv,
    styles, diagnostics, details, figure); returns the display table."""
    from hwbench.store import write_csv, write_text

    keyed = [dict(zip(TABLE_KEYS, r, strict=True)) for r in runs]
    scores = pd.concat(
        [pd.read_csv(f).assign(**k) for f, k in zip(scores_files, keyed, strict=True)],
        ignore_index=True,
    )
    _, table = adaptation_table(scores, papers)
    diag = report.aggregate(scores, TABLE_KEYS, DIAG_METRICS, seed_col="resample")
    diag_table = report.format_table(diag, TABLE_KEYS, DIAG_METRICS, digits=2)
    base = base_cnn_table(datasets, eval_files)
    quality = pd.concat([pd.read_csv(f) for f in quality_files], ignore_index=True)
    prov["base_cnn"] = base.to_dict(orient="records")
    note = prov.get(report.DATA_NOTE_KEY)
    write_csv(out["diagnostics"], report.mark_data(diag_table, note))
    write_text(
        out["details"],
        (f"**{note.capitalize()}.**\n\n" if note else "")
        + "# Writing styles: KNN on the centroids (section 3.2)\n\n"
        + report.to_markdown(quality)
        + "\n# Base CNN\n\n"
        + report.to_markdown(base)
        + "\n# Diagnostics (percent of test images, mean ± sd over resamples)\n\n"
        + report.to_markdown(diag_table),
    )
    write_csv(out["styles"], report.mark_data(quality, note))
    writer_figure(
        [pd.read_csv(f).assign(**k) for f, k in zip(prediction_files, keyed, strict=True)],
        out["figure"],
        knn_ks,
    )
    report.write_report(table, out["csv"], prov)
    return table


def base_split_table(
    datasets: Sequence[str], eval_files: Sequence[str | Path], papers: dict[str, str | None]
) -> pd.DataFrame:
    """Table 2 and section 4.4.2 beside ours: per dataset and split of the writer
    scheme (train, val, app), its writers, images and the base CNN's accuracy (%)."""
    rows = []
    for dataset, path in zip(datasets, eval_files, strict=True):
        metrics = json.loads(Path(path).read_text(encoding="utf-8"))["metrics"]
        paper = PAPER_BASE.get(papers.get(dataset) or "", {})
        for split in WRITER_SPLITS:
            ours = {
                "writers": metrics[f"{split}_writers"],
                "images": metrics[f"{split}_images"],
                "accuracy": 100.0 * metrics[f"{split}_acc"],
            }
            row = {"dataset": dataset, "split": split}
            printed = dict(zip(PAPER_BASE_COLUMNS, paper[split], strict=True)) if paper else {}
            for key, value in ours.items():
                theirs = printed.get(key)
                digits = 2 if key == "accuracy" else 0
                row[key] = f"{value:.{digits}f}"
                row[f"{key}_paper"] = "" if theirs is None else f"{theirs:.{digits}f}"
                row[f"{key}_diff"] = (
                    "" if theirs is None else f"{round(value - theirs, digits) + 0.0:+.{digits}f}"
                )
            rows.append(row)
    return pd.DataFrame(rows)
