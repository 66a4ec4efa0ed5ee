"""The OneModel study (Al-Rawi & Valveny, ICCVW 2019): one network, one PHOC output
layer and one BCE-with-logits loss for every task, versus one model per task.

Pieces particular to the paper live here and in its two helper modules
(:mod:`~hwbench.studies.onemodel_labels` for words, the sensory discriminator and
the vocabulary; :mod:`~hwbench.studies.phoc` for the PHOC encoder; the sensory
layer in :mod:`~hwbench.studies.onemodel_sensory`). Training is the shared engine
(:func:`hwbench.engine.fit`), retrieval mAP is :mod:`hwbench.retrieval`.

A *task* is a config entry: the processed dataset it reads, optionally a charset
that selects its classes, how its class words are made, whether it is evaluated
by classification accuracy or by word-spotting mAP, and whether the discriminator
applies to it. A *run* is ``joint_<discriminator>`` (one model on every task) or
``single_<task>`` (one task, plain words: a single-task model has nothing to
discriminate).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from hwbench import charsets
from hwbench.data import load_split
from hwbench.engine import TrainConfig, fit, pick_device, predict, seed_everything
from hwbench.models import build_model
from hwbench.retrieval import qbe_map, qbs_map
from hwbench.store import write_json
from hwbench.studies.onemodel_labels import Vocabulary, build_vocabulary
from hwbench.studies.onemodel_sensory import images_to_canvas, standardize
from hwbench.studies.phoc import cosine_similarity

log = logging.getLogger("hwbench.onemodel")

KINDS = ("classify", "spot", "both")
PAPER_FIG5_PRIME = 1000003
WORD_SOURCES = ("charset", "label_name")
SPLITS = ("train", "val", "test")


# --- tasks and their data -----------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One task of the study, as configured (see docs/onemodel.md)."""

    name: str
    dataset: str
    charset: str | None = None  # select these classes (hwbench.charsets); None: all rows
    words: str = "charset"  # "charset": charsets.word(label_name); "label_name": as is
    kind: str = "classify"  # "classify" -> accuracy; "spot" -> QbE / QbS mAP; "both"
    hash: bool = True  # the discriminator applies (the paper leaves handwriting plain)
    scale_height: int | None = None  # rows an image is scaled to on the canvas
    paper_row: str | None = None  # the row of the paper's Table 3 it stands for

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name}: kind={self.kind!r}; use one of {list(KINDS)}")
        if self.words not in WORD_SOURCES:
            raise ValueError(
                f"task {self.name}: words={self.words!r}; use one of {list(WORD_SOURCES)}"
            )
        if self.words == "charset" and self.charset is None:
            raise ValueError(f"task {self.name}: words 'charset' needs a charset")
        if self.charset is not None:
            charsets.check_charsets([self.charset])
        if self.paper_row is not None and self.paper_row not in PAPER_TABLE3:
            raise ValueError(
                f"task {self.name}: paper_row={self.paper_row!r}; use one of {list(PAPER_TABLE3)}"
            )

    @classmethod
    def from_config(cls, spec: Mapping) -> Task:
        return cls(**dict(spec))

    def class_words(self) -> list[str] | None:
        """The task's full class list when known up front (charset tasks), else None."""
        if self.charset is None:
            return None
        return [c.word for c in charsets.classes(self.charset)]


def parse_tasks(spec: Sequence[Mapping]) -> list[Task]:
    """Config ``tasks`` (a list of task mappings with a ``name``), in config order."""
    if not spec:
        raise ValueError("onemodel.tasks is empty: configure at least one task")
    tasks = [Task.from_config(values) for values in spec]
    names = [t.name for t in tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"onemodel.tasks: task names must be unique, repeated: {repeated}")
    return tasks


@dataclass
class TaskData:
    """One split of one task: uint8 images (N x H x W, or N x 3 x H x W) and class words."""

    images: np.ndarray
    words: list[str]


def load_task_split(task: Task, processed_dir, split_csv, split: str) -> TaskData:
    """The ``split`` rows of the task's dataset, restricted to its charset if any."""
    part = load_split(processed_dir, split_csv, split)
    if task.charset is not None:
        part = part.subset(charsets.charset_mask(part.meta, task.charset))
    if not len(part.images):
        raise ValueError(
            f"task {task.name}: no {split} rows of {processed_dir} "
            f"{'in charset ' + task.charset if task.charset else ''}; check the dataset and split"
        )
    names = part.meta["label_name"].astype(str).tolist()
    words = [charsets.word(n) for n in names] if task.words == "charset" else names
    images = np.asarray(part.images)
    if images.ndim == 4:  # colour N x H x W x 3 -> N x 3 x H x W for the canvas
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    return TaskData(images, words)


def task_vocabulary_words(task: Task, train: TaskData, test: TaskData) -> list[str]:
    """The task's class words: its charset's, or every word seen in train or test.

    Open-vocabulary tasks (word spotting) take the words of train and test: the
    test words must have a PHOC to be queried by string, and a classifier that
    decodes among them may well pick a word never trained on, as PHOC allows.
    """
    known = task.class_words()
    if known is not None:
        return known
    return list(dict.fromkeys(train.words + test.words))


# --- the loss and the evaluation ------------------------------------------------------


class PhocLoss(nn.Module):
    """BCE-with-logits between the output layer and the PHOC of each sample's class.

    ``batch["y"]`` holds vocabulary entry indices; the PHOC table is a buffer, so
    it moves to the training device with the loss.
    """

    def __init__(self, phocs: np.ndarray):
        super().__init__()
        self.register_buffer("phocs", torch.as_tensor(phocs, dtype=torch.float32))

    def forward(self, outputs, batch):
        logits = outputs["main"] if isinstance(outputs, Mapping) else outputs
        target = self.phocs[batch["y"]]
        return F.binary_cross_entropy_with_logits(logits.float(), target), {}


def decode_within_task(
    probs: torch.Tensor, sample_task: torch.Tensor, entry_task: torch.Tensor, phocs: torch.Tensor
) -> torch.Tensor:
    """Nearest class PHOC (cosine) among the entries of each sample's own task."""
    sim = cosine_similarity(probs, phocs)
    sim = sim.masked_fill(sample_task[:, None] != entry_task[None, :], -math.inf)
    return sim.argmax(dim=1)


class Evaluator:
    """Per-task metrics of PHOC predictions against a :class:`Vocabulary`."""

    def __init__(self, vocab: Vocabulary, tasks: Sequence[Task]):
        self.vocab = vocab
        self.tasks = list(tasks)
        self.task_ids = {name: k for k, name in enumerate(vocab.tasks)}
        self.entry_task = torch.as_tensor([self.task_ids[t] for t in vocab.tasks_of])
        self.phocs = torch.as_tensor(vocab.phocs)

    def sample_tasks(self, entries: torch.Tensor) -> torch.Tensor:
        return self.entry_task[entries.cpu()]

    def within_task_accuracy(self, logits: torch.Tensor, entries: torch.Tensor) -> float:
        """Share of samples decoded to their class among their task's classes."""
        entries = entries.cpu()
        pred = decode_within_task(
            torch.sigmoid(logits.float().cpu()),
            self.sample_tasks(entries),
            self.entry_task,
            self.phocs,
        )
        return float((pred == entries).float().mean())

    def metrics(self, logits: torch.Tensor, entries: torch.Tensor) -> dict[str, float]:
        """Test metrics per task (percent), keys ``<task>/<metric>``.

        classify: ``accuracy`` (nearest PHOC within the task's vocabulary);
        spot: ``qbe_map`` and ``qbs_map``. With several tasks also
        ``accuracy_all_tasks``: nearest PHOC among every task's classes, right only
        when task and word both are (colliding classes tie; the tie goes to the
        task listed first), which is what the sensory discriminator is for.
        """
        probs = torch.sigmoid(logits.float().cpu())
        entries = entries.cpu()
        sample_task = self.sample_tasks(entries)
        within = decode_within_task(probs, sample_task, self.entry_task, self.phocs)
        anywhere = cosine_similarity(probs, self.phocs).argmax(dim=1)
        out: dict[str, float] = {}
        for task in self.tasks:
            mask = sample_task == self.task_ids[task.name]
            if not mask.any():
                continue
            if task.kind in ("classify", "both"):
                hit = (within[mask] == entries[mask]).float().mean()
                out[f"{task.name}/accuracy"] = 100 * float(hit)
            if task.kind in ("spot", "both"):
                out.update(self._spotting(task, probs[mask], entries[mask]))
            if len(self.vocab.tasks) > 1:
                hit = (anywhere[mask] == entries[mask]).float().mean()
                out[f"{task.name}/accuracy_all_tasks"] = 100 * float(hit)
        return out

    def _spotting(self, task: Task, probs: torch.Tensor, entries: torch.Tensor) -> dict:
        strings = [self.vocab.strings[k] for k in entries.tolist()]
        qbe = qbe_map(probs, strings)
        queries = sorted(set(entries.tolist()))
        qbs = qbs_map(
            probs, strings, [self.vocab.strings[k] for k in queries], self.vocab.phocs[queries]
        )
        log.info("%s: %d QbE and %d QbS queries", task.name, qbe.n_queries, qbs.n_queries)
        return {f"{task.name}/qbe_map": 100 * qbe.map, f"{task.name}/qbs_map": 100 * qbs.map}


# --- one run --------------------------------------------------------------------------


@dataclass
class RunSpec:
    """Everything one training job needs (the adapter fills it from config)."""

    mode: str  # "joint" or "single"
    tasks: list[Task]
    discriminator: str  # "none" for single-task runs
    prime: int | None
    levels: list[int]
    canvas: list[int]  # channels, height, width
    model: dict  # build_model keywords: name (+ stem, pretrained)
    train: dict  # TrainConfig keys
    seed: int
    data: dict  # task name -> {"processed": dir, "split": csv}


def spec_from_dict(values: Mapping) -> RunSpec:
    """A :class:`RunSpec` from the rule's ``params.spec`` (tasks as a list of mappings)."""
    values = dict(values)
    values["tasks"] = parse_tasks(values["tasks"])
    values["levels"] = list(values["levels"])
    values["canvas"] = list(values["canvas"])
    return RunSpec(**values)


SPEC_FILE = "spec.json"


def prepare_run_dir(run_dir: str | Path, spec: Mapping) -> None:
    """Keep a checkpoint only to resume an unfinished run of this very spec.

    Snakemake reruns a job when its config, code or data changed; the engine
    resumes any checkpoint whose training keys match, so a finished run, or one
    with other labels, would come back unchanged. Clear those first.
    """
    from hwbench.engine import CHECKPOINT, RUN_INFO

    run_dir = Path(run_dir)
    spec_path = run_dir / SPEC_FILE
    same = spec_path.exists() and json.loads(spec_path.read_text()) == json.loads(
        json.dumps(spec, sort_keys=True, default=str)
    )
    finished = (run_dir / RUN_INFO).exists()
    if not same or finished:
        for name in (CHECKPOINT, RUN_INFO):
            (run_dir / name).unlink(missing_ok=True)
    write_json(spec_path, spec)


def build_run_vocabulary(spec: RunSpec, splits: Mapping[str, Mapping[str, TaskData]]) -> Vocabulary:
    words = {
        t.name: task_vocabulary_words(t, splits[t.name]["train"], splits[t.name]["test"])
        for t in spec.tasks
    }
    unhashed = [t.name for t in spec.tasks if not t.hash]
    return build_vocabulary(words, spec.levels, spec.discriminator, spec.prime, unhashed)


def assemble(
    spec: RunSpec, vocab: Vocabulary, splits: Mapping[str, Mapping[str, TaskData]], split: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Canvases (float, 0..1) and vocabulary entries of every task's ``split``, stacked."""
    xs, ys = [], []
    for task in spec.tasks:
        part = splits[task.name][split]
        xs.append(images_to_canvas(torch.from_numpy(part.images), spec.canvas, task.scale_height))
        ys.append(torch.from_numpy(vocab.index(task.name, part.words)))
    return torch.cat(xs).div_(255.0), torch.cat(ys)


def run(spec: RunSpec, run_dir: str | Path) -> dict:
    """Train one OneModel or single-task model and evaluate it on the test split.

    Returns the eval record: test metrics per task, the vocabulary's size, alphabet,
    prime and collision counts, and the engine's run summary.
    """
    splits = {
        t.name: {
            s: load_task_split(t, spec.data[t.name]["processed"], spec.data[t.name]["split"], s)
            for s in SPLITS
        }
        for t in spec.tasks
    }
    vocab = build_run_vocabulary(spec, splits)
    log.info(
        "%s: %d classes, alphabet %r (%d symbols), PHOC size %d, prime %s, collisions %s",
        spec.mode,
        len(vocab),
        vocab.alphabet,
        len(vocab.alphabet),
        vocab.phoc_size,
        vocab.prime,
        vocab.collisions(),
    )
    data = {s: assemble(spec, vocab, splits, s) for s in SPLITS}
    mean, std = float(data["train"][0].mean()), float(data["train"][0].std())
    sets = {s: {"x": standardize(x, mean, std), "y": y} for s, (x, y) in data.items()}

    seed_everything(spec.seed)
    channels, height, width = spec.canvas
    model = build_model(
        num_classes=vocab.phoc_size, in_channels=channels, input_size=(height, width), **spec.model
    )
    config = TrainConfig.from_dict(spec.train, seed=spec.seed)
    evaluator = Evaluator(vocab, spec.tasks)
    device = pick_device()
    result = fit(
        model,
        sets["train"],
        config,
        run_dir,
        loss_fn=PhocLoss(vocab.phocs),
        eval_sets={"val": sets["val"]},
        metrics_fn=lambda outputs, d: {"acc": evaluator.within_task_accuracy(outputs, d["y"])},
        device=device,
    )
    model.eval()
    logits = predict(model, sets["test"]["x"].to(device), config.eval_batch_size, config.amp)
    return {
        "mode": spec.mode,
        "discriminator": spec.discriminator,
        "seed": spec.seed,
        "tasks": [t.name for t in spec.tasks],
        "metrics": evaluator.metrics(logits, sets["test"]["y"]),
        "vocabulary": {
            "classes": len(vocab),
            "alphabet": vocab.alphabet,
            "phoc_size": vocab.phoc_size,
            "prime": vocab.prime,
            "collisions": vocab.collisions(),
            "words": {t: vocab.words_of(t) for t in vocab.tasks},
        },
        "n": {s: len(y) for s, (_, y) in data.items()},
        "epochs_run": len(result.history),
        "device": result.device,
        "wall_s": result.wall_s,
    }


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
    if mode == "single":
        return "single"
    return "joint" if discriminator == main_discriminator else f"joint_{discriminator}"


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
    from hwbench.report import format_mean_sd

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
    from hwbench.report import aggregate

    tasks = parse_tasks(config["tasks"])
    main = config["discriminator"]
    runs = long_results(records, main)
    if runs.empty:
        raise ValueError("no OneModel results to report: every eval.json had empty metrics")
    agg = aggregate(runs, ["run", "task", "metric"], ["value"])
    present = list(dict.fromkeys(runs["run"]))
    columns = [c for c in ("joint", "single") if c in present]
    columns += [c for c in present if c not in columns]
    table = report_table(agg, tasks, columns)
    joint = next((r for r in records if r["mode"] == "joint"), None)
    if joint is None:
        raise ValueError("no joint run among the OneModel results: configure a discriminator")
    words = joint["vocabulary"]["words"]
    collisions = collision_table(tasks, words, config["phoc_levels"], config["prime"])
    return table, collisions


def loss_figure(histories: Mapping[str, pd.DataFrame]):
    """Training and validation loss per epoch of every run (like the paper's Fig. 4).

    ``histories`` maps a run name (e.g. ``joint_djb2/seed0``) to its metrics.csv.
    """
    from hwbench.report import new_figure

    fig, axes = new_figure(1, 2, figsize=(11, 4), sharey=True)
    for name, frame in histories.items():
        style = "-" if name.startswith("joint") else "--"
        for ax, column in zip(axes, ("train_loss", "val_loss"), strict=True):
            if column in frame:
                ax.plot(frame["epoch"], frame[column], style, label=name, linewidth=1)
    for ax, title in zip(axes, ("training loss (BCE on PHOC)", "validation loss"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
    axes[0].set_ylabel("loss")
    axes[1].legend(fontsize=7, ncol=2)
    return fig
