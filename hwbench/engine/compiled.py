"""``train.compile``: the training forward pass through ``torch.compile``.

The model itself is never replaced: checkpoints, ``model.pt`` and evaluation use the
original module, so parameter names stay those of the eager model (a compiled module's
``state_dict`` would prefix every key with ``_orig_mod.``). Compilation happens at the
first call; where it fails (no C compiler for inductor's CPU kernels, an operator the
backend cannot lower) the run goes on eagerly and the reason is logged once.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

log = logging.getLogger("hwbench.engine")


def _compile_errors() -> tuple[type[BaseException], ...]:
    # Failures of the compiler itself; an error of the model's own code (a shape
    # mismatch, out of memory) is raised by the eager fallback as well.
    from torch._dynamo.exc import TorchDynamoException
    from torch._inductor.exc import CppCompileError

    return TorchDynamoException, CppCompileError


class CompiledForward:
    """Calls ``torch.compile(model, mode=mode)``; the eager ``model`` once that fails."""

    def __init__(self, model: nn.Module, mode: str):
        self.model, self.mode = model, mode
        self.compiled = torch.compile(model, mode=mode)
        self.fallback_reason: str | None = None

    def __call__(self, x):
        if self.compiled is None:
            return self.model(x)
        try:
            return self.compiled(x)
        except _compile_errors() as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            self.fallback_reason = f"{type(err).__name__}: {first}"[:500]
            log.warning(
                "train.compile=%s: compiling the model failed (%s); training eagerly",
                self.mode,
                self.fallback_reason,
            )
            self.compiled = None
            return self.model(x)


def forward_of(model: nn.Module, mode: str):
    """What the training step calls: the model itself (``off``) or a
    :class:`CompiledForward` of it."""
    if mode == "off":
        return model
    return CompiledForward(model, mode)
