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
    assert sum(e for _, e, _ in shapes["adaptation_train"].fits) == 35
    assert [[e, b] for _, e, b in shapes["adaptation_train"].fits] == schedule
    assert shapes["adaptation_train"].batch == schedule[0][1]
    assert set(shapes) <= set(cost.TRAIN_IMAGES), "every measured rule needs a paper size"


def test_projection_is_jobs_times_fits_times_steps(cost):
    shape = cost.Shape("onemodel_train", {"name": "resnet152"}, (3, 300, 600), 10, 60, 604)
    shape.fits = [(92_408, 60, 10)]
    got = cost.project(shape, jobs=5, per_batch={10: (2.0, 1e12)})
    steps = 5 * 60 * math.ceil(92_408 / 10)
    assert got["steps"] == steps
    assert got["device_hours"] == pytest.approx(steps * 2.0 / 3600)
    floor = steps * 1e12 / (cost.GPU_PEAK_FLOPS * cost.GPU_UTILISATION) / 3600
    assert got["gpu_floor_hours"] == pytest.approx(floor)


def test_a_batch_schedule_is_timed_at_each_batch(cost):
    """Adaptation's NIST schedule (20 epochs at 64, 10 at 128, 5 at 256): each series
    has its own steps and s/step, not 35 epochs at the first batch size."""
    shape = next(s for s in cost.shapes(cost.merged_config()) if s.rule == "adaptation_train")
    assert shape.fits == [(585_000, 20, 64), (585_000, 10, 128), (585_000, 5, 256)]
    per_batch = {64: (1.0, 1.0), 128: (2.0, 2.0), 256: (4.0, 4.0)}
    got = cost.project(shape, jobs=1, per_batch=per_batch)
    steps = [20 * math.ceil(585_000 / 64), 10 * math.ceil(585_000 / 128), 5 * 2286]
    assert got["steps"] == sum(steps)
    assert got["device_hours"] == pytest.approx((steps[0] + 2 * steps[1] + 4 * steps[2]) / 3600)
    assert got["bound"].startswith("upper bound")


def test_lifelong_curriculum_trains_each_task_alone_on_its_training_split(cost):
    """The curriculum job fits one model per task, on curriculum.train_splits (train
    only: val is held out), not the whole sequence's epochs over every task's images."""
    cfg = cost.merged_config()
    ll = cfg["lifelong"]
    tasks = len(ll["writers"])
    shape = next(s for s in cost.shapes(cfg) if s.rule == "lifelong_curriculum")
    per_task = 721 / tasks * (1 - cfg["splits"]["val_fraction"])
    assert shape.fits == [pytest.approx((per_task, ll["curriculum"]["epochs"], 8))] * tasks
    steps = cost.steps_per_job(shape.fits)
    assert steps == tasks * ll["curriculum"]["epochs"] * math.ceil(per_task / 8)
    old = tasks * ll["curriculum"]["epochs"] * math.ceil(721 / 8)  # the former count
    assert old / steps > 4


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


def test_markdown_marks_projections_and_bounds(cost):
    shape = cost.Shape("adaptation_train", {"name": "base_cnn"}, (1, 28, 28), 64, 20, 62)
    shape.fits, shape.stops_early = [(1000, 20, 64), (1000, 10, 128)], True
    per_batch = {64: (0.5, 7e9), 128: (0.9, 14e9)}
    row = {"shape": shape, "jobs": 2, "per_batch": per_batch} | cost.project(shape, 2, per_batch)
    text = cost.markdown([row], "cpu (test)")
    assert "device-hours (projected)" in text and "floor (projected)" in text
    assert "GFLOP/step (counted)" in text
    assert f"| {row['steps']:,} |" in text and "| 0.500 / 0.900 | 7.0 / 14.0 |" in text
    assert "| upper bound (largest job, max epochs) |" in text
    assert "| all |" in text and "upper bound (sum of 1 upper bounds)" in text


def test_memory_scales_the_training_set_it_measures(memory):
    assert memory.scale_config(memory.JOBS["onemodel"], 8) == {
        "data": {"standin": {"per_class": 8}}
    }
    lifelong = memory.scale_config(memory.JOBS["lifelong"], 4)
    assert lifelong == {"synth": {"synth_lifelong": {"samples_per_class": 4}}}
    rules = {job.rule for job in memory.JOBS.values()}
    assert rules <= set(_load("cost").LARGEST_JOB_IMAGES)


def test_memory_growth_check_needs_power(memory):
    """A float copy of the training set at 4N must be a detectable share of the peak."""
    copy = memory.float_input_bytes("multiscript_train")
    assert copy == 4 * 3 * 28 * 28  # ResNet-18's 3 x 28 x 28 float32 input
    # 240 images: a float copy of 4N adds 2 MiB to a 1,400 MiB peak: undetectable
    assert not memory.has_power(1400, 240, copy)
    n = memory.per_class_for_power(8, 240, 1400, copy)
    assert memory.has_power(1400, 240 * n // 8, copy)
    assert not memory.has_power(1400, 240 * n // 8 // 2, copy)  # the smallest, near enough
    assert memory.per_class_for_power(8, 240, 1, copy) == 8  # already powered: kept


def test_memory_says_where_the_paper_store_is_kept(memory):
    # OneModel's paper task sets (~12 GB uint8) are over its budget (config.yaml: 2048)
    assert memory.paper_residency("onemodel", 12_133) == (
        "read from disk per batch: over onemodel.resident_mb 2048 MiB"
    )
    assert memory.paper_residency("onemodel", 100) == "held in memory"
    assert memory.paper_residency("transfer", 13_000).endswith("transfer.resident_mb 2048 MiB")
    assert memory.paper_residency("lifelong", 13_000) == "held in memory"  # no budget key


# --- the generated block of docs/performance.md against the plan and the config -----


def _planned_jobs(cfg: dict) -> dict[str, int]:
    """Jobs per training rule, from the studies' plans (what the rules expand)."""
    from hwbench.studies.adaptation import plan as ad
    from hwbench.studies.lifelong import plan as ll
    from hwbench.studies.multiscript import plan as ms
    from hwbench.studies.onemodel import plan as om
    from hwbench.studies.transfer import plan as tr

    lifelong = ll.runs(cfg["lifelong"])
    multitask = [r for r in lifelong if "/multitask/" in r]
    return {
        "multiscript_train": len(ms.runs(cfg["multiscript"])),
        "transfer_source": len(tr.source_runs(cfg["transfer"])),
        "transfer_train": len(tr.runs(cfg["transfer"])),
        "lifelong_sequence": len(lifelong) - len(multitask),
        "lifelong_multitask": len(multitask),
        "lifelong_curriculum": int("curriculum" in cfg["lifelong"]["orders"]),
        "onemodel_train": len(om.runs(cfg["onemodel"])),
        # one base CNN per dataset (results/adaptation/{dataset}/base)
        "adaptation_train": len(ad.datasets(cfg["adaptation"])),
    }


def _steps_per_job(rule: str, cfg: dict, images: int) -> int:
    """One job's optimizer steps, from the config and the job code's own splits."""
    from hwbench.studies.adaptation.plan import train_settings
    from hwbench.studies.lifelong.job import curriculum_parts

    def epoch_steps(n, batch):
        return math.ceil(n / batch)

    if rule.startswith("lifelong"):
        ll = cfg["lifelong"]
        tasks, batch = len(ll["writers"]), ll["train"]["batch_size"]
        if rule == "lifelong_multitask":
            return ll["multitask"]["epochs"] * epoch_steps(images, batch)
        task_images = images / tasks
        if rule == "lifelong_curriculum":
            fit_splits = curriculum_parts(ll)["fit"]
            if "val" in ll["train_splits"] and "val" not in fit_splits:
                task_images *= 1 - cfg["splits"]["val_fraction"]
            return tasks * ll["curriculum"]["epochs"] * epoch_steps(task_images, batch)
        return tasks * ll["train"]["epochs"] * epoch_steps(task_images, batch)
    if rule == "adaptation_train":
        train = train_settings(cfg["adaptation"], cfg["adaptation"]["datasets"][0])
        return sum(e * epoch_steps(images, b) for e, b in train["batch_schedule"])
    study = {"multiscript_train": "multiscript", "onemodel_train": "onemodel"}.get(rule)
    train = cfg[study or "transfer"]["train"]
    return train["epochs"] * epoch_steps(images, train["batch_size"])


def _doc_rows() -> dict[str, list[str]]:
    page = (REPO / "docs/performance.md").read_text()
    block = page.split("<!-- paper-cost:start", 1)[1].split("<!-- paper-cost:end -->", 1)[0]
    rows = [line.strip("|").split("|") for line in block.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells] for cells in rows[1:]}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_docs_cost_block_matches_the_plan_and_the_config(cost):
    """Every row of the generated table: its jobs are the plan's, its steps follow from
    the config's epochs, batch sizes and fits, its device-hours from steps x s/step."""
    cfg = cost.merged_config()
    jobs = _planned_jobs(cfg)
    rows = _doc_rows()
    assert set(rows) == {*jobs, "all"}
    hours = 0.0
    for rule, count in jobs.items():
        row = rows[rule]
        images = int(_number(row[4]))
        assert images == cost.TRAIN_IMAGES[rule][0], rule
        assert int(row[1]) == count, f"{rule}: {row[1]} jobs in the docs, {count} planned"
        steps = count * _steps_per_job(rule, cfg, images)
        assert int(_number(row[5])) == steps, f"{rule}: steps {row[5]}, expected {steps:,}"
        # device-hours: steps x s/step (per batch size of a schedule), to the rounding
        seconds = [float(v) for v in row[6].split("/")]
        if rule == "adaptation_train":
            train = cfg["adaptation"]["train"]["batch_schedule"]
            per_series = [count * e * math.ceil(images / b) for e, b in train]
            expected = sum(n * s for n, s in zip(per_series, seconds, strict=True)) / 3600
        else:
            expected = steps * seconds[0] / 3600
        assert _number(row[8]) == pytest.approx(expected, rel=0.01, abs=1), rule
        hours += _number(row[8])
        bounded = rule not in {"lifelong_sequence", "lifelong_multitask", "lifelong_curriculum"}
        bounded = bounded and rule != "onemodel_train"
        assert row[10].startswith("upper bound") == bounded, f"{rule}: {row[10]}"
    total = rows["all"]
    assert _number(total[8]) == pytest.approx(hours, abs=len(jobs))
    assert total[10].startswith("upper bound")


def test_docs_cost_block_names_its_command_commit_machine_and_load():
    page = (REPO / "docs/performance.md").read_text()
    start = page.split("<!-- paper-cost:start (", 1)[1]
    assert start.startswith("python benchmarks/cost.py --docs")
    first = start.split("\n", 2)[1]
    for what in ("Measured on ", "cores", "load ", "commit "):
        assert what in first, what
