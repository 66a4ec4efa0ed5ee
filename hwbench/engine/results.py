"""What a run leaves behind: the files of its run folder, :class:`FitResult`,
metrics.csv and the one eval.json shape of every study (:func:`write_result`)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hwbench.store import write_csv, write_json

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
        write_csv(run_dir / METRICS, pd.DataFrame(history))
