"""What a run leaves behind: the files of its run folder, :class:`FitResult`,
metrics.csv and the one eval.json shape of every study (:func:`write_result`)."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from hwbench.store import atomic_path, write_json

if TYPE_CHECKING:  # a training job starts without pandas
    import pandas as pd

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"
FINAL_MODEL = "model.pt"
BEST_MODEL = "best.pt"
RUN_INFO = "run.json"


@dataclass
class FitResult:
    history: list[dict]
    best_epoch: int | None
    best_value: float | None
    stop_reason: str  # "epochs", "patience" or "plateau"
    device: str
    wall_s: float
    run_dir: Path | None

    @property
    def final(self) -> dict:
        return self.history[-1]

    @property
    def metrics(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.history)


def _plain(value):
    """Python scalars for what goes in a checkpoint (weights_only loads no NumPy)."""
    if isinstance(value, np.generic | torch.Tensor) and np.ndim(value) == 0:
        return value.item()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def result_record(result: FitResult, metrics: Mapping, **identity) -> dict:
    """The one eval.json shape of every study: who the run is, what it scored, how
    it trained. ``identity``: the run's wildcards (e.g. group, method, seed);
    ``metrics``: the study's test results (JSON-like)."""
    return {
        **identity,
        "metrics": json.loads(json.dumps(_plain(dict(metrics)), default=_plain)),
        "fit": {
            "device": result.device,
            "wall_s": result.wall_s,
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "best_value": result.best_value,
            "stop_reason": result.stop_reason,
        },
    }


def write_result(path: str | os.PathLike, result: FitResult, metrics: Mapping, **identity):
    """Write :func:`result_record` to ``path`` (a job's eval.json), atomically."""
    record = result_record(result, metrics, **identity)
    write_json(path, record)
    return record


def _write_metrics(run_dir: Path | None, history: list[dict]) -> None:
    if run_dir is not None:
        write_history_csv(run_dir / METRICS, history)


def write_history_csv(path: str | os.PathLike, history: list[dict]) -> None:
    """``history`` (one dict per epoch) as CSV, atomically, byte for byte what
    ``pandas.DataFrame(history).to_csv(path, index=False)`` writes (tested): columns
    in order of first appearance, an empty field for a missing value or NaN, and a
    numeric column with a float or a missing value written as floats (pandas holds
    it as float64)."""
    columns = list(dict.fromkeys(k for row in history for k in row))
    floats = {c for c in columns if _float_column([row.get(c) for row in history])}
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(columns)
        for row in history:
            out.writerow([_csv_field(row.get(c), c in floats) for c in columns])


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _float_column(values: list) -> bool:
    present = [v for v in values if v is not None]
    numeric = present and all(_is_number(v) for v in present)
    return bool(numeric) and (
        len(present) < len(values) or any(isinstance(v, float) for v in present)
    )


def _csv_field(value, as_float: bool):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if as_float or isinstance(value, float):
        return repr(float(value))
    return value
