"""One OneModel training job: a joint model on every task or a single-task model.

Data come through :func:`hwbench.data.select`, the label strings and PHOCs from
:mod:`.labels` and :mod:`.phoc`, the canvas from :mod:`.sensory`; training is the
shared engine (:func:`hwbench.engine.fit`), retrieval mAP is :mod:`hwbench.retrieval`,
and the result goes to eval.json through :func:`hwbench.engine.write_result`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwbench import charsets, stopwords
from hwbench.data import charset_classes, select
from hwbench.engine import TrainConfig, fit, pick_device, predict, seed_everything, write_result
from hwbench.models import build_model
from hwbench.retrieval import qbe_map, qbs_map
from hwbench.rows import StoredRows, batch_source, origin_of, rows_or_resident, with_origin
from hwbench.store import IMAGES_FILE
from hwbench.studies.onemodel.labels import Vocabulary, build_vocabulary
from hwbench.studies.onemodel.phoc import cosine_similarity
from hwbench.studies.onemodel.sensory import CanvasTransform, ImageBlock
from hwbench.studies.onemodel.spec import Task, parse_tasks

log = logging.getLogger("hwbench.onemodel")


# --- tasks and their data -----------------------------------------------------------


@dataclass
class TaskData:
    """One split of one task: uint8 images (N x H x W, or N x 3 x H x W) and class words."""

    images: torch.Tensor | np.ndarray | StoredRows  # in memory, or read per batch
    words: list[str]


def set_splits(validation: bool) -> dict[str, tuple[str, ...]]:
    """The split-file names that make each set of a run.

    The paper trains on the full training sets (its Table 2), so by default the
    split's val rows are trained on; with ``validation`` they are held out and only
    evaluated each epoch (metrics.csv, the loss figure), never trained on.
    """
    if validation:
        return {"train": ("train",), "val": ("val",), "test": ("test",)}
    return {"train": ("train", "val"), "test": ("test",)}


def load_task_split(
    task: Task, processed_dir, split_csv, splits: Sequence[str], resident_mb: float | None = None
) -> TaskData:
    """The rows of the task's dataset in ``splits`` (split file order), of its charset if any.

    Images larger than ``resident_mb`` MiB stay on disk, read per batch
    (:class:`~hwbench.rows.StoredRows`); colour images (N x H x W x 3 on disk, the
    canvas wants N x 3 x H x W) are always read into memory.
    """
    classes = charset_classes([task.charset]) if task.charset is not None else None
    where = f"task {task.name} ({processed_dir}, {split_csv})"
    part = select(
        processed_dir, split_csv, splits, classes=classes, order="split", where=where,
        read_images=False,
    )  # fmt: skip
    names = part.meta["label_name"].astype(str).tolist()
    words = [charsets.word(n) for n in names] if task.words == "charset" else names
    path = Path(processed_dir) / IMAGES_FILE
    images = rows_or_resident(path, part.index, resident_mb)
    if images.ndim == 4:  # colour N x H x W x 3 -> N x 3 x H x W for the canvas
        origin = origin_of(images)
        chw = np.ascontiguousarray(np.asarray(images[:]).transpose(0, 3, 1, 2))
        images = with_origin(torch.from_numpy(chw), origin and f"{origin} as NCHW")
    return TaskData(images, words)


def task_vocabulary_words(task: Task, parts: Sequence[TaskData]) -> list[str]:
    """The task's class words: its charset's, or every word of its sets (in order).

    Open-vocabulary tasks (word spotting) take the words of every set: the test
    words must have a PHOC to be queried by string, and a classifier that decodes
    among them may well pick a word never trained on, as PHOC allows.
    """
    known = task.class_words()
    if known is not None:
        return known
    return list(dict.fromkeys(w for part in parts for w in part.words))


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
        stop = stopwords.load(task.query_stop_words) if task.query_stop_words else None
        may_query = [stopwords.is_query(self.vocab.words[k], stop) for k in entries.tolist()]
        qbe = qbe_map(probs, strings, may_query)
        queries = [
            k
            for k in sorted(set(entries.tolist()))
            if stopwords.is_query(self.vocab.words[k], stop)
        ]
        qbs = qbs_map(
            probs, strings, [self.vocab.strings[k] for k in queries], self.vocab.phocs[queries]
        )
        log.info("%s: %d QbE and %d QbS queries", task.name, qbe.n_queries, qbs.n_queries)
        return {f"{task.name}/qbe_map": 100 * qbe.map, f"{task.name}/qbs_map": 100 * qbs.map}


# --- one run --------------------------------------------------------------------------


@dataclass
class RunSpec:
    """Everything one training job needs (plan.train_params builds it from config)."""

    run: str  # joint_<discriminator> or single_<task>
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
    validation: bool = False  # hold the split's val rows out (else train on them)
    resident_mb: float | None = 2048.0  # larger task sets are read per batch (hwbench.rows)


def spec_from_dict(values: Mapping) -> RunSpec:
    """A :class:`RunSpec` from the rule's ``params.spec`` (tasks as a list of mappings)."""
    values = dict(values)
    values["tasks"] = parse_tasks(values["tasks"])
    values["levels"] = list(values["levels"])
    values["canvas"] = list(values["canvas"])
    return RunSpec(**values)


def build_run_vocabulary(spec: RunSpec, splits: Mapping[str, Mapping[str, TaskData]]) -> Vocabulary:
    words = {t.name: task_vocabulary_words(t, list(splits[t.name].values())) for t in spec.tasks}
    unhashed = [t.name for t in spec.tasks if not t.hash]
    return build_vocabulary(words, spec.levels, spec.discriminator, spec.prime, unhashed)


def assemble(
    spec: RunSpec, vocab: Vocabulary, splits: Mapping[str, Mapping[str, TaskData]]
) -> tuple[CanvasTransform, dict[str, dict[str, torch.Tensor]]]:
    """The canvas transform over every task's uint8 images, and each set's data.

    A set's ``x`` holds row ids into the transform's image blocks (task after task,
    as the tasks are listed), ``y`` the vocabulary entries. The canvases are built
    one batch at a time (:class:`~.sensory.CanvasTransform`), never all at once.
    """
    blocks, parts = [], {}
    for s in splits[spec.tasks[0].name]:  # the sets, train first
        for task in spec.tasks:
            part = splits[task.name][s]
            images = batch_source(part.images)
            blocks.append(ImageBlock(f"{task.name}/{s}", images, task.scale_height))
            entries = torch.from_numpy(vocab.index(task.name, part.words))
            parts.setdefault(s, []).append((len(blocks) - 1, entries))
    transform = CanvasTransform(spec.canvas, blocks)
    sets = {
        s: {
            "x": torch.cat([transform.ids(k) for k, _ in chunks]),
            "y": torch.cat([y for _, y in chunks]),
        }
        for s, chunks in parts.items()
    }
    return transform, sets


def vocabulary_record(vocab: Vocabulary) -> dict:
    """What eval.json says about the run's classes (the report's collision table reads it)."""
    return {
        "classes": len(vocab),
        "alphabet": vocab.alphabet,
        "phoc_size": vocab.phoc_size,
        "prime": vocab.prime,
        "collisions": vocab.collisions(),
        "words": {t: vocab.words_of(t) for t in vocab.tasks},
    }


def run(params: Mapping, eval_path: str | os.PathLike) -> dict:
    """Train one OneModel or single-task model, test it, write ``eval_path`` (eval.json).

    ``params``: the rule's ``params.spec`` (plan.train_params). The run folder is
    eval.json's; the engine's fingerprint includes ``params``, so a checkpoint of
    other settings (labels, prime, canvas...) is not resumed. The record (returned
    too) holds the run's identity (run, mode, discriminator, seed, tasks), its
    vocabulary (size, alphabet, prime, collisions, words) and sample counts, the
    test metrics per task and the engine's fit summary.
    """
    spec = spec_from_dict(params)
    run_dir = Path(eval_path).parent
    sets_of = set_splits(spec.validation)
    log.info("sets from the split files' rows: %s", sets_of)
    splits = {
        t.name: {
            s: load_task_split(
                t,
                spec.data[t.name]["processed"],
                spec.data[t.name]["split"],
                rows,
                spec.resident_mb,
            )  # fmt: skip
            for s, rows in sets_of.items()
        }
        for t in spec.tasks
    }
    vocab = build_run_vocabulary(spec, splits)
    log.info(
        "%s: %d classes, alphabet %r (%d symbols), PHOC size %d, prime %s, collisions %s",
        spec.run,
        len(vocab),
        vocab.alphabet,
        len(vocab.alphabet),
        vocab.phoc_size,
        vocab.prime,
        vocab.collisions(),
    )
    device = pick_device()
    transform, sets = assemble(spec, vocab, splits)
    # standardised with the training canvases' statistics, streamed over the train rows
    transform.fit_statistics(sets["train"]["x"], device)
    log.info("training canvases: mean %.6g, std %.6g", transform.mean, transform.std)

    seed_everything(spec.seed)
    channels, height, width = spec.canvas
    model = build_model(
        num_classes=vocab.phoc_size, in_channels=channels, input_size=(height, width), **spec.model
    )
    config = TrainConfig.from_dict(spec.train, seed=spec.seed)
    evaluator = Evaluator(vocab, spec.tasks)
    result = fit(
        model,
        sets["train"],
        config,
        run_dir,
        loss_fn=PhocLoss(vocab.phocs),
        eval_sets={"val": sets["val"]} if "val" in sets else None,
        metrics_fn=lambda outputs, d: {"acc": evaluator.within_task_accuracy(outputs, d["y"])},
        device=device,
        # where the images live does not change the result: a resume ignores it
        fingerprint={k: v for k, v in params.items() if k != "resident_mb"},
        transform=transform,
    )
    model.eval()
    logits = predict(
        model,
        sets["test"]["x"],
        config.eval_batch_size,
        config.amp,
        transform=transform,
        device=device,
    )
    return write_result(
        eval_path,
        result,
        evaluator.metrics(logits, sets["test"]["y"]),
        run=spec.run,
        mode=spec.mode,
        discriminator=spec.discriminator,
        seed=spec.seed,
        tasks=[t.name for t in spec.tasks],
        vocabulary=vocabulary_record(vocab),
        n={s: len(d["y"]) for s, d in sets.items()},
    )
