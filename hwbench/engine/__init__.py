"""The one training loop every study uses.

Data are dicts of tensors sharing the first dimension (``"x"`` the model input,
``"y"`` labels, anything else a loss needs), moved to the device once. Each epoch
shuffles by an index permutation drawn from a generator seeded by the run seed;
batches are gathers of slices of that permutation, so the hot loop runs Python
per batch, never per sample. On CUDA the forward pass runs under bf16 autocast
with channels_last tensors; on the CPU a run is deterministic given the seed.

A study plugs in:

- ``loss_fn(outputs, batch) -> (loss, parts)``: ``outputs`` is whatever the model
  returns (a tensor, or a dict for several heads), ``parts`` a dict of named
  scalars logged as ``train_<name>`` / ``<set>_<name>``. An ``nn.Module`` loss
  (learned loss weights) is moved to the device, optimised and checkpointed too.
- ``metrics_fn(outputs, data) -> dict`` per evaluation set (default: accuracy and
  macro-F1 of the main head against ``data["y"]``), and ``eval_fn(model, epoch)
  -> dict`` for anything else (e.g. accuracy on every task of a sequence).

Each epoch appends a row to ``<run_dir>/metrics.csv``. ``<run_dir>/checkpoint.pt``
is written atomically every ``checkpoint_every_s`` seconds (checked after each step
and epoch), at the end of the run and on a preemption signal (model, optimizer,
scheduler, loss state, RNG states, early-stopping state, history, and inside an
epoch the position in it). Checkpoints are loaded weights-only: no code runs from
the file. :func:`fit` resumes from one only when the training config, the data (a processed store's
recorded digest and the selected rows, else a hash of the tensors) and the
caller's fingerprint all match; otherwise it starts over and says so. A job's
test results go to eval.json through :func:`write_result`, one shape for every
study.

Modules, one per concern: :mod:`~hwbench.engine.loop` (:func:`fit`),
:mod:`~hwbench.engine.batches` (data placement, batches without a host sync per step),
:mod:`~hwbench.engine.checkpoint` (checkpoints, resume, preemption),
:mod:`~hwbench.engine.state` (what a run holds), :mod:`~hwbench.engine.device`
(device, GPU claim, seeds, autocast), :mod:`~hwbench.engine.fingerprint`,
:mod:`~hwbench.engine.config` (:class:`TrainConfig`), :mod:`~hwbench.engine.compiled`
(``train.compile``), :mod:`~hwbench.engine.evaluation`
(default loss and metrics, :func:`predict`, :func:`evaluate`) and
:mod:`~hwbench.engine.results` (run-folder files, eval.json). Callers import from
``hwbench.engine``.
"""

from __future__ import annotations

from hwbench.engine.checkpoint import (
    PREEMPT_SIGNALS,
    CheckpointError,
    Preempted,
    load_weights,
    safe_load,
)
from hwbench.engine.config import TrainConfig
from hwbench.engine.device import (
    _gpu_lock_dir,
    autocast,
    claim_gpu,
    device_description,
    pick_device,
    seed_everything,
    uses_fp16,
)
from hwbench.engine.evaluation import (
    Data,
    cross_entropy_loss,
    default_metrics,
    evaluate,
    main_output,
    predict,
)
from hwbench.engine.fingerprint import data_fingerprint, run_fingerprint, transform_fingerprint
from hwbench.engine.loop import fit
from hwbench.engine.results import (
    BEST_MODEL,
    CHECKPOINT,
    FINAL_MODEL,
    METRICS,
    RUN_INFO,
    FitResult,
    result_record,
    write_result,
)
from hwbench.engine.state import EarlyStopping, EpochPosition, Run

__all__ = [
    "BEST_MODEL",
    "CHECKPOINT",
    "CheckpointError",
    "Data",
    "EarlyStopping",
    "EpochPosition",
    "FINAL_MODEL",
    "FitResult",
    "METRICS",
    "PREEMPT_SIGNALS",
    "Preempted",
    "RUN_INFO",
    "Run",
    "TrainConfig",
    "_gpu_lock_dir",
    "autocast",
    "claim_gpu",
    "cross_entropy_loss",
    "data_fingerprint",
    "default_metrics",
    "device_description",
    "evaluate",
    "fit",
    "load_weights",
    "main_output",
    "pick_device",
    "predict",
    "result_record",
    "run_fingerprint",
    "safe_load",
    "seed_everything",
    "transform_fingerprint",
    "uses_fp16",
    "write_result",
]
