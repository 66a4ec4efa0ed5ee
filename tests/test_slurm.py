"""The DAG through the SLURM executor on a real single-node cluster.

Run by `make test-cluster` (HWBENCH_CLUSTER_TESTS=1); `make test` deselects it.
tests/cluster/slurm.sh installs Debian's slurm-wlm and munge (root only), starts
munged, slurmctld and slurmd on 127.0.0.1 with 2 fake GPUs and 8 CPUs, and stops them
afterwards. Every run uses the user's profiles/slurm (pointed at the test partition)
with profiles/default present, as `snakemake --profile profiles/slurm` does. The
fake GPUs are scheduled like real ones; the jobs find no CUDA device and train on the
CPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SNAKEMAKE, run_snakemake, workflow_rules, write_config

SLURM_SH = REPO / "tests/cluster/slurm.sh"
SLURM_PROFILE = REPO / "profiles/slurm/config.yaml"


def load_profile() -> dict:
    return yaml.safe_load(SLURM_PROFILE.read_text(encoding="utf-8"))


def test_slurm_profile_sends_every_gpu_rule_to_the_gpu_partition():
    gpu_rules = {name for name, rule in workflow_rules().items() if rule.gpu}
    assert len(gpu_rules) >= 9, "the training rules of five studies request a GPU"
    assert set(load_profile()["set-resources"]) == gpu_rules
    assert {"multiscript_train", "adaptation_features"} <= gpu_rules


def write_test_profile(dest: Path, **overrides) -> Path:
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
            # the test cluster has no accounting (slurmdbd), so no sacct: ask squeue
            # (MinJobAge keeps finished jobs listed)
            "slurm-status-command": "squeue",
            **overrides,
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


def _job(job_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict (MinJobAge keeps finished jobs for 10 minutes)."""
    out = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    return dict(re.findall(r"(\S+?)=(\S*)", out))


def _submitted(log: str) -> dict[str, str]:
    """SLURM job id -> rule name, from the snakemake log and the job's --comment."""
    ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    rules = {}
    for job_id in ids:
        comment = _job(job_id).get("Comment", "")  # the plugin's "rule_<name>_wildcards_..."
        rules[job_id] = re.sub(r"^rule_(\w+?)_wildcards.*$", r"\1", comment)
    return rules


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


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
    proc = run_snakemake(workdir, "--profile", str(profile), *TARGETS, cores=None, timeout=1500)
    for target in TARGETS:
        assert (workdir / target).is_file(), f"{target} missing:\n{proc.stdout[-3000:]}"
    log = proc.stdout + proc.stderr
    submitted = _submitted(log)
    # synth, preprocess, splits and the 11 training jobs went through sbatch ...
    assert sorted(set(submitted.values())) == [
        "multiscript_train",
        "preprocess",
        "splits",
        "synth",
    ], f"expected SLURM submissions in the log:\n{log[-3000:]}"
    assert list(submitted.values()).count("multiscript_train") == 11
    # ... the cluster itself accepted each of them ...
    assert set(submitted) <= _submitted_to_slurmctld()
    # ... and the table, a local rule, ran in the snakemake process on the submit host.
    assert re.search(r"localrule multiscript_table4:", log), log[-3000:]


# Data for two Table 4 jobs (Lat and Arab, one seed): built locally, then trained on SLURM.
TWO_JOBS = {
    "synth": {
        "synth": {
            "writers": 6,
            "samples_per_class": 1,
            "scripts": ["latin_digits", "arabic_digits", "kannada_digits"],
        }
    },
    "gpus_per_job": 1,
    "multiscript": {
        "groups": ["digits"],
        "seeds": [0],
        "train": {"epochs": 1},
        "resources": {"threads": 3, "mem_mb": 700, "runtime": 10},
    },
}
SPLIT = "data/splits/synth/stratified.csv"
RUNS = ["results/multiscript/digits/lat/seed0", "results/multiscript/digits/arab/seed0"]


@pytest.mark.slurm
def test_gpu_jobs_run_side_by_side_with_their_resources(slurm_cluster, workdir, tmp_path):
    """Two 1-GPU training jobs on the 2-GPU node run at the same time, each with --gpus=1
    and its rule's threads and mem_mb (profiles/default, loaded too, limits nothing)."""
    write_config(workdir, TWO_JOBS)
    run_snakemake(workdir, SPLIT)  # the data half locally: the test times only training
    profile = write_test_profile(tmp_path / "profile")
    proc = run_snakemake(
        workdir,
        "--profile",
        str(profile),
        *(f"{run}/eval.json" for run in RUNS),
        cores=None,
        timeout=900,
    )
    log = proc.stdout + proc.stderr
    for run in RUNS:
        assert (workdir / run / "eval.json").is_file(), log[-3000:]
    jobs = {i: _job(i) for i, rule in _submitted(log).items() if rule == "multiscript_train"}
    assert len(jobs) == 2, log[-3000:]
    for job_id, job in jobs.items():
        print(
            f"job {job_id}: {job['JobState']} {job['StartTime']} .. {job['EndTime']} "
            f"NumCPUs={job['NumCPUs']} MinMemoryNode={job['MinMemoryNode']} "
            f"TresPerJob={job.get('TresPerJob')} TimeLimit={job['TimeLimit']}"
        )
        assert job["JobState"] == "COMPLETED"
        assert job.get("TresPerJob") == "gres:gpu:1"  # sbatch --gpus=1
        assert job["CPUs/Task"] == "3"  # --cpus-per-task = multiscript.resources.threads
        assert job["MinMemoryNode"] == "700M"  # --mem = multiscript.resources.mem_mb
        assert job["TimeLimit"] == "00:10:00"  # -t = multiscript.resources.runtime
    starts = [_time(job["StartTime"]) for job in jobs.values()]
    ends = [_time(job["EndTime"]) for job in jobs.values()]
    # both held a GPU at once: the later start comes before the earlier end
    assert max(starts) < min(ends), f"the GPU jobs ran one after the other: {starts} {ends}"


# One Table 4 job slow enough to be signalled mid-epoch: a ResNet-18 on batches of 4,
# with a mid-epoch checkpoint every second (train.checkpoint_every_s).
PREEMPT = {
    "synth": {
        "synth": {
            "writers": 12,
            "samples_per_class": 3,
            "scripts": ["latin_digits", "arabic_digits", "kannada_digits"],
        }
    },
    "gpus_per_job": 1,
    "multiscript": {
        "groups": ["digits"],
        "seeds": [0],
        "model": {"name": "resnet18", "stem": "cifar", "in_channels": 1, "normalize": "mnist"},
        "train": {"epochs": 2, "batch_size": 4, "checkpoint_every_s": 1},
        "resources": {"threads": 2, "mem_mb": 2000, "runtime": 10},
    },
}
PREEMPT_RUN = "results/multiscript/digits/lat/seed0"


def _running_training_job() -> str | None:
    out = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        job_id, _, comment = line.partition(" ")
        if comment.startswith("rule_multiscript_train"):
            return job_id
    return None


def _weights(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slurm
def test_preempted_training_resumes_exactly(slurm_cluster, workdir, tmp_path):
    """SIGTERM mid-epoch (what SLURM sends before a preemption or time-limit kill): the
    job checkpoints and fails, Snakemake's retry resumes from the mid-epoch checkpoint,
    and the final weights equal those of an uninterrupted run."""
    target = f"{PREEMPT_RUN}/eval.json"
    reference = tmp_path / "reference"
    write_config(reference, PREEMPT)
    run_snakemake(reference, target, cores=2)  # uninterrupted, locally, same threads

    write_config(workdir, PREEMPT)
    run_snakemake(workdir, SPLIT)
    profile = write_test_profile(tmp_path / "profile", retries=1)
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    out = (tmp_path / "snakemake.out").open("w")
    proc = subprocess.Popen(
        [*cmd, "--profile", str(profile), target], stdout=out, stderr=subprocess.STDOUT, env=env
    )
    try:
        checkpoint = workdir / PREEMPT_RUN / "checkpoint.pt"
        deadline = time.monotonic() + 600
        job_id = None
        while time.monotonic() < deadline and proc.poll() is None:
            job_id = _running_training_job()
            if job_id and checkpoint.exists():  # training is under way, mid-epoch 1
                break
            time.sleep(0.5)
        assert job_id and checkpoint.exists(), "the training job never got going"
        subprocess.run(["scancel", "--full", "--signal=TERM", job_id], check=True)
        proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    log = (tmp_path / "snakemake.out").read_text(encoding="utf-8")
    assert proc.returncode == 0, log[-4000:]
    tries = [i for i, rule in _submitted(log).items() if rule == "multiscript_train"]
    assert len(tries) == 2 and job_id == tries[0], log[-4000:]
    first = _job(tries[0])
    assert first["JobState"] == "FAILED" and first["ExitCode"] != "0:0", first
    # Snakemake removes a failed job's log before the retry: the retry's log remains
    job_log = (workdir / "logs/multiscript/digits/lat/seed0.log").read_text(encoding="utf-8")
    resumed = re.search(r"resumed \S+ at epoch (\d+) \(step (\d+)\)", job_log)
    assert resumed, f"the retry did not resume mid-epoch:\n{job_log[-3000:]}"
    print(f"retry resumed at epoch {resumed.group(1)} step {resumed.group(2)}")
    ours = _weights(workdir / PREEMPT_RUN / "model.pt")
    theirs = _weights(reference / PREEMPT_RUN / "model.pt")
    assert ours.keys() == theirs.keys()
    differ = [name for name, tensor in ours.items() if not tensor.equal(theirs[name])]
    assert not differ, f"weights differ from the uninterrupted run: {differ}"
