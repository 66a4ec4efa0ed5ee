"""Pass SLURM's preemption warning from the Snakemake process on to the training.

snakemake-executor-plugin-slurm runs every job as ``srun ... snakemake ...`` inside its
sbatch allocation: the step's one task is that Snakemake process, and the rule's
commands (bash, then the training's Python) are its descendants. ``--signal=USR1@120``
(without ``B:``) signals the job's steps, and under proctrack/cgroup, what most sites
use, slurmstepd signals only the step's tasks ("any child of slurmstepd is a slurm
task ... inherited processes will only get SIGKILL", src/plugins/proctrack/cgroup).
SIGUSR1's default action ends Snakemake, and once the task has exited slurmstepd
SIGKILLs the rest of the step: the training would die before its checkpoint.

:func:`relay_to_catchers`, installed by the Snakefile as Snakemake's SIGUSR1 handler,
keeps Snakemake alive and sends the signal on to the descendants that catch it (the
training loop, hwbench.engine); processes that would die of it (bash) are left alone,
so Snakemake sees the job exit with the training's own status.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

PROC = Path("/proc")


def _parent_pids() -> dict[int, int]:
    """pid -> parent pid of every process visible in /proc."""
    parents = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = text.rpartition(")")[2].split()
        parents[int(stat.parent.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """The pids of ``pid``'s children, grandchildren and so on."""
    children: dict[int, list[int]] = {}
    for child, parent in _parent_pids().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (its SigCgt mask in /proc)."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


def relay_to_catchers(signum: int, _frame=None) -> list[int]:
    """Send ``signum`` to every descendant of this process that catches it; return them."""
    sent = []
    for pid in descendants(os.getpid()):
        if catches(pid, signum):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                continue
            sent.append(pid)
    return sent


def install_relay(signum: int = signal.SIGUSR1) -> bool:
    """Make :func:`relay_to_catchers` this process's handler for ``signum``.

    Only the main thread may set handlers; elsewhere nothing changes (returns False).
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signum, relay_to_catchers)
    return True
