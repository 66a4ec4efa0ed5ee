"""One training job of the transfer study: a task's data, the model a mode starts from.

* a *task* is a dataset, the charsets whose characters are its classes (label =
  position in that list, so real datasets and the synthetic one are selected the same
  way, by ``label_name``) and a train/test split; its rows come from
  :func:`hwbench.data.select`;
* the transfer of a source model onto a target task (:func:`transfer_model`): the
  head keeps the source rows of the classes both tasks share (``head_init: shared``)
  or starts fresh (``fresh``); frozen trains ``model.head`` only (BatchNorm layers
  keep the source running statistics: the engine holds them in eval mode);
* per-epoch metrics: test macro-F1 and per-class accuracy (:func:`epoch_metrics`);
* one job through :func:`hwbench.engine.fit`, its record through
  :func:`hwbench.engine.write_result` (metrics: classes, sizes, per-epoch history).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hwbench import engine
from hwbench.data import batch_transform, charset_classes, select, split_of_rows
from hwbench.rows import StoredRows, batch_source, rows_or_resident
from hwbench.store import IMAGES_FILE, Processed, load_processed, read_split
from hwbench.studies.transfer.spec import (
    CLASS_ACC,
    HEAD_INITS,
    MODES,
    SOURCE_SPLIT,
    check_split,
)

log = logging.getLogger("hwbench.transfer")


# --- tasks and their data -----------------------------------------------------------


def task_classes(charsets: Sequence[str]) -> list[str]:
    """The characters of a task's classes, in label order (charsets concatenated)."""
    if not list(charsets):
        raise ValueError("a transfer task needs at least one charset")
    chars = charset_classes(charsets)
    if len(set(chars)) != len(chars):
        raise ValueError(f"charsets {list(charsets)} repeat a character")
    return chars


@dataclass
class TaskData:
    """A task's images (uint8 N x H x W) and 0-based labels, split into train and test.
    Images over the job's budget stay on disk (:class:`~hwbench.rows.StoredRows`)."""

    classes: list[str]
    x_train: torch.Tensor | StoredRows
    y_train: torch.Tensor
    x_test: torch.Tensor | StoredRows
    y_test: torch.Tensor

    def describe(self) -> str:
        return (
            f"{len(self.classes)} classes, {len(self.y_train)} train / "
            f"{len(self.y_test)} test images"
        )


def _role_splits(names: np.ndarray, split: Mapping, where: str) -> dict[str, list[str]]:
    """The split names of train and test; ``train`` left out is every split not in test.

    Each role must have rows: the error lists the splits the data has.
    """
    present = sorted(set(names.tolist()) - {""})
    test = list(split["test"])
    train = list(split.get("train") or [s for s in present if s not in test])
    roles = {"train": train, "test": test}
    for role, wanted in roles.items():
        if not set(wanted) & set(present):
            raise ValueError(
                f"{where}: no {role} rows for split {dict(split)}; the data has splits "
                f"{present[:20]}"
            )
    return roles


def select_task(
    data: Processed,
    task: Mapping,
    split_frame: pd.DataFrame | None = None,
    where: str = "task",
    stored: tuple[Path, float] | None = None,
) -> TaskData:
    """The images of ``task`` (``charsets``, ``split``) from a processed dataset.

    ``split.scheme: source_split`` reads the dataset's own partition column (MNIST
    train/test, NIST hsf_N); a split-file scheme reads ``split_frame`` (index, split).
    Rows keep the dataset's order. ``stored``: (its images.npy, a budget in MiB):
    a set of images larger than the budget stays on disk, read per batch.
    """
    classes = task_classes(task["charsets"])
    split = task["split"]
    check_split(split, where)
    if split["scheme"] == SOURCE_SPLIT:
        split_frame = None
    elif split_frame is None:
        raise ValueError(f"{where}: scheme {split['scheme']!r} needs its split file")
    roles = _role_splits(split_of_rows(data.meta, split_frame, where), split, where)
    train, test = (
        select(
            data,
            split_frame,
            roles[role],
            classes=classes,
            where=f"{where} {role}",
            read_images=stored is None,
        )  # fmt: skip
        for role in ("train", "test")
    )
    missing = sorted(set(range(len(classes))) - set(train.labels.tolist()))
    if missing:
        log.warning("%s: classes without training images: %s", where, [classes[i] for i in missing])
    if stored is None:
        return TaskData(classes, *train.tensors(), *test.tensors())
    path, budget_mb = stored
    x_train, x_test = (
        batch_source(rows_or_resident(path, part.index, budget_mb)) for part in (train, test)
    )
    y_train, y_test = (torch.from_numpy(s.labels.astype(np.int64)) for s in (train, test))
    return TaskData(classes, x_train, y_train, x_test, y_test)


def load_task(
    processed_dir: str | Path,
    task: Mapping,
    split_csv: str | Path | None = None,
    resident_mb: float | None = None,
) -> TaskData:
    """:func:`select_task` on data/processed/<dataset> (+ its split file if the scheme has
    one); train or test images over ``resident_mb`` MiB are read per batch from disk."""
    where = f"{processed_dir} (task {task['dataset']}:{'+'.join(task['charsets'])})"
    split_frame = read_split(split_csv) if split_csv is not None else None
    stored = (Path(processed_dir) / IMAGES_FILE, resident_mb) if resident_mb is not None else None
    data = load_processed(processed_dir, mmap=True)
    return select_task(data, task, split_frame, where, stored)


# --- models -----------------------------------------------------------------------


def make_model(model_cfg: Mapping, num_classes: int):
    """The study's network (``model`` section, model.schema.yaml) with ``num_classes`` outputs.

    ImageNet weights are refused: control runs must start from random weights.
    """
    from hwbench.models import model_from_config

    if model_cfg.get("pretrained"):
        raise ValueError(
            f"transfer.model.pretrained = {model_cfg['pretrained']!r}: the control runs start "
            "from random weights and the others from the source model; set it to null"
        )
    return model_from_config(model_cfg, num_classes)


def transfer_head(model, source_classes: Sequence[str], target_classes, head_init: str) -> int:
    """Give ``model`` (carrying the source weights) a head for ``target_classes``.

    ``shared``: a class of both tasks keeps its source row of the final layer (so a
    digits -> digits transfer keeps the whole source model); the others start fresh.
    ``fresh``: a new final layer. Returns the number of rows taken from the source.
    """
    if head_init not in HEAD_INITS:
        raise ValueError(f"head_init={head_init!r}: use one of {list(HEAD_INITS)}")
    old = model.head
    if old.out_features != len(source_classes):
        raise ValueError(
            f"the source model has {old.out_features} outputs but {len(source_classes)} classes"
        )
    new = model.replace_head(len(target_classes))
    if head_init == "fresh":
        return 0
    source_row = {c: i for i, c in enumerate(source_classes)}
    copied = 0
    with torch.no_grad():
        for j, c in enumerate(target_classes):
            if c in source_row:
                new.weight[j] = old.weight[source_row[c]]
                new.bias[j] = old.bias[source_row[c]]
                copied += 1
    return copied


def transfer_model(
    mode: str,
    model_cfg: Mapping,
    target_classes: Sequence[str],
    source_model: str | Path | None = None,
    source_classes: Sequence[str] | None = None,
    head_init: str = "shared",
):
    """The model a ``mode`` run starts from, and the parameter prefixes it trains.

    control: random initialisation, everything trains. frozen / finetuned: the
    source model's weights and BatchNorm statistics (``source_model``: a model.pt
    written by the engine, loaded weights-only) with the head adapted by
    :func:`transfer_head`; frozen trains ``["head"]`` only, finetuned everything
    (``None``). Seed the RNGs first: fresh weights come from torch's generator.
    """
    if mode not in MODES:
        raise ValueError(f"transfer mode {mode!r}; choose one of {list(MODES)}")
    if mode == "control":
        return make_model(model_cfg, len(target_classes)), None
    if source_model is None or source_classes is None:
        raise ValueError(f"mode {mode!r} needs the source model's weights and classes")
    model = make_model(model_cfg, len(source_classes))
    try:
        engine.load_weights(model, source_model)
    except engine.CheckpointError:
        raise  # an unreadable file: its own message says what to do
    except RuntimeError as err:  # torch's shape mismatch: say which files disagree
        raise ValueError(
            f"{source_model} does not fit the model config with {len(source_classes)} outputs "
            f"(the source classes): {str(err).splitlines()[-1].strip()}; the source model "
            "and its eval.json must come from the same source job: rerun it"
        ) from err
    copied = transfer_head(model, source_classes, target_classes, head_init)
    log.info("%s: %s loaded, %d head rows kept from the source", mode, source_model, copied)
    return model, (["head"] if mode == "frozen" else None)


def train_config(train_cfg: Mapping, seed: int, trainable: list[str] | None = None):
    """The engine's TrainConfig of one run (``train`` section, train.schema.yaml).

    The study fixes what its protocol needs: the run's seed, the early stop watching
    the test loss (the paper's |L_test(k) - L_test(k-1)| < stop_eps) and the trainable
    parameters of the mode.
    """
    return engine.TrainConfig.from_dict(
        train_cfg, seed=seed, monitor="test_loss", mode="min", trainable=trainable
    )


# --- per-epoch metrics -------------------------------------------------------------


def epoch_metrics(classes: Sequence[str]):
    """A metrics_fn for the engine: accuracy, macro-F1 and per-class accuracy.

    Macro-F1 averages over the classes present in labels or predictions, as
    scikit-learn's ``f1_score(average="macro")`` does; per-class accuracy (recall)
    is NaN for a class without test images.
    """
    from hwbench.metrics import accuracy, macro_f1, per_class_accuracy, predictions

    classes = list(classes)

    def metrics(outputs, data) -> dict[str, float]:
        y_true = data["y"].cpu().numpy()
        y_pred = predictions(engine.main_output(outputs))
        row = {"acc": accuracy(y_true, y_pred), "f1": macro_f1(y_true, y_pred)}
        per_class = per_class_accuracy(y_true, y_pred, num_classes=len(classes))
        row.update({f"{CLASS_ACC}{c}": float(v) for c, v in zip(classes, per_class, strict=True)})
        return row

    return metrics


# --- one training job ----------------------------------------------------------------


def train_run(
    model,
    trainable,
    data: TaskData,
    model_cfg: Mapping,
    train_cfg: Mapping,
    seed: int,
    run_dir: str | Path,
    device=None,
) -> tuple[engine.FitResult, dict]:
    """Train ``model`` on ``data`` with the engine: its result and the run's metrics.

    The engine writes metrics.csv, checkpoint.pt and model.pt (final weights) into
    ``run_dir`` and resumes an interrupted run only on the same data and settings.
    The fingerprint adds what the engine cannot see: the model spec, the classes and
    the starting weights (a retrained source model makes its transfers train again).
    """
    fingerprint = {
        "model": dict(model_cfg),
        "classes": list(data.classes),
        "init": engine.data_fingerprint({"weights": dict(model.state_dict())}),
    }
    device = engine.pick_device() if device is None else torch.device(device)
    train = {"x": data.x_train, "y": data.y_train}  # uint8: model input one batch at a time
    test = {"x": data.x_test, "y": data.y_test}
    result = engine.fit(
        model,
        train,
        train_config(train_cfg, seed, trainable),
        run_dir,
        eval_sets={"test": test},
        metrics_fn=epoch_metrics(data.classes),
        device=device,
        fingerprint=fingerprint,
        restore="last",  # transfers start from the source's final weights (model.pt)
        transform=batch_transform(model_cfg),
    )
    metrics = {
        "classes": list(data.classes),
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "history": result.history,
    }
    return result, metrics


def source_job(
    processed_dir,
    split_csv,
    task_spec: Mapping,
    model_cfg,
    train_cfg,
    seed,
    eval_path,
    resident_mb: float | None = None,
    **identity,
) -> dict:
    """Pre-train the source model of a task (``task_spec``: its config); model.pt beside
    ``eval_path`` is what transfers start from. Writes and returns the eval.json record;
    ``identity`` (e.g. the task's name) goes into it. Images over ``resident_mb`` MiB
    are read per batch from disk."""
    data = load_task(processed_dir, task_spec, split_csv, resident_mb)
    log.info("source task %s", data.describe())
    engine.seed_everything(seed)
    model, _ = transfer_model("control", model_cfg, data.classes)
    result, metrics = train_run(
        model, None, data, model_cfg, train_cfg, seed, Path(eval_path).parent
    )
    return engine.write_result(eval_path, result, metrics, seed=seed, **identity)


def transfer_job(
    processed_dir,
    split_csv,
    target: Mapping,
    mode: str,
    model_cfg,
    train_cfg,
    seed,
    eval_path,
    source_model=None,
    source_eval: Mapping | None = None,
    head_init: str = "shared",
    resident_mb: float | None = None,
    **identity,
) -> dict:
    """Train one mode on the target task, from the source model file unless control.
    Writes and returns the eval.json record (images as in :func:`source_job`)."""
    data = load_task(processed_dir, target, split_csv, resident_mb)
    log.info("target task %s, mode %s", data.describe(), mode)
    classes = list(source_eval["metrics"]["classes"]) if mode != "control" else None
    engine.seed_everything(seed)
    model, trainable = transfer_model(
        mode, model_cfg, data.classes, source_model, classes, head_init
    )
    result, metrics = train_run(
        model, trainable, data, model_cfg, train_cfg, seed, Path(eval_path).parent
    )
    if mode != "control":
        metrics |= {"source_classes": classes, "source_model": str(source_model)}
    return engine.write_result(eval_path, result, metrics, mode=mode, seed=seed, **identity)
