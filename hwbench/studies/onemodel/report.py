"""The OneModel study's report: the paper's Table 3 beside ours, label collisions per
discriminator, and the loss curves (like the paper's Fig. 4).

Reads the runs' eval.json records (:func:`hwbench.engine.write_result`'s shape);
never imports the job, so a report edit reruns only the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd

from hwbench.report import aggregate, format_mean_sd, new_figure
from hwbench.studies.onemodel.labels import build_vocabulary
from hwbench.studies.onemodel.spec import JOINT, SINGLE, Task, parse_tasks

PAPER_FIG5_PRIME = 1000003


# --- collisions table -----------------------------------------------------------------


def collision_table(
    tasks: Sequence[Task],
    task_words: Mapping[str, Sequence[str]],
    levels: Sequence[int],
    prime: int | None,
    discriminators: Sequence[str] = ("none", "concat", "djb2"),
) -> pd.DataFrame:
    """Cross-task collisions of label strings and PHOCs under each discriminator.

    With the default prime (None: the first prime above the number of classes) a
    djb2 row with the paper's Fig. 5 modulus 1000003 is added: a small modulus
    leaves hash codes that coincide for the same word of two tasks.
    """
    rows = []
    unhashed = [t.name for t in tasks if not t.hash]
    variants = [(method, prime) for method in discriminators]
    if "djb2" in discriminators and prime is None:
        variants.append(("djb2", PAPER_FIG5_PRIME))  # the paper's Fig. 5 modulus, for contrast
    for method, modulus in variants:
        vocab = build_vocabulary(task_words, levels, method, modulus, unhashed)
        counts = vocab.collisions()
        rows.append(
            {
                "discriminator": method,
                "prime": vocab.prime if vocab.prime is not None else "",
                "classes": len(vocab),
                "alphabet_size": len(vocab.alphabet),
                "phoc_size": vocab.phoc_size,
                "colliding_strings": counts["strings"],
                "colliding_phocs": counts["phocs"],
            }
        )
    return pd.DataFrame(rows)


# --- the paper's Table 3 --------------------------------------------------------------

# Accuracy [%], or QbS/QbE mAP [%] for word spotting: (joint 6-task, single task,
# single-task state of the art as the paper cites it).
PAPER_TABLE3: dict[str, dict[str, tuple[float, float, str]]] = {
    "IFN": {"qbs_map": (98.1, 99.0, "99.0 [2]"), "qbe_map": (98.5, 99.0, "99.0 [2]")},
    "IAM": {"qbs_map": (88.7, 88.5, "94.6 [34]"), "qbe_map": (89.9, 89.4, "88.3 [34]")},
    "CIFAR-100": {"accuracy": (71.0, 74.4, "79.3* [8]")},
    "dDRIVER": {"accuracy": (93.2, 94.5, "88.6 [7]")},
    "SPCHD": {"accuracy": (96.6, 95.9, "95.8 [39]")},
    "IMDB": {"accuracy": (81.2, 85.3, "89.2 [12]")},
}
PAPER_TASK_NAMES = {
    "IFN": "IFN: Arabic Handwriting",
    "IAM": "IAM: English Handwriting",
    "CIFAR-100": "CIFAR-100: Image Classification",
    "dDRIVER": "dDRIVER: Distracted Driver",
    "SPCHD": "SPCHD: Speech Recognition",
    "IMDB": "IMDB: Text Sentiment Analysis",
}


# --- the report table -----------------------------------------------------------------


def run_label(mode: str, discriminator: str, main_discriminator: str) -> str:
    """Column name of a run kind: ``joint``, ``single`` or ``joint_<discriminator>``."""
    if mode == SINGLE:
        return SINGLE
    return JOINT if discriminator == main_discriminator else f"{JOINT}_{discriminator}"


def long_results(records: Sequence[Mapping], main_discriminator: str) -> pd.DataFrame:
    """One row per (run kind, task, metric, seed) from the runs' eval records."""
    rows = []
    for rec in records:
        label = run_label(rec["mode"], rec["discriminator"], main_discriminator)
        for key, value in rec["metrics"].items():
            task, metric = key.split("/", 1)
            rows.append(
                {"run": label, "task": task, "metric": metric, "seed": rec["seed"], "value": value}
            )
    return pd.DataFrame(rows, columns=["run", "task", "metric", "seed", "value"])


METRIC_ORDER = ("accuracy", "qbs_map", "qbe_map", "accuracy_all_tasks")


def report_table(
    agg: pd.DataFrame, tasks: Sequence[Task], run_columns: Sequence[str], digits: int = 1
) -> pd.DataFrame:
    """Table 3 layout: a row per (task, metric), our runs as "mean ± sd", the paper beside.

    ``agg`` is :func:`hwbench.report.aggregate` of :func:`long_results` over keys
    (run, task, metric). A task with a ``paper_row`` gets the paper's joint and
    single-task values and our mean minus them; rows of Table 3 that no configured
    task stands for follow with the paper's values only.
    """
    cells = {
        (r.run, r.task, r.metric): (r.value_mean, r.value_sd) for r in agg.itertuples(index=False)
    }
    rows = []
    for task in tasks:
        metrics = sorted(
            {m for (_, t, m) in cells if t == task.name}, key=lambda m: METRIC_ORDER.index(m)
        )
        paper = PAPER_TABLE3.get(task.paper_row or "", {})
        for metric in metrics:
            row = {
                "task": task.name,
                "paper_task": PAPER_TASK_NAMES.get(task.paper_row or "", ""),
                "metric": metric,
            }
            for col in run_columns:
                mean, sd = cells.get((col, task.name, metric), (math.nan, math.nan))
                row[col] = format_mean_sd(mean, sd, digits)
            joint_p, single_p, sota = paper.get(metric, (math.nan, math.nan, ""))
            row.update(_paper_cells(cells, task.name, metric, joint_p, single_p, sota, digits))
            rows.append(row)
    used = {t.paper_row for t in tasks}
    for key, metrics in PAPER_TABLE3.items():
        if key in used:
            continue
        for metric, (joint_p, single_p, sota) in metrics.items():
            row = {"task": "", "paper_task": PAPER_TASK_NAMES[key], "metric": metric}
            row.update({col: "" for col in run_columns})
            row.update(_paper_cells({}, "", metric, joint_p, single_p, sota, digits))
            rows.append(row)
    return pd.DataFrame(rows)


def _paper_cells(cells, task, metric, joint_p, single_p, sota, digits) -> dict:
    def num(v):
        return "" if math.isnan(v) else f"{v:.{digits}f}"

    def diff(col, paper_value):
        mean = cells.get((col, task, metric), (math.nan, math.nan))[0]
        d = mean - paper_value
        return "" if math.isnan(d) else f"{round(d, digits) + 0.0:+.{digits}f}"

    return {
        "paper_joint": num(joint_p),
        "paper_single": num(single_p),
        "diff_joint": diff("joint", joint_p),
        "diff_single": diff("single", single_p),
        "paper_sota": sota,
    }


# --- the whole report -----------------------------------------------------------------


def build_report(records: Sequence[Mapping], config: Mapping) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(table, collisions)`` of reports/onemodel.csv and reports/onemodel_collisions.csv.

    ``records`` are the runs' eval.json contents, ``config`` the onemodel section.
    The collision counts use the class words the joint runs recorded.
    """
    tasks = parse_tasks(config["tasks"])
    main = config["discriminator"]
    runs = long_results(records, main)
    if runs.empty:
        raise ValueError("no OneModel results to report: every eval.json had empty metrics")
    agg = aggregate(runs, ["run", "task", "metric"], ["value"])
    present = list(dict.fromkeys(runs["run"]))
    columns = [c for c in (JOINT, SINGLE) if c in present]
    columns += [c for c in present if c not in columns]
    table = report_table(agg, tasks, columns)
    joint = next((r for r in records if r["mode"] == JOINT), None)
    if joint is None:
        raise ValueError("no joint run among the OneModel results: configure a discriminator")
    words = joint["vocabulary"]["words"]
    collisions = collision_table(tasks, words, config["phoc_levels"], config["prime"])
    return table, collisions


def loss_figure(histories: Mapping[str, pd.DataFrame]):
    """Training loss per epoch of every run, and the validation loss when the runs
    held a validation set out (like the paper's Fig. 4).

    ``histories`` maps a run name (e.g. ``joint_djb2/seed0``) to its metrics.csv.
    """
    panels = [("train_loss", "training loss (BCE on PHOC)")]
    if any("val_loss" in frame for frame in histories.values()):
        panels.append(("val_loss", "validation loss"))
    fig, grid = new_figure(
        1, len(panels), figsize=(5.5 * len(panels), 4), sharey=True, squeeze=False
    )
    axes = list(grid[0])
    for name, frame in histories.items():
        style = "-" if name.startswith(JOINT) else "--"
        for ax, (column, _) in zip(axes, panels, strict=True):
            if column in frame:
                ax.plot(frame["epoch"], frame[column], style, label=name, linewidth=1)
    for ax, (_, title) in zip(axes, panels, strict=True):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
    axes[0].set_ylabel("loss")
    axes[-1].legend(fontsize=7, ncol=2)
    return fig


def job_devices(records: Sequence[Mapping]) -> dict[str, str]:
    """``<run>/seed<k>`` -> the device the job trained on (for the provenance sidecar)."""
    return {f"{r['run']}/seed{r['seed']}": r["fit"]["device"] for r in records}


# --- the paper's Fig. 5: hashing separates the tasks' words ---------------------------

FIG5_TASKS = ("speech", "vision", "language")  # red, green, blue in the paper
FIG5_COLOURS = {"speech": "tab:red", "vision": "tab:green", "language": "tab:blue"}
FIG5_WORDS = ("pay", "way", "say")


def fig5_points(levels: Sequence[int], stop_word_list: str = "nltk_english") -> pd.DataFrame:
    """2-D PCA of the label PHOCs of the paper's Fig. 5 vocabulary, plain and hashed.

    The vocabulary is the English stop words and "pay", "way", "say", each word in
    the three tasks speech, vision and language (Sec. 5). One row per (method, task,
    word): ``method`` none (the plain word: identical strings in the three tasks,
    which collide) or djb2 (word || DJB2(word || task) mod 1000003, the figure's
    modulus), the label string, and its PCA coordinates ``pc1``, ``pc2``, fitted
    per method. The paper embeds the strings with chars2vec; here the embedding is
    the PHOC the model's output layer learns.
    """
    from sklearn.decomposition import PCA

    from hwbench import stopwords

    words = sorted(stopwords.load(stop_word_list)) + list(FIG5_WORDS)
    rows = []
    for method in ("none", "djb2"):
        vocab = build_vocabulary({t: words for t in FIG5_TASKS}, levels, method, PAPER_FIG5_PRIME)
        coords = PCA(n_components=2, random_state=0).fit_transform(vocab.phocs)
        counts = pd.Series(vocab.strings).value_counts()
        for k, (x, y) in enumerate(coords):
            rows.append(
                {
                    "method": method,
                    "task": vocab.tasks_of[k],
                    "word": vocab.words[k],
                    "label": vocab.strings[k],
                    "collides": bool(counts[vocab.strings[k]] > 1),
                    "pc1": float(x),
                    "pc2": float(y),
                }
            )
    return pd.DataFrame(rows)


def fig5_figure(points: pd.DataFrame):
    """Two panels like the paper's Fig. 5: plain labels (colliding ones black) on top,
    DJB2-hashed labels coloured by task below; the words pay, way and say labelled."""
    fig, axes = new_figure(2, 1, figsize=(6, 9))
    titles = {
        "none": "no discriminator: the same word collides across tasks (black)",
        "djb2": "DJB2 mod 1000003: red speech, green vision, blue language",
    }
    for ax, method in zip(axes, ("none", "djb2"), strict=True):
        part = points[points["method"] == method]
        colours = [
            "black" if r.collides else FIG5_COLOURS[r.task] for r in part.itertuples(index=False)
        ]
        ax.scatter(part["pc1"], part["pc2"], c=colours, s=8, alpha=0.6)
        for r in part[part["word"].isin(FIG5_WORDS)].itertuples(index=False):
            ax.annotate(r.label, (r.pc1, r.pc2), fontsize=7)
        ax.set_title(titles[method], fontsize=9)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    return fig
