"""The lifelong study: writers as tasks, EWC, ACC/BWT/FWT (papers/lifelong.md).

What is particular to the paper lives here: the tasks (one per writer, each
with its train and test rows of one shared stratified split), the task orders
(the paper's four and a "curriculum" order computed from the data), the
protocol that fills the accuracy matrix ``R`` (row 0 before any training, row
``k`` after task ``k``), the multi-task upper bound, Table 1's layout and the
figures. Training goes through :func:`hwbench.engine.fit`; the EWC penalty,
the Fisher and the metrics come from :mod:`hwbench.continual`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hwbench import continual
from hwbench.data import input_options, to_model_input
from hwbench.engine import (
    TrainConfig,
    cross_entropy_loss,
    device_description,
    fit,
    pick_device,
    predict,
    seed_everything,
)
from hwbench.metrics import accuracy, predictions
from hwbench.models import model_from_config
from hwbench.store import atomic_path, load_processed, read_split, write_csv, write_json

log = logging.getLogger("hwbench.lifelong")

PAPER_WRITERS = ("Wang", "Shen", "Peng", "Cheng")
PAPER_ORDERS = (
    "Wang_Shen_Peng_Cheng",
    "Shen_Wang_Peng_Cheng",
    "Shen_Peng_Wang_Cheng",
    "Shen_Peng_Cheng_Wang",
)
CURRICULUM = "curriculum"
MULTITASK_ORDER = "Whole Dataset"  # the paper's "task order" of the multi-task row
SEQUENTIAL_METHODS = ("basic", "ewc")
MULTITASK = "multitask"
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


# --- task orders ----------------------------------------------------------------------


def parse_order(order: str, writers: Mapping[str, str]) -> list[str]:
    """Task names of an order written ``Name_Name_...`` (each a key of ``writers``).

    Every task must appear exactly once, so R is square below row 0.
    """
    names = order.split("_")
    unknown = [n for n in names if n not in writers]
    if unknown:
        raise ValueError(
            f"lifelong.orders: {order!r} names {unknown}, not in lifelong.writers "
            f"{sorted(writers)}; write orders as those names joined by '_' or use "
            f"{CURRICULUM!r}"
        )
    if sorted(names) != sorted(writers):
        raise ValueError(
            f"lifelong.orders: {order!r} must name every task of lifelong.writers "
            f"{sorted(writers)} exactly once"
        )
    return names


def curriculum_order(scores: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Easiest task first: highest held-out accuracy, then lowest held-out loss.

    ``scores`` maps a task name to ``{"acc": ..., "loss": ...}`` of a model
    trained on that task alone. Ties left after both fall back to the name, so
    the order is a pure function of the scores.
    """
    return sorted(scores, key=lambda name: (-scores[name]["acc"], scores[name]["loss"], name))


def resolve_order(order: str, writers: Mapping[str, str], curriculum: Sequence[str] | None):
    """Task names of ``order``; ``"curriculum"`` takes the computed ``curriculum``."""
    if order == CURRICULUM:
        if curriculum is None:
            raise ValueError("the curriculum order needs results/lifelong/curriculum/order.json")
        return parse_order("_".join(curriculum), writers)
    return parse_order(order, writers)


# --- data -----------------------------------------------------------------------------


@dataclass
class Tasks:
    """Model inputs of the whole dataset on the device, and each task's rows."""

    x: torch.Tensor  # float, N x C x S x S, on the device
    y: torch.Tensor  # int64 class ids 0..C-1, on the device
    rows: dict[str, dict[str, np.ndarray]]  # task -> {"train", "test", "heldout"...} -> rows
    classes: list  # the dataset labels behind class ids 0..C-1

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


def task_rows(
    meta: pd.DataFrame,
    split: pd.DataFrame,
    writers: Mapping[str, str],
    parts: Mapping[str, Sequence[str]],
    where: str = "lifelong",
    labels: Sequence[int] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Rows of each task (a writer) in each part (a set of split names).

    ``parts`` maps a part (e.g. ``train``) to the split names it takes (e.g.
    ``[train, val]``); ``labels`` keeps only those classes (e.g. the digits of
    NIST). Every writer must exist and every part be non-empty.
    """
    split_of = np.full(len(meta), "", dtype=object)
    index = split["index"].to_numpy()
    if len(index) and (index.min() < 0 or index.max() >= len(meta)):
        raise ValueError(f"{where}: split rows point past the {len(meta)} images; rebuild it")
    split_of[index] = split["split"].to_numpy()
    writer_of = meta["writer"].astype(str).to_numpy()
    present = sorted(set(writer_of))
    wanted = np.ones(len(meta), bool) if labels is None else meta["label"].isin(labels).to_numpy()
    out: dict[str, dict[str, np.ndarray]] = {}
    for task, writer in writers.items():
        mine = (writer_of == str(writer)) & wanted
        if not mine.any():
            raise ValueError(
                f"lifelong.writers.{task}: writer {writer!r} has no images in {where}; "
                f"writers there: {present[:20]}"
            )
        out[task] = {}
        for part, names in parts.items():
            rows = np.flatnonzero(mine & np.isin(split_of, list(names)))
            if not len(rows):
                raise ValueError(
                    f"lifelong: task {task} (writer {writer}) has no rows in splits "
                    f"{list(names)} ({part}); splits there: {sorted(set(split_of[mine]))}"
                )
            out[task][part] = rows
    return out


def read_raw_images(manifest_csv: str | os.PathLike, size: int, meta: pd.DataFrame) -> np.ndarray:
    """The raw images of a manifest as uint8 N x size x size, rows aligned with ``meta``.

    For presets that need more than 28x28 (the paper resizes its 410x410 images
    to 256 and crops 224). Images keep the manifest's polarity (black ink on
    white, as the paper's were); each is resized whole to a square with
    OpenCV's area filter (antialiased when shrinking) to ``size``.
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
    out = np.empty((len(manifest), size, size), dtype=np.uint8)
    for i, file in enumerate(manifest["file"]):
        path = manifest_csv.parent / file
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"{path}: cannot read this image (listed in {manifest_csv})")
        out[i] = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return out


def center_crop(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """The central ``size`` x ``size`` window of N x C x H x W inputs."""
    if not size:
        return x
    h, w = x.shape[-2:]
    if size > min(h, w):
        raise ValueError(
            f"model.input_size={size} is larger than the {h}x{w} images to crop it from; "
            "raise lifelong.input.resize"
        )
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size].contiguous()


def load_tasks(
    processed_dir: str | os.PathLike,
    split_csv: str | os.PathLike,
    cfg: Mapping,
    device: torch.device,
    raw_manifest: str | os.PathLike | None = None,
    parts: Mapping[str, Sequence[str]] | None = None,
) -> Tasks:
    """The dataset as model inputs on ``device`` and each writer's rows.

    ``cfg`` is the ``lifelong`` config section (keys ``writers``, ``input``,
    ``model``, ``train_splits``, ``test_split``). Images are resized to
    ``input.resize`` and centre-cropped to ``model.input_size`` (the paper: 256,
    then 224), or resized straight to ``model.input_size`` when ``resize`` is
    null. ``parts`` defaults to ``train`` (the training splits) and ``test``.
    """
    data = load_processed(processed_dir)
    split = read_split(split_csv)
    if parts is None:
        parts = {"train": cfg["train_splits"], "test": [cfg["test_split"]]}
    labels = cfg.get("labels")
    rows = task_rows(data.meta, split, cfg["writers"], parts, str(processed_dir), labels)
    opts = input_options(cfg["model"])
    side, resize = opts.pop("size"), cfg["input"].get("resize")
    if resize and not side:
        raise ValueError("lifelong.input.resize needs lifelong.model.input_size (the crop)")
    if cfg["input"]["source"] == "raw":
        if raw_manifest is None:
            raise ValueError("lifelong.input.source: raw needs the raw manifest.csv")
        images = read_raw_images(raw_manifest, resize or side or 28, data.meta)
        size = None
    else:
        images, size = data.images, resize or side
    x = to_model_input(torch.from_numpy(np.ascontiguousarray(images)), device, size=size, **opts)
    x = center_crop(x, side if resize else None)
    classes = sorted(labels) if labels is not None else sorted(data.meta["label"].unique())
    lookup = {c: i for i, c in enumerate(classes)}
    # Rows of other classes (-1) belong to no task: task_rows left them out.
    y = [lookup.get(v, -1) for v in data.meta["label"]]
    y = torch.tensor(y, dtype=torch.long, device=device)
    return Tasks(x=x, y=y, rows=rows, classes=classes)


# --- training ----------------------------------------------------------------------------


def make_model(cfg: Mapping, num_classes: int, seed: int, device: torch.device):
    """The model before any training: the same weights for the same seed."""
    seed_everything(seed)
    return model_from_config(cfg["model"], num_classes).to(device)


def task_accuracies(model, tasks: Tasks, which: str = "test", batch_size: int = 512):
    """Accuracy of ``model`` on each task's ``which`` rows (eval mode, no grad).

    One pass over all tasks' rows, split afterwards: cheaper than a pass per task
    for the small test sets of this study.
    """
    was_training = model.training
    model.eval()
    rows = [tasks.rows[name][which] for name in tasks.rows]
    idx = torch.as_tensor(np.concatenate(rows), device=tasks.x.device)
    pred = predictions(predict(model, tasks.x[idx], batch_size))
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


def _mean(values: Mapping[str, float]) -> float:
    return float(np.mean(list(values.values())))


def _train_config(train: Mapping, seed: int, epochs: int | None = None) -> TrainConfig:
    values = dict(train)
    if epochs is not None:
        values["epochs"] = epochs
    return TrainConfig.from_dict(values, seed=seed)


def _cleanup(run_dir: Path, keep: Sequence[str] = ("metrics.csv", "run.json")) -> None:
    """Drop a finished task's checkpoint and weights: the run's state.pt holds them."""
    for path in run_dir.iterdir():
        if path.is_file() and path.name not in keep:
            path.unlink()


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
    the last finished task, so a killed job resumes there (and the engine
    resumes inside a task). Writes ``R.csv`` and ``eval.json``.
    """
    device = torch.device(device)
    if method not in SEQUENTIAL_METHODS:
        raise ValueError(f"method {method!r}: sequential methods are {SEQUENTIAL_METHODS}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model = make_model(cfg, tasks.num_classes, seed, device)
    ewc = continual.EWC(cfg["ewc"]["lambda"]) if method == "ewc" else None
    state_path = run_dir / "state.pt"
    if state_path.exists():
        state = torch.load(state_path, map_location=device, weights_only=False)
        if list(state["order"]) != list(order):
            raise ValueError(f"{state_path} belongs to order {state['order']}, not {order}")
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
        fit(
            model,
            tasks.part(name, "train"),
            config,
            task_dir,
            loss_fn=loss_fn,
            eval_fn=_epoch_eval(tasks),
            device=device,
        )
        R.append(task_accuracies(model, tasks))
        log.info("R row %d (after %s): %s", k, name, R[-1])
        if ewc is not None and k < len(order):
            part = tasks.part(name, "train")
            fisher = continual.fisher_diagonal(
                model,
                part["x"],
                part["y"],
                chunk_size=cfg["ewc"].get("chunk_size", 16),
                per_sample=cfg["ewc"].get("fisher", "sample") == "sample",
            )
            ewc.consolidate(model, fisher)
        state = {
            "order": list(order),
            "done": k,
            "R": R,
            "model": model.state_dict(),
            "ewc": ewc.state_dict() if ewc is not None else None,
        }
        with atomic_path(state_path) as tmp:
            torch.save(state, tmp)
        _cleanup(task_dir)

    matrix = pd.DataFrame([[row[t] for t in order] for row in R], columns=list(order))
    matrix.insert(0, "after", ["none", *order])
    write_csv(run_dir / "R.csv", matrix)
    write_csv(run_dir / "curves.csv", sequence_curves(run_dir, order))
    metrics = continual.transfer_metrics(matrix[list(order)].to_numpy())
    result = {
        "method": method,
        "order_name": order_name or "_".join(order),
        "order": list(order),
        "seed": seed,
        **metrics,
        "final": R[-1],
        "device": device_description(device),
    }
    with atomic_path(run_dir / "model.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    write_json(run_dir / "eval.json", result)
    state_path.unlink(missing_ok=True)
    return result


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
    fit(model, tasks.union("train"), config, run_dir, eval_fn=_epoch_eval(tasks), device=device)
    final = task_accuracies(model, tasks)
    curves = pd.read_csv(run_dir / "metrics.csv")
    curves.insert(0, "task", "all")
    curves.insert(0, "step", curves["epoch"])
    write_csv(run_dir / "curves.csv", curves)
    result = {
        "method": MULTITASK,
        "order_name": MULTITASK_ORDER,
        "order": list(tasks.rows),
        "seed": seed,
        "acc": _mean(final),
        "final": final,
        "device": device_description(device),
    }
    (run_dir / "checkpoint.pt").unlink(missing_ok=True)  # model.pt stays
    write_json(run_dir / "eval.json", result)
    return result


def run_curriculum(
    tasks: Tasks, cfg: Mapping, run_dir: str | os.PathLike, device: torch.device
) -> dict:
    """Score each task by a model trained on it alone; order them easiest first.

    ``tasks`` must have ``fit`` (training rows) and ``heldout`` parts (see
    :func:`curriculum_parts`). The score is that model's accuracy on the task's
    held-out rows, ties broken by the held-out loss (:func:`curriculum_order`).
    """
    run_dir, device = Path(run_dir), torch.device(device)
    cur = cfg["curriculum"]
    scores = {}
    for name in tasks.rows:
        model = make_model(cfg, tasks.num_classes, cur["seed"], device)
        config = _train_config(cfg["train"], seed=cur["seed"], epochs=cur["epochs"])
        task_dir = run_dir / name
        fit(model, tasks.part(name, "fit"), config, task_dir, device=device)
        held = tasks.part(name, "heldout")
        model.eval()
        logits = predict(model, held["x"])
        loss = float(torch.nn.functional.cross_entropy(logits, held["y"]))
        scores[name] = {"acc": accuracy(held["y"], predictions(logits)), "loss": loss}
        log.info("curriculum: %s scores %s", name, scores[name])
        _cleanup(task_dir)
    order = curriculum_order(scores)
    result = {"order": order, "scores": scores, "device": device_description(device)}
    write_json(run_dir / "order.json", result)
    return result


def curriculum_parts(cfg: Mapping) -> dict[str, list[str]]:
    """Training and held-out split names of the curriculum's single-task models."""
    cur = cfg["curriculum"]
    return {"fit": list(cur["train_splits"]), "heldout": [cur["heldout_split"]]}


def pick_run_device(cfg: Mapping) -> torch.device:
    return pick_device(cfg.get("device", "auto"))


# --- report -------------------------------------------------------------------------------

METRICS = ("acc", "bwt", "fwt")


def collect_runs(eval_files: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per run: method, order (config name), sequence, seed, acc, bwt, fwt."""
    import json

    rows = []
    for path in eval_files:
        r = json.loads(Path(path).read_text(encoding="utf-8"))
        seq = MULTITASK_ORDER if r["method"] == MULTITASK else "_".join(r["order"])
        rows.append(
            {
                "method": r["method"],
                "order": r["order_name"],
                "sequence": seq,
                "seed": r["seed"],
                **{m: r.get(m, np.nan) for m in METRICS},
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
