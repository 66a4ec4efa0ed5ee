"""The embedded demo DAG through the SLURM executor on a real single-node cluster.

Run by `make test-cluster` (HWBENCH_CLUSTER_TESTS=1); `make test` deselects it.
tests/cluster/slurm.sh installs Debian's slurm-wlm and munge (root only), starts
munged, slurmctld and slurmd on 127.0.0.1, and stops them afterwards. Training jobs
request `gpus_per_job: 0` here: the test cluster has no GPUs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_snakemake, write_config

SLURM_SH = REPO / "tests/cluster/slurm.sh"
SLURM_PROFILE = REPO / "profiles/slurm/config.yaml"


def load_profile() -> dict:
    return yaml.safe_load(SLURM_PROFILE.read_text(encoding="utf-8"))


def test_slurm_profile_sends_every_gpu_rule_to_the_gpu_partition():
    rules = {}
    for smk in sorted((REPO / "workflow/rules").glob("*.smk")):
        blocks = re.split(r"^rule (\w+):\n", smk.read_text(encoding="utf-8"), flags=re.M)
        rules.update(zip(blocks[1::2], blocks[2::2], strict=True))
    gpu_rules = {name for name, body in rules.items() if re.search(r"^\s+gpu=", body, re.M)}
    assert len(gpu_rules) >= 9, "the training rules of five studies request a GPU"
    assert set(load_profile()["set-resources"]) == gpu_rules
    assert {"multiscript_train", "adaptation_features"} <= gpu_rules


def write_test_profile(dest: Path) -> Path:
    """profiles/slurm itself, pointed at the test cluster: its one partition, no account."""
    profile = load_profile()
    defaults = profile["default-resources"]
    defaults["slurm_partition"] = "debug"
    del defaults["slurm_account"]
    for resources in profile["set-resources"].values():
        resources["slurm_partition"] = "debug"
    profile.update(
        {
            "jobs": 4,
            "latency-wait": 5,
            "retries": 0,
            "slurm-no-account": True,
            "slurm-init-seconds-before-status-checks": 1,
        }
    )
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    return dest


def _sh(action: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SLURM_SH), action], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def slurm_cluster():
    # apt-get and system daemons only when asked for: `make test-cluster` sets this.
    if os.environ.get("HWBENCH_CLUSTER_TESTS") != "1":
        pytest.skip("installs and starts slurm-wlm and munge: run `make test-cluster`")
    if os.geteuid() != 0:
        pytest.skip("the SLURM test installs and starts slurm-wlm and munge, which needs root")
    installed = _sh("install")
    if installed.returncode != 0 or not shutil.which("sbatch"):
        pytest.skip(f"slurm-wlm/munge could not be installed: {installed.stderr[-500:]}")
    started = _sh("up", timeout=120)
    assert started.returncode == 0, f"cluster did not start:\n{started.stdout}\n{started.stderr}"
    try:
        yield
    finally:
        _sh("down", timeout=60)


def _submitted_to_slurmctld() -> set[str]:
    """Job ids slurmctld accepted through sbatch, from its log (finished jobs included)."""
    state = Path(os.environ.get("HWBENCH_SLURM_STATE", "/tmp/hwbench-slurm"))
    text = (state / "slurmctld.log").read_text(encoding="utf-8", errors="replace")
    return set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", text))


TARGETS = ["reports/table4.csv"]
# The demo DAG (generate -> preprocess -> split -> train -> table) at a tiny scale.
TINY = {
    "synth": {
        "synth": {
            "writers": 6,
            "samples_per_class": 1,
            "scripts": ["latin_digits", "arabic_digits", "kannada_digits", "amharic"],
        }
    },
    "gpus_per_job": 0,
    "multiscript": {"seeds": [0], "train": {"epochs": 1}},
}


@pytest.mark.slurm
def test_demo_dag_runs_through_sbatch(slurm_cluster, workdir, tmp_path):
    write_config(workdir, TINY)
    profile = write_test_profile(tmp_path / "profile")
    proc = run_snakemake(workdir, "--profile", str(profile), *TARGETS, timeout=1500)
    for target in TARGETS:
        assert (workdir / target).is_file(), f"{target} missing:\n{proc.stdout[-3000:]}"
    log = proc.stdout + proc.stderr
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    # synth, preprocess, splits, 11 training jobs, the table: all through sbatch
    assert len(job_ids) >= 15, f"expected SLURM submissions in the log:\n{log[-3000:]}"
    # ... and the cluster itself accepted each of them.
    assert set(job_ids) <= _submitted_to_slurmctld()
