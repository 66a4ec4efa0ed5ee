"""hwbench.signals: SIGUSR1 sent to the Snakemake process alone (what slurmstepd does
under proctrack/cgroup) reaches the training below bash; nothing else is signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hwbench import signals
from tests.conftest import REPO

# The training's stand-in: catches SIGUSR1 like hwbench.engine, then writes its
# "checkpoint" and exits non-zero like a preempted job.
TRAINING = """
import signal, sys, time
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
open("started", "w").close()
while not got:
    time.sleep(0.05)
open("checkpoint", "w").write(str(got[0]))
sys.exit(3)
"""

# Snakemake's stand-in: installs the relay, runs the job as Snakemake's shell does
# (bash -c, several commands, so bash stays the training's parent), and records
# how the job ended. A `sleep` beside the job does not catch SIGUSR1.
SNAKEMAKE = """
import subprocess, sys
from hwbench.signals import install_relay
assert install_relay()
bystander = subprocess.Popen(["sleep", "60"])
job = subprocess.run(["bash", "-c", "set -euo pipefail; python training.py; echo done"])
open("job_exit", "w").write(str(job.returncode))
open("bystander", "w").write(str(bystander.poll()))
bystander.kill()
"""


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def test_usr1_to_snakemake_reaches_the_training_and_spares_bash(tmp_path):
    (tmp_path / "training.py").write_text(textwrap.dedent(TRAINING))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", SNAKEMAKE], cwd=tmp_path, env=env)
    _wait_for(tmp_path / "started")
    time.sleep(0.2)  # the handler is installed right after "started"
    os.kill(proc.pid, signal.SIGUSR1)  # only the task, as proctrack/cgroup does
    assert proc.wait(timeout=30) == 0  # the "snakemake" process survived the signal
    assert (tmp_path / "checkpoint").read_text() == str(int(signal.SIGUSR1))
    # bash lived on and passed the training's own status back to "snakemake"
    assert (tmp_path / "job_exit").read_text() == "3"
    assert (tmp_path / "bystander").read_text() == "None"  # `sleep` was not signalled


def test_catches_reads_the_signal_mask():
    assert signals.catches(os.getpid(), signal.SIGINT)  # Python's KeyboardInterrupt
    previous = signal.signal(signal.SIGUSR2, signal.SIG_DFL)
    try:
        assert not signals.catches(os.getpid(), signal.SIGUSR2)
        signal.signal(signal.SIGUSR2, lambda s, f: None)
        assert signals.catches(os.getpid(), signal.SIGUSR2)
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_descendants_lists_grandchildren():
    proc = subprocess.Popen(["bash", "-c", "sleep 30 & wait"])
    try:
        deadline = time.monotonic() + 10
        while len(signals.descendants(os.getpid())) < 2:
            assert time.monotonic() < deadline, signals.descendants(os.getpid())
            time.sleep(0.05)
        found = signals.descendants(os.getpid())
        assert proc.pid in found
        grandchildren = [p for p in found if p != proc.pid]
        comm = Path(f"/proc/{grandchildren[0]}/comm").read_text().strip()
        assert comm == "sleep"
    finally:
        proc.kill()
        proc.wait()
