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
RNG states, early-stopping state, history). :func:`fit` resumes from it when its
training config matches, and returns at once when that run already finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
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

from hwbench.metrics import classification_metrics
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
    ``["head"]``); everything else is frozen.
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

    def __post_init__(self):
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


def autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.bfloat16)
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
def predict(
    fn: Callable, x: torch.Tensor, batch_size: int = 1024, amp: bool = True
) -> torch.Tensor | dict:
    """``fn`` (a model, or e.g. ``model.features``) over ``x`` in batches, float32 out.

    The caller sets eval mode; outputs stay on ``x``'s device.
    """
    with autocast(x.device, amp):
        chunks = [_float(fn(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    return _cat(chunks)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Data,
    loss_fn: Callable = cross_entropy_loss,
    batch_size: int = 1024,
    amp: bool = True,
) -> tuple[float, dict[str, float], torch.Tensor | dict]:
    """Mean loss, mean loss parts and the concatenated outputs of ``model`` on ``data``."""
    was_training = model.training
    model.eval()
    n = len(data["x"])
    total, parts_sum, chunks = 0.0, {}, []
    try:
        for start in range(0, n, batch_size):
            batch = {k: v[start : start + batch_size] for k, v in data.items()}
            with autocast(batch["x"].device, amp):
                out = _float(model(batch["x"]))
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


# --- the loop ---------------------------------------------------------------------


def _freeze_bn_of_frozen(model: nn.Module) -> None:
    """BatchNorm layers whose parameters are all frozen keep their running statistics."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def _prepare(data: Data | None, device: torch.device, channels_last: bool) -> dict | None:
    if data is None:
        return None
    if "x" not in data:
        raise ValueError(f"a data dict needs an 'x' tensor; got keys {sorted(data)}")
    n = len(data["x"])
    bad = {k: len(v) for k, v in data.items() if len(v) != n}
    if bad:
        raise ValueError(f"data tensors differ in length from x ({n}): {bad}")
    out = {k: v.to(device, non_blocking=True) for k, v in data.items()}
    if channels_last and out["x"].dim() == 4:
        out["x"] = out["x"].contiguous(memory_format=torch.channels_last)
    return out


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


def _write_metrics(run_dir: Path | None, history: list[dict]) -> None:
    if run_dir is not None:
        write_csv(run_dir / METRICS, pd.DataFrame(history))


def _progress_interval() -> float:
    # A log file (not a terminal) gets a progress line every 30 s, not a flood.
    return 0.5 if sys.stderr.isatty() else 30.0


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
) -> FitResult:
    """Train ``model`` on ``train``; see the module docstring for the plug-in points.

    ``fingerprint``: settings outside ``config`` that define the run (the model, a
    loss's weights, the data source), JSON-like. The checkpoint records them with
    the config: an interrupted run is resumed only when they match, otherwise it
    starts over (so a changed loss weight or data checksum retrains).

    Writes ``metrics.csv``, ``checkpoint.pt``, ``model.pt`` (final weights),
    ``best.pt`` (weights at the best monitored epoch, when monitored) and
    ``run.json`` into ``run_dir`` (nothing is written with ``run_dir=None``).
    ``on_epoch_end(epoch, row)`` runs after the epoch's checkpoint is on disk.
    The model ends with its final (not best) weights.
    """
    start_time = time.perf_counter()
    device = pick_device() if device is None else torch.device(device)
    use_cl = device.type == "cuda" and config.channels_last
    run_dir = Path(run_dir) if run_dir is not None else None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)

    if config.trainable is not None:
        from hwbench.models import set_trainable

        set_trainable(model, config.trainable)
    model.to(device)
    if use_cl:
        model.to(memory_format=torch.channels_last)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    train = _prepare(train, device, use_cl)
    eval_sets = {k: _prepare(v, device, use_cl) for k, v in (eval_sets or {}).items()}
    n = len(train["x"])

    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(loss_fn, nn.Module):
        params += [p for p in loss_fn.parameters() if p.requires_grad]
    if config.optimizer == "adam":
        opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, config.lr_milestones, config.lr_gamma)
    generator = torch.Generator().manual_seed(config.seed)
    stopper = EarlyStopping(config.mode, config.patience, config.min_delta, config.stop_eps)
    extra = fingerprint
    fingerprint = {**dataclasses.asdict(config), "n_train": n}
    if extra is not None:
        fingerprint["run"] = json.loads(json.dumps(extra, sort_keys=True, default=str))
    history: list[dict] = []
    first_epoch, stop_reason, wall_before = 1, None, 0.0

    ckpt_path = run_dir / CHECKPOINT if run_dir is not None else None
    resumed = _load_checkpoint(ckpt_path, fingerprint, model, opt, sched, loss_fn, generator)
    if resumed is None:
        torch.manual_seed(config.seed)  # dropout and other in-loop randomness
    else:
        history, stopper_state, stop_reason, wall_before, rng = resumed
        stopper = EarlyStopping(**stopper_state)
        _set_rng_state(rng, generator)
        first_epoch = len(history) + 1
        _write_metrics(run_dir, history)
        log.info("resumed %s at epoch %d", run_dir, first_epoch)

    desc = run_dir.name if run_dir is not None else "train"
    epoch = first_epoch
    while stop_reason is None and epoch <= config.epochs:
        t0 = time.perf_counter()
        bs = config.batch_size_at(epoch)
        row = {"epoch": epoch, "lr": opt.param_groups[0]["lr"], "batch_size": bs}
        row.update(
            _train_epoch(
                model, train, loss_fn, opt, generator, bs, device, config, desc, epoch, progress
            )
        )
        sched.step()
        for name, data in eval_sets.items():
            loss, parts, outputs = evaluate(
                model, data, loss_fn, config.eval_batch_size, config.amp
            )
            row[f"{name}_loss"] = loss
            row.update({f"{name}_{k}": v for k, v in parts.items()})
            if metrics_fn is not None:
                row.update({f"{name}_{k}": v for k, v in metrics_fn(outputs, data).items()})
        if eval_fn is not None:
            model.eval()
            with torch.no_grad():
                row.update(eval_fn(model, epoch))
            model.train()
        row["time_s"] = time.perf_counter() - t0
        history.append(row)

        stop_reason = _monitor(stopper, config, row, run_dir, model)
        if stop_reason is None and epoch == config.epochs:
            stop_reason = "epochs"
        if ckpt_path is not None:
            wall = wall_before + time.perf_counter() - start_time
            _save_checkpoint(
                ckpt_path,
                fingerprint,
                model,
                opt,
                sched,
                loss_fn,
                generator,
                history,
                stopper,
                stop_reason,
                wall,
            )
            _write_metrics(run_dir, history)
        log.info(
            "epoch %d/%d %s",
            epoch,
            config.epochs,
            " ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)),
        )
        if on_epoch_end is not None:
            # A hook that draws random numbers must not make a resumed run differ.
            rng = _rng_state(generator)
            on_epoch_end(epoch, row)
            _set_rng_state(rng, generator)
        epoch += 1

    wall = wall_before + time.perf_counter() - start_time
    result = FitResult(
        history=history,
        best_epoch=stopper.best_epoch,
        best_value=stopper.best,
        stop_reason=stop_reason or "epochs",
        device=device_description(device),
        wall_s=wall,
        run_dir=run_dir,
    )
    if run_dir is not None:
        _save_model(model, run_dir / FINAL_MODEL)
        _write_metrics(run_dir, history)
        info = {k: v for k, v in dataclasses.asdict(result).items() if k not in ("history",)}
        write_json(run_dir / RUN_INFO, {**info, "epochs_run": len(history), "config": fingerprint})
        # The checkpoint exists to resume an interrupted run. Once the run is complete,
        # Snakemake decides reruns (changed code or params); a kept checkpoint would make
        # such a rerun return the stale weights at once.
        ckpt_path.unlink(missing_ok=True)
    return result


def _train_epoch(model, train, loss_fn, opt, generator, bs, device, config, desc, epoch, progress):
    n = len(train["x"])
    model.train()
    _freeze_bn_of_frozen(model)
    perm = torch.randperm(n, generator=generator).to(device)
    starts = list(range(0, n, bs))
    # A last batch of one sample breaks BatchNorm in training mode: drop it.
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    total = torch.zeros((), device=device)
    parts_sum: dict[str, torch.Tensor] = {}
    seen = 0
    bar = tqdm(
        starts,
        desc=f"{desc} epoch {epoch}/{config.epochs}",
        disable=not progress,
        mininterval=_progress_interval(),
        leave=False,
        file=sys.stderr,
    )
    for start in bar:
        idx = perm[start : start + bs]
        batch = {k: v[idx] for k, v in train.items()}
        with autocast(device, config.amp):
            outputs = model(batch["x"])
            loss, parts = loss_fn(outputs, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        m = len(idx)
        seen += m
        # Sums stay on the device: no host sync per batch.
        total += loss.detach().float() * m
        for k, v in parts.items():
            v = v.detach().float() if isinstance(v, torch.Tensor) else torch.tensor(float(v))
            parts_sum[k] = parts_sum.get(k, 0) + v.to(device) * m
    bar.close()
    row = {"train_loss": float(total) / seen}
    row.update({f"train_{k}": float(v) / seen for k, v in parts_sum.items()})
    if not math.isfinite(row["train_loss"]):
        raise FloatingPointError(f"epoch {epoch}: training loss is {row['train_loss']}")
    return row


def _monitor(stopper, config, row, run_dir, model) -> str | None:
    if config.monitor not in row:
        if config.patience is not None or config.stop_eps is not None:
            raise ValueError(
                f"early stopping monitors {config.monitor!r}, not among the logged "
                f"metrics {sorted(row)}; pass an eval set (e.g. 'val') or change monitor"
            )
        return None
    improved, reason = stopper.update(float(row[config.monitor]), row["epoch"])
    if improved and run_dir is not None:
        _save_model(model, run_dir / BEST_MODEL)
    return reason


def _save_checkpoint(
    path, fingerprint, model, opt, sched, loss_fn, generator, history, stopper, stop_reason, wall
):
    state = {
        "fingerprint": fingerprint,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "loss_fn": loss_fn.state_dict() if isinstance(loss_fn, nn.Module) else None,
        "rng": _rng_state(generator),
        "history": history,
        "stopper": dataclasses.asdict(stopper),
        "stop_reason": stop_reason,
        "wall_s": wall,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _load_checkpoint(path, fingerprint, model, opt, sched, loss_fn, generator):
    """Restore a matching checkpoint in place; None (start fresh) when absent or stale."""
    if path is None or not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint:
        old = state.get("fingerprint") or {}
        changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
        log.warning("%s was written with other settings (%s): starting over", path, changed)
        path.unlink()
        return None
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        # A failed load may have copied some tensors: put the initial weights back.
        model.load_state_dict(initial)
        log.warning("%s does not fit this model (%s): starting over", path, err)
        return None
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    if isinstance(loss_fn, nn.Module) and state["loss_fn"] is not None:
        loss_fn.load_state_dict(state["loss_fn"])
    return state["history"], state["stopper"], state["stop_reason"], state["wall_s"], state["rng"]
