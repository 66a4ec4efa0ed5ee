"""Batches on the device without a host sync per step: where the data live
(:func:`prepare`), each epoch's batches (:func:`batches`: gathered on the device, or
by a reader thread into pinned staging) and the epoch's sums read once
(:func:`read_sums`)."""

from __future__ import annotations

import itertools

import torch

from hwbench.engine.evaluation import Data
from hwbench.rows import Prefetcher, StoredRows, take_rows


def _nbytes(data: Data) -> int:
    return sum(v.numel() * v.element_size() for v in data.values())


def prepare(
    data: Data | None, device: torch.device, budget_mb: float | None, host_keys=()
) -> dict | None:
    """Check a data dict and move it to ``device`` when it fits ``budget_mb``.

    Data larger than the budget stay in host memory and each batch is copied on its
    own (through pinned staging on CUDA, :func:`batches`): the resident input is the
    compact store, never more. An ``x`` of :class:`~hwbench.rows.StoredRows` stays
    on disk: each batch's rows are read. ``host_keys`` stay in host memory anyway
    (the ``x`` a staging transform reads on the host).
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
        return dict(data)
    return {k: v if k in host_keys else v.to(device, non_blocking=True) for k, v in data.items()}


def stages(transform) -> bool:
    """Whether ``transform`` prepares its batches on the host (``transform.stage``)."""
    return callable(getattr(transform, "stage", None))


def batches(train: dict, perm: torch.Tensor, starts, bs: int, device, transform):
    """This epoch's batches from ``starts`` on, each on ``device``.

    Data on the device are indexed there (the order copied over once per epoch). Data
    in host memory or on disk are gathered by a reader thread, at most two batches
    ahead, into staging buffers that are pinned when the device is CUDA, so that
    each batch's copy is asynchronous; a staging ``transform`` (``stage(x, pin)``:
    e.g. :class:`~hwbench.studies.onemodel.sensory.CanvasTransform`) prepares its
    ``x`` in the same thread. No step reads anything back from the device.
    """
    device = torch.device(device)
    stage = transform.stage if stages(transform) else None
    resident = {
        k
        for k, v in train.items()
        if isinstance(v, torch.Tensor) and v.device == device and not (k == "x" and stage)
    }
    on_device = perm.to(device) if resident else None
    pin = device.type == "cuda"

    def read(start: int) -> dict:  # in the reader thread
        idx = perm[start : start + bs]
        return {
            k: stage(v[idx], pin) if k == "x" and stage else take_rows(v, idx, pin)
            for k, v in train.items()
            if k not in resident
        }

    with Prefetcher(read, starts if len(resident) < len(train) else ()) as ahead:
        for start, host in itertools.zip_longest(starts, ahead):
            batch = {k: v.to(device, non_blocking=True) for k, v in (host or {}).items()}
            if resident:
                idx = on_device[start : start + bs]
                batch.update({k: train[k][idx] for k in resident})
            yield {k: batch[k] for k in train}


def read_sums(sums: dict) -> dict[str, float]:
    """The epoch's sums as numbers: those on a device in one transfer."""
    on_device = [k for k, v in sums.items() if torch.is_tensor(v) and v.device.type != "cpu"]
    values = {k: float(v) for k, v in sums.items() if k not in on_device}
    if on_device:
        read = torch.stack([sums[k] for k in on_device]).cpu().tolist()
        values.update(zip(on_device, read, strict=True))
    return {k: values[k] for k in sums}
