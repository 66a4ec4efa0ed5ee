"""The transfer study's report: run summaries, the table with the paper's findings, figures.

Reads the runs' eval.json records (:func:`hwbench.engine.write_result` shape:
identity ``set``, ``mode``, ``seed``; ``metrics.classes`` and ``metrics.history``,
the per-epoch test metrics) and derives everything the paper reports from the
histories: F1 after epochs 1 and 2, peak F1 and its epoch, final F1, epochs run
(:func:`run_summary`), the table (:func:`transfer_table`) and Figs. 2-6.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hwbench.studies.transfer.spec import CLASS_ACC, MODE_TITLES, MODES

SUMMARY_METRICS = ("f1_epoch1", "f1_epoch2", "peak_f1", "peak_epoch", "final_f1", "epochs_run")


# --- summaries, table, findings ------------------------------------------------------


def run_summary(history: pd.DataFrame, metric: str = "test_f1") -> dict[str, float]:
    """F1 after epochs 1 and 2, peak F1 and its (first) epoch, final F1, epochs run.

    An epoch the run did not reach (early stop) gives NaN.
    """
    if len(history) == 0 or metric not in history.columns:
        raise ValueError(f"a run's history has no {metric!r} per epoch (empty or another study's)")
    f1 = history.set_index("epoch")[metric].astype(float)
    return {
        "f1_epoch1": float(f1.get(1, math.nan)),
        "f1_epoch2": float(f1.get(2, math.nan)),
        "peak_f1": float(f1.max()),
        "peak_epoch": int(f1.idxmax()),
        "final_f1": float(f1.iloc[-1]),
        "epochs_run": int(len(f1)),
    }


# The paper's findings per set (paper numbering, Table I) and mode. Numbers are read
# from its text: sets 1 and 2 plateau / peak at the F1 quoted, set 3 frozen has a peak
# F1 error of about 42 %; None where the paper gives no number.
PAPER_SETS = {
    1: "MNIST -> NIST digits",
    2: "MNIST -> NIST digits + letters",
    3: "NIST digits -> NIST letters",
}
PAPER = {
    (1, "control"): (0.98, None, "plateaus near 0.98 F1; same as fine-tuned after epoch 2"),
    (1, "frozen"): (None, None, "worst of the three; still improving at epoch 20"),
    (1, "finetuned"): (0.98, None, "better than control in epochs 1-2, then the same (~0.98)"),
    (2, "control"): (0.82, 6, "peaks just above 0.82 F1 around epoch 6, then declines"),
    (2, "frozen"): (None, None, "worst of the three; digits far better than letters"),
    (2, "finetuned"): (0.82, 6, "like control; better and less variable at first; peak ~0.82"),
    (3, "control"): (None, None, "above fine-tuned"),
    (3, "frozen"): (0.58, None, "worst of the three; peak F1 error about 42%"),
    (3, "finetuned"): (None, None, "slightly below control"),
}


def paper_frame() -> pd.DataFrame:
    """The paper's values per (paper_set, mode): peak_f1, peak_epoch, finding."""
    rows = [
        {"paper_set": s, "mode": m, "peak_f1": f1, "peak_epoch": ep, "finding": text}
        for (s, m), (f1, ep, text) in PAPER.items()
    ]
    frame = pd.DataFrame(rows)
    return frame.astype({"peak_f1": float, "peak_epoch": float})


def runs_frame(evals: Sequence[Mapping], sets: Mapping[str, Mapping]) -> pd.DataFrame:
    """One row per run: set, paper_set (from ``sets``), mode, seed and the summary
    metrics of its history (:func:`run_summary`)."""
    rows = []
    for e in evals:
        if e["set"] not in sets:
            raise ValueError(f"run of set {e['set']!r}, which the config's sets do not list")
        paper_set = sets[e["set"]].get("paper_set")
        rows.append(
            {"set": e["set"], "paper_set": paper_set, "mode": e["mode"], "seed": e["seed"]}
            | run_summary(pd.DataFrame(e["metrics"]["history"]))
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise ValueError("no transfer runs to report")
    return frame


F1_METRICS = ("f1_epoch1", "f1_epoch2", "peak_f1", "final_f1")
EPOCH_METRICS = ("peak_epoch", "epochs_run")


def _ordered(runs: pd.DataFrame, set_order: Sequence[str]) -> pd.DataFrame:
    """Runs sorted by the config's set order, then control, frozen, fine-tuned, seed."""
    key_set = {s: i for i, s in enumerate(set_order)}
    key_mode = {m: i for i, m in enumerate(MODES)}
    order = runs.assign(_s=runs["set"].map(key_set), _m=runs["mode"].map(key_mode))
    return order.sort_values(["_s", "_m", "seed"]).drop(columns=["_s", "_m"])


def set_titles(sets: Mapping[str, Mapping]) -> dict[str, str]:
    """Set name -> figure/table title: its ``title``, else "<paper set>: <name>"."""
    return {
        name: spec.get("title")
        or (f"set {spec['paper_set']}: {name}" if spec.get("paper_set") else name)
        for name, spec in sets.items()
    }


def transfer_table(
    evals: Sequence[Mapping], sets: Mapping[str, Mapping]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(display table, aggregated numbers) of reports/transfer.csv.

    One row per set x mode: mean ± sd over runs of the summary metrics, the paper's
    peak F1 / peak epoch (and our difference) where it gives one, its finding for
    that row, what we checked and whether our runs agree.
    """
    from hwbench import report

    titles = set_titles(sets)
    runs = _ordered(runs_frame(evals, sets), list(sets))
    keys = ["set", "paper_set", "mode"]
    agg = report.aggregate(runs, keys, SUMMARY_METRICS)
    paper = paper_frame()
    # The paper's values per set x mode: several sets may stand for the same paper set
    # (e.g. two sources for set 1), so join on the set, not on the paper set.
    per_set = runs[["set", "paper_set"]].drop_duplicates().merge(paper, on="paper_set")
    for metric in ("peak_f1", "peak_epoch"):
        agg = report.join_paper(
            agg, per_set.rename(columns={metric: "paper"}), ["set", "mode"], metric
        )
    shown = report.format_table(agg, keys, F1_METRICS, digits=3)
    epochs = report.format_table(agg, keys, EPOCH_METRICS, digits=1)
    table = shown[keys].copy()
    table.insert(1, "title", [titles[s] for s in agg["set"]])
    table.insert(len(table.columns), "n", agg["peak_f1_n"].astype(int).to_numpy())
    for col in ("f1_epoch1", "f1_epoch2", "peak_f1", "peak_f1_paper", "peak_f1_diff"):
        table[col] = shown[col]
    for col in ("peak_epoch", "peak_epoch_paper", "peak_epoch_diff", "epochs_run"):
        table[col] = epochs[col]
    table["final_f1"] = shown["final_f1"]
    findings = paper.set_index(["paper_set", "mode"])["finding"]
    table["paper_finding"] = [
        findings.get((p, m), "") if not pd.isna(p) else ""
        for p, m in zip(agg["paper_set"], agg["mode"], strict=True)
    ]
    # what each row checks and its verdict: the scorecard's own findings
    # (hwbench.findings), so transfer.csv and findings.csv cannot disagree
    from hwbench.studies.transfer.findings import row_findings

    checks = row_findings(evals, sets)
    found = [checks.get((s, m)) for s, m in zip(agg["set"], agg["mode"], strict=True)]
    table["checked"] = [f.claim if f else "" for f in found]
    table["agrees"] = [f.verdict if f else "" for f in found]
    table["mode"] = table["mode"].map(MODE_TITLES)
    table["paper_set"] = [("" if pd.isna(p) else int(p)) for p in agg["paper_set"]]
    return table, agg


# --- figures -------------------------------------------------------------------------


MODE_COLORS = {"control": "tab:blue", "frozen": "tab:red", "finetuned": "tab:green"}


def curves(evals: Sequence[Mapping], metric: str = "test_f1") -> pd.DataFrame:
    """Long table set, mode, seed, epoch, value of one per-epoch metric."""
    rows = []
    for e in evals:
        for h in e["metrics"]["history"]:
            rows.append(
                {
                    "set": e["set"],
                    "mode": e["mode"],
                    "seed": e["seed"],
                    "epoch": h["epoch"],
                    "value": h[metric],
                }
            )
    return pd.DataFrame(rows)


def _band(ax, frame: pd.DataFrame, label: str, color: str) -> None:
    """Mean per epoch with a mean ± sd band over the runs that reached the epoch."""
    stats = frame.groupby("epoch")["value"].agg(["mean", "std", "count"]).reset_index()
    sd = stats["std"].fillna(0.0)
    ax.plot(stats["epoch"], stats["mean"], marker="o", ms=3, color=color, label=label)
    ax.fill_between(stats["epoch"], stats["mean"] - sd, stats["mean"] + sd, color=color, alpha=0.2)


def plot_f1_curves(evals: Sequence[Mapping], titles: Mapping[str, str], path) -> None:
    """Test macro-F1 per epoch, a band over runs, one panel per set (Figs. 2, 3, 5)."""
    from hwbench.report import new_figure, save_figure

    data = curves(evals)
    sets = list(titles)
    fig, axes = new_figure(1, len(sets), figsize=(4.2 * len(sets), 3.6), squeeze=False)
    for ax, s in zip(axes[0], sets, strict=True):
        for mode in MODES:
            part = data[(data["set"] == s) & (data["mode"] == mode)]
            if len(part):
                _band(ax, part, MODE_TITLES[mode], MODE_COLORS[mode])
        ax.set_title(titles[s], fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test macro-F1 (mean ± sd over runs)")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    save_figure(fig, path)


def plot_frozen(evals: Sequence[Mapping], titles: Mapping[str, str], path) -> None:
    """Frozen-weight transfer across training, one line per set (Fig. 6)."""
    from hwbench.report import new_figure, save_figure

    data = curves([e for e in evals if e["mode"] == "frozen"])
    fig, ax = new_figure(figsize=(5.5, 3.8))
    colors = ["tab:purple", "tab:orange", "tab:brown", "tab:gray", "tab:olive"]
    for i, (s, title) in enumerate(titles.items()):
        part = data[data["set"] == s] if len(data) else data
        if len(part):
            _band(ax, part, title, colors[i % len(colors)])
    ax.set_xlabel("epoch")
    ax.set_ylabel("test macro-F1, frozen (mean ± sd)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)


def per_class_after(evals: Sequence[Mapping], set_name: str) -> pd.DataFrame:
    """Mean per-class test accuracy after the first and the last epoch of each run.

    Rows: classes in label order; columns (mode, "first" | "last").
    """
    out = {}
    for mode in MODES:
        runs = [e for e in evals if e["set"] == set_name and e["mode"] == mode]
        if not runs:
            continue
        classes = runs[0]["metrics"]["classes"]
        for which, pick in (("first", 0), ("last", -1)):
            values = np.array(
                [
                    [r["metrics"]["history"][pick][f"test_{CLASS_ACC}{c}"] for c in classes]
                    for r in runs
                ],
                dtype=float,
            )
            with np.errstate(all="ignore"):
                out[(mode, which)] = pd.Series(np.nanmean(values, axis=0), index=classes)
    return pd.DataFrame(out)


def per_class_set(sets: Mapping[str, Mapping], chosen: str | None = None) -> str:
    """The set of the per-class figure: ``chosen``, else the paper's set 2, else the first."""
    if chosen is not None:
        if chosen not in sets:
            raise ValueError(f"per_class_set {chosen!r} is not a set; sets: {list(sets)}")
        return chosen
    return next((n for n, spec in sets.items() if spec.get("paper_set") == 2), next(iter(sets)))


def plot_per_class(evals: Sequence[Mapping], set_name: str, title: str, path) -> None:
    """Per-class accuracy after the first and the last epoch, a panel per mode (Fig. 4)."""
    from hwbench.report import new_figure, save_figure

    table = per_class_after(evals, set_name)
    modes = [m for m in MODES if (m, "first") in table.columns]
    if not modes:
        raise ValueError(f"no runs of set {set_name!r} to plot per-class accuracy for")
    n = len(table)
    fig, axes = new_figure(
        len(modes),
        1,
        figsize=(max(6.0, 0.17 * n + 1.5), 2.1 * len(modes) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    x = np.arange(n)
    for ax, mode in zip(axes[:, 0], modes, strict=True):
        ax.bar(x - 0.2, table[(mode, "first")], width=0.4, color="tab:gray", label="first epoch")
        ax.bar(x + 0.2, table[(mode, "last")], width=0.4, color=MODE_COLORS[mode], label="last")
        ax.set_xticks(x, table.index, fontsize=7)
        ax.set_xlim(-0.7, n - 0.3)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(f"{MODE_TITLES[mode]}\naccuracy", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(
        f"{title}: per-class test accuracy after the first and the last epoch (mean over runs)",
        fontsize=9,
    )
    save_figure(fig, path)


# --- the report job ----------------------------------------------------------------------


def read_evals(paths: Sequence[str | os.PathLike]) -> list[dict]:
    """The eval.json records of the runs, in the given order."""
    return [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]


def write_report(
    eval_paths: Sequence[str | os.PathLike],
    sets: Mapping[str, Mapping],
    per_class: str | None,
    *,
    csv: str | os.PathLike,
    f1: str | os.PathLike,
    frozen: str | os.PathLike,
    per_class_png: str | os.PathLike,
    config: Mapping,
    dataset_files: Sequence[str | os.PathLike],
    benchmark_files: Sequence[str | os.PathLike],
    repo: str | os.PathLike,
    data_note: str | None = None,
) -> pd.DataFrame:
    """reports/transfer.csv (+ .md, .html, provenance .json) and the three figures;
    ``per_class``: the set of the per-class figure (None: :func:`per_class_set`'s choice).

    Benchmark files that do not exist (a job run before they were declared) are
    left out of the provenance. Returns the table.
    """
    from hwbench import report

    evals = read_evals(eval_paths)
    table, _ = transfer_table(evals, sets)
    prov = report.provenance(
        config=config,
        dataset_files=dataset_files,
        benchmark_files=[p for p in benchmark_files if os.path.exists(p)],
        job_devices={str(p): e["fit"]["device"] for p, e in zip(eval_paths, evals, strict=True)},
        repo=repo,
        data_note=data_note,
    )
    report.write_report(table, csv, prov)
    titles = set_titles(sets)
    plot_f1_curves(evals, titles, f1)
    plot_frozen(evals, titles, frozen)
    chosen = per_class_set(sets, per_class)
    plot_per_class(evals, chosen, titles[chosen], per_class_png)
    return table
