"""Activation checkpointing: trade compute for activation memory in a training step.

A ResNet-152 step on OneModel's 3 x 300 x 600 canvas at batch 10 keeps about 7 GB of
activations for the backward pass, more than a CPU host with 8 GB can give one job.
With checkpointing, each residual block keeps only its input; its inner activations are
recomputed, one block at a time, during the backward pass (about one more forward pass
of compute). The result is the same step: :func:`kept_running_stats` undoes the second
BatchNorm running-statistics update that the recomputation would otherwise make.

The train key ``activation_checkpointing`` chooses where: ``never`` (default),
``always``, or ``cpu`` (host memory is the limit there, while a GPU with tens of GB has
room and would only lose time).
"""

from __future__ import annotations

import contextlib
import types

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

SETTINGS = ("never", "always", "cpu")


def check_setting(setting: str) -> None:
    """A clear error for an ``activation_checkpointing`` value outside :data:`SETTINGS`."""
    if setting not in SETTINGS:
        raise ValueError(f"activation_checkpointing={setting!r}: use one of {list(SETTINGS)}")


def wanted(setting: str, device: torch.device) -> bool:
    """Whether ``activation_checkpointing: <setting>`` applies on ``device``."""
    check_setting(setting)
    return setting == "always" or (setting == "cpu" and torch.device(device).type == "cpu")


def residual_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's residual blocks (torchvision's BasicBlock and Bottleneck)."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    return [m for m in model.modules() if isinstance(m, BasicBlock | Bottleneck)]


def _checkpointed_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if not torch.is_grad_enabled():  # evaluation: nothing is kept for a backward pass
        return type(self).forward(self, x)
    return checkpoint(type(self).forward, self, x, use_reentrant=False)


def enable(model: nn.Module) -> int:
    """Checkpoint every residual block of ``model``; returns how many.

    The blocks' ``forward`` is replaced on the instances, so parameter names and
    state dicts stay as they are (a method bound with ``types.MethodType`` follows a
    deep copy of the block). :func:`disable` puts the class's forward back.
    """
    blocks = residual_blocks(model)
    if not blocks:
        raise ValueError(
            f"activation_checkpointing: {type(model).__name__} has no residual blocks to "
            "checkpoint (torchvision ResNets only); set it to 'never' for this model"
        )
    for block in blocks:
        block.forward = types.MethodType(_checkpointed_forward, block)
    return len(blocks)


def disable(model: nn.Module) -> None:
    """Undo :func:`enable`."""
    for block in residual_blocks(model):
        block.__dict__.pop("forward", None)


def _norm_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [
        b
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        for b in m.buffers(recurse=False)
    ]


@contextlib.contextmanager
def kept_running_stats(model: nn.Module):
    """Around a backward pass: BatchNorm running stats end as the forward pass left them.

    The recomputed forward of a checkpointed block runs its BatchNorms in training
    mode again, which would update their running mean, variance and batch count a
    second time. The buffers are small (a few KB per layer), so they are copied
    before and written back after.
    """
    buffers = _norm_buffers(model)
    saved = [b.detach().clone() for b in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for b, s in zip(buffers, saved, strict=True):
                b.copy_(s)
