"""The state of one training job: what :func:`hwbench.engine.fit` checkpoints and
restores (:class:`Run`, the position inside an epoch, early stopping)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from hwbench.engine.config import TrainConfig
from hwbench.engine.results import CHECKPOINT


@dataclass
class EarlyStopping:
    """Tracks the monitored value; decides improvement and stopping."""

    mode: str = "min"
    patience: int | None = None
    min_delta: float = 0.0
    stop_eps: float | None = None
    best: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    last: float | None = None

    def update(self, value: float, epoch: int) -> tuple[bool, str | None]:
        """``(improved, stop_reason)`` after an epoch whose monitored value is ``value``."""
        if self.best is None:
            improved = True
        elif self.mode == "min":
            improved = value < self.best - self.min_delta
        else:
            improved = value > self.best + self.min_delta
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        reason = None
        if self.patience is not None and self.bad_epochs >= self.patience:
            reason = "patience"
        elif (
            self.stop_eps is not None
            and self.last is not None
            and abs(value - self.last) < self.stop_eps
        ):
            reason = "plateau"
        self.last = value
        return improved, reason


@dataclass
class EpochPosition:
    """Where a run stands inside an epoch: enough to resume it exactly."""

    epoch: int
    perm: torch.Tensor  # this epoch's sample order (CPU)
    step: int = 0  # batches done
    total: torch.Tensor | None = None  # loss x samples so far
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    seen: int = 0


@dataclass
class Run:
    """Everything one training job holds: what :func:`fit` checkpoints and restores."""

    model: nn.Module
    loss_fn: Callable
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    stopper: EarlyStopping
    config: TrainConfig
    device: torch.device
    fingerprint: dict
    run_dir: Path | None
    history: list[dict] = field(default_factory=list)
    stop_reason: str | None = None
    wall_before: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    position: EpochPosition | None = None
    best_state: dict | None = None  # best weights when there is no run_dir
    transform: Callable | None = None  # per batch: stored input -> model input
    channels_last: bool = False
    recompute: bool = False  # residual blocks are activation-checkpointed
    forward: Callable | None = None  # the training step's model call (train.compile)
    last_checkpoint: float = field(default_factory=time.monotonic)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / CHECKPOINT if self.run_dir is not None else None

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.started
