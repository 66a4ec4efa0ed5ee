"""Cluster-readiness without a cluster: profiles, per-rule resources, local rules,
`snakemake prefetch` and the ImageNet weight cache (docs/cluster.md).

The real SLURM runs are in tests/test_slurm.py.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hwbench import weights
from hwbench.datasets import registry
from hwbench.datasets import rules as dsrules
from tests.cluster import site
from tests.conftest import (
    REPO,
    SNAKEMAKE,
    planned_jobs,
    run_snakemake,
    workflow_rules,
    write_config,
)


def _profile(name: str) -> dict:
    return yaml.safe_load((REPO / f"profiles/{name}/config.yaml").read_text(encoding="utf-8"))


def test_profiles_keep_local_limits_off_the_cluster():
    # profiles/default is loaded on SLURM runs too and its keys win: a global gpu
    # limit would serialise the cluster's GPU jobs, and cores would cap every rule's
    # threads (and so --cpus-per-task) at the submit host's core count.
    default = _profile("default")
    assert "resources" not in default and "cores" not in default
    slurm = _profile("slurm")
    assert "cpus_per_task" not in str(slurm)  # it would override every rule's threads
    assert "slurm-status-command" not in slurm  # a test-cluster setting (no accounting)
    # a --default-resources on the command line (an account) would replace it unmerged
    assert "default-resources" not in slurm


def test_profiles_name_no_partition_or_account():
    """A site's partitions and account come from outside the repository
    (docs/cluster.md), so running with them leaves the checkout clean."""
    for path in sorted((REPO / "profiles").rglob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            for line in text.splitlines():
                setting = line.split("#", 1)[0]  # comments may explain
                assert not re.search(r"partition|account|gres", setting), f"{path}: {line}"


def _dry_run_resources(args: list[str], home: Path, workdir: Path) -> dict[str, list[dict]]:
    """rule -> the resources of each of its jobs, as `snakemake -n` prints them, for a
    run from the checkout with ``args`` (and HOME=``home``: user profiles live there)."""
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(REPO))
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.yaml", workdir)  # the Snakefile's configfile, as in a checkout
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--directory", str(workdir), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs: dict[str, list[dict]] = {}
    for rule, resources in re.findall(
        r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", proc.stdout, flags=re.M
    ):
        pairs = (item.split("=", 1) for item in resources.split(", "))
        jobs.setdefault(rule, []).append(dict(pairs))
    assert jobs, proc.stdout[-3000:]
    return jobs


@pytest.mark.parametrize("name", ["command line", "gres", "user profile"])
def test_site_examples_reach_every_job(name, tmp_path):
    """docs/cluster.md's examples for the site with GPU partition gpu_a100 and account
    lab123, run as written (a dry run of the paper preset's Table 4): every job is
    charged to lab123, every training job goes to gpu_a100 with the preemption warning,
    and the other jobs to the cluster's default partition."""
    home = tmp_path / "home"
    home.mkdir()
    args = site.snakemake_args(site.example(name), home=home)
    jobs = _dry_run_resources(args, home, tmp_path / "work")
    training = {rule for rule, info in workflow_rules().items() if info.gpu}
    assert "multiscript_train" in jobs and {"preprocess", "splits"} <= set(jobs)
    for rule, resources in jobs.items():
        for job in resources:
            assert job["slurm_account"] == "lab123", (rule, job)
            if rule in training:
                assert job["slurm_partition"] == "gpu_a100", (rule, job)
                assert job["slurm_extra"] == site.SIGNAL, (rule, job)
                if name == "gres":  # --gres=gpu:1 and no --gpus
                    assert (job["gres"], job["gpu"]) == ("gpu:1", "0"), job
                else:
                    assert job["gpu"] == "1" and "gres" not in job, job
            else:
                assert "slurm_partition" not in job and "slurm_extra" not in job, (rule, job)


class _Job:
    """What the SLURM plugin's partition selection reads of a job."""

    def __init__(self, name: str, threads: int, **resources):
        self.name, self.threads, self.resources = name, threads, resources


def test_site_partition_file_routes_gpu_jobs_through_the_plugin(tmp_path):
    """docs/cluster.md's partition file, read and applied by the plugin's own code
    (snakemake_executor_plugin_slurm.partitions): a job requesting a GPU goes to
    gpu_a100, a CPU job to the CPU partition; a training job of a CPU-only config
    (gpu=0) too."""
    from snakemake_executor_plugin_slurm.partitions import get_best_partition, read_partition_file

    path = tmp_path / "partitions.yaml"
    path.write_text(site.partition_file(site.example("partition file")), encoding="utf-8")
    partitions = read_partition_file(path)
    log = logging.getLogger("test")
    train = _Job("multiscript_train", 4, gpu=1, mem_mb=16000, runtime=480)
    cpu_train = _Job("multiscript_train", 4, gpu=0, mem_mb=16000, runtime=480)
    prep = _Job("preprocess", 8, mem_mb=16000, runtime=120)
    assert get_best_partition(partitions, train, log) == "gpu_a100"
    assert get_best_partition(partitions, cpu_train, log) == "cpu"
    assert get_best_partition(partitions, prep, log) == "cpu"
    args = site.snakemake_args(site.example("partition file"), home=tmp_path)
    written = tmp_path / "hwbench-partitions.yaml"  # the example's `cat > ~/...`
    assert args[args.index("--slurm-partition-config") + 1] == str(written)


def test_apptainer_definition_installs_the_lock():
    """hwbench.def copies files that exist and installs the lock it copies, hash-checked."""
    text = (REPO / "hwbench.def").read_text(encoding="utf-8")
    assert re.search(r"^Bootstrap: docker\nFrom: python:3\.11-slim", text, flags=re.M)
    files = re.search(r"^%files\n((?:    .*\n)+)", text, flags=re.M).group(1).split("\n")
    copied = dict(line.split() for line in files if line.strip())
    for source in copied:
        assert (REPO / source).exists(), source
    lock = copied["requirements/lock-cuda.txt"]
    assert f"pip install --no-cache-dir --require-hashes -r {lock}" in text
    assert {"pyproject.toml", "hwbench"} <= set(copied)  # what `pip install` builds


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
