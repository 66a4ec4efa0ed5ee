"""Table 4 of the multiscript study, the paper's numbers beside it, and the figures.

Reads the runs' eval.json records (:func:`hwbench.engine.result_record`: identity
``group``, ``method``, ``seed``; ``metrics.accuracy`` script -> test accuracy in
[0, 1]) and their metrics.csv. Never imports the job module: a table or figure
edit reruns only the report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hwbench.studies.multiscript.spec import (
    DIGIT_SCRIPTS,
    GROUPS,
    MULTI_TASK,
    check_method,
)

# Table 4 rows (our names -> the paper's), in the paper's order plus UW before New.
ROW_NAMES = {
    "lat": "Lat",
    "arab": "Arab",
    "kan": "Kan",
    "base": "Base",
    "wloss": "Wloss",
    "uw": "UW",
    "new": "New",
}
# Table 4's columns. Range is the paper's: max - min of the row's script means.
COLUMNS = ["Latin", "Arabic", "Kannada", "Average", "Range", "Amharic"]
# An extra, labelled column: the mean over seeds of each seed's own max - min (it is
# larger than Range whenever the best or worst script changes between seeds).
RANGE_PER_SEED = "Range per seed"
# The per-seed values averaged over seeds (Range itself is derived from the means).
SEED_COLUMNS = ["Latin", "Arabic", "Kannada", "Average", RANGE_PER_SEED, "Amharic"]
SCRIPT_COLUMN = {"latin": "Latin", "arabic": "Arabic", "kannada": "Kannada", "amharic": "Amharic"}

# Table 4 of the paper (accuracy, %). "-" cells are None; the single-script models'
# 0 cells mean "not evaluated on that script" (a 10-class model has no output for
# it): the paper columns print them as the paper does, our columns print "-".
PAPER_TABLE4 = {
    "Lat": {"Latin": 98.45, "Arabic": 0.0, "Kannada": 0.0},
    "Arab": {"Latin": 0.0, "Arabic": 98.49, "Kannada": 0.0},
    "Kan": {"Latin": 0.0, "Arabic": 0.0, "Kannada": 96.25},
    "Base": {
        "Latin": 97.19,
        "Arabic": 95.51,
        "Kannada": 94.90,
        "Average": 95.87,
        "Range": 2.99,
        "Amharic": 73.83,
    },
    "Wloss": {
        "Latin": 97.18,
        "Arabic": 97.94,
        "Kannada": 96.13,
        "Average": 97.08,
        "Range": 1.81,
        "Amharic": 74.68,
    },
    "New": {
        "Latin": 97.85,
        "Arabic": 98.07,
        "Kannada": 97.23,
        "Average": 97.71,
        "Range": 0.84,
        "Amharic": 75.91,
    },
}


# ---------------------------------------------------------------------------
# Table 4


def table4_values(evals: list[dict]) -> pd.DataFrame:
    """Per-seed Table 4 values (accuracy in %) from the runs' eval records.

    Each record (an eval.json) has ``group``, ``method``, ``seed`` and
    ``metrics.accuracy`` (script -> test accuracy in [0, 1]). Returns one row per
    (model, seed) with the columns of :data:`SEED_COLUMNS`; Average and "Range per
    seed" (max - min) are over the three digit scripts of the same run, so they have
    an sd over seeds. A cell the model is not evaluated on is NaN.
    """
    rows: dict[tuple[str, int], dict] = {}
    for rec in evals:
        check_method(rec["group"], rec["method"])
        key = (ROW_NAMES[rec["method"]], int(rec["seed"]))
        row = rows.setdefault(key, {"model": key[0], "seed": key[1]})
        accuracy = rec["metrics"]["accuracy"]
        for script, acc in accuracy.items():
            row[SCRIPT_COLUMN[script]] = 100.0 * float(acc)
        if rec["group"] == "digits" and rec["method"] in MULTI_TASK:
            accs = [100.0 * float(accuracy[s]) for s in DIGIT_SCRIPTS]
            row["Average"] = float(np.mean(accs))
            row[RANGE_PER_SEED] = float(np.max(accs) - np.min(accs))
    frame = pd.DataFrame(list(rows.values()), columns=["model", "seed", *SEED_COLUMNS])
    order = {name: i for i, name in enumerate(ROW_NAMES.values())}
    frame = frame.sort_values(
        ["model", "seed"], key=lambda c: c.map(order) if c.name == "model" else c
    )
    return frame.reset_index(drop=True)


def range_of_means(means: list[float], digits: int = 2) -> float:
    """The paper's Range: max - min of the seed-averaged script columns, as printed.

    The means are rounded to the printed ``digits`` first, as the paper subtracts its
    printed columns (Wloss 97.94 - 96.13 = 1.81), so the table's Range is exactly
    the difference of the table's own cells. NaN when a script has no mean.
    """
    printed = [round(float(m), digits) for m in means]
    if any(np.isnan(m) for m in printed):
        return float("nan")
    return max(printed) - min(printed)


def paper_value_text(model: str, column: str) -> str:
    """The paper's cell as printed: a number, its bare "0" or "-" ("-" too for a row
    it lacks). The paper's 0 marks a single-script model on another script: not
    evaluated (the 10-class model has no output for it), not 0 % accuracy."""
    value = PAPER_TABLE4.get(model, {}).get(column)
    if value is None:
        return "-"
    return "0" if value == 0 else f"{value:.2f}"


def table4(evals: list[dict], digits: int = 2) -> pd.DataFrame:
    """Table 4: per model, each column as "mean ± sd" over seeds, the paper's value and
    our mean minus the paper's.

    Range is :func:`range_of_means` of the row's Latin/Arabic/Kannada means (one
    number, no sd), as the paper defines it; "Range per seed" beside it is the mean
    ± sd of each seed's own range (no paper value). A cell where nothing was
    measured is "-" (the paper prints 0 where a single-script model meets another
    script; its columns keep that 0, see :func:`paper_value_text`). A cell the
    paper leaves out, or a row it lacks (UW), is "-" in its columns, and so is the
    difference.
    """
    from hwbench.report import aggregate, format_mean_sd

    values = table4_values(evals)
    agg = aggregate(values, ["model"], SEED_COLUMNS)
    rows = []
    for _, r in agg.iterrows():
        model = r["model"]
        row = {"model": model, "seeds": int(max(r[f"{c}_n"] for c in SEED_COLUMNS))}
        for col in COLUMNS:
            if col == "Range":
                means = [r[f"{c}_mean"] for c in ("Latin", "Arabic", "Kannada")]
                mean, sd = range_of_means(means, digits), float("nan")
            else:
                mean, sd = r[f"{col}_mean"], r[f"{col}_sd"]
            paper = PAPER_TABLE4.get(model, {}).get(col)
            diff = "-"
            if not pd.isna(mean) and paper is not None:
                diff = f"{round(mean - paper, digits) + 0.0:+.{digits}f}"
            # nothing measured (e.g. Lat on Arabic): "-", never a 0 that looks measured
            row[col] = format_mean_sd(mean, sd, digits) or "-"
            row[f"{col} paper"] = paper_value_text(model, col)
            row[f"{col} diff"] = diff
            if col == "Range":
                per_seed = format_mean_sd(
                    r[f"{RANGE_PER_SEED}_mean"], r[f"{RANGE_PER_SEED}_sd"], digits
                )
                row[RANGE_PER_SEED] = per_seed or "-"
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Figures

MULTI_TASK_STYLE = {"Base": "tab:blue", "Wloss": "tab:orange", "UW": "tab:green", "New": "tab:red"}
SINGLE_STYLE = {"Lat": "0.35", "Arab": "0.55", "Kan": "0.75"}


def epoch_curves(runs: list[tuple[dict, pd.DataFrame]]) -> pd.DataFrame:
    """Long table of per-epoch metrics: group, model, seed, epoch and metrics.csv columns."""
    frames = []
    for rec, metrics in runs:
        frame = metrics.copy()
        frame.insert(0, "seed", int(rec["seed"]))
        frame.insert(0, "model", ROW_NAMES[rec["method"]])
        frame.insert(0, "group", rec["group"])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _mean_curve(curves: pd.DataFrame, column: str) -> pd.DataFrame:
    return curves.groupby("epoch")[column].agg(["mean", "std"]).reset_index()


def _plot(ax, curves, column, label, color, style="-"):
    if column not in curves or curves[column].isna().all():
        return
    c = _mean_curve(curves, column)
    ax.plot(c["epoch"], c["mean"], style, color=color, label=label, lw=1.5)
    if c["std"].notna().any():
        ax.fill_between(
            c["epoch"], c["mean"] - c["std"], c["mean"] + c["std"], color=color, alpha=0.15
        )


def plot_curves(curves: pd.DataFrame, path) -> None:
    """Figs. 5 and 6: validation accuracy and main-task loss per epoch of every model.

    The main-task cross-entropy (not each model's total loss) is plotted so the
    models are comparable: New's total is factor x CE, UW's is reweighted.
    """
    from hwbench.report import new_figure, save_figure

    groups = [g for g in GROUPS if g in set(curves["group"])]
    fig, axes = new_figure(
        len(groups), 3, figsize=(14, 3.8 * len(groups)), squeeze=False, layout="constrained"
    )
    titles = {"digits": "multi-script digits (30 classes)", "amharic": "Amharic (77 classes)"}
    for i, group in enumerate(groups):
        g = curves[curves["group"] == group]
        for model in g["model"].unique():
            m = g[g["model"] == model]
            color = MULTI_TASK_STYLE.get(model) or SINGLE_STYLE.get(model, "k")
            style = "-" if model in MULTI_TASK_STYLE else "--"
            _plot(axes[i, 0], m, "val_acc", model, color, style)
            _plot(axes[i, 1], m, "train_main", model, color, style)
            _plot(axes[i, 2], m, "val_main", model, color, style)
        for ax, ylabel in zip(
            axes[i],
            ["validation accuracy", "training loss (main CE)", "validation loss (main CE)"],
            strict=True,
        ):
            ax.set_title(f"{titles[group]}: {ylabel}", fontsize=9)
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        axes[i, 0].legend(fontsize=8)
    save_figure(fig, path)


def plot_new_losses(curves: pd.DataFrame, path) -> None:
    """Fig. 7: New's main-task and auxiliary losses per epoch (training, mean over seeds),
    Wloss's main-task loss beside for reference, and New's mean batch factor."""
    from hwbench.report import new_figure, save_figure

    groups = [g for g in GROUPS if g in set(curves["group"])]
    fig, axes = new_figure(
        1, len(groups), figsize=(7 * len(groups), 4.2), squeeze=False, layout="constrained"
    )
    for ax, group in zip(axes[0], groups, strict=True):
        g = curves[curves["group"] == group]
        new = g[g["model"] == "New"]
        _plot(ax, new, "train_main", "New: main CE", "tab:red")
        _plot(ax, new, "train_aux", "New: auxiliary CE (4 classes)", "tab:purple")
        _plot(ax, g[g["model"] == "Wloss"], "train_main", "Wloss: main CE", "tab:orange", "--")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_title(f"{group}: the New model's losses", fontsize=9)
        ax.grid(alpha=0.3)
        if "train_factor" in new and new["train_factor"].notna().any():
            twin = ax.twinx()
            c = _mean_curve(new, "train_factor")
            twin.plot(c["epoch"], c["mean"], ":", color="0.4", label="New: factor (right axis)")
            twin.set_ylabel("factor (aux labels per batch)")
            lines = ax.get_legend_handles_labels()
            tl = twin.get_legend_handles_labels()
            ax.legend(lines[0] + tl[0], lines[1] + tl[1], fontsize=8)
        else:
            ax.legend(fontsize=8)
    save_figure(fig, path)
