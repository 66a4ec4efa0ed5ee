"""The DAG through the SLURM executor on a real single-node cluster.

Run by `make test-cluster` (HWBENCH_CLUSTER_TESTS=1); `make test` deselects it.
tests/cluster/slurm.sh installs Debian's slurm-wlm and munge (root only), starts
munged, slurmctld and slurmd on 127.0.0.1 with two partitions (debug, the default, and
gpu), 2 fake GPUs and 8 CPUs, and stops them afterwards. Every run uses the
repository's profiles/slurm unchanged, with profiles/default present, as
`snakemake --profile profiles/slurm` does; partitions come from the command line as in
docs/cluster.md's site examples (tests/cluster/site.py reads them from there). The fake
GPUs are scheduled like real ones; the jobs find no CUDA device and train on the CPU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from tests.cluster import site
from tests.conftest import REPO, SNAKEMAKE, run_snakemake, workflow_rules, write_config

SLURM_SH = REPO / "tests/cluster/slurm.sh"
SLURM_PROFILE = REPO / "profiles/slurm/config.yaml"
GPU_PARTITION = "gpu"  # the test cluster's second partition; "debug" is its default
# What the test cluster itself needs (no accounting, so no account and no sacct; tiny
# DAGs), on the command line beside the profile.
TEST_CLUSTER = [
    "--slurm-no-account",
    "--slurm-status-command",
    "squeue",  # MinJobAge keeps finished jobs listed
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--jobs",
    "4",
    "--latency-wait",
    "5",
]


def load_profile() -> dict:
    return yaml.safe_load(SLURM_PROFILE.read_text(encoding="utf-8"))


def test_slurm_profile_sends_the_preemption_warning_to_every_training_rule():
    gpu_rules = {name for name, rule in workflow_rules().items() if rule.gpu}
    assert len(gpu_rules) >= 9, "the training rules of five studies request a GPU"
    assert {"multiscript_train", "adaptation_features"} <= gpu_rules
    set_resources = load_profile()["set-resources"]
    assert set(set_resources) == gpu_rules
    for rule, resources in set_resources.items():
        # a string the plugin appends to sbatch: quoted, as Snakemake evaluates it
        assert resources == {"slurm_extra": f"'{site.SIGNAL}'"}, rule


def test_docs_name_every_training_rule():
    """The site examples that set per-rule resources list exactly the GPU rules."""
    gpu_rules = {name for name, rule in workflow_rules().items() if rule.gpu}
    for name in ("command line", "gres"):
        listed = re.search(r'^TRAINING="([^"]*)"$', site.example(name), flags=re.M)
        assert listed and set(listed.group(1).split()) == gpu_rules, name


def command_line_example(tmp_path: Path, partition: str) -> list[str]:
    """docs/cluster.md's "command line" example for the test cluster: its GPU partition
    for gpu_a100, and no account (the test cluster has no accounting to check one)."""
    script = site.example("command line").replace("gpu_a100", partition)
    script = script.replace("--default-resources slurm_account=lab123 ", "")
    assert "lab123" not in script, script
    return site.without_target(site.snakemake_args(script, home=tmp_path))


def test_partition_examples_adapt_to_the_test_cluster(tmp_path):
    args = command_line_example(tmp_path, GPU_PARTITION)
    assert args[:3] == ["--profile", "profiles/slurm", "--set-resources"]
    assert "multiscript_train:slurm_partition=gpu" in args
    assert f"multiscript_train:slurm_extra='{site.SIGNAL}'" in args
    partitions = yaml.safe_load(cluster_partitions())["partitions"]
    assert partitions == {"debug": {}, GPU_PARTITION: {"max_gpu": 4}}


def cluster_partitions() -> str:
    """docs/cluster.md's partition file with the test cluster's partition names."""
    text = site.partition_file(site.example("partition file"))
    return text.replace("gpu_a100", GPU_PARTITION).replace("  cpu:", "  debug:")


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


def _partition_of(job_ids, rule: str) -> set[str]:
    return {_job(i)["Partition"] for i, r in job_ids.items() if r == rule}


@pytest.fixture
def clean_checkout(tmp_path) -> Path:
    """This checkout's files (tracked, and untracked but not ignored) committed to a
    fresh repository: a clean clone of the working tree as it is now."""
    dest = tmp_path / "checkout"
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "-co", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():  # a tracked file deleted in the working tree is left out
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git = ["git", "-C", str(dest), "-c", "user.name=test", "-c", "user.email=test@localhost"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "snapshot"]):
        subprocess.run([*git, *args], check=True)
    return dest


def _snakemake(cwd: Path, *args: str, timeout: float, env: dict | None = None):
    cmd = [SNAKEMAKE, *args]
    env = dict(os.environ, PYTHONPATH=str(cwd), PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)


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
def test_demo_dag_runs_through_sbatch(slurm_cluster, clean_checkout, tmp_path):
    """Run from a clean checkout with docs/cluster.md's command-line example: no file of
    the repository edited, so the table's provenance says dirty: false."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY), encoding="utf-8")
    site_args = command_line_example(tmp_path, GPU_PARTITION)
    proc = _snakemake(
        clean_checkout,
        *site_args,
        *TEST_CLUSTER,
        "--configfile",
        str(config),
        "--",
        *TARGETS,
        timeout=1500,
    )
    log = proc.stdout + proc.stderr
    for target in TARGETS:
        assert (clean_checkout / target).is_file(), f"{target} missing:\n{log[-3000:]}"
    submitted = _submitted(log)
    # synth, preprocess, splits and the 11 training jobs went through sbatch ...
    assert sorted(set(submitted.values())) == [
        "multiscript_train",
        "preprocess",
        "splits",
        "synth",
    ], f"expected SLURM submissions in the log:\n{log[-3000:]}"
    assert list(submitted.values()).count("multiscript_train") == 11
    # ... the cluster itself accepted each of them, the training jobs in the partition
    # named on the command line, the others in the cluster's default one ...
    assert set(submitted) <= _submitted_to_slurmctld()
    assert _partition_of(submitted, "multiscript_train") == {GPU_PARTITION}
    for rule in ("synth", "preprocess", "splits"):
        assert _partition_of(submitted, rule) == {"debug"}, rule
    # ... the table, a local rule, ran in the snakemake process on the submit host ...
    assert re.search(r"localrule multiscript_table4:", log), log[-3000:]
    # ... and the checkout is still clean.
    head = subprocess.run(
        ["git", "-C", str(clean_checkout), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    prov = json.loads((clean_checkout / "reports/table4.json").read_text(encoding="utf-8"))
    assert prov["git"] == {"commit": head, "dirty": False}


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
    """Two 1-GPU training jobs, sent to the GPU partition by docs/cluster.md's partition
    file (through SNAKEMAKE_SLURM_PARTITIONS), run at the same time on the 2-GPU node,
    each with --gpus=1 and its rule's threads and mem_mb (profiles/default, loaded too,
    limits nothing)."""
    write_config(workdir, TWO_JOBS)
    run_snakemake(workdir, SPLIT)  # the data half locally: the test times only training
    partitions = tmp_path / "partitions.yaml"
    partitions.write_text(cluster_partitions(), encoding="utf-8")
    proc = _snakemake(
        workdir,
        "-s",
        str(REPO / "Snakefile"),
        "--profile",
        str(REPO / "profiles/slurm"),
        *TEST_CLUSTER,
        *(f"{run}/eval.json" for run in RUNS),
        timeout=900,
        env={"SNAKEMAKE_SLURM_PARTITIONS": str(partitions)},
    )
    log = proc.stdout + proc.stderr
    for run in RUNS:
        assert (workdir / run / "eval.json").is_file(), log[-3000:]
    jobs = {i: _job(i) for i, rule in _submitted(log).items() if rule == "multiscript_train"}
    assert len(jobs) == 2, log[-3000:]
    for job_id, job in jobs.items():
        print(
            f"job {job_id}: {job['JobState']} {job['StartTime']} .. {job['EndTime']} "
            f"Partition={job['Partition']} NumCPUs={job['NumCPUs']} "
            f"MinMemoryNode={job['MinMemoryNode']} TresPerJob={job.get('TresPerJob')} "
            f"TimeLimit={job['TimeLimit']}"
        )
        assert job["JobState"] == "COMPLETED"
        assert job["Partition"] == GPU_PARTITION  # the partition file's GPU partition
        assert job.get("TresPerJob") == "gres:gpu:1"  # sbatch --gpus=1
        assert job["CPUs/Task"] == "3"  # --cpus-per-task = multiscript.resources.threads
        assert job["MinMemoryNode"] == "700M"  # --mem = multiscript.resources.mem_mb
        assert job["TimeLimit"] == "00:10:00"  # -t = multiscript.resources.runtime
    starts = [_time(job["StartTime"]) for job in jobs.values()]
    ends = [_time(job["EndTime"]) for job in jobs.values()]
    # both held a GPU at once: the later start comes before the earlier end
    assert max(starts) < min(ends), f"the GPU jobs ran one after the other: {starts} {ends}"


# One Table 4 job that trains long enough for SLURM's warning to land mid-epoch: a
# ResNet-18 on batches of 4, three epochs of about 300 steps. slurmctld checks time limits
# every 30 s (PERIODIC_TIMEOUT, controller.c), so the warning can come that long after the
# test moves the limit; on a CI machine the whole job of two epochs of 80 steps took 33 s
# and ended before the warning came. No periodic mid-epoch checkpoints
# (train.checkpoint_every_s), so a mid-epoch resume can only come from the checkpoint
# written on the signal.
PREEMPT = {
    "synth": {
        "synth": {
            "writers": 12,
            "samples_per_class": 16,
            "scripts": ["latin_digits", "arabic_digits", "kannada_digits"],
        }
    },
    "gpus_per_job": 1,
    "multiscript": {
        "groups": ["digits"],
        "seeds": [0],
        "model": {"name": "resnet18", "stem": "cifar", "in_channels": 1, "normalize": "mnist"},
        "train": {"epochs": 3, "batch_size": 4, "checkpoint_every_s": 1000000},
        # minutes: the retry must not come near its own warning on a slow, shared machine
        "resources": {"threads": 2, "mem_mb": 2000, "runtime": 60},
    },
}
PREEMPT_RUN = "results/multiscript/digits/lat/seed0"
PREEMPT_LOG = "logs/multiscript/digits/lat/seed0.log"
# SLURM's warning comes this long before the time limit (`--signal=USR1@120`); the test
# moves the limit to this many seconds ahead, inside the warning window.
WARN_S = int(site.SIGNAL.rpartition("@")[2])
LIMIT_AHEAD_S = WARN_S - 20


def _running_training_job() -> str | None:
    out = subprocess.run(
        ["squeue", "-h", "-t", "RUNNING", "-o", "%i %k"], capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        job_id, _, comment = line.partition(" ")
        if comment.startswith("rule_multiscript_train"):
            return job_id
    return None


def _training_started(log: Path) -> bool:
    """Whether epoch 1's progress bar (tqdm, in the job log) has appeared."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return re.search(r"epoch 1/\d+: .*\b\d+/\d+ \[", text) is not None


def _seconds(duration: str) -> int:
    """A SLURM duration, [D-]HH:MM:SS, in seconds."""
    days, _, clock = duration.rpartition("-")
    h, m, s = (int(x) for x in clock.split(":"))
    return int(days or 0) * 86400 + h * 3600 + m * 60 + s


def _weights(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slurm
def test_preempted_training_resumes_exactly(slurm_cluster, workdir, tmp_path):
    """The profile's own `--signal=USR1@120`: SLURM warns the training job before its
    time limit, the warning reaches the training through srun and snakemake
    (hwbench/signals.py), it writes a mid-epoch checkpoint and fails, Snakemake's retry
    resumes from that checkpoint, and the final weights equal those of an
    uninterrupted run. Partitions from the plugin's --slurm-partition-config."""
    target = f"{PREEMPT_RUN}/eval.json"
    reference = tmp_path / "reference"
    write_config(reference, PREEMPT)
    run_snakemake(reference, target, cores=2)  # uninterrupted, locally, same threads

    write_config(workdir, PREEMPT)
    run_snakemake(workdir, SPLIT)
    partitions = tmp_path / "partitions.yaml"
    partitions.write_text(cluster_partitions(), encoding="utf-8")
    cmd = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--profile", str(REPO / "profiles/slurm"), *TEST_CLUSTER]
    cmd += ["--slurm-partition-config", str(partitions), target]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    out = (tmp_path / "snakemake.out").open("w")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 600
        job_id = None
        while time.monotonic() < deadline and proc.poll() is None:
            job_id = _running_training_job()
            if job_id and _training_started(workdir / PREEMPT_LOG):
                break
            time.sleep(0.5)
        assert job_id and _training_started(workdir / PREEMPT_LOG), "training never got going"
        time.sleep(5)  # some steps into epoch 1
        # Bring the time limit inside the warning window: slurmctld sends the signal
        # at its next time-limit check.
        limit = _seconds(_job(job_id)["RunTime"]) + LIMIT_AHEAD_S
        subprocess.run(
            ["scontrol", "update", f"JobId={job_id}", f"TimeLimit={limit // 60}:{limit % 60:02d}"],
            check=True,
        )
        moved = time.monotonic()
        proc.wait(timeout=900)
        ran_on = time.monotonic() - moved
    finally:
        if proc.poll() is None:
            proc.kill()
        out.close()
    log = (tmp_path / "snakemake.out").read_text(encoding="utf-8")
    assert proc.returncode == 0, log[-4000:]
    tries = [i for i, rule in _submitted(log).items() if rule == "multiscript_train"]
    assert len(tries) > 1, (
        f"one try only: the run ended {ran_on:.0f} s after the limit moved, before "
        "SLURM's warning (slurmctld checks limits every 30 s); PREEMPT trains too briefly "
        f"for this machine\n{log[-4000:]}"
    )
    assert len(tries) == 2 and job_id == tries[0], log[-4000:]
    first = _job(tries[0])
    print(f"first try: {first['JobState']} {first['ExitCode']} RunTime={first['RunTime']}")
    # it stopped on its own before the limit (not TIMEOUT), with the training's failure
    assert first["JobState"] == "FAILED" and first["ExitCode"] != "0:0", first
    assert first["Partition"] == GPU_PARTITION
    # snakemake in the job step survived the signal and reported the job's failure
    slurm_logs = list((workdir / ".snakemake/slurm_logs").rglob(f"{tries[0]}.log"))
    assert len(slurm_logs) == 1, "the plugin keeps a failed job's SLURM log"
    step_log = slurm_logs[0].read_text(encoding="utf-8", errors="replace")
    assert "User defined signal" not in step_log, step_log[-3000:]
    assert "Error in rule multiscript_train" in step_log, step_log[-3000:]
    # the training got SIGUSR1 (10) and checkpointed mid-epoch (hwbench.engine.Preempted)
    stopped = re.search(r"stopped by signal 10 at epoch (\d+) step (\d+)", step_log)
    assert stopped, step_log[-3000:]
    # Snakemake removes a failed job's log before the retry: the retry's log remains
    job_log = (workdir / PREEMPT_LOG).read_text(encoding="utf-8")
    resumed = re.search(r"resumed \S+ at epoch (\d+) \(step (\d+)\)", job_log)
    assert resumed, f"the retry did not resume mid-epoch:\n{job_log[-3000:]}"
    print(f"stopped at epoch {stopped.group(1)} step {stopped.group(2)}; retry resumed there")
    assert resumed.groups() == stopped.groups() and int(stopped.group(2)) > 0
    ours = _weights(workdir / PREEMPT_RUN / "model.pt")
    theirs = _weights(reference / PREEMPT_RUN / "model.pt")
    assert ours.keys() == theirs.keys()
    differ = [name for name, tensor in ours.items() if not tensor.equal(theirs[name])]
    assert not differ, f"weights differ from the uninterrupted run: {differ}"
