"""Multi-script digit recognition with multi-task learning (Gondere et al.; Table 4).

What is particular to this paper, on top of the shared engine:

* the task grid: a label is a cell of a rows x columns table (Table 1 of the paper).
  Digits: 3 scripts (rows: Latin, Arabic, Kannada) x 10 digits (columns), label =
  row * 10 + column. Amharic: 11 consonants (rows) x 7 vowel orders (columns),
  label = row * 7 + column. So ``row = label // n_cols`` and ``column = label % n_cols``.
* the heads and losses of the compared models (eq. 1-3, plus uncertainty weighting);
* the selection of each script's images from a processed dataset;
* the layout of Table 4 and the paper's numbers.

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

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------
# The task grid


@dataclass(frozen=True)
class Group:
    """A family of runs sharing one label grid: the digits of three scripts, or Amharic."""

    name: str
    scripts: tuple[str, ...]  # the sources whose images make up the rows' data
    n_rows: int
    n_cols: int
    methods: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return self.n_rows * self.n_cols


DIGIT_SCRIPTS = ("latin", "arabic", "kannada")
SINGLE_SCRIPT = {"lat": "latin", "arab": "arabic", "kan": "kannada"}
MULTI_TASK = ("base", "wloss", "uw", "new")

GROUPS = {
    "digits": Group("digits", DIGIT_SCRIPTS, 3, 10, (*SINGLE_SCRIPT, *MULTI_TASK)),
    "amharic": Group("amharic", ("amharic",), 11, 7, MULTI_TASK),
}

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
COLUMNS = ["Latin", "Arabic", "Kannada", "Average", "Range", "Amharic"]
SCRIPT_COLUMN = {"latin": "Latin", "arabic": "Arabic", "kannada": "Kannada", "amharic": "Amharic"}

# Table 4 of the paper (accuracy, %). "-" cells are None; the single-script models'
# 0 cells mean "not evaluated on that script" (a 10-class model has no output for it).
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


def check_method(group: str, method: str) -> Group:
    """The group spec, with a clear error for an unknown group or method."""
    if group not in GROUPS:
        raise ValueError(f"unknown multiscript group {group!r}; choose from {list(GROUPS)}")
    spec = GROUPS[group]
    if method not in spec.methods:
        raise ValueError(f"method {method!r} is not run for {group}; choose from {spec.methods}")
    return spec


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


def charset_positions(meta: pd.DataFrame, chars: str, where: str = "meta.csv") -> np.ndarray:
    """Position of each row's ``label_name`` inside ``chars`` (-1 where it is not in it).

    Selecting by character, not by label id, works the same for the embedded dataset
    (global ids) and the real ones (each dataset's own ids): both name the character.
    """
    if "label_name" not in meta.columns:
        raise ValueError(f"{where} has no label_name column; regenerate the processed dataset")
    lookup = {c: i for i, c in enumerate(chars)}
    return meta["label_name"].astype(str).map(lookup).fillna(-1).astype(np.int64).to_numpy()


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


def scripts_of(group: str, method: str) -> tuple[str, ...]:
    """The scripts whose images a run trains and is tested on."""
    spec = check_method(group, method)
    return (SINGLE_SCRIPT[method],) if method in SINGLE_SCRIPT else spec.scripts


# ---------------------------------------------------------------------------
# Table 4


def table4_values(evals: list[dict]) -> pd.DataFrame:
    """Per-seed Table 4 values (accuracy in %) from the runs' eval records.

    Each record has ``group``, ``method``, ``seed`` and ``accuracy`` (script ->
    test accuracy in [0, 1]). Returns one row per (model, seed) with the columns
    of :data:`COLUMNS`; Average and Range (max - min) are over the three digit
    scripts of the same run, so their sd is over seeds too. A cell the model is not
    evaluated on is NaN (see :func:`cell_text` for how it is printed).
    """
    rows: dict[tuple[str, int], dict] = {}
    for rec in evals:
        check_method(rec["group"], rec["method"])
        key = (ROW_NAMES[rec["method"]], int(rec["seed"]))
        row = rows.setdefault(key, {"model": key[0], "seed": key[1]})
        for script, acc in rec["accuracy"].items():
            row[SCRIPT_COLUMN[script]] = 100.0 * float(acc)
        if rec["group"] == "digits" and rec["method"] in MULTI_TASK:
            accs = [100.0 * float(rec["accuracy"][s]) for s in DIGIT_SCRIPTS]
            row["Average"] = float(np.mean(accs))
            row["Range"] = float(np.max(accs) - np.min(accs))
    frame = pd.DataFrame(list(rows.values()), columns=["model", "seed", *COLUMNS])
    order = {name: i for i, name in enumerate(ROW_NAMES.values())}
    frame = frame.sort_values(
        ["model", "seed"], key=lambda c: c.map(order) if c.name == "model" else c
    )
    return frame.reset_index(drop=True)


def not_evaluated(model: str, column: str) -> str | None:
    """How Table 4 prints a cell no run fills: "0" or "-" as the paper, else None.

    The paper prints 0 for a single-script model on the other two scripts (a 10-class
    model of one script is not evaluated there) and "-" for its Average, Range and
    Amharic cells.
    """
    single = {"Lat": "Latin", "Arab": "Arabic", "Kan": "Kannada"}
    if model in single and column != single[model]:
        return "0" if column in ("Latin", "Arabic", "Kannada") else "-"
    return None


# ---------------------------------------------------------------------------
# One training job


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
    ``(processed_dir, split_csv)``. Each dataset and split file is read once (the
    three digit scripts of the embedded default share one dataset).
    """
    from hwbench.charsets import CHARSETS
    from hwbench.store import load_processed, read_split

    datasets, split_files = {}, {}
    parts: dict[str, list] = {name: [] for name in split_names}
    for script in scripts_of(group, method):
        processed_dir, split_csv = (str(p) for p in paths[script])
        if processed_dir not in datasets:
            datasets[processed_dir] = load_processed(processed_dir, mmap=True)
        if split_csv not in split_files:
            split_files[split_csv] = read_split(split_csv)
        data, split = datasets[processed_dir], split_files[split_csv]
        charset = sources[script]["charset"]
        pos = charset_positions(data.meta, CHARSETS[charset], f"{processed_dir}/meta.csv")
        for name in split_names:
            index = split.loc[split["split"] == name, "index"].to_numpy()
            if len(index) and (index.min() < 0 or index.max() >= len(data.images)):
                raise ValueError(
                    f"{split_csv}: index out of range for {processed_dir} "
                    f"({len(data.images)} images); rebuild the split file"
                )
            # image order, so every split keeps the dataset's order whatever the split file's
            index = np.sort(index[pos[index] >= 0])
            if not len(index):
                raise ValueError(
                    f"{processed_dir} has no {charset} images in split {name!r} of "
                    f"{split_csv}; check multiscript.sources.{script} and the split file"
                )
            parts[name].append(
                (
                    torch.from_numpy(np.ascontiguousarray(data.images[index])),
                    torch.from_numpy(grid_labels(group, method, script, pos[index])),
                    np.full(len(index), script),
                )
            )
    return {
        name: ScriptData(
            torch.cat([p[0] for p in chunks]),
            torch.cat([p[1] for p in chunks]),
            np.concatenate([p[2] for p in chunks]),
        )
        for name, chunks in parts.items()
    }


def train_job(
    group: str,
    method: str,
    seed: int,
    sources: Mapping[str, Mapping],
    paths: Mapping[str, tuple],
    model_cfg: Mapping,
    train: Mapping,
    method_params: Mapping,
    run_dir,
    select: str = "best",
    device=None,
    progress: bool = True,
) -> dict:
    """Train one model of Table 4 and test it; returns the eval record (eval.json).

    ``model_cfg`` and ``train`` are the config sections (model.schema.yaml,
    train.schema.yaml); ``select="best"`` tests the weights of the best monitored
    epoch (``train.monitor``, e.g. val_acc), ``"last"`` the final ones.
    """
    from pathlib import Path

    from hwbench import engine
    from hwbench.data import input_options, to_model_input
    from hwbench.metrics import accuracy, macro_f1, predictions

    if select not in ("best", "last"):
        raise ValueError(f"multiscript.select must be 'best' or 'last', got {select!r}")
    spec = check_method(group, method)
    run_dir = Path(run_dir)
    job = {"group": group, "method": method, "seed": seed, "sources": dict(sources)}
    settings = {
        "model": dict(model_cfg),
        "train": dict(train),
        "method_params": dict(method_params),
    }

    device = engine.pick_device() if device is None else torch.device(device)
    splits = load_job_data(group, method, sources, paths)
    prep = input_options(model_cfg)
    data = {
        name: {"x": to_model_input(part.x, device, **prep), "y": part.y.to(device)}
        for name, part in splits.items()
    }
    config = engine.TrainConfig.from_dict(train, seed=seed)
    engine.seed_everything(seed)
    model = build(group, method, model_cfg)
    loss_fn = make_loss(group, method, method_params)
    result = engine.fit(
        model,
        data["train"],
        config,
        run_dir,
        loss_fn=loss_fn,
        eval_sets={"val": data["val"]},
        device=device,
        progress=progress,
        # a changed loss weight or model retrains: the checkpoint must match these too
        fingerprint={**job, **settings},
    )

    selected = "last"
    best = run_dir / engine.BEST_MODEL
    if select == "best" and best.exists():
        model.load_state_dict(torch.load(best, map_location=device, weights_only=True))
        selected = f"best {config.monitor} (epoch {result.best_epoch})"
    model.eval()
    outputs = engine.predict(model, data["test"]["x"], config.eval_batch_size, config.amp)
    pred = predictions(main_logits(outputs))
    y = splits["test"].y.numpy()
    n_classes = head_sizes(group, method)["main"]
    record = {
        **job,
        **settings,
        "accuracy": {},
        "macro_f1": {},
        "n_test": {},
        "n_train": int(len(splits["train"].y)),
        "n_val": int(len(splits["val"].y)),
        "classes": n_classes,
        "selected": selected,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stop_reason": result.stop_reason,
        "device": result.device,
        "train_wall_s": result.wall_s,
    }
    if isinstance(loss_fn, torch.nn.Module):
        # learned loss weights (UW's log variances) end the run with the model
        record["loss_state"] = {k: v.tolist() for k, v in loss_fn.state_dict().items()}
    for script in scripts_of(group, method):
        mask = splits["test"].script == script
        record["accuracy"][script] = accuracy(y[mask], pred[mask])
        record["macro_f1"][script] = macro_f1(y[mask], pred[mask])
        record["n_test"][script] = int(mask.sum())
    if method == "new":
        # How well the aux head reads the main head's test-time correctness.
        aux_true = aux_labels(torch.from_numpy(pred), torch.from_numpy(y), spec.n_cols)
        record["aux_accuracy"] = accuracy(aux_true.numpy(), predictions(outputs["aux"]))
    return record


def paper_value_text(model: str, column: str) -> str:
    """The paper's cell as printed: a number, "0" or "-" ("-" too for a row it lacks)."""
    value = PAPER_TABLE4.get(model, {}).get(column)
    return "-" if value is None else f"{value:.2f}"


def table4(evals: list[dict], digits: int = 2) -> pd.DataFrame:
    """Table 4: per model, each column as "mean ± sd" over seeds, the paper's value and
    our mean minus the paper's.

    Cells no run fills print as the paper does (:func:`not_evaluated`); a paper cell
    the paper leaves out, or a row it lacks (UW), is "-", and so is its difference.
    """
    from hwbench.report import aggregate, format_mean_sd

    values = table4_values(evals)
    agg = aggregate(values, ["model"], COLUMNS)
    rows = []
    for _, r in agg.iterrows():
        model = r["model"]
        row = {"model": model, "seeds": int(max(r[f"{c}_n"] for c in COLUMNS))}
        for col in COLUMNS:
            mean, sd = r[f"{col}_mean"], r[f"{col}_sd"]
            ours = format_mean_sd(mean, sd, digits) or not_evaluated(model, col) or "-"
            paper = PAPER_TABLE4.get(model, {}).get(col)
            diff = "-"
            if not pd.isna(mean) and paper is not None:
                diff = f"{round(mean - paper, digits) + 0.0:+.{digits}f}"
            row[col] = ours
            row[f"{col} paper"] = paper_value_text(model, col)
            row[f"{col} diff"] = diff
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
