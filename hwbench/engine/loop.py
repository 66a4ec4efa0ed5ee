"""The one training loop: :func:`fit` and its epochs and steps (see the package
docstring for the plug-in points)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from hwbench import recompute
from hwbench.engine.batches import batches as data_batches
from hwbench.engine.batches import prepare, read_sums, stages
from hwbench.engine.checkpoint import (
    Preempted,
    _preemption_flag,
    _restore,
    _rng_state,
    _save_checkpoint,
    _save_model,
    _set_rng_state,
    load_weights,
)
from hwbench.engine.compiled import forward_of
from hwbench.engine.config import TrainConfig
from hwbench.engine.device import (
    _use_cuda_fast_paths,
    autocast,
    device_description,
    pick_device,
    uses_fp16,
)
from hwbench.engine.evaluation import (
    Data,
    _model_input,
    cross_entropy_loss,
    default_metrics,
    evaluate,
)
from hwbench.engine.fingerprint import run_fingerprint
from hwbench.engine.results import (
    BEST_MODEL,
    FINAL_MODEL,
    RUN_INFO,
    FitResult,
    _plain,
    _write_metrics,
)
from hwbench.engine.state import EarlyStopping, EpochPosition, Run
from hwbench.store import write_json

log = logging.getLogger("hwbench.engine")


def _freeze_bn_of_frozen(model: nn.Module) -> None:
    """BatchNorm layers whose parameters are all frozen keep their running statistics."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def _progress_interval() -> float:
    # A log file (not a terminal) gets a progress line every 30 s, not a flood.
    return 0.5 if sys.stderr.isatty() else 30.0


def _optimizer(params, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        # One fused kernel per step on CUDA; the CPU keeps the default (for-each)
        # implementation, so CPU results stay as they were.
        fused = {"fused": True} if device.type == "cuda" else {}
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **fused)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


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
    opt = _optimizer(params, config, device)
    full = run_fingerprint(config, train, eval_sets, transform, fingerprint)
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
    otherwise it starts over with a log line. It is written when
    ``config.checkpoint_every_s`` seconds have passed since the last one (checked
    after every step and at every epoch end), at the end of the run, and on
    SIGTERM/SIGUSR1, after which :class:`Preempted` is raised (the job exits
    non-zero and its retry resumes mid-epoch).

    Writes ``metrics.csv``, ``checkpoint.pt``, ``model.pt`` (final weights),
    ``best.pt`` (weights at the best monitored epoch, when monitored) and
    ``run.json`` into ``run_dir`` (nothing is written with ``run_dir=None``).
    ``on_epoch_end(epoch, row)`` runs after the epoch's checkpoint, when one was due.
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
    run.forward = forward_of(model, config.compile)
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
    train = prepare(train, device, budget, ("x",) if stages(run.transform) else ())
    eval_sets = {k: prepare(v, device, budget) for k, v in (eval_sets or {}).items()}

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
        # Checkpoints are for resuming: by time, not per epoch, and always at the end
        # of the run and on a preemption signal (the caller raises Preempted).
        if run.stop_reason is not None or flag["signal"] is not None or _checkpoint_due(run):
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
    # The progress bar reads no device value: it counts steps only.
    batches = data_batches(train, pos.perm, starts[pos.step :], bs, device, run.transform)
    with contextlib.closing(batches):  # stops the reader thread, also on Preempted
        for start, batch in zip(starts[pos.step :], batches, strict=True):
            x = _model_input(batch["x"], None, run.transform, run.channels_last)
            with autocast(device, config.amp):
                outputs = run.forward(x)
                loss, parts = run.loss_fn(outputs, batch)
            run.opt.zero_grad(set_to_none=True)
            with recompute.kept_running_stats(model) if run.recompute else contextlib.nullcontext():
                run.scaler.scale(loss).backward()
            run.scaler.step(run.opt)
            run.scaler.update()
            m = min(bs, n - start)
            pos.seen += m
            # Sums stay where they are (a loss part given as a number: in host memory),
            # read once at the epoch's end: no host sync per batch.
            pos.total += loss.detach().float() * m
            for k, v in parts.items():
                v = v.detach().float() if isinstance(v, torch.Tensor) else torch.tensor(float(v))
                pos.parts[k] = pos.parts.get(k, 0) + v * m
            pos.step += 1
            bar.update()
            _maybe_checkpoint_mid_epoch(run, flag, pos.step < len(starts))
    bar.close()
    run.position = None
    sums = read_sums({"loss": pos.total, **pos.parts})
    row = {f"train_{k}": v / pos.seen for k, v in sums.items()}
    if not math.isfinite(row["train_loss"]):
        raise FloatingPointError(f"epoch {epoch}: training loss is {row['train_loss']}")
    return row


def _maybe_checkpoint_mid_epoch(run: Run, flag: dict, more_steps: bool) -> None:
    """Checkpoint inside an epoch when it is time, or when a preemption signal came."""
    if run.run_dir is None:
        return
    if flag["signal"] is not None:
        _save_checkpoint(run)
        raise Preempted(
            f"{run.run_dir}: stopped by signal {flag['signal']} at epoch "
            f"{run.position.epoch} step {run.position.step}; the checkpoint is saved and a "
            "rerun of the job resumes from it"
        )
    if more_steps and _checkpoint_due(run):
        _save_checkpoint(run)


def _checkpoint_due(run: Run) -> bool:
    """``config.checkpoint_every_s`` has passed since the last checkpoint (or the start)."""
    every = run.config.checkpoint_every_s
    return every is not None and time.monotonic() - run.last_checkpoint >= every


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
