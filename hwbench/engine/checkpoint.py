"""Checkpoints and resume: weights-only loading, the checkpoint a run writes and
restores exactly (mid-epoch included), and preemption by SIGTERM/SIGUSR1."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
import time
from pathlib import Path

import torch
from torch import nn

from hwbench.engine.results import _plain
from hwbench.engine.state import EarlyStopping, EpochPosition, Run
from hwbench.store import atomic_path

log = logging.getLogger("hwbench.engine")


class Preempted(RuntimeError):
    """Training stopped on SIGTERM/SIGUSR1 after writing a checkpoint.

    The job exits non-zero; its retry (Snakemake ``retries``) resumes from the
    checkpoint, mid-epoch, and ends with the same weights as an uninterrupted run.
    """


class CheckpointError(RuntimeError):
    """A checkpoint or weights file that cannot be read safely."""


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
