"""How to train: :class:`TrainConfig`, one field per key of a study's ``train`` section."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from hwbench import recompute

COMPILE_MODES = ("off", "default", "reduce-overhead")


@dataclass
class TrainConfig:
    """How to train; every field has the meaning of the same-named config key.

    ``batch_schedule`` (``[[epochs, batch_size], ...]``) trains in stages with
    growing batches, as the adaptation paper does; it then fixes the epoch count.
    Early stopping watches ``monitor`` (a metrics.csv column, e.g. ``val_loss``):
    ``patience`` epochs without an improvement of more than ``min_delta`` stop the
    run; ``stop_eps`` stops it when ``|m(k) - m(k-1)| < stop_eps`` (the transfer
    paper's rule). ``trainable``: parameter-name prefixes to train (e.g.
    ``["head"]``); everything else is frozen. ``max_steps`` caps the batches of each
    epoch (a rehearsal of a large job); ``checkpoint_every_s``: a checkpoint is written
    when that long has passed since the last one, checked after every step and at
    every epoch end (0: after each; None: never by time), and always at the end of
    the run and on a preemption signal.
    Training data larger than ``data_on_device_mb`` stay in host memory and each
    batch is copied to the device (None: always on the device).
    ``activation_checkpointing`` (``never``, ``always``, ``cpu``: only on the CPU)
    recomputes each residual block's activations in the backward pass instead of
    keeping them (:mod:`hwbench.recompute`): the same step in about half the memory.
    ``compile`` (``off``, ``default``, ``reduce-overhead``): the training forward pass
    through ``torch.compile`` in that mode (:mod:`hwbench.engine.compiled`); a model
    that cannot be compiled trains eagerly, with a logged reason.
    """

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    batch_schedule: list[list[int]] = field(default_factory=list)
    seed: int = 0
    monitor: str = "val_loss"
    mode: str = "min"
    patience: int | None = None
    min_delta: float = 0.0
    stop_eps: float | None = None
    trainable: list[str] | None = None
    amp: bool = True
    channels_last: bool = True
    eval_batch_size: int = 1024
    max_steps: int | None = None
    checkpoint_every_s: float | None = 600.0
    data_on_device_mb: float | None = 4096.0
    activation_checkpointing: str = "never"
    compile: str = "off"

    def __post_init__(self):
        recompute.check_setting(self.activation_checkpointing)
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer={self.optimizer!r}: use 'adam' or 'sgd'")
        if self.compile is False:  # YAML 1.1 reads an unquoted `off` as false
            self.compile = "off"
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile={self.compile!r}: use one of {list(COMPILE_MODES)}")
        if self.mode not in ("min", "max"):
            raise ValueError(f"mode={self.mode!r}: use 'min' or 'max'")
        if self.batch_schedule:
            self.batch_schedule = [[int(e), int(b)] for e, b in self.batch_schedule]
            self.epochs = sum(e for e, _ in self.batch_schedule)
        self.lr_milestones = [int(m) for m in self.lr_milestones]
        if self.trainable is not None:
            self.trainable = list(self.trainable)
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs={self.epochs}, batch_size={self.batch_size}: must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps={self.max_steps}: must be >= 1 (or null: no cap)")

    @classmethod
    def from_dict(cls, values: Mapping, **overrides) -> TrainConfig:
        """From a config section; unknown keys are an error naming them."""
        values = {**values, **overrides}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training keys {unknown}; known: {sorted(known)}")
        return cls(**values)

    def batch_size_at(self, epoch: int) -> int:
        """Batch size of 1-based ``epoch``."""
        end = 0
        for stage_epochs, size in self.batch_schedule:
            end += stage_epochs
            if epoch <= end:
                return size
        return self.batch_size
