"""Continual-learning pieces: the accuracy matrix metrics and EWC.

Nothing here is particular to handwriting; a study that trains a sequence of
tasks through :mod:`hwbench.engine` can use it.

* :func:`transfer_metrics` -- ACC, BWT and FWT of Lopez-Paz & Ranzato (GEM,
  NeurIPS 2017) from an accuracy matrix ``R`` whose row 0 is the model before
  any training.
* :func:`fisher_diagonal` -- the diagonal empirical Fisher information of a
  model on a task's data: the mean over samples of squared per-sample
  gradients of the loss, with the model in eval mode.
* :class:`EWC` -- elastic weight consolidation (Kirkpatrick et al., PNAS 2017):
  ``lambda * sum_t sum_i F_t,i (theta_i - theta*_t,i)^2`` over the finished
  tasks ``t``, as a penalty added to a study's loss callable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

__all__ = ["EWC", "fisher_diagonal", "transfer_metrics", "trainable_parameters"]


def transfer_metrics(R) -> dict[str, float]:
    """ACC, BWT and FWT of an accuracy matrix (eqs. 3-5 of the lifelong paper).

    ``R`` has ``T + 1`` rows and ``T`` columns: row 0 is evaluated before any
    training (its entries are the ``b_i`` of FWT), row ``k`` after training task
    ``k`` (1-based), column ``j`` is the test set of task ``j + 1``.

    * ACC = mean over tasks of ``R[T, i]``.
    * BWT = mean over the first ``T - 1`` tasks of ``R[T, i] - R[i, i]``.
    * FWT = mean over tasks 2..T of ``R[i - 1, i] - b_i``.

    BWT and FWT divide by ``T - 1`` as the paper's equations do; the GEM
    reference code divides by ``T`` (its sums have ``T - 1`` non-zero terms),
    which shrinks both by ``(T - 1) / T``. With one task BWT and FWT are NaN.
    """
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] + 1 or R.shape[1] < 1:
        raise ValueError(
            f"accuracy matrix must have T + 1 rows and T >= 1 columns "
            f"(row 0 before training), got shape {R.shape}"
        )
    T = R.shape[1]
    last = R[T]
    acc = float(last.mean())
    if T == 1:
        return {"acc": acc, "bwt": float("nan"), "fwt": float("nan")}
    # Task i (1-based) lives in row i and column i - 1.
    bwt = float(np.mean([last[i - 1] - R[i, i - 1] for i in range(1, T)]))
    fwt = float(np.mean([R[i - 1, i - 1] - R[0, i - 1] for i in range(2, T + 1)]))
    return {"acc": acc, "bwt": bwt, "fwt": fwt}


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Parameters EWC guards: the ones that train (frozen ones cannot drift)."""
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits, y)


def fisher_diagonal(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = _cross_entropy,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    chunk_size: int = 32,
    per_sample: bool = True,
) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher of ``model`` on ``(x, y)``: mean squared gradients.

    ``F_i = 1/N sum_n (d loss(x_n, y_n) / d theta_i)^2`` over the samples, with
    the model in eval mode (dropout off, batch-norm on its running statistics)
    so the Fisher describes the network that is being consolidated. This is the
    usual stand-in for the diagonal Hessian of eq. 2 of the lifelong paper: at a
    minimum of the log-likelihood the two agree in expectation, and the Fisher
    is never negative.

    ``per_sample=False`` squares the gradient of each chunk's mean loss instead
    (scaled by the chunk size), as several public EWC implementations do: cheaper
    but a biased estimate. ``transform`` maps a chunk of stored inputs (e.g.
    uint8 images) to the model's input. The model's train/eval mode is restored.
    """
    params = trainable_parameters(model)
    if not params:
        raise ValueError("fisher_diagonal: the model has no trainable parameter")
    if len(x) == 0:
        raise ValueError("fisher_diagonal: empty data; a finished task needs training samples")
    frozen = {n: p.detach() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    was_training = model.training
    model.eval()

    def sample_loss(theta, xi, yi):
        out = functional_call(model, (theta, frozen, buffers), (xi.unsqueeze(0),))
        return loss(out, yi.unsqueeze(0))

    per_sample_grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    theta = {name: p.detach() for name, p in params.items()}
    try:
        for start in range(0, len(x), chunk_size):
            xb = x[start : start + chunk_size]
            yb = y[start : start + chunk_size]
            if transform is not None:
                xb = transform(xb)
            if per_sample:
                grads = per_sample_grads(theta, xb, yb)
                for name, g in grads.items():
                    fisher[name] += g.pow(2).sum(0)
            else:
                model.zero_grad(set_to_none=True)
                loss(model(xb), yb).backward()
                for name, p in params.items():
                    fisher[name] += p.grad.detach().pow(2) * len(xb)
                model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    return {name: f / len(x) for name, f in fisher.items()}


class EWC:
    """Elastic weight consolidation over the finished tasks.

    After each task call :meth:`consolidate` with the model's Fisher; while
    training the next task add :meth:`penalty` to the loss (or wrap a loss
    callable with :meth:`wrap`). Each finished task keeps its own anchor
    ``theta*_t`` and Fisher ``F_t`` (the paper's "sum over past tasks"), not a
    single running average.
    """

    def __init__(self, lam: float):
        if lam < 0:
            raise ValueError(f"EWC lambda must be >= 0, got {lam}")
        self.lam = float(lam)
        self.tasks: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def consolidate(self, model: nn.Module, fisher: Mapping[str, torch.Tensor]) -> None:
        """Remember the current weights as ``theta*`` with importances ``fisher``."""
        params = trainable_parameters(model)
        missing = sorted(set(params) - set(fisher))
        if missing:
            raise ValueError(f"EWC.consolidate: no Fisher values for parameters {missing[:5]}")
        anchor = {name: p.detach().clone() for name, p in params.items()}
        importance = {name: fisher[name].detach().to(anchor[name]).clone() for name in params}
        self.tasks.append((importance, anchor))

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """``lambda * sum_t sum_i F_t,i (theta_i - theta*_t,i)^2`` (0 before any task)."""
        params = trainable_parameters(model)
        total = next(iter(params.values())).new_zeros(())
        for importance, anchor in self.tasks:
            for name, p in params.items():
                total = total + (importance[name] * (p - anchor[name]).pow(2)).sum()
        return self.lam * total

    def wrap(self, loss_fn: Callable, model: nn.Module) -> Callable:
        """A loss callable ``(outputs, batch) -> (loss, parts)`` with the penalty added.

        ``parts`` gains ``ewc`` (the penalty, a detached tensor) next to what
        ``loss_fn`` reports.
        """

        def ewc_loss(outputs, batch):
            loss, parts = loss_fn(outputs, batch)
            if not self.tasks:
                return loss, {**parts, "ewc": loss.new_zeros(())}
            extra = self.penalty(model)
            # A detached tensor, not a float: no host sync per batch on a GPU.
            return loss + extra, {**parts, "ewc": extra.detach()}

        return ewc_loss

    def state_dict(self) -> dict:
        return {"lam": self.lam, "tasks": self.tasks}

    def load_state_dict(self, state: Mapping) -> None:
        self.lam = float(state["lam"])
        self.tasks = list(state["tasks"])
