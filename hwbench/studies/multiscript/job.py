"""One training job of the multiscript study: data, heads, losses, engine.fit.

What is particular to this paper, on top of the shared engine (the label grid is
described in :mod:`hwbench.studies.multiscript.spec`):

* the heads and losses of the compared models (eq. 1-3, plus uncertainty weighting);
* each script's images of a processed dataset, with their grid labels.

Aux label of the New model (eq. 3), derived from the main head's current prediction:
``aux = 2 * row_right + column_right``, i.e.

    3 = row and column right (the label is right)
    2 = only the row right (script / consonant)
    1 = only the column right (digit / vowel order)
    0 = neither
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hwbench.rows import cat_with_origin
from hwbench.studies.multiscript.spec import SINGLE_SCRIPT, check_method, scripts_of

# ---------------------------------------------------------------------------
# The task grid


def row_col(labels: torch.Tensor | np.ndarray, n_cols: int):
    """Split grid labels into (row, column): ``label // n_cols``, ``label % n_cols``."""
    return labels // n_cols, labels % n_cols


def aux_labels(pred: torch.Tensor, target: torch.Tensor, n_cols: int) -> torch.Tensor:
    """The New model's 4-class aux target: 2 * (row right) + (column right).

    3 = label right, 2 = only the row right, 1 = only the column right, 0 = neither.
    """
    pred_row, pred_col = row_col(pred, n_cols)
    row, col = row_col(target, n_cols)
    return 2 * (pred_row == row).long() + (pred_col == col).long()


# ---------------------------------------------------------------------------
# Heads

# Tasks weighted by uncertainty weighting, in the order of UncertaintyLoss.log_vars.
UW_TASKS = ("main", "col", "row")


def head_sizes(group: str, method: str) -> dict[str, int]:
    """Output heads of a model: ``main`` always, plus the method's auxiliary heads.

    Single-script models (lat/arab/kan) classify the 10 digits of their script only.
    """
    spec = check_method(group, method)
    if method in SINGLE_SCRIPT:
        return {"main": spec.n_cols}
    heads = {"main": spec.n_classes}
    if method in ("wloss", "uw"):
        heads.update(col=spec.n_cols, row=spec.n_rows)
    elif method == "new":
        heads["aux"] = 4
    return heads


def build(group: str, method: str, model_cfg: Mapping) -> nn.Module:
    """The model of one run: a hwbench model (config section ``model``) with the
    method's extra heads. Hard parameter sharing: every head reads the same
    penultimate features.
    """
    from hwbench.models import model_from_config

    heads = head_sizes(group, method)
    model = model_from_config(model_cfg, heads.pop("main"))
    for name, n_out in heads.items():
        model.add_head(name, n_out)
    return model


# ---------------------------------------------------------------------------
# Losses: each returns (loss, parts) with parts the per-task values to log.


def _ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # float32 CE even under bf16 autocast: the terms are weighted against each other
    return F.cross_entropy(logits.float(), target)


def main_logits(outputs) -> torch.Tensor:
    """The main head's logits (a model without extra heads returns them bare)."""
    return outputs["main"] if isinstance(outputs, Mapping) else outputs


def base_loss(outputs, y: torch.Tensor):
    """Eq. 1: cross-entropy of the main head."""
    main = _ce(main_logits(outputs), y)
    return main, {"main": main.detach()}


def wloss_loss(
    outputs: dict[str, torch.Tensor], y: torch.Tensor, n_cols: int, sigma1: float, sigma2: float
):
    """Eq. 2: CE(main) + sigma1 * CE(column head) + sigma2 * CE(row head).

    The paper's y1 is the digit (column) and y2 the script (row).
    """
    row, col = row_col(y, n_cols)
    main = _ce(outputs["main"], y)
    col_loss = _ce(outputs["col"], col)
    row_loss = _ce(outputs["row"], row)
    loss = main + sigma1 * col_loss + sigma2 * row_loss
    return loss, {"main": main.detach(), "col": col_loss.detach(), "row": row_loss.detach()}


def uw_loss(outputs: dict[str, torch.Tensor], y: torch.Tensor, n_cols: int, log_vars):
    """Uncertainty weighting (Kendall et al. 2018) of the Wloss tasks.

    For a classification task with ``s = log sigma^2`` Kendall's loss is
    ``L / sigma^2 + log sigma = exp(-s) * L + s / 2``; summed over main, column, row.
    """
    row, col = row_col(y, n_cols)
    losses = {
        "main": _ce(outputs["main"], y),
        "col": _ce(outputs["col"], col),
        "row": _ce(outputs["row"], row),
    }
    stacked = torch.stack([losses[t] for t in UW_TASKS])
    log_vars = log_vars.float()
    loss = (torch.exp(-log_vars) * stacked + 0.5 * log_vars).sum()
    parts = {name: value.detach() for name, value in losses.items()}
    for name, s in zip(UW_TASKS, log_vars.detach(), strict=True):
        parts[f"logvar_{name}"] = s
    return loss, parts


def new_loss(
    outputs: dict[str, torch.Tensor], y: torch.Tensor, n_cols: int, reduction: str = "sum"
):
    """Eq. 3: factor * CE(main) + CE(aux).

    The aux target comes from the main head's current prediction (:func:`aux_labels`);
    ``factor`` is the batch's aux labels added up (``sum``, as the paper says) or their
    mean (``mean``: independent of the batch size), detached from the graph.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"multiscript new.reduction must be 'sum' or 'mean', got {reduction!r}")
    logits = outputs["main"]
    with torch.no_grad():
        aux_target = aux_labels(logits.argmax(dim=1), y, n_cols)
        factor = aux_target.float().sum() if reduction == "sum" else aux_target.float().mean()
    main = _ce(logits, y)
    aux = _ce(outputs["aux"], aux_target)
    loss = factor * main + aux
    return loss, {"main": main.detach(), "aux": aux.detach(), "factor": factor}


class UncertaintyLoss(nn.Module):
    """:func:`uw_loss` with its log variances as learned parameters.

    An ``nn.Module`` loss: the engine optimises and checkpoints its parameters.
    """

    def __init__(self, n_cols: int, init_log_var: float = 0.0):
        super().__init__()
        self.n_cols = n_cols
        self.log_vars = nn.Parameter(torch.full((len(UW_TASKS),), float(init_log_var)))

    def forward(self, outputs, batch):
        return with_accuracy(
            outputs, batch, uw_loss(outputs, batch["y"], self.n_cols, self.log_vars)
        )


def with_accuracy(outputs, batch, loss_parts):
    """Add the main head's batch accuracy to the logged parts (for the curves)."""
    loss, parts = loss_parts
    parts["acc"] = (main_logits(outputs).detach().argmax(dim=1) == batch["y"]).float().mean()
    return loss, parts


def make_loss(group: str, method: str, params: dict | None = None):
    """The engine loss ``(outputs, batch) -> (loss, parts)`` of one method.

    ``params`` are the method's hyper-parameters for this group: ``sigma1``/``sigma2``
    for wloss, ``init_log_var`` for uw, ``reduction`` for new; nothing for the others.
    """
    spec = check_method(group, method)
    params = params or {}
    n_cols = spec.n_cols
    if method == "uw":
        return UncertaintyLoss(n_cols, params.get("init_log_var", 0.0))
    if method == "wloss":
        s1, s2 = float(params["sigma1"]), float(params["sigma2"])

        def loss(outputs, y):
            return wloss_loss(outputs, y, n_cols, s1, s2)
    elif method == "new":
        reduction = params.get("reduction", "sum")

        def loss(outputs, y):
            return new_loss(outputs, y, n_cols, reduction)
    else:  # the single-script models and Base: eq. 1
        loss = base_loss

    def loss_fn(outputs, batch):
        return with_accuracy(outputs, batch, loss(outputs, batch["y"]))

    return loss_fn


# ---------------------------------------------------------------------------
# Data: which images of a processed dataset belong to a script, and their grid labels


def grid_labels(group: str, method: str, script: str, positions: np.ndarray) -> np.ndarray:
    """Class index a model is trained on for images of ``script`` at charset ``positions``.

    Single-script models: the digit (0-9). Digits group: ``row * 10 + digit`` with the
    row the script's place in (Latin, Arabic, Kannada). Amharic: the charset position,
    already ``row * 7 + column``.
    """
    spec = check_method(group, method)
    if script not in spec.scripts:
        raise ValueError(f"script {script!r} is not part of the {group} group {spec.scripts}")
    if method in SINGLE_SCRIPT or group == "amharic":
        return positions.copy()
    return spec.scripts.index(script) * spec.n_cols + positions


@dataclass
class ScriptData:
    """One split of the job's data: uint8 images, grid labels, and each image's script."""

    x: torch.Tensor
    y: torch.Tensor
    script: np.ndarray


def load_job_data(
    group: str,
    method: str,
    sources: Mapping[str, Mapping],
    paths: Mapping[str, tuple],
    split_names: tuple[str, ...] = ("train", "val", "test"),
) -> dict[str, ScriptData]:
    """The images of every script of the job, per split, with their grid labels.

    ``sources[script]`` names the dataset and charset; ``paths[script]`` is
    ``(processed_dir, split_csv)``. Rows come in dataset order, script after script.
    Each dataset and split file is read once (the three digit scripts of the
    embedded default share one dataset).
    """
    from hwbench.data import charset_classes, select
    from hwbench.store import load_processed, read_split

    datasets, split_files = {}, {}
    parts: dict[str, list] = {name: [] for name in split_names}
    for script in scripts_of(group, method):
        processed_dir, split_csv = (str(p) for p in paths[script])
        if processed_dir not in datasets:
            datasets[processed_dir] = load_processed(processed_dir, mmap=True)
        if split_csv not in split_files:
            split_files[split_csv] = read_split(split_csv)
        charset = sources[script]["charset"]
        classes = charset_classes([charset])
        for name in split_names:
            try:
                part = select(
                    datasets[processed_dir],
                    split_files[split_csv],
                    [name],
                    classes=classes,
                    where=f"{processed_dir} with {split_csv}",
                )
            except ValueError as err:
                raise ValueError(
                    f"no {charset} images in split {name!r}: {err}; "
                    f"check multiscript.sources.{script} and the split file"
                ) from err
            x, positions = part.tensors()
            y = grid_labels(group, method, script, positions.numpy())
            parts[name].append((x, torch.from_numpy(y), np.full(len(part), script)))
    return {
        name: ScriptData(
            cat_with_origin([p[0] for p in chunks]),
            torch.cat([p[1] for p in chunks]),
            np.concatenate([p[2] for p in chunks]),
        )
        for name, chunks in parts.items()
    }


# ---------------------------------------------------------------------------
# One training job


def test_metrics(group: str, method: str, splits, outputs) -> dict:
    """Per-script test accuracy, macro-F1 and size; New adds its aux head's accuracy."""
    from hwbench.metrics import accuracy, macro_f1, predictions

    pred = predictions(main_logits(outputs))
    y = splits["test"].y.numpy()
    metrics: dict = {"accuracy": {}, "macro_f1": {}, "n_test": {}}
    for script in scripts_of(group, method):
        mask = splits["test"].script == script
        metrics["accuracy"][script] = accuracy(y[mask], pred[mask])
        metrics["macro_f1"][script] = macro_f1(y[mask], pred[mask])
        metrics["n_test"][script] = int(mask.sum())
    if method == "new":
        # How well the aux head reads the main head's test-time correctness.
        n_cols = check_method(group, method).n_cols
        aux_true = aux_labels(torch.from_numpy(pred), torch.from_numpy(y), n_cols)
        metrics["aux_accuracy"] = accuracy(aux_true.numpy(), predictions(outputs["aux"]))
    return metrics


def train_job(
    group: str,
    method: str,
    seed: int,
    sources: Mapping[str, Mapping],
    paths: Mapping[str, tuple],
    model_cfg: Mapping,
    train: Mapping,
    method_params: Mapping,
    eval_path,
    select: str = "best",
    device=None,
    progress: bool = True,
) -> dict:
    """Train one model of Table 4, test it and write its eval.json (``eval_path``; the
    run's checkpoint and metrics.csv go beside it). Returns the record.

    ``model_cfg`` and ``train`` are the config sections (model.schema.yaml,
    train.schema.yaml); ``select="best"`` tests the weights of the best monitored
    epoch (``train.monitor``, e.g. val_acc), ``"last"`` the final ones. The record's
    ``metrics`` hold per-script ``accuracy`` in [0, 1] (what Table 4 reports).
    """
    from hwbench import engine
    from hwbench.data import batch_transform

    if select not in ("best", "last"):
        raise ValueError(f"multiscript.select must be 'best' or 'last', got {select!r}")
    check_method(group, method)
    eval_path = Path(eval_path)
    device = engine.pick_device() if device is None else torch.device(device)
    splits = load_job_data(group, method, sources, paths)
    # uint8 images stay the stored input; each batch becomes model input on the device
    transform = batch_transform(model_cfg)
    data = {name: {"x": part.x, "y": part.y} for name, part in splits.items()}
    config = engine.TrainConfig.from_dict(train, seed=seed)
    engine.seed_everything(seed)
    model = build(group, method, model_cfg)
    loss_fn = make_loss(group, method, method_params)
    result = engine.fit(
        model,
        data["train"],
        config,
        eval_path.parent,
        loss_fn=loss_fn,
        eval_sets={"val": data["val"]},
        device=device,
        progress=progress,
        # a changed loss weight, model or source retrains: the checkpoint must match too
        fingerprint={
            "sources": dict(sources),
            "model": dict(model_cfg),
            "method_params": dict(method_params),
        },
        restore=select,
        transform=transform,
    )
    model.eval()
    outputs = engine.predict(
        model,
        data["test"]["x"],
        config.eval_batch_size,
        config.amp,
        transform=transform,
        device=device,
    )
    metrics = test_metrics(group, method, splits, outputs)
    tested = select == "best" and result.best_epoch is not None
    metrics.update(
        n_train=int(len(splits["train"].y)),
        n_val=int(len(splits["val"].y)),
        classes=head_sizes(group, method)["main"],
        selected=f"best {config.monitor} (epoch {result.best_epoch})" if tested else "last",
    )
    if isinstance(loss_fn, torch.nn.Module):
        # learned loss weights (UW's log variances) end the run with the model
        metrics["loss_state"] = {k: v.tolist() for k, v in loss_fn.state_dict().items()}
    return engine.write_result(
        eval_path, result, metrics, group=group, method=method, seed=int(seed)
    )
