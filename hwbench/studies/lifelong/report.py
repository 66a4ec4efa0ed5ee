"""The lifelong study's report: the paper's Table 1 beside ours, and the figures.

Reads the jobs' eval.json (:func:`hwbench.engine.write_result`'s shape), R.csv
and curves.csv; imports no torch and no job code, so a figure edit reruns only
the report.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hwbench.studies.lifelong.spec import CURRICULUM, METRICS, MULTITASK, MULTITASK_ORDER

METHOD_LABELS = {
    "ewc": "ResNet with EWC",
    "basic": "Basic ResNet",
    MULTITASK: "Multi-task Learning",
}

# Table 1 of the paper: mean and sd over 5 repeats (multi-task: ACC only).
PAPER_TABLE1 = pd.DataFrame(
    [
        ("ewc", "Wang_Shen_Peng_Cheng", 0.9598, 0.0046, 0.0594, 0.0122, 0.7536, 0.0115),
        ("ewc", "Shen_Wang_Peng_Cheng", 0.9439, 0.0098, -0.0122, 0.0325, 0.6755, 0.0120),
        ("ewc", "Shen_Peng_Wang_Cheng", 0.9549, 0.0132, -0.0156, 0.0404, 0.5671, 0.0278),
        ("ewc", "Shen_Peng_Cheng_Wang", 0.9694, 0.0181, 0.0055, 0.0148, 0.5505, 0.0389),
        ("basic", "Wang_Shen_Peng_Cheng", 0.9565, 0.0215, 0.0623, 0.0145, 0.7649, 0.0103),
        ("basic", "Shen_Wang_Peng_Cheng", 0.9389, 0.0076, 0.0232, 0.0381, 0.6833, 0.0097),
        ("basic", "Shen_Peng_Wang_Cheng", 0.9509, 0.0105, -0.0091, 0.0456, 0.5722, 0.0088),
        ("basic", "Shen_Peng_Cheng_Wang", 0.9613, 0.0167, 0.0041, 0.0174, 0.5324, 0.0347),
        (MULTITASK, MULTITASK_ORDER, 0.9958, 0.0042, np.nan, np.nan, np.nan, np.nan),
    ],
    columns=["method", "order", "acc", "acc_sd", "bwt", "bwt_sd", "fwt", "fwt_sd"],
)


def collect_runs(eval_files: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per run: method, order (config name), sequence, seed, acc, bwt, fwt."""
    rows = []
    for path in eval_files:
        r = json.loads(Path(path).read_text(encoding="utf-8"))
        seq = MULTITASK_ORDER if r["method"] == MULTITASK else "_".join(r["sequence"])
        rows.append(
            {
                "method": r["method"],
                "order": r["order"],
                "sequence": seq,
                "seed": r["seed"],
                **{m: r["metrics"].get(m, np.nan) for m in METRICS},
            }
        )
    return pd.DataFrame(rows)


def lifelong_table(runs: pd.DataFrame, model: str, digits: int = 4) -> pd.DataFrame:
    """Table 1: method x task order -> ACC, BWT, FWT (mean ± sd), the paper's beside.

    The paper's values are joined on the writer sequence, so the curriculum row
    meets the paper row of the order it computed (when that is one of the four).
    ``_diff`` is our mean minus the paper's mean.
    """
    from hwbench import report

    agg = report.aggregate(runs, ["method", "order", "sequence"], list(METRICS))
    paper = PAPER_TABLE1.rename(columns={"order": "sequence"})
    for m in METRICS:
        agg = report.join_paper(agg, paper.rename(columns={m: "paper"}), ["method", "sequence"], m)
    rank = {name: i for i, name in enumerate(("ewc", "basic", MULTITASK))}
    agg = agg.sort_values("method", key=lambda c: c.map(rank), kind="stable")
    table = report.format_table(agg, ["method", "order", "sequence"], list(METRICS), digits)
    paper_keyed = paper.set_index(["method", "sequence"])
    for m in METRICS:
        # The paper's own "mean ± sd", not only its mean.
        table[f"{m}_paper"] = [
            report.format_mean_sd(*paper_keyed.loc[key, [m, f"{m}_sd"]], digits)
            if key in paper_keyed.index
            else ""
            for key in zip(agg["method"], agg["sequence"], strict=True)
        ]
    table.insert(1, "model", model)
    table["n"] = agg["acc_n"].to_numpy()
    table = table.rename(columns={m: m.upper() for m in METRICS})
    table.columns = [
        c.replace("acc_", "ACC_").replace("bwt_", "BWT_").replace("fwt_", "FWT_")
        for c in table.columns
    ]
    return table.reset_index(drop=True)


def _panel_grid(keys: Sequence[tuple[str, str]]):
    methods = list(dict.fromkeys(m for m, _ in keys))
    orders = list(dict.fromkeys(o for m, o in keys if m != MULTITASK)) or [MULTITASK_ORDER]
    return methods, orders


def _panel_figure(keys, panel_size: tuple[float, float], **kwargs):
    """A (method x order) grid of hidden axes; each plot shows the panels it fills."""
    from hwbench import report

    methods, orders = _panel_grid(keys)
    width, height = panel_size
    fig, axes = report.new_figure(
        len(methods),
        len(orders),
        figsize=(width * len(orders), height * len(methods)),
        squeeze=False,
        layout="constrained",
        **kwargs,
    )
    for ax in axes.flat:
        ax.set_visible(False)
    return methods, orders, fig, axes


def plot_curves(curves: Mapping[tuple[str, str], Sequence[str | os.PathLike]], path) -> None:
    """Accuracy on each task's test set along the training sequence (Figs. 1 and 5).

    ``curves`` maps ``(method, order)`` to the curves.csv of its seeds; the mean
    over seeds is drawn, a dotted line marks each task switch.
    """
    from hwbench import report

    methods, orders, fig, axes = _panel_figure(list(curves), (3.6, 2.8), sharey=True)
    for (method, order), files in curves.items():
        r = methods.index(method)
        c = 0 if method == MULTITASK else orders.index(order)
        ax = axes[r][c]
        ax.set_visible(True)
        frames = [pd.read_csv(f) for f in files]
        mean = pd.concat(frames).groupby("step", sort=True).mean(numeric_only=True)
        first = frames[0]
        for col in [c for c in first.columns if c.startswith("test_acc_") and c != "test_acc_mean"]:
            ax.plot(mean.index, mean[col], label=col.removeprefix("test_acc_"), lw=1.2)
        switches = first.index[first["task"].ne(first["task"].shift())][1:]
        for s in first.loc[switches, "step"]:
            ax.axvline(s - 0.5, color="grey", ls=":", lw=0.8)
        title = f"{method}: {order}" if method != MULTITASK else "multi-task (all writers)"
        if order == CURRICULUM:
            title += "\n" + "_".join(dict.fromkeys(first["task"]))
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("epoch along the sequence", fontsize=7)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("test accuracy per task", fontsize=7)
    axes[0][0].legend(fontsize=6, loc="lower right")
    fig.suptitle(f"accuracy on each task's test set (mean of {len(files)} seeds)", fontsize=9)
    report.save_figure(fig, path)


def mean_matrix(files: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """Mean R over seeds (rows: before training, then after each task)."""
    frames = [pd.read_csv(f).set_index("after") for f in files]
    return sum(frames) / len(frames)


def plot_matrices(matrices: Mapping[tuple[str, str], Sequence[str | os.PathLike]], path) -> None:
    """R as a heatmap per (method, order): rows after training task i, columns test sets."""
    from hwbench import report

    methods, orders, fig, axes = _panel_figure(list(matrices), (3.2, 3.2))
    image = None
    for (method, order), files in matrices.items():
        ax = axes[methods.index(method)][orders.index(order)]
        ax.set_visible(True)
        R = mean_matrix(files)
        image = ax.imshow(R.to_numpy(), vmin=0, vmax=1, cmap="viridis")
        for (i, j), v in np.ndenumerate(R.to_numpy()):
            ax.text(
                j,
                i,
                f"{v:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if v < 0.6 else "black",
            )
        ax.set_xticks(range(R.shape[1]), R.columns, fontsize=6, rotation=45)
        ax.set_yticks(range(R.shape[0]), ["init", *R.index[1:]], fontsize=6)
        ax.set_title(f"{method}: {order}", fontsize=8)
        ax.set_xlabel("test set of task", fontsize=7)
    axes[0][0].set_ylabel("after training on", fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="accuracy")
    fig.suptitle("accuracy matrix R (mean over seeds)", fontsize=9)
    report.save_figure(fig, path)


def run_files(eval_files: Sequence[str | os.PathLike]):
    """Each run's curves.csv and R.csv grouped by (method, order name), for the figures."""
    curves, matrices = {}, {}
    for path in eval_files:
        run = json.loads(Path(path).read_text(encoding="utf-8"))
        key = (run["method"], run["order"])
        curves.setdefault(key, []).append(Path(path).with_name("curves.csv"))
        if run["method"] != MULTITASK:
            matrices.setdefault(key, []).append(Path(path).with_name("R.csv"))
    return curves, matrices


def job_devices(eval_files: Sequence[str | os.PathLike]) -> dict[str, str]:
    """The device each job trained on (eval.json's fit record), for provenance."""
    return {
        str(p): json.loads(Path(p).read_text(encoding="utf-8"))["fit"]["device"] for p in eval_files
    }


def build_report(
    eval_files,
    model: str,
    config: Mapping,
    dataset_files,
    benchmark_files,
    repo,
    out,
    data_note: str | None = None,
) -> pd.DataFrame:
    """Table 1 (csv/md/json/html via hwbench.report) and both figures; returns the table.
    ``data_note``: see :func:`hwbench.report.provenance`."""
    from hwbench import report

    table = lifelong_table(collect_runs(eval_files), model=model)
    prov = report.provenance(
        config=config,
        dataset_files=dataset_files,
        benchmark_files=[p for p in benchmark_files if Path(p).exists()],
        job_devices=job_devices(eval_files),
        repo=repo,
        data_note=data_note,
    )
    report.write_report(table, out["csv"], prov)
    curves, matrices = run_files(eval_files)
    plot_curves(curves, out["curves"])
    plot_matrices(matrices, out["matrices"])
    return table
