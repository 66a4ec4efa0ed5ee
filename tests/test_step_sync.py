"""A steady-state training step moves nothing between host and device, and reads
nothing back (issue #28, item 1).

The engine's real step code (:func:`hwbench.engine.fit`) runs on PyTorch's "meta"
device, a device without data, under a :class:`TorchDispatchMode` that records every
copy between devices and every ``aten._local_scalar_dense`` (what ``.item()``,
``float(t)`` and ``int(t)`` call) of a tensor on a device. On a GPU each of those
would be a host sync (a copy from pageable host memory waits for the device's
queued work; a read back waits for it to finish). Steps are told apart by a forward
pre-hook on the model: a "cycle" runs from one step's forward to the next's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from hwbench.data import BatchTransform
from hwbench.engine import TrainConfig, fit
from hwbench.rows import StoredRows
from hwbench.studies.onemodel.job import PhocLoss
from hwbench.studies.onemodel.sensory import CanvasTransform, ImageBlock

META = torch.device("meta")
aten = torch.ops.aten


class Transfers(TorchDispatchMode):
    """Records host<->device copies and scalar reads of device tensors, per cycle.

    A read of a meta tensor has no value to give: it returns ones, so training
    goes on (the values of a meta run are meaningless; only the traffic is checked).
    """

    def __init__(self):
        super().__init__()
        self.cycles: list[list[tuple]] = [[]]

    def new_cycle(self, *_):
        self.cycles.append([])

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        event = None
        if func is aten._local_scalar_dense.default and args[0].device.type != "cpu":
            event = ("read", args[0].device.type)
        elif func is aten._to_copy.default and "device" in kwargs:
            src, dst = args[0].device, torch.device(kwargs["device"])
            if src.type != dst.type:
                event = ("copy", src.type, dst.type, bool(kwargs.get("non_blocking")))
        elif func is aten.copy_.default and args[0].device.type != args[1].device.type:
            event = ("copy", args[1].device.type, args[0].device.type, bool(args[2:] and args[2]))
        if event is None:
            return func(*args, **kwargs)
        self.cycles[-1].append(event)
        if event[0] == "read":
            return func(torch.ones((), dtype=args[0].dtype))
        if event[2] == "cpu":  # a meta tensor read back: ones of its shape
            return torch.ones(args[0].shape, dtype=kwargs.get("dtype") or args[0].dtype)
        return func(*args, **kwargs)


def _record(model: nn.Module, train: dict, steps: int, **fit_kwargs) -> Transfers:
    """Run one epoch of ``steps`` steps on the meta device, recording transfers."""
    config = TrainConfig(epochs=1, batch_size=4, lr=0.01, data_on_device_mb=None, seed=0)
    recorder = Transfers()
    model.register_forward_pre_hook(recorder.new_cycle)
    with recorder:
        fit(model, train, config, None, device=META, progress=False, metrics_fn=None, **fit_kwargs)
    assert len(recorder.cycles) == steps + 1  # before the first forward, then one per step
    return recorder


def _steady(recorder: Transfers) -> list[tuple]:
    """Everything between the second step's forward and the last step's forward:
    whole steps after the first (warm-up), without the epoch's end."""
    return [e for cycle in recorder.cycles[2:-1] for e in cycle]


def _conv_net(in_channels: int, classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, classes),
    )


def _loss_with_number_part(outputs, batch):
    """A loss that also logs a plain number, as multiscript's factor."""
    loss = nn.functional.cross_entropy(outputs.float(), batch["y"])
    return loss, {"acc": (outputs.argmax(1) == batch["y"]).float().mean(), "factor": 0.5}


def test_device_resident_step_moves_and_reads_nothing():
    """Data on the device, the per-batch BatchTransform (resize + normalise), a loss
    part given as a number: no transfer at all in a steady step, and the epoch's
    sums are read in one transfer at its end."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (24, 12, 12), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 3, (24,), generator=g)
    train = {"x": x.to(META), "y": y.to(META)}
    recorder = _record(
        _conv_net(3, 3),
        train,
        steps=6,
        transform=BatchTransform(size=16, channels=3, normalize="imagenet"),
        loss_fn=_loss_with_number_part,
    )
    assert _steady(recorder) == []
    epoch_end = [e for e in recorder.cycles[-1] if e[0] == "read" or e[2] == "cpu"]
    assert epoch_end == [("copy", "meta", "cpu", False)]  # loss + acc sums, once


def test_host_and_stored_rows_step_only_copies_its_batch_asynchronously(tmp_path):
    """Data in host memory (over the device budget) and images read from disk
    (StoredRows): a steady step copies its own batch to the device, each tensor once
    and asynchronously, and reads nothing back."""
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (40, 12, 12), dtype=torch.uint8, generator=g)
    np.save(tmp_path / "images.npy", images.numpy())
    rows = np.arange(3, 35)
    y = torch.randint(0, 3, (len(rows),), generator=g)
    train = {"x": StoredRows(tmp_path / "images.npy", rows), "y": y}
    recorder = _record(_conv_net(1, 3), train, steps=8, transform=BatchTransform(size=12))
    steady = _steady(recorder)
    assert steady == [("copy", "cpu", "meta", True)] * 2 * 6  # x and y, 6 steady cycles


def test_onemodel_step_stages_ids_on_the_host(tmp_path):
    """OneModel: row ids -> canvases of two tasks (one read from disk, one in memory).
    The ids stay in host memory, grouped by the reader thread; a steady step copies
    only its staged images (and, for a two-task batch, their positions in it)."""
    g = torch.Generator().manual_seed(2)
    disk = torch.randint(0, 256, (20, 10, 30), dtype=torch.uint8, generator=g)
    np.save(tmp_path / "images.npy", disk.numpy())
    memory = torch.randint(0, 256, (12, 16, 16), dtype=torch.uint8, generator=g)
    transform = CanvasTransform(
        (1, 16, 32),
        [ImageBlock("a/train", StoredRows(tmp_path / "images.npy")), ImageBlock("b/train", memory)],
    )
    n = 32
    train = {"x": torch.arange(n), "y": torch.randint(0, 5, (n,), generator=g)}
    phocs = (torch.rand(5, 7, generator=g) > 0.5).float().numpy()
    recorder = _record(
        _conv_net(1, 7), train, steps=8, transform=transform, loss_fn=PhocLoss(phocs)
    )
    steady = _steady(recorder)
    assert steady, "the staged images must be copied"
    assert {e for e in steady} <= {("copy", "cpu", "meta", True)}
    # y is on the device (indexed there); per cycle: 1 or 2 blocks, a scatter index each when 2
    per_cycle = [len(c) for c in recorder.cycles[2:-1]]
    assert all(n in (1, 4) for n in per_cycle), per_cycle


@pytest.mark.parametrize("device_type", ["cpu", "meta"])
def test_batch_transform_copies_its_statistics_once_per_device(device_type):
    transform = BatchTransform(size=8, channels=3, normalize="imagenet")
    batch = torch.zeros((2, 8, 8), dtype=torch.uint8, device=device_type)
    recorder = Transfers()
    with recorder:
        for _ in range(3):
            transform(batch)
            recorder.new_cycle()
    copies = [len(c) for c in recorder.cycles[:-1]]
    assert copies == ([0, 0, 0] if device_type == "cpu" else [2, 0, 0])  # mean, std once


def test_the_recorder_sees_reads_and_copies():
    """The check above can fail: .item(), float(), .cpu() and .to(device) are seen."""
    recorder = Transfers()
    t = torch.zeros(3, device=META)
    with recorder:
        t.sum().item()
        float(t[0])
        t.cpu()
        torch.zeros(2).to(META, non_blocking=True)
        torch.zeros(2).to("cpu")  # host to host: not a transfer
    assert recorder.cycles == [
        [
            ("read", "meta"),
            ("read", "meta"),
            ("copy", "meta", "cpu", False),
            ("copy", "cpu", "meta", True),
        ]
    ]


# --- the same results on the CPU ------------------------------------------------------


class _Unstaged:
    """A CanvasTransform seen without its ``stage``: ids go the old way (on the device)."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, ids):
        return self.transform(ids)

    def __repr__(self):
        return repr(self.transform)


def _fit_weights(train, transform, loss_fn, classes, seed=3):
    torch.manual_seed(seed)
    model = _conv_net(1, classes)
    config = TrainConfig(epochs=2, batch_size=5, lr=0.05, seed=seed, data_on_device_mb=None)
    result = fit(model, train, config, None, device="cpu", progress=False, metrics_fn=None,
                 transform=transform, loss_fn=loss_fn)  # fmt: skip
    return result.history, model.state_dict()


def _same(a, b):
    (hist_a, w_a), (hist_b, w_b) = a, b
    strip = [{k: v for k, v in row.items() if k != "time_s"} for row in hist_a]
    assert strip == [{k: v for k, v in row.items() if k != "time_s"} for row in hist_b]
    for k in w_a:
        assert torch.equal(w_a[k], w_b[k]), k


def test_staged_canvases_train_exactly_as_unstaged(tmp_path):
    g = torch.Generator().manual_seed(4)
    disk = torch.randint(0, 256, (15, 10, 30), dtype=torch.uint8, generator=g)
    np.save(tmp_path / "images.npy", disk.numpy())
    blocks = [
        ImageBlock("a/train", StoredRows(tmp_path / "images.npy"), 12),
        ImageBlock("b/train", torch.randint(0, 256, (11, 16, 16), dtype=torch.uint8, generator=g)),
    ]
    transform = CanvasTransform((1, 16, 32), blocks)
    transform.fit_statistics(torch.arange(26))
    train = {"x": torch.arange(26), "y": torch.randint(0, 5, (26,), generator=g)}
    loss = PhocLoss((torch.rand(5, 7, generator=g) > 0.5).float().numpy())
    staged = _fit_weights(train, transform, loss, 7)
    unstaged = _fit_weights(train, _Unstaged(transform), loss, 7)
    _same(staged, unstaged)


def test_prefetched_stored_rows_train_exactly_as_rows_in_memory(tmp_path):
    g = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (30, 12, 12), dtype=torch.uint8, generator=g)
    np.save(tmp_path / "images.npy", images.numpy())
    rows = np.array([4, 5, 6, 20, 1, 2, 9, 11, 12, 13, 29, 0, 7, 8, 3, 25, 26, 27])
    y = torch.randint(0, 3, (len(rows),), generator=g)
    on_disk = {"x": StoredRows(tmp_path / "images.npy", rows), "y": y}
    in_memory = {"x": images[torch.from_numpy(rows)], "y": y}
    transform = BatchTransform(size=10)
    _same(
        _fit_weights(on_disk, transform, _loss_with_number_part, 3),
        _fit_weights(in_memory, transform, _loss_with_number_part, 3),
    )
