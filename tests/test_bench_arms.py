"""benchmarks/arms.py: every arm of the engine benchmark (and of gpu.py and cost.py)
trains on the same uint8 data, through the same per-batch transform, inside its clock."""

from __future__ import annotations

import dataclasses
import sys

import pytest
import torch

from tests.conftest import REPO


@pytest.fixture(scope="module")
def arms():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import arms

    return arms


class Counting:
    """A transform that records the dtype of every batch it turns into model input."""

    def __init__(self, transform):
        self.transform, self.seen = transform, []

    def __repr__(self) -> str:
        return f"Counting({self.transform!r})"

    def __call__(self, batch):
        self.seen.append(batch.dtype)
        return self.transform(batch)


def _workload(arms, steps=3):
    w = arms.generic_workload("small_cnn", (28, 28), 1, "cifar", 4, steps, "cpu")
    return dataclasses.replace(w, transform=Counting(w.transform))


@pytest.mark.parametrize("arm", ["limit", "engine", "dataloader"])
def test_every_arm_transforms_uint8_batches_inside_its_unit(arms, arm):
    w = _workload(arms)
    assert w.x.dtype == torch.uint8
    unit = arms.dataloader_arm(w, 0) if arm == "dataloader" else getattr(arms, f"{arm}_arm")(w)
    before = len(w.transform.seen)  # set-up may not transform anything ahead of the clock
    assert before == 0
    unit()
    assert w.transform.seen == [torch.uint8] * w.steps
    unit()
    assert len(w.transform.seen) == 2 * w.steps


def test_the_engine_arm_trains_one_epoch_whatever_the_studys_epochs(arms):
    w = dataclasses.replace(_workload(arms), train={"epochs": 60, "monitor": "val_acc"})
    cfg = w.config()
    assert cfg.epochs == 1 and cfg.batch_size == 4 and cfg.batch_schedule == []
    cfg = arms.multiscript_workload(_paper(), "cpu", 2).config()
    assert cfg.epochs == 1 and cfg.monitor == "val_loss"  # no early stopping on a unit


def test_study_workloads_are_the_paper_steps(arms):
    cfg = _paper()
    ms = arms.multiscript_workload(cfg, "cpu", 2)
    assert (ms.batch_size, ms.model["name"], ms.model["in_channels"]) == (32, "resnet18", 3)
    assert ms.x.dtype == torch.uint8 and tuple(ms.x.shape) == (64, 28, 28)
    assert ms.transform(ms.x[:2]).shape == (2, 3, 28, 28)
    tr = arms.transfer_workload(cfg, "cpu", 1)
    assert tr.batch_size == 128 and tuple(tr.x.shape[1:]) == (128, 128)


def test_onemodel_workload_reads_rows_from_disk(arms, tmp_path):
    from hwbench.rows import StoredRows

    w = arms.onemodel_workload(_paper(), "cpu", 1, tmp_path, batch=2, shrink=10)
    assert isinstance(w.transform.blocks[0].images, StoredRows)
    assert w.transform(w.x[:2]).shape == (2, 3, 30, 60)
    sample = w.samples[1]
    assert sample.dtype == torch.uint8 and tuple(sample.shape) == (12, 60)
    canvases = w.sample_transform(torch.stack([w.samples[0], w.samples[1]]))
    assert torch.allclose(canvases, w.transform(w.x[:2]))  # the DataLoader arm's = the study's


def _paper():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from cost import merged_config

    return merged_config()
