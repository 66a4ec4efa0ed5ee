"""What a checkpoint records of the run that wrote it, so that a resume happens only
on the very same training: config, data, per-batch transform, the caller's settings."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from collections.abc import Callable, Mapping

import torch

from hwbench.engine.config import TrainConfig
from hwbench.engine.evaluation import Data
from hwbench.rows import StoredRows, origin_of


def data_fingerprint(sets: Mapping[str, Data | None]) -> dict:
    """Shape, dtype and what identifies the content of every tensor of every data set.

    Rows taken from a processed store (:class:`~hwbench.rows.StoredRows`, or a tensor
    marked by :func:`hwbench.rows.with_origin`) are identified by the store's recorded
    digest and a hash of the row numbers: no image is read. Any other tensor (labels,
    synthetic or test data) by a hash of its bytes. A checkpoint resumes only on the
    very data it was trained on: a changed split, dataset or transform starts the run
    over.
    """
    out = {}
    for name, data in sets.items():
        for key, tensor in (data or {}).items():
            origin = origin_of(tensor)
            if origin is not None:
                out[f"{name}.{key}"] = [list(tensor.shape), str(tensor.dtype), origin]
                continue
            if isinstance(tensor, StoredRows):  # no digest record: hash the rows read
                out[f"{name}.{key}"] = [list(tensor.shape), str(tensor.dtype), tensor.digest(16)]
                continue
            t = tensor.detach().to("cpu").contiguous()
            flat = t.reshape(-1).view(torch.uint8) if t.numel() else t.to(torch.uint8)
            digest = hashlib.blake2b(flat.numpy(), digest_size=16)
            out[f"{name}.{key}"] = [list(t.shape), str(t.dtype), digest.hexdigest()]
    return out


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


def run_fingerprint(
    config: TrainConfig,
    train: Data,
    eval_sets: Mapping[str, Data] | None,
    transform: Callable | None,
    fingerprint: Mapping | None,
) -> dict:
    """What a checkpoint must match to be resumed: the training config, the data, the
    per-batch transform and the caller's ``fingerprint`` (see :func:`hwbench.engine.fit`)."""
    # How often to checkpoint, where the data live, whether activations are
    # recomputed and whether the forward pass is compiled do not change what is
    # trained: a resume ignores them.
    ignored = ("checkpoint_every_s", "data_on_device_mb", "activation_checkpointing", "compile")
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in ignored}
    full = {
        **settings,
        "data": data_fingerprint({"train": train, **(eval_sets or {})}),
    }
    if transform is not None:  # the stored data alone do not say what the model saw
        full["transform"] = transform_fingerprint(transform)
    if fingerprint is not None:
        full["run"] = json.loads(json.dumps(fingerprint, sort_keys=True, default=str))
    return full
