"""Cluster-readiness without a cluster: profiles, per-rule resources, local rules,
`snakemake prefetch` and the ImageNet weight cache (docs/cluster.md).

The real SLURM runs are in tests/test_slurm.py.
"""

from __future__ import annotations

import hashlib
import re

import pytest
import yaml

from hwbench import weights
from hwbench.datasets import registry
from hwbench.datasets import rules as dsrules
from tests.conftest import REPO, planned_jobs, run_snakemake, workflow_rules, write_config


def _profile(name: str) -> dict:
    return yaml.safe_load((REPO / f"profiles/{name}/config.yaml").read_text(encoding="utf-8"))


def test_profiles_keep_local_limits_off_the_cluster():
    # profiles/default is loaded on SLURM runs too and its keys win: a global gpu
    # limit would serialise the cluster's GPU jobs, and cores would cap every rule's
    # threads (and so --cpus-per-task) at the submit host's core count.
    default = _profile("default")
    assert "resources" not in default and "cores" not in default
    slurm = _profile("slurm")
    assert "cpus_per_task" not in slurm["default-resources"]  # it would override threads
    assert "slurm-status-command" not in slurm  # a test-cluster setting (no accounting)


def test_downloads_and_report_jobs_are_local_rules():
    rules = workflow_rules()
    local = {name for name, rule in rules.items() if rule.local}
    reporting = {name for name, rule in rules.items() if rule.report}
    assert {"multiscript_table4", "transfer_report", "synth_contact_sheet"} <= reporting
    assert reporting | {"fetch_raw", "fetch_weights", "prefetch", "preflight"} == local
    training = {name for name, rule in rules.items() if rule.gpu}
    assert not training & local


def test_data_rules_take_threads_memory_and_runtime_from_the_config(workdir):
    sizes = {
        "synth": {"threads": 3, "mem_mb": 1111, "runtime": 11},
        "preprocess": {"threads": 5, "mem_mb": 2222, "runtime": 22},
        "splits": {"threads": 2, "mem_mb": 3333, "runtime": 33},
    }
    write_config(workdir, {"resources": sizes})
    proc = run_snakemake(workdir, "-n", "data/splits/synth/stratified.csv", cores=8)
    text = proc.stdout + proc.stderr
    for rule, size in sizes.items():
        block = re.search(rf"^rule {rule}:\n(.*?)\n\n", text, re.M | re.S)
        assert block, f"{rule} not planned:\n{text[-2000:]}"
        body = block.group(1)
        assert f"threads: {size['threads']}" in body, body
        assert f"mem_mb={size['mem_mb']}" in body and f"runtime={size['runtime']}" in body


def test_prefetch_plans_every_download_of_the_paper_config(workdir):
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text(encoding="utf-8"))
    config.update(paper)  # top-level keys, as --configfile overrides them
    files = sum(
        len(dsrules.record_targets(config, d))
        for d in config["datasets"]
        if d in dsrules.fetched_datasets()
    )
    assert files >= 15
    write_config(workdir)  # config.yaml, which --configfile config/paper.yaml overrides
    jobs = planned_jobs(workdir, "prefetch", "--configfile", str(REPO / "config/paper.yaml"))
    # every dataset file, both ResNets' ImageNet weights, and nothing else
    assert jobs == {"fetch_raw": files, "fetch_weights": 2, "prefetch": 1}


def test_prefetch_datasets_follow_the_studies_dataset_keys():
    config = {
        "datasets": ["synth", "mnist"],
        "multiscript": {"sources": {"a": {"dataset": "kannada_mnist"}}},
        "adaptation": {"datasets": ["nist"]},
        "onemodel": {"tasks": [{"dataset": "cifar100"}]},
    }
    assert dsrules.prefetch_datasets(config) == ["cifar100", "kannada_mnist", "mnist", "nist"]
    # amharic has no download (a user supplies it): nothing to prefetch
    assert registry.get("amharic").manual
    assert dsrules.prefetch_datasets({"datasets": ["amharic"]}) == []


# ------------------------------------------------------------------ ImageNet weights


def test_registered_urls_are_torchvisions():
    from torchvision.models import ResNet18_Weights, ResNet152_Weights

    assert weights.IMAGENET_URLS == {
        "resnet18": ResNet18_Weights.IMAGENET1K_V1.url,
        "resnet152": ResNet152_Weights.IMAGENET1K_V1.url,
    }


def test_cache_is_where_torch_looks(monkeypatch, tmp_path):
    import torch.hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert str(weights.torch_home() / "hub") == torch.hub.get_dir()
    monkeypatch.delenv("TORCH_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert str(weights.torch_home() / "hub") == torch.hub.get_dir()
    # config torch_home wins and reaches every job's environment
    env = weights.job_environment({"torch_home": str(tmp_path / "c"), "offline": True})
    assert env == {"TORCH_HOME": str(tmp_path / "c"), "HWBENCH_OFFLINE": "1"}
    assert weights.job_environment({"torch_home": None, "offline": False}) == {}


def test_models_needing_imagenet_weights():
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text(encoding="utf-8"))
    assert weights.imagenet_models(paper) == ["resnet152", "resnet18"]
    base = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    assert weights.imagenet_models(base) == []


@pytest.fixture
def weight_file(server):
    data = bytes(range(256)) * 64
    name = f"tiny-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    server.files[f"/{name}"] = data
    return name, data


def test_fetch_downloads_and_verifies(server, weight_file, tmp_path):
    name, data = weight_file
    dest = tmp_path / "hub/checkpoints" / name
    assert weights.fetch(server.url(f"/{name}"), dest) == dest
    assert dest.read_bytes() == data
    # a verified file is kept: no second request
    requests = len(server.requests)
    weights.fetch(server.url(f"/{name}"), dest, offline=True)
    assert len(server.requests) == requests


def test_fetch_rejects_bytes_that_do_not_verify(server, weight_file, tmp_path):
    name, _ = weight_file
    server.faults[f"/{name}"] = ["corrupt"]
    dest = tmp_path / name
    with pytest.raises(weights.WeightsUnavailable, match="hash"):
        weights.fetch(server.url(f"/{name}"), dest)
    assert not dest.exists()


def test_offline_names_the_missing_file_and_prefetch(tmp_path):
    dest = tmp_path / "resnet18-f37072fd.pth"
    with pytest.raises(weights.WeightsUnavailable, match="snakemake prefetch") as err:
        weights.fetch(weights.IMAGENET_URLS["resnet18"], dest, offline=True)
    assert str(dest) in str(err.value)
