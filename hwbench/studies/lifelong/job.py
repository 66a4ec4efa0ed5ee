"""The lifelong study's jobs: the tasks' data, a task sequence (basic or EWC), the
multi-task upper bound and the curriculum order (papers/lifelong.md).

Tasks are writers, each with its train and test rows of one shared split,
selected with :func:`hwbench.data.select`. A sequence fills the accuracy matrix
``R`` (row 0 before any training, row ``k`` after task ``k``); every task trains
through :func:`hwbench.engine.fit`, the EWC penalty and the Fisher come from
:mod:`hwbench.continual`, and eval.json is written by
:func:`hwbench.engine.write_result`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hwbench import continual
from hwbench.data import batch_transform, class_positions, select
from hwbench.engine import (
    FitResult,
    TrainConfig,
    cross_entropy_loss,
    data_fingerprint,
    device_description,
    fit,
    pick_device,
    predict,
    safe_load,
    seed_everything,
    write_result,
)
from hwbench.metrics import accuracy, predictions
from hwbench.models import model_from_config
from hwbench.store import atomic_path, load_processed, read_split, write_csv, write_json
from hwbench.studies.lifelong.spec import (
    MULTITASK,
    MULTITASK_ORDER,
    SEQUENTIAL_METHODS,
    curriculum_order,
)

log = logging.getLogger("hwbench.lifelong")

STATE = "state.pt"

# --- data -----------------------------------------------------------------------------


@dataclass
class Tasks:
    """The tasks' images (compact, uint8), the transform that makes them model input
    one batch at a time, and each task's rows in them."""

    x: torch.Tensor  # uint8 N x H x W images
    y: torch.Tensor  # int64 class ids 0..C-1
    rows: dict[str, dict[str, np.ndarray]]  # task -> {"train", "test", "heldout"...} -> rows
    classes: list  # the label names behind class ids 0..C-1
    transform: Callable | None = None  # per batch: x -> model input (None: x is the input)
    # evaluation batch (train.eval_batch_size): bounds the activations of a prediction
    # pass, which would otherwise grow with the test set
    eval_batch_size: int = 512

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def part(self, task: str, which: str) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(self.rows[task][which], device=self.x.device)
        return {"x": self.x[idx], "y": self.y[idx]}

    def union(self, which: str) -> dict[str, torch.Tensor]:
        idx = np.concatenate([r[which] for r in self.rows.values()])
        idx = torch.as_tensor(np.sort(idx), device=self.x.device)
        return {"x": self.x[idx], "y": self.y[idx]}

    def predict(self, model, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """``model``'s outputs on stored inputs ``x``, batch by batch on the model's device
        (``batch_size`` None: :attr:`eval_batch_size`)."""
        device = next(model.parameters()).device
        batch_size = batch_size or self.eval_batch_size
        return predict(model, x, batch_size, transform=self.transform, device=device)

    def fingerprint(self) -> dict:
        """A content hash of the inputs, labels and every task's rows (engine's hash).

        A sequence's state resumes only on this very data: the engine hashes one
        fit's training rows, but R is evaluated on every task's test rows too. The
        transform's settings come from the job's settings (:func:`run_settings`).
        """
        rows = {
            f"{task}.{part}": torch.from_numpy(np.asarray(r, dtype=np.int64))
            for task, parts in self.rows.items()
            for part, r in parts.items()
        }
        return data_fingerprint({"tasks": {"x": self.x, "y": self.y}, "rows": rows})


def class_names(meta: pd.DataFrame, labels: Sequence[int] | None, where: str) -> list[str]:
    """Label names of the classes the tasks keep, in label-id order (the class ids).

    ``labels`` (``lifelong.labels``) are meta.csv label ids, e.g. NIST's digits;
    None keeps every class of the dataset. Selection is by name (hwbench.data).
    """
    pairs = meta[["label", "label_name"]].drop_duplicates()
    pairs = pairs.assign(label_name=pairs["label_name"].astype(str))
    if pairs["label"].duplicated().any() or pairs["label_name"].duplicated().any():
        raise ValueError(
            f"{where}: label ids and label names are not one to one; rebuild the processed "
            "dataset (lifelong selects its classes by name)"
        )
    name_of = dict(zip(pairs["label"], pairs["label_name"], strict=True))
    ids = sorted(name_of) if labels is None else sorted(int(v) for v in labels)
    missing = [i for i in ids if i not in name_of]
    if missing:
        raise ValueError(
            f"lifelong.labels: {missing} are not label ids of {where}; it has {sorted(name_of)}"
        )
    return [name_of[i] for i in ids]


def select_task_rows(
    data,
    split: pd.DataFrame,
    writers: Mapping[str, str],
    parts: Mapping[str, Sequence[str]],
    classes: Sequence[str],
    where: str,
) -> dict[str, dict[str, np.ndarray]]:
    """Dataset rows of each task (a writer) in each part (a set of split names).

    ``parts`` maps a part (e.g. ``train``) to the split names it takes (e.g.
    ``[train, val]``); only rows of ``classes`` count. Every writer must have
    rows in every part.
    """
    present = sorted(set(data.meta["writer"].astype(str)))
    out: dict[str, dict[str, np.ndarray]] = {}
    for task, writer in writers.items():
        if str(writer) not in present:
            raise ValueError(
                f"lifelong.writers.{task}: writer {writer!r} has no images in {where}; "
                f"writers there: {present[:20]}"
            )
        out[task] = {}
        for part, names in parts.items():
            try:
                chosen = select(
                    data, split, list(names), classes=classes, writers=[writer], where=where
                )
            except ValueError as err:
                raise ValueError(
                    f"lifelong: task {task} (writer {writer}) has no rows in splits "
                    f"{list(names)} ({part}): {err}"
                ) from err
            out[task][part] = chosen.index
    return out


def read_raw_images(
    manifest_csv: str | os.PathLike, size: int, meta: pd.DataFrame, rows: np.ndarray
) -> np.ndarray:
    """The raw images of a manifest's ``rows`` as uint8 N x size x size.

    For presets that need more than 28x28 (the paper resizes its 410x410 images
    to 256 and crops 224). The manifest must line up with ``meta`` (the processed
    dataset). Images keep the manifest's polarity (black ink on white, as the
    paper's were); each is resized whole to a square with OpenCV's area filter
    (antialiased when shrinking) to ``size``.
    """
    import cv2  # only this preset reads raw files

    manifest_csv = Path(manifest_csv)
    manifest = pd.read_csv(manifest_csv, keep_default_na=False, dtype={"writer": str})
    if len(manifest) != len(meta) or not (
        (manifest["label"].to_numpy() == meta["label"].to_numpy()).all()
        and (
            manifest["writer"].astype(str).to_numpy() == meta["writer"].astype(str).to_numpy()
        ).all()
    ):
        raise ValueError(
            f"{manifest_csv}: rows do not line up with the processed meta.csv "
            f"({len(manifest)} vs {len(meta)} rows, or other labels/writers); preprocessing "
            "must keep every image (preprocess.on_error: stop) for lifelong.input.source: raw"
        )
    out = np.empty((len(rows), size, size), dtype=np.uint8)
    for i, file in enumerate(manifest["file"].to_numpy()[rows]):
        path = manifest_csv.parent / file
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"{path}: cannot read this image (listed in {manifest_csv})")
        out[i] = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return out


def load_tasks(
    processed_dir: str | os.PathLike,
    split_csv: str | os.PathLike,
    cfg: Mapping,
    raw_manifest: str | os.PathLike | None = None,
    parts: Mapping[str, Sequence[str]] | None = None,
) -> Tasks:
    """The tasks' rows as uint8 images, their per-batch transform, each writer's rows.

    ``cfg`` is the ``lifelong`` config section (keys ``writers``, ``labels``,
    ``input``, ``model``, ``train_splits``, ``test_split``). Only the tasks' rows
    are loaded. The transform resizes images to ``input.resize`` and centre-crops
    them to ``model.input_size`` (the paper: 256, then 224), or resizes straight to
    ``model.input_size`` when ``resize`` is null; raw images are read at
    ``resize`` already. ``parts`` defaults to ``train`` (the training splits) and
    ``test``. The images stay in host memory; the engine moves them (or each batch)
    to the training device.
    """
    where = str(processed_dir)
    side, resize = cfg["model"].get("input_size"), cfg["input"].get("resize")
    if resize and not side:
        raise ValueError("lifelong.input.resize needs lifelong.model.input_size (the crop)")
    if resize and side > resize:
        raise ValueError(
            f"model.input_size={side} is larger than the {resize}x{resize} images to crop it "
            "from; raise lifelong.input.resize"
        )
    if parts is None:
        parts = {"train": cfg["train_splits"], "test": [cfg["test_split"]]}
    data = load_processed(processed_dir, mmap=True)
    classes = class_names(data.meta, cfg.get("labels"), where)
    rows = select_task_rows(data, read_split(split_csv), cfg["writers"], parts, classes, where)
    # The union of the tasks' rows in dataset order; task rows become positions in it.
    index = np.unique(np.concatenate([r for p in rows.values() for r in p.values()]))
    rows = {t: {p: np.searchsorted(index, r) for p, r in ps.items()} for t, ps in rows.items()}
    if cfg["input"]["source"] == "raw":
        if raw_manifest is None:
            raise ValueError("lifelong.input.source: raw needs the raw manifest.csv")
        images = read_raw_images(raw_manifest, resize or side or 28, data.meta, index)
        size = None  # read at their size already
    else:
        images, size = data.images[index], resize or side
    transform = batch_transform(cfg["model"], size=size, crop=side if resize else None)
    x = torch.from_numpy(np.ascontiguousarray(images))
    y = class_positions(data.meta.iloc[index], classes, where)
    y = torch.tensor(y, dtype=torch.long)
    eval_batch = int(cfg.get("train", {}).get("eval_batch_size") or 512)
    return Tasks(x, y, rows, classes, transform=transform, eval_batch_size=eval_batch)


# --- training ----------------------------------------------------------------------------


def make_model(cfg: Mapping, num_classes: int, seed: int, device: torch.device):
    """The model before any training: the same weights for the same seed."""
    seed_everything(seed)
    return model_from_config(cfg["model"], num_classes).to(device)


def task_accuracies(model, tasks: Tasks, which: str = "test", batch_size: int | None = None):
    """Accuracy of ``model`` on each task's ``which`` rows (eval mode, no grad).

    One pass over all tasks' rows, split afterwards: cheaper than a pass per task
    for the small test sets of this study.
    """
    was_training = model.training
    model.eval()
    rows = [tasks.rows[name][which] for name in tasks.rows]
    idx = torch.as_tensor(np.concatenate(rows), device=tasks.x.device)
    pred = predictions(tasks.predict(model, tasks.x[idx], batch_size))
    truth = tasks.y[idx].cpu().numpy()
    model.train(was_training)
    out, start = {}, 0
    for name, r in zip(tasks.rows, rows, strict=True):
        out[name] = accuracy(truth[start : start + len(r)], pred[start : start + len(r)])
        start += len(r)
    return out


def _epoch_eval(tasks: Tasks):
    """Per-epoch eval hook: accuracy on every task's test set (Figs. 1 and 5)."""

    def eval_fn(model, epoch):
        accs = task_accuracies(model, tasks)
        return {**{f"test_acc_{k}": v for k, v in accs.items()}, "test_acc_mean": _mean(accs)}

    return eval_fn


def _on_device(transform: Callable | None, device: torch.device) -> Callable:
    """A chunk of stored inputs -> model input on ``device`` (the Fisher's chunks)."""

    def apply(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device, non_blocking=True)
        return transform(x) if transform is not None else x

    return apply


def _mean(values: Mapping[str, float]) -> float:
    return float(np.mean(list(values.values())))


def _train_config(train: Mapping, seed: int, epochs: int | None = None) -> TrainConfig:
    values = dict(train)
    if epochs is not None:
        values["epochs"] = epochs
    return TrainConfig.from_dict(values, seed=seed)


def run_settings(cfg: Mapping) -> dict:
    """What defines a job beyond TrainConfig and the data: the engine's ``fingerprint``."""
    keys = ("model", "input", "labels", "writers", "ewc", "curriculum", "multitask")
    return {k: cfg[k] for k in keys if cfg.get(k) is not None}


def _cleanup(run_dir: Path, keep: Sequence[str] = ("metrics.csv", "run.json")) -> None:
    """Drop a finished task's weights: the sequence's state.pt holds the model."""
    for path in run_dir.iterdir():
        if path.is_file() and path.name not in keep:
            path.unlink()


def _sequence_state(run_dir: Path, fingerprint: dict, device: torch.device) -> dict | None:
    """The saved state after the last finished task, or None (start over).

    Loaded weights-only. State written for other data, another order or other
    settings is set aside with a log line: resuming it would mix two runs.
    """
    path = run_dir / STATE
    if not path.exists():
        return None
    state = safe_load(path, map_location=device)
    old = state.get("fingerprint") or {} if isinstance(state, dict) else {}
    if old != fingerprint:
        changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
        log.warning("%s was written with other settings (%s): starting over", path, changed)
        path.unlink()
        return None
    return state


def run_sequence(
    tasks: Tasks,
    order: Sequence[str],
    method: str,
    cfg: Mapping,
    seed: int,
    run_dir: str | os.PathLike,
    device: torch.device,
    order_name: str | None = None,
) -> dict:
    """Train the tasks one after another (basic or EWC); fill R; write the run folder.

    Per task ``k`` the engine trains in ``run_dir/task<k>_<name>/`` (metrics.csv
    with every task's test accuracy per epoch); after it, R's row ``k`` is
    evaluated and, for EWC, the Fisher on that task's training data is added to
    the penalty. ``run_dir/state.pt`` holds the model, R and the EWC state after
    the last finished task, with a fingerprint of the data, the order and the
    settings, so a killed job resumes there (and the engine inside a task) only
    on the same data and settings. Writes ``R.csv``, ``curves.csv``, ``model.pt``
    and ``eval.json`` (:func:`hwbench.engine.write_result`).
    """
    device = torch.device(device)
    if method not in SEQUENTIAL_METHODS:
        raise ValueError(f"method {method!r}: sequential methods are {SEQUENTIAL_METHODS}")
    order = list(order)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = make_model(cfg, tasks.num_classes, seed, device)
    ewc = continual.EWC(cfg["ewc"]["lambda"]) if method == "ewc" else None
    fingerprint = {
        "method": method,
        "order": order,
        "seed": seed,
        "train": cfg["train"],
        "settings": run_settings(cfg),
        "data": tasks.fingerprint(),
    }
    # Plain JSON values: what state.pt stores is compared with what this job computes.
    fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
    state = _sequence_state(run_dir, fingerprint, device)
    if state is not None:
        model.load_state_dict(state["model"])
        if ewc is not None:
            ewc.load_state_dict(state["ewc"])
        R, done = state["R"], state["done"]
        log.info("resumed %s after task %d of %d", run_dir, done, len(order))
    else:
        R, done = [task_accuracies(model, tasks)], 0
        log.info("R row 0 (before training): %s", R[0])

    loss_fn = cross_entropy_loss if ewc is None else ewc.wrap(cross_entropy_loss, model)
    for k, name in enumerate(order, start=1):
        if k <= done:
            continue
        task_dir = run_dir / f"task{k}_{name}"
        config = _train_config(cfg["train"], seed=seed * 1000 + k)
        # A task's checkpoint is valid only after the same earlier tasks on the same data.
        fit(
            model,
            tasks.part(name, "train"),
            config,
            task_dir,
            loss_fn=loss_fn,
            eval_fn=_epoch_eval(tasks),
            device=device,
            fingerprint={"sequence": fingerprint, "task": k},
            transform=tasks.transform,
        )
        R.append(task_accuracies(model, tasks))
        log.info("R row %d (after %s): %s", k, name, R[-1])
        if ewc is not None and k < len(order):
            part = tasks.part(name, "train")
            fisher = continual.fisher_diagonal(
                model,
                part["x"],
                part["y"].to(device),
                transform=_on_device(tasks.transform, device),
                chunk_size=cfg["ewc"].get("chunk_size", 16),
                per_sample=cfg["ewc"].get("fisher", "sample") == "sample",
            )
            ewc.consolidate(model, fisher)
        state = {
            "fingerprint": fingerprint,
            "done": k,
            "R": R,
            "model": model.state_dict(),
            "ewc": ewc.state_dict() if ewc is not None else None,
        }
        with atomic_path(run_dir / STATE) as tmp:
            torch.save(state, tmp)
        _cleanup(task_dir)

    matrix = pd.DataFrame([[row[t] for t in order] for row in R], columns=order)
    matrix.insert(0, "after", ["none", *order])
    write_csv(run_dir / "R.csv", matrix)
    curves = sequence_curves(run_dir, order)
    write_csv(run_dir / "curves.csv", curves)
    metrics = {**continual.transfer_metrics(matrix[order].to_numpy()), "final": R[-1]}
    with atomic_path(run_dir / "model.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    record = write_result(
        run_dir / "eval.json",
        sequence_fit(run_dir, order, curves, device),
        metrics,
        method=method,
        order=order_name or "_".join(order),
        sequence=order,
        seed=seed,
    )
    (run_dir / STATE).unlink(missing_ok=True)
    return record


def sequence_fit(
    run_dir: Path, order: Sequence[str], curves: pd.DataFrame, device: torch.device
) -> FitResult:
    """One fit record for a whole sequence, from its tasks' run.json (kept per task):
    wall time summed over the tasks' training, every epoch of every task."""
    infos = [
        json.loads((run_dir / f"task{k}_{name}" / "run.json").read_text(encoding="utf-8"))
        for k, name in enumerate(order, start=1)
    ]
    return FitResult(
        history=curves.to_dict("records"),
        best_epoch=None,  # a sequence trains fixed epochs per task and keeps the last weights
        best_value=None,
        stop_reason=infos[-1]["stop_reason"],
        device=device_description(device),
        wall_s=float(sum(info["wall_s"] for info in infos)),
        run_dir=run_dir,
    )


def sequence_curves(run_dir: Path, order: Sequence[str]) -> pd.DataFrame:
    """Every task's per-epoch metrics one after another; ``step`` counts epochs overall."""
    frames = []
    for k, name in enumerate(order, start=1):
        frame = pd.read_csv(run_dir / f"task{k}_{name}" / "metrics.csv")
        frame.insert(0, "task", name)
        frames.append(frame)
    curves = pd.concat(frames, ignore_index=True)
    curves.insert(0, "step", np.arange(1, len(curves) + 1))
    return curves


def run_multitask(
    tasks: Tasks, cfg: Mapping, seed: int, run_dir: str | os.PathLike, device: torch.device
) -> dict:
    """Joint training on every task's training rows: the upper bound.

    ACC is the mean of the per-task test accuracies, like ACC of a sequence.
    """
    run_dir, device = Path(run_dir), torch.device(device)
    model = make_model(cfg, tasks.num_classes, seed, device)
    config = _train_config(cfg["train"], seed=seed * 1000, epochs=cfg["multitask"]["epochs"])
    result = fit(
        model,
        tasks.union("train"),
        config,
        run_dir,
        eval_fn=_epoch_eval(tasks),
        device=device,
        fingerprint={"settings": run_settings(cfg), "test": tasks.fingerprint()},
        transform=tasks.transform,
    )
    final = task_accuracies(model, tasks)
    curves = pd.read_csv(run_dir / "metrics.csv")
    curves.insert(0, "task", "all")
    curves.insert(0, "step", curves["epoch"])
    write_csv(run_dir / "curves.csv", curves)
    return write_result(
        run_dir / "eval.json",
        result,
        {"acc": _mean(final), "final": final},
        method=MULTITASK,
        order=MULTITASK_ORDER,
        sequence=list(tasks.rows),
        seed=seed,
    )


def run_curriculum(
    tasks: Tasks, cfg: Mapping, run_dir: str | os.PathLike, device: torch.device
) -> dict:
    """Score each task by a model trained on it alone; order them easiest first.

    ``tasks`` must have ``fit`` (training rows) and ``heldout`` parts (see
    :func:`curriculum_parts`). The score is that model's accuracy on the task's
    held-out rows, ties broken by the held-out loss (:func:`curriculum_order`).
    Writes ``order.json`` (the order, each task's score and fit record).
    """
    run_dir, device = Path(run_dir), torch.device(device)
    cur = cfg["curriculum"]
    scores, fits = {}, {}
    for name in tasks.rows:
        model = make_model(cfg, tasks.num_classes, cur["seed"], device)
        config = _train_config(cfg["train"], seed=cur["seed"], epochs=cur["epochs"])
        task_dir = run_dir / name
        result = fit(
            model,
            tasks.part(name, "fit"),
            config,
            task_dir,
            device=device,
            fingerprint={"settings": run_settings(cfg)},
            transform=tasks.transform,
        )
        held = tasks.part(name, "heldout")
        model.eval()
        logits = tasks.predict(model, held["x"])
        loss = float(torch.nn.functional.cross_entropy(logits, held["y"].to(logits.device)))
        scores[name] = {"acc": accuracy(held["y"], predictions(logits)), "loss": loss}
        fits[name] = {"wall_s": result.wall_s, "epochs_run": len(result.history)}
        log.info("curriculum: %s scores %s", name, scores[name])
        _cleanup(task_dir)
    order = curriculum_order(scores)
    out = {"order": order, "scores": scores, "fits": fits, "device": device_description(device)}
    write_json(run_dir / "order.json", out)
    return out


def curriculum_parts(cfg: Mapping) -> dict[str, list[str]]:
    """Training and held-out split names of the curriculum's single-task models."""
    cur = cfg["curriculum"]
    return {"fit": list(cur["train_splits"]), "heldout": [cur["heldout_split"]]}


def pick_run_device(cfg: Mapping) -> torch.device:
    return pick_device(cfg.get("device", "auto"))
