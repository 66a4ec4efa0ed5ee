"""benchmarks/resources.py: the paper preset's job requests from measured peaks and step
times, in generated blocks of config/paper.yaml that match what the command computes."""

from __future__ import annotations

import importlib.util
import math
import sys

import pytest
import yaml

from tests.conftest import REPO


@pytest.fixture(scope="module")
def resources():
    sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "bench_resources", REPO / "benchmarks/resources.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _record(peak=4000.0, store=0.0, where="read from disk per batch: over budget"):
    return {
        "peak_n_mib": peak - 100,
        "peak_4n_mib": peak,
        "images_n": 6_000,
        "images_4n": 25_000,
        "paper_store_mib": store,
        "paper_store": where,
    }


def test_mem_mb_is_headroom_over_the_peak_and_a_held_store(resources):
    value, how = resources.mem_mb(_record())
    expected = resources.HEADROOM * 4000 * 2**20 / 1e6 + resources.CUDA_HOST_MB
    assert value == math.ceil(expected / 500) * 500 and value >= expected
    assert "4,000 MiB" in how and "0 MiB paper store" in how
    # a store held in memory counts; one read from disk per batch does not
    held, _ = resources.mem_mb(_record(store=1000.0, where="held in memory"))
    disk, _ = resources.mem_mb(_record(store=1000.0))
    assert held > disk == value
    # the larger peak counts, whichever size it came at
    assert resources.mem_mb(_record() | {"peak_n_mib": 5000.0})[0] > value


def test_runtime_is_headroom_over_the_largest_jobs_steps(resources):
    cfg = resources.merged_config()
    value, how = resources.runtime_min("onemodel_train", {"10": 0.2}, cfg)
    steps = 60 * math.ceil(92_408 / 10)  # 60 epochs of the mean job at batch 10
    expected = resources.HEADROOM * steps * 0.2 / 60 + resources.STARTUP_MIN
    assert value == math.ceil(expected / 10) * 10
    assert f"{steps:,} steps" in how


def test_rewrite_replaces_the_study_line_then_its_block(resources):
    text = (
        "onemodel:\n  seeds: [0]\n  resources: {threads: 4, mem_mb: 64000, runtime: 4320}\n"
        "  tasks: []\nmultiscript:\n  resources: {threads: 4, mem_mb: 16000, runtime: 480}\n"
    )
    request = resources.Request("onemodel", 4, 10_000, 4320, ["mem_mb: from x"])
    once = resources.rewrite(text, [request], "cmd")
    loaded = yaml.safe_load(once)
    assert loaded["onemodel"] == {
        "seeds": [0],
        "resources": {"threads": 4, "mem_mb": 10_000, "runtime": 4320},
        "tasks": [],
    }
    assert loaded["multiscript"]["resources"]["mem_mb"] == 16000  # untouched
    assert "# onemodel-resources:start (cmd): generated, do not edit" in once
    request.mem_mb = 12_000
    twice = resources.rewrite(once, [request], "cmd")
    assert yaml.safe_load(twice)["onemodel"]["resources"]["mem_mb"] == 12_000
    assert twice.count("onemodel-resources:start") == 1
    with pytest.raises(SystemExit, match="no lifelong.resources"):
        resources.rewrite(text, [resources.Request("lifelong", 4, 1, 1, [])], "cmd")


def test_paper_config_blocks_match_what_the_command_computes(resources):
    """config/paper.yaml's generated requests are what resources.py computes from the
    committed measurements (benchmarks/measured/): rerun it after a new measurement."""
    current, computed = resources.compute()
    assert current == computed, "rerun: python benchmarks/resources.py --write"
    paper = yaml.safe_load(current)
    for study in resources.STUDY_RULES:
        assert f"# {study}-resources:start (python benchmarks/resources.py" in current
        request = paper[study]["resources"]
        assert request["mem_mb"] < 64_000 and set(request) == {"threads", "mem_mb", "runtime"}
