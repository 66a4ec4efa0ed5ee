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


class MultiHead(nn.Module):
    """Shared trunk (hard parameter sharing) with one linear head per task.

    ``backbone`` is a hwbench model; its ``features(x)`` gives the penultimate
    features and its own final layer serves as the ``main`` head. ``log_vars``
    holds the learned log-variances of uncertainty weighting (``uw``), so they are
    model parameters the optimiser updates and the checkpoint saves.
    """

    def __init__(
        self,
        backbone: nn.Module,
        main_head: nn.Module,
        feature_dim: int,
        extra_heads: dict[str, int],
        uncertainty_tasks: tuple[str, ...] = (),
        init_log_var: float = 0.0,
    ):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict({"main": main_head})
        for name, n_out in extra_heads.items():
            self.heads[name] = nn.Linear(feature_dim, n_out)
        self.uncertainty_tasks = tuple(uncertainty_tasks)
        if self.uncertainty_tasks:
            self.log_vars = nn.Parameter(torch.full((len(self.uncertainty_tasks),), init_log_var))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.features(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.features(x)
        return {name: head(feats) for name, head in self.heads.items()}


# ---------------------------------------------------------------------------
# Losses: each returns (loss, parts) with parts the per-task values to log.


def _ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # float32 CE even under bf16 autocast: the terms are weighted against each other
    return F.cross_entropy(logits.float(), target)


def base_loss(outputs: dict[str, torch.Tensor], y: torch.Tensor):
    """Eq. 1: cross-entropy of the main head."""
    main = _ce(outputs["main"], y)
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


UW_TASKS = ("main", "col", "row")


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
    main_logits = outputs["main"]
    with torch.no_grad():
        aux_target = aux_labels(main_logits.argmax(dim=1), y, n_cols)
        factor = aux_target.float().sum() if reduction == "sum" else aux_target.float().mean()
    main = _ce(main_logits, y)
    aux = _ce(outputs["aux"], aux_target)
    loss = factor * main + aux
    return loss, {"main": main.detach(), "aux": aux.detach(), "factor": factor}


def make_loss(group: str, method: str, params: dict | None = None):
    """The loss callable ``(outputs, y, model) -> (loss, parts)`` of one method.

    ``params`` are the method's hyper-parameters for this group: ``sigma1``/``sigma2``
    for wloss, ``reduction`` for new; nothing for the others.
    """
    spec = check_method(group, method)
    params = params or {}
    n_cols = spec.n_cols
    if method in SINGLE_SCRIPT or method == "base":
        return lambda outputs, y, model=None: base_loss(outputs, y)
    if method == "wloss":
        s1, s2 = float(params["sigma1"]), float(params["sigma2"])
        return lambda outputs, y, model=None: wloss_loss(outputs, y, n_cols, s1, s2)
    if method == "uw":
        return lambda outputs, y, model: uw_loss(outputs, y, n_cols, model.log_vars)
    reduction = params.get("reduction", "sum")
    return lambda outputs, y, model=None: new_loss(outputs, y, n_cols, reduction)


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
