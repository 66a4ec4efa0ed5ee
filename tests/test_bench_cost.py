"""benchmarks/cost.py and benchmarks/memory.py: the shapes they measure and their arithmetic.

The timings themselves are the benchmarks' business (reports/bench.csv); here only what
must hold whatever the machine: the paper shapes come from the paper preset, the
projection is jobs x epochs x steps, and the generated docs block is the only part of
docs/performance.md a run rewrites.
"""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest
import yaml

from tests.conftest import REPO


def _load(name: str):
    spec = importlib.util.spec_from_file_location(
        f"bench_{name}", REPO / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cost():
    return _load("cost")


@pytest.fixture(scope="module")
def memory():
    return _load("memory")


def test_shapes_are_the_paper_presets(cost):
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    shapes = {s.rule: s for s in cost.shapes(cost.merged_config())}
    onemodel = shapes["onemodel_train"]
    assert onemodel.model["name"] == paper["onemodel"]["model"]["name"] == "resnet152"
    assert list(onemodel.input) == paper["onemodel"]["canvas"] == [3, 300, 600]
    assert onemodel.batch == paper["onemodel"]["train"]["batch_size"]
    assert onemodel.epochs == paper["onemodel"]["train"]["epochs"]
    lifelong = shapes["lifelong_sequence"]
    side = paper["lifelong"]["model"]["input_size"]
    assert (
        lifelong.input == (3, side, side)
        and lifelong.batch == paper["lifelong"]["train"]["batch_size"]
    )
    # NIST's series of 20, 10 and 5 epochs: 35 in all, starting at the first batch size
    schedule = paper["adaptation"]["train"]["batch_schedule"]
    assert shapes["adaptation_train"].epochs == sum(e for e, _ in schedule) == 35
    assert shapes["adaptation_train"].batch == schedule[0][1]
    assert set(shapes) <= set(cost.TRAIN_IMAGES), "every measured rule needs a paper size"


def test_projection_is_jobs_times_epochs_times_steps(cost):
    shape = cost.Shape("onemodel_train", {"name": "resnet152"}, (3, 300, 600), 10, 60, 604)
    images, _ = cost.TRAIN_IMAGES["onemodel_train"]
    got = cost.project(shape, jobs=5, seconds=2.0, flops=1e12)
    steps = 5 * 60 * math.ceil(images / 10)
    assert got["steps"] == steps
    assert got["device_hours"] == pytest.approx(steps * 2.0 / 3600)
    floor = steps * 1e12 / (cost.GPU_PEAK_FLOPS * cost.GPU_UTILISATION) / 3600
    assert got["gpu_floor_hours"] == pytest.approx(floor)


def test_doc_block_is_replaced_and_the_prose_kept(cost, tmp_path, monkeypatch):
    page = tmp_path / "performance.md"
    page.write_text("intro\n<!-- paper-cost:start (cmd) -->\nold\n<!-- paper-cost:end -->\nafter\n")
    monkeypatch.setattr(cost, "DOC", page)
    cost.write_doc("| new |\n", "python benchmarks/cost.py --docs")
    text = page.read_text()
    assert text.startswith("intro\n") and text.endswith("after\n")
    assert "old" not in text and "| new |" in text
    page.write_text("no block here\n")
    with pytest.raises(SystemExit, match="no <!-- paper-cost:start"):
        cost.write_doc("x", "cmd")


def test_markdown_marks_projections(cost):
    shape = cost.Shape("adaptation_train", {"name": "base_cnn"}, (1, 28, 28), 64, 35, 62)
    row = {"shape": shape, "jobs": 2, "seconds": 0.5, "flops": 7e9}
    row |= cost.project(shape, 2, 0.5, 7e9)
    text = cost.markdown([row], "cpu (test)")
    assert "device-hours (projected)" in text and "floor (projected)" in text
    assert f"| {row['steps']:,} |" in text


def test_memory_scales_the_training_set_it_measures(memory):
    assert memory.scale_config(memory.JOBS["onemodel"], 8) == {
        "data": {"standin": {"per_class": 8}}
    }
    lifelong = memory.scale_config(memory.JOBS["lifelong"], 4)
    assert lifelong == {"synth": {"synth_lifelong": {"samples_per_class": 4}}}
    rules = {job.rule for job in memory.JOBS.values()}
    assert rules <= set(_load("cost").LARGEST_JOB_IMAGES)


def test_memory_says_where_the_paper_store_is_kept(memory):
    # OneModel's paper task sets (~12 GB uint8) are over its budget (config.yaml: 2048)
    assert memory.paper_residency("onemodel", 12_133) == (
        "read from disk per batch: over onemodel.resident_mb 2048 MiB"
    )
    assert memory.paper_residency("onemodel", 100) == "held in memory"
    assert memory.paper_residency("transfer", 13_000).endswith("transfer.resident_mb 2048 MiB")
    assert memory.paper_residency("lifelong", 13_000) == "held in memory"  # no budget key
