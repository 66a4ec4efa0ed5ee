"""The embedded demo DAG through the SLURM executor on a real single-node cluster.

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


def test_demo_dag_runs_through_sbatch(slurm_cluster, workdir):
    write_config(workdir, TINY)
    proc = run_snakemake(workdir, "--profile", str(PROFILE), *TARGETS, timeout=1500)
    for target in TARGETS:
        assert (workdir / target).is_file(), f"{target} missing:\n{proc.stdout[-3000:]}"
    log = proc.stdout + proc.stderr
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    # synth, preprocess, splits, 11 training jobs, the table: all through sbatch
    assert len(job_ids) >= 15, f"expected SLURM submissions in the log:\n{log[-3000:]}"
    # ... and the cluster itself accepted each of them.
    assert set(job_ids) <= _submitted_to_slurmctld()
