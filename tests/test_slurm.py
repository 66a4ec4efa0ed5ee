"""The embedded demo DAG through the SLURM executor on a real single-node cluster.

tests/cluster/slurm.sh installs Debian's slurm-wlm and munge (root only), starts
munged, slurmctld and slurmd on 127.0.0.1, and stops them afterwards. Training jobs
request `gpus_per_job: 0` here: the test cluster has no GPUs.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.conftest import REPO, run_snakemake, write_config

SLURM_SH = REPO / "tests/cluster/slurm.sh"
PROFILE = REPO / "tests/cluster/profile"

pytestmark = pytest.mark.slurm


def _sh(action: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SLURM_SH), action], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def slurm_cluster():
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


def _slurm_job_names() -> list[str]:
    out = subprocess.run(
        ["squeue", "-t", "all", "-h", "-o", "%j"], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


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


def test_demo_dag_runs_through_sbatch(slurm_cluster, workdir):
    write_config(workdir, TINY)
    before = len(_slurm_job_names())
    proc = run_snakemake(workdir, "--profile", str(PROFILE), *TARGETS, timeout=1500)
    for target in TARGETS:
        assert (workdir / target).is_file(), f"{target} missing:\n{proc.stdout[-3000:]}"
    log = proc.stdout + proc.stderr
    submitted = log.count("has been submitted with SLURM jobid")
    # synth, preprocess, splits, 11 training jobs, the table: all through sbatch
    assert submitted >= 15, f"expected SLURM submissions in the log:\n{log[-3000:]}"
    # The cluster itself saw the jobs (MinJobAge keeps finished ones listed).
    assert len(_slurm_job_names()) - before >= submitted
