"""The default loss and metrics, and a model over data in batches: :func:`predict`,
:func:`evaluate`. ``Data``: a dict of tensors sharing the first dimension."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from hwbench.engine.device import autocast
from hwbench.metrics import classification_metrics

Data = Mapping[str, torch.Tensor]


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
