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

Each epoch appends a row to ``<run_dir>/metrics.csv`` and writes
``<run_dir>/checkpoint.pt`` atomically (model, optimizer, scheduler, loss state,
RNG states, early-stopping state, history, and inside an epoch the position in
it). Checkpoints are loaded weights-only: no code runs from the file. :func:`fit`
resumes from one only when the training config, a hash of the data and the
caller's fingerprint all match; otherwise it starts over and says so. A job's
test results go to eval.json through :func:`write_result`, one shape for every
study.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import inspect
import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from hwbench import recompute
from hwbench.metrics import classification_metrics
from hwbench.rows import StoredRows
from hwbench.store import atomic_path, write_csv, write_json

log = logging.getLogger("hwbench.engine")

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"
FINAL_MODEL = "model.pt"
BEST_MODEL = "best.pt"
RUN_INFO = "run.json"

Data = Mapping[str, torch.Tensor]


# --- configuration ------------------------------------------------------------------


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
    epoch (a rehearsal of a large job); ``checkpoint_every_s`` writes a mid-epoch
    checkpoint at least that often (None: only at epoch ends and on a signal).
    Training data larger than ``data_on_device_mb`` stay in host memory and each
    batch is copied to the device (None: always on the device).
    ``activation_checkpointing`` (``never``, ``always``, ``cpu``: only on the CPU)
    recomputes each residual block's activations in the backward pass instead of
    keeping them (:mod:`hwbench.recompute`): the same step in about half the memory.
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
    checkpoint_every_s: float | None = 300.0
    data_on_device_mb: float | None = 4096.0
    activation_checkpointing: str = "never"

    def __post_init__(self):
        recompute.check_setting(self.activation_checkpointing)
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer={self.optimizer!r}: use 'adam' or 'sgd'")
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


# --- devices and seeds --------------------------------------------------------------


def _free_memory_per_gpu() -> list[int]:
    """Free memory of each visible GPU, via nvidia-smi (no CUDA context) if it runs."""
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        free = [int(v) for v in out.split()]
        if len(free) == torch.cuda.device_count():
            return free
    return [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]


def pick_device(preference: str = "auto") -> torch.device:
    """``"cpu"``, ``"cuda"`` (error without one) or ``"auto"`` (CUDA when present).

    With several GPUs and no CUDA_VISIBLE_DEVICES (Snakemake sets none for local
    jobs), each job claims a GPU no other hwbench job holds, most free memory first
    (:func:`claim_gpu`), so concurrent local jobs spread out even when they start
    together; set CUDA_VISIBLE_DEVICES to pin a job (SLURM does it for you).
    """
    if preference == "cpu":
        return torch.device("cpu")
    if preference not in ("auto", "cuda"):
        raise ValueError(f"device={preference!r}: use 'auto', 'cuda' or 'cpu'")
    if not torch.cuda.is_available():
        if preference == "cuda":
            raise RuntimeError("device 'cuda' requested but torch sees no CUDA GPU")
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if count == 1 or os.environ.get("CUDA_VISIBLE_DEVICES"):
        return torch.device("cuda", 0)
    global _GPU_CHOICE
    if _GPU_CHOICE is None:  # once per process: later calls keep the same GPU
        _GPU_CHOICE = claim_gpu(_free_memory_per_gpu(), _gpu_lock_dir())
    return torch.device("cuda", _GPU_CHOICE[0])


# (GPU index, open lock file or None) this process chose; the lock is held until it exits
_GPU_CHOICE: tuple[int, object | None] | None = None


def _gpu_lock_dir() -> str:
    """A lock folder of this user's own: /tmp is shared, and another user's lock file
    (or a link planted there) must neither stop nor redirect this job's claim."""
    if os.environ.get("HWBENCH_GPU_LOCK_DIR"):
        return os.environ["HWBENCH_GPU_LOCK_DIR"]
    folder = Path(tempfile.gettempdir()) / f"hwbench-locks-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if folder.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        log.warning(
            "%s is not a private folder of this user; GPU claims go to a fresh folder "
            "(set HWBENCH_GPU_LOCK_DIR to choose one)",
            folder,
        )
        return tempfile.mkdtemp(prefix="hwbench-locks-")
    return str(folder)


def claim_gpu(free_memory: list[int], lock_dir: str | os.PathLike) -> tuple[int, object | None]:
    """The GPU a new local job should use, and the open lock file that claims it.

    Free memory alone cannot separate jobs that start in the same instant (none has
    allocated yet), so each job takes an exclusive ``flock`` on a per-GPU file, most
    free GPU first; the kernel drops the lock when the process ends, crash or not.
    When every GPU is claimed the most free one is shared and no lock is returned.
    A lock file this process may not open (another user's, or a link) counts as
    claimed, with a warning naming it.
    """
    order = sorted(range(len(free_memory)), key=lambda i: -free_memory[i])
    for index in order:
        path = Path(lock_dir) / f"hwbench-gpu{index}.lock"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        except OSError as exc:  # PermissionError, ELOOP (a link), read-only folder
            log.warning("cannot open GPU lock %s (%s); GPU %d counts as claimed", path, exc, index)
            continue
        handle = os.fdopen(fd, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return index, handle
    return order[0], None


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (call before building a model)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- losses and evaluation ------------------------------------------------------------


def main_output(outputs) -> torch.Tensor:
    """The main logits of a model's output (the tensor, or ``outputs["main"]``)."""
    return outputs["main"] if isinstance(outputs, Mapping) else outputs


def cross_entropy_loss(outputs, batch: Data):
    """Default loss: cross-entropy of the main head; logs the batch accuracy too."""
    logits = main_output(outputs)
    loss = F.cross_entropy(logits.float(), batch["y"])
    acc = (logits.detach().argmax(dim=1) == batch["y"]).float().mean()
    return loss, {"acc": acc}


def default_metrics(outputs, data: Data) -> dict[str, float]:
    if "y" not in data:
        return {}
    return classification_metrics(main_output(outputs).float(), data["y"])


def uses_fp16(device: torch.device, amp: bool) -> bool:
    """fp16 autocast (with a GradScaler) on GPUs without bf16, e.g. V100 and T4."""
    return device.type == "cuda" and amp and not torch.cuda.is_bf16_supported()


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on GPUs that support it, fp16 on others; nothing on the CPU."""
    if device.type == "cuda" and enabled:
        dtype = torch.float16 if uses_fp16(device, True) else torch.bfloat16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def _cat(chunks: list):
    if isinstance(chunks[0], Mapping):
        return {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
    return torch.cat(chunks)


def _float(outputs):
    if isinstance(outputs, Mapping):
        return {k: v.float() for k, v in outputs.items()}
    return outputs.float()


@torch.no_grad()
def _model_input(x: torch.Tensor, device, transform: Callable | None, channels_last: bool):
    """A batch as the model takes it: on ``device``, through the per-batch ``transform``
    (uint8 images -> float model input), channels_last where asked."""
    if device is not None and x.device != torch.device(device):
        x = x.to(device, non_blocking=True)
    if transform is not None:
        x = transform(x)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


@torch.no_grad()
def predict(
    fn: Callable,
    x: torch.Tensor,
    batch_size: int = 1024,
    amp: bool = True,
    *,
    transform: Callable | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor | dict:
    """``fn`` (a model, or e.g. ``model.features``) over ``x`` in batches, float32 out.

    Each batch goes to ``device`` (default: where ``x`` is) and through ``transform``
    (e.g. :func:`hwbench.data.batch_transform`) first, so ``x`` may stay compact
    uint8 in host memory. The caller sets eval mode; outputs stay on that device.
    """
    device = x.device if device is None else torch.device(device)
    with autocast(device, amp):
        chunks = [
            _float(fn(_model_input(x[i : i + batch_size], device, transform, False)))
            for i in range(0, len(x), batch_size)
        ]
    return _cat(chunks)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Data,
    loss_fn: Callable = cross_entropy_loss,
    batch_size: int = 1024,
    amp: bool = True,
    *,
    transform: Callable | None = None,
    device: torch.device | str | None = None,
    channels_last: bool = False,
) -> tuple[float, dict[str, float], torch.Tensor | dict]:
    """Mean loss, mean loss parts and the concatenated outputs of ``model`` on ``data``.

    Batches move to ``device`` (default: where the data are) and through
    ``transform`` as in :func:`predict`.
    """
    was_training = model.training
    model.eval()
    n = len(data["x"])
    device = data["x"].device if device is None else torch.device(device)
    total, parts_sum, chunks = 0.0, {}, []
    try:
        for start in range(0, n, batch_size):
            batch = {k: v[start : start + batch_size].to(device) for k, v in data.items()}
            x = _model_input(batch["x"], None, transform, channels_last)
            with autocast(device, amp):
                out = _float(model(x))
                loss, parts = loss_fn(out, batch)
            m = len(batch["x"])
            total += float(loss) * m
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + float(v) * m
            chunks.append(out)
    finally:
        model.train(was_training)
    return total / n, {k: v / n for k, v in parts_sum.items()}, _cat(chunks)


# --- early stopping ----------------------------------------------------------------


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


# --- the job's state, checkpoints and the result record -------------------------------


class Preempted(RuntimeError):
    """Training stopped on SIGTERM/SIGUSR1 after writing a checkpoint.

    The job exits non-zero; its retry (Snakemake ``retries``) resumes from the
    checkpoint, mid-epoch, and ends with the same weights as an uninterrupted run.
    """


class CheckpointError(RuntimeError):
    """A checkpoint or weights file that cannot be read safely."""


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
    last_checkpoint: float = field(default_factory=time.monotonic)

    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / CHECKPOINT if self.run_dir is not None else None

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.started


def data_fingerprint(sets: Mapping[str, Data | None]) -> dict:
    """Shape, dtype and a content hash of every tensor of every data set
    (:class:`~hwbench.rows.StoredRows` included: the hash of the rows it reads).

    A checkpoint resumes only on the very data it was trained on: a changed split,
    dataset or transform starts the run over.
    """
    out = {}
    for name, data in sets.items():
        for key, tensor in (data or {}).items():
            if isinstance(tensor, StoredRows):  # the same hash as of its rows in memory
                out[f"{name}.{key}"] = [list(tensor.shape), str(tensor.dtype), tensor.digest(16)]
                continue
            t = tensor.detach().to("cpu").contiguous()
            flat = t.reshape(-1).view(torch.uint8) if t.numel() else t.to(torch.uint8)
            digest = hashlib.blake2b(flat.numpy(), digest_size=16)
            out[f"{name}.{key}"] = [list(t.shape), str(t.dtype), digest.hexdigest()]
    return out


def _plain(value):
    """Python scalars for what goes in a checkpoint (weights_only loads no NumPy)."""
    if isinstance(value, np.generic | torch.Tensor) and np.ndim(value) == 0:
        return value.item()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "shuffle": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_model(model: nn.Module, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)


def safe_load(path: str | os.PathLike, map_location="cpu"):
    """``torch.load`` that never runs code from the file (``weights_only``).

    A file that is not a plain tensor checkpoint (corrupt, truncated, or carrying
    a pickled object) raises :class:`CheckpointError` naming the file.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError...
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: not a readable weights-only checkpoint ({type(err).__name__}: "
            f"{reason[:200]}); delete it, or rebuild it by rerunning the job that wrote it"
        ) from err


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a state dict written by :func:`fit` (``model.pt``, ``best.pt``) into ``model``."""
    model.load_state_dict(safe_load(path))
    return model


def _save_checkpoint(run: Run) -> None:
    pos = run.position
    state = {
        "fingerprint": run.fingerprint,
        "model": run.model.state_dict(),
        "optimizer": run.opt.state_dict(),
        "scheduler": run.sched.state_dict(),
        "scaler": run.scaler.state_dict(),
        "loss_fn": run.loss_fn.state_dict() if isinstance(run.loss_fn, nn.Module) else None,
        "rng": _rng_state(run.generator),
        "history": [_plain(row) for row in run.history],
        "stopper": dataclasses.asdict(run.stopper),
        "stop_reason": run.stop_reason,
        "wall_s": run.wall(),
        "position": None
        if pos is None
        else {
            "epoch": pos.epoch,
            "perm": pos.perm,
            "step": pos.step,
            "total": None if pos.total is None else pos.total.detach().cpu(),
            "parts": {k: v.detach().cpu() for k, v in pos.parts.items()},
            "seen": pos.seen,
        },
    }
    with atomic_path(run.checkpoint_path) as tmp:
        torch.save(state, tmp)
    run.last_checkpoint = time.monotonic()


def _set_aside(path: Path, why: str) -> None:
    """Keep an unusable checkpoint for inspection, out of the way of the new run."""
    aside = path.with_name(path.name + ".rejected")
    path.replace(aside)
    log.warning("%s %s: moved to %s, starting over", path, why, aside)


def _restore(run: Run) -> bool:
    """Restore a matching checkpoint into ``run``; False (start fresh) when absent or stale."""
    path = run.checkpoint_path
    if path is None or not path.exists():
        return False
    try:
        state = safe_load(path)
    except CheckpointError as err:
        _set_aside(path, f"cannot be read ({err.__cause__.__class__.__name__})")
        return False
    if not isinstance(state, dict) or state.get("fingerprint") != run.fingerprint:
        old = state.get("fingerprint") or {} if isinstance(state, dict) else {}
        new = run.fingerprint
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        log.warning("%s was written with other settings (%s): starting over", path, changed)
        path.unlink()
        return False
    initial = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    try:
        run.model.load_state_dict(state["model"])
    except RuntimeError as err:
        # A failed load may have copied some tensors: put the initial weights back.
        run.model.load_state_dict(initial)
        log.warning("%s does not fit this model (%s): starting over", path, err)
        return False
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    if isinstance(run.loss_fn, nn.Module) and state["loss_fn"] is not None:
        run.loss_fn.load_state_dict(state["loss_fn"])
    run.history = state["history"]
    run.stopper = EarlyStopping(**state["stopper"])
    run.stop_reason = state["stop_reason"]
    run.wall_before = state["wall_s"]
    _set_rng_state(state["rng"], run.generator)
    pos = state["position"]
    if pos is not None:
        run.position = EpochPosition(
            epoch=pos["epoch"],
            perm=pos["perm"],
            step=pos["step"],
            total=None if pos["total"] is None else pos["total"].to(run.device),
            parts={k: v.to(run.device) for k, v in pos["parts"].items()},
            seen=pos["seen"],
        )
    return True


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


# --- preemption -------------------------------------------------------------------------

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


@contextlib.contextmanager
def _preemption_flag():
    """A dict whose "signal" is set when SIGTERM/SIGUSR1 arrives (what SLURM sends
    before a kill); the loop checkpoints at the next batch and stops. Handlers are
    installed only in the main thread and restored afterwards."""
    flag: dict = {"signal": None}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, _frame):
        flag["signal"] = signum

    previous = {s: signal.signal(s, handler) for s in PREEMPT_SIGNALS}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# --- the loop ---------------------------------------------------------------------


def _freeze_bn_of_frozen(model: nn.Module) -> None:
    """BatchNorm layers whose parameters are all frozen keep their running statistics."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def _nbytes(data: Data) -> int:
    return sum(v.numel() * v.element_size() for v in data.values())


def _prepare(data: Data | None, device: torch.device, budget_mb: float | None) -> dict | None:
    """Check a data dict and move it to ``device`` when it fits ``budget_mb``.

    Data larger than the budget stay in host memory (pinned on CUDA) and each batch
    is copied on its own: the resident input is the compact store, never more. An
    ``x`` of :class:`~hwbench.rows.StoredRows` stays on disk: each batch's rows are read.
    """
    if data is None:
        return None
    if "x" not in data:
        raise ValueError(f"a data dict needs an 'x' tensor; got keys {sorted(data)}")
    n = len(data["x"])
    bad = {k: len(v) for k, v in data.items() if len(v) != n}
    if bad:
        raise ValueError(f"data tensors differ in length from x ({n}): {bad}")
    if any(isinstance(v, StoredRows) for v in data.values()):
        return dict(data)  # rows read from disk one batch at a time
    if budget_mb is not None and _nbytes(data) > budget_mb * 2**20:
        if device.type == "cuda":
            return {k: v.pin_memory() for k, v in data.items()}
        return dict(data)
    return {k: v.to(device, non_blocking=True) for k, v in data.items()}


def _write_metrics(run_dir: Path | None, history: list[dict]) -> None:
    if run_dir is not None:
        write_csv(run_dir / METRICS, pd.DataFrame(history))


def _progress_interval() -> float:
    # A log file (not a terminal) gets a progress line every 30 s, not a flood.
    return 0.5 if sys.stderr.isatty() else 30.0


def _optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def _use_cuda_fast_paths(device: torch.device) -> None:
    """TF32 matmuls and cuDNN autotuning: the studies' shapes are fixed within a job."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


def transform_fingerprint(transform: Callable | None) -> str | None:
    """What a checkpoint records of the per-batch transform: its repr, which names its
    settings (e.g. ``BatchTransform(size=224, ...)``). A function or an object without
    its own repr gives its qualified name: a memory address would never match again."""
    if transform is None:
        return None
    kind = type(transform)
    if kind.__repr__ is object.__repr__ or inspect.isfunction(transform):
        name = getattr(transform, "__qualname__", kind.__qualname__)
        return f"{getattr(transform, '__module__', kind.__module__)}.{name}"
    return repr(transform)


def _new_run(
    model, train, eval_sets, config, run_dir, loss_fn, device, fingerprint, transform=None
) -> Run:
    if config.trainable is not None:
        from hwbench.models import set_trainable

        set_trainable(model, config.trainable)
    model.to(device)
    if device.type == "cuda" and config.channels_last:
        model.to(memory_format=torch.channels_last)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(loss_fn, nn.Module):
        params += [p for p in loss_fn.parameters() if p.requires_grad]
    opt = _optimizer(params, config)
    # How often to checkpoint, where the data live and whether activations are
    # recomputed do not change the result: a resume ignores them.
    settings = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in ("checkpoint_every_s", "data_on_device_mb", "activation_checkpointing")
    }
    full = {
        **settings,
        "data": data_fingerprint({"train": train, **(eval_sets or {})}),
    }
    if transform is not None:  # the stored data alone do not say what the model saw
        full["transform"] = transform_fingerprint(transform)
    if fingerprint is not None:
        full["run"] = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
    return Run(
        model=model,
        loss_fn=loss_fn,
        opt=opt,
        sched=torch.optim.lr_scheduler.MultiStepLR(opt, config.lr_milestones, config.lr_gamma),
        scaler=torch.amp.GradScaler("cuda", enabled=uses_fp16(device, config.amp)),
        generator=torch.Generator().manual_seed(config.seed),
        stopper=EarlyStopping(config.mode, config.patience, config.min_delta, config.stop_eps),
        config=config,
        device=device,
        fingerprint=full,
        run_dir=run_dir,
    )


def fit(
    model: nn.Module,
    train: Data,
    config: TrainConfig,
    run_dir: str | os.PathLike | None = None,
    *,
    loss_fn: Callable = cross_entropy_loss,
    eval_sets: Mapping[str, Data] | None = None,
    metrics_fn: Callable | None = default_metrics,
    eval_fn: Callable | None = None,
    on_epoch_end: Callable | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    fingerprint: Mapping | None = None,
    restore: str = "last",
    transform: Callable | None = None,
) -> FitResult:
    """Train ``model`` on ``train``; see the module docstring for the plug-in points.

    The checkpoint records the training config, a hash of every data tensor and
    ``fingerprint`` (settings outside ``config`` that define the run: the model, a
    loss's weights; JSON-like). An interrupted run resumes only when all match,
    otherwise it starts over with a log line. It is written at every epoch end, at
    least every ``config.checkpoint_every_s`` seconds inside an epoch, and on
    SIGTERM/SIGUSR1, after which :class:`Preempted` is raised (the job exits
    non-zero and its retry resumes mid-epoch).

    Writes ``metrics.csv``, ``checkpoint.pt``, ``model.pt`` (final weights),
    ``best.pt`` (weights at the best monitored epoch, when monitored) and
    ``run.json`` into ``run_dir`` (nothing is written with ``run_dir=None``).
    ``on_epoch_end(epoch, row)`` runs after the epoch's checkpoint is on disk.
    ``restore``: the weights the model ends with, ``"last"`` (final) or ``"best"``
    (best monitored epoch; final when nothing was monitored).
    ``transform``: applied to each batch's ``x`` on the device before the model
    (e.g. :func:`hwbench.data.batch_transform`: uint8 images -> resized, normalised
    float), so the stored data stay compact; evaluation sets go through it too. Its
    repr joins the checkpoint's fingerprint (:func:`transform_fingerprint`).
    """
    if restore not in ("last", "best"):
        raise ValueError(f"restore={restore!r}: use 'last' or 'best'")
    device = pick_device() if device is None else torch.device(device)
    _use_cuda_fast_paths(device)
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    run = _new_run(
        model, train, eval_sets, config, run_dir, loss_fn, device, fingerprint, transform
    )
    run.transform = transform
    run.channels_last = device.type == "cuda" and config.channels_last
    run.recompute = recompute.wanted(config.activation_checkpointing, device)
    if run.recompute:
        log.info("activation checkpointing: %d residual blocks", recompute.enable(model))
    try:
        return _fit_run(run, train, eval_sets, metrics_fn, eval_fn, on_epoch_end, restore, progress)
    finally:
        if run.recompute:
            recompute.disable(model)


def _fit_run(run, train, eval_sets, metrics_fn, eval_fn, on_epoch_end, restore, progress):
    config, device, run_dir = run.config, run.device, run.run_dir
    budget = config.data_on_device_mb
    train = _prepare(train, device, budget)
    eval_sets = {k: _prepare(v, device, budget) for k, v in (eval_sets or {}).items()}

    if _restore(run):
        _write_metrics(run_dir, run.history)
        where = f" (step {run.position.step})" if run.position is not None else ""
        log.info("resumed %s at epoch %d%s", run_dir, len(run.history) + 1, where)
    else:
        torch.manual_seed(config.seed)  # dropout and other in-loop randomness

    desc = run_dir.name if run_dir is not None else "train"
    with _preemption_flag() as flag:
        epoch = len(run.history) + 1
        while run.stop_reason is None and epoch <= config.epochs:
            _run_epoch(run, train, eval_sets, epoch, metrics_fn, eval_fn, flag, desc, progress)
            if flag["signal"] is not None and run.run_dir is not None:
                raise Preempted(
                    f"{run.run_dir}: stopped by signal {flag['signal']} after epoch {epoch}; "
                    "the checkpoint is saved and a rerun of the job resumes from it"
                )
            if on_epoch_end is not None:
                # A hook that draws random numbers must not make a resumed run differ.
                rng = _rng_state(run.generator)
                on_epoch_end(epoch, run.history[-1])
                _set_rng_state(rng, run.generator)
            epoch += 1
    return _finish(run, restore)


def _run_epoch(run, train, eval_sets, epoch, metrics_fn, eval_fn, flag, desc, progress):
    """One epoch: train (resumable mid-way), evaluate, log, checkpoint."""
    config = run.config
    t0 = time.perf_counter()
    bs = config.batch_size_at(epoch)
    row = {"epoch": epoch, "lr": run.opt.param_groups[0]["lr"], "batch_size": bs}
    row.update(_train_epoch(run, train, epoch, bs, flag, desc, progress))
    run.sched.step()
    for name, data in eval_sets.items():
        loss, parts, outputs = evaluate(
            run.model,
            data,
            run.loss_fn,
            config.eval_batch_size,
            config.amp,
            transform=run.transform,
            device=run.device,
            channels_last=run.channels_last,
        )
        row[f"{name}_loss"] = loss
        row.update({f"{name}_{k}": v for k, v in parts.items()})
        if metrics_fn is not None:
            row.update({f"{name}_{k}": v for k, v in metrics_fn(outputs, data).items()})
    if eval_fn is not None:
        run.model.eval()
        with torch.no_grad():
            row.update(eval_fn(run.model, epoch))
        run.model.train()
    row["time_s"] = time.perf_counter() - t0
    run.history.append(_plain(row))
    run.stop_reason = _monitor(run, row)
    if run.stop_reason is None and epoch == config.epochs:
        run.stop_reason = "epochs"
    if run.run_dir is not None:
        _save_checkpoint(run)
        _write_metrics(run.run_dir, run.history)
    log.info(
        "epoch %d/%d %s",
        epoch,
        config.epochs,
        " ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)),
    )


def _batch_starts(n: int, bs: int, max_steps: int | None) -> list[int]:
    starts = list(range(0, n, bs))
    # A last batch of one sample breaks BatchNorm in training mode: drop it.
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return starts[:max_steps] if max_steps is not None else starts


def _train_epoch(run: Run, train, epoch, bs, flag, desc, progress) -> dict:
    model, config, device = run.model, run.config, run.device
    n = len(train["x"])
    model.train()
    _freeze_bn_of_frozen(model)
    if run.position is None or run.position.epoch != epoch:
        perm = torch.randperm(n, generator=run.generator)
        run.position = EpochPosition(epoch, perm, total=torch.zeros((), device=device))
    pos = run.position
    on_device = train["x"].device == torch.device(device)
    perm = pos.perm.to(device) if on_device else pos.perm
    starts = _batch_starts(n, bs, config.max_steps)
    bar = tqdm(
        starts,
        desc=f"{desc} epoch {epoch}/{config.epochs}",
        disable=not progress,
        mininterval=_progress_interval(),
        initial=pos.step,
        leave=False,
        file=sys.stderr,
    )
    for start in starts[pos.step :]:
        idx = perm[start : start + bs]
        batch = {k: v[idx].to(device, non_blocking=True) for k, v in train.items()}
        x = _model_input(batch["x"], None, run.transform, run.channels_last)
        with autocast(device, config.amp):
            outputs = model(x)
            loss, parts = run.loss_fn(outputs, batch)
        run.opt.zero_grad(set_to_none=True)
        with recompute.kept_running_stats(model) if run.recompute else contextlib.nullcontext():
            run.scaler.scale(loss).backward()
        run.scaler.step(run.opt)
        run.scaler.update()
        m = len(idx)
        pos.seen += m
        # Sums stay on the device: no host sync per batch.
        pos.total += loss.detach().float() * m
        for k, v in parts.items():
            v = v.detach().float() if isinstance(v, torch.Tensor) else torch.tensor(float(v))
            pos.parts[k] = pos.parts.get(k, 0) + v.to(device) * m
        pos.step += 1
        bar.update()
        _maybe_checkpoint_mid_epoch(run, flag, pos.step < len(starts))
    bar.close()
    run.position = None
    row = {"train_loss": float(pos.total) / pos.seen}
    row.update({f"train_{k}": float(v) / pos.seen for k, v in pos.parts.items()})
    if not math.isfinite(row["train_loss"]):
        raise FloatingPointError(f"epoch {epoch}: training loss is {row['train_loss']}")
    return row


def _maybe_checkpoint_mid_epoch(run: Run, flag: dict, more_steps: bool) -> None:
    """Checkpoint inside an epoch when it is time, or when a preemption signal came."""
    if run.run_dir is None:
        return
    every = run.config.checkpoint_every_s
    due = every is not None and time.monotonic() - run.last_checkpoint >= every
    if flag["signal"] is not None:
        _save_checkpoint(run)
        raise Preempted(
            f"{run.run_dir}: stopped by signal {flag['signal']} at epoch "
            f"{run.position.epoch} step {run.position.step}; the checkpoint is saved and a "
            "rerun of the job resumes from it"
        )
    if due and more_steps:
        _save_checkpoint(run)


def _monitor(run: Run, row: dict) -> str | None:
    config = run.config
    if config.monitor not in row:
        if config.patience is not None or config.stop_eps is not None:
            raise ValueError(
                f"early stopping monitors {config.monitor!r}, not among the logged "
                f"metrics {sorted(row)}; pass an eval set (e.g. 'val') or change monitor"
            )
        return None
    improved, reason = run.stopper.update(float(row[config.monitor]), row["epoch"])
    if improved:
        if run.run_dir is not None:
            _save_model(run.model, run.run_dir / BEST_MODEL)
        else:
            run.best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    return reason


def _finish(run: Run, restore: str) -> FitResult:
    result = FitResult(
        history=run.history,
        best_epoch=run.stopper.best_epoch,
        best_value=run.stopper.best,
        stop_reason=run.stop_reason or "epochs",
        device=device_description(run.device),
        wall_s=run.wall(),
        run_dir=run.run_dir,
    )
    run_dir = run.run_dir
    if run_dir is not None:
        _save_model(run.model, run_dir / FINAL_MODEL)
        _write_metrics(run_dir, run.history)
        info = {k: v for k, v in dataclasses.asdict(result).items() if k not in ("history",)}
        write_json(
            run_dir / RUN_INFO, {**info, "epochs_run": len(run.history), "config": run.fingerprint}
        )
        # The checkpoint exists to resume an interrupted run. Once the run is complete,
        # Snakemake decides reruns (changed code or params); a kept checkpoint would make
        # such a rerun return the stale weights at once.
        run.checkpoint_path.unlink(missing_ok=True)
    if restore == "best" and run.stopper.best_epoch is not None:
        if run_dir is not None and (run_dir / BEST_MODEL).exists():
            load_weights(run.model, run_dir / BEST_MODEL)
        elif run.best_state is not None:
            run.model.load_state_dict(run.best_state)
    return result
