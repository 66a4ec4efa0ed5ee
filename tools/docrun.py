"""Measured figures for the docs, from a real run: the helpers of tools/readme_demo.py and
tools/rehearsal_cost.py.

A doc never holds a measured figure typed by hand (tests/test_docs.py): a command runs
the thing on the committed tree (git archive HEAD) in an empty folder, measures it, and
rewrites a generated block ``<!-- name:start (command) --> ... <!-- name:end -->`` that
names the commit, the machine and the load it ran with.
"""

from __future__ import annotations

import contextlib
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def git(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, **kwargs)


def snapshot(dest: Path) -> str:
    """The committed tree (git archive HEAD) unpacked in ``dest``; returns the commit.

    The run uses this copy, so a block is true of the commit it names, whatever the
    working tree holds."""
    archive = git("archive", "HEAD").stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return git("rev-parse", "--short", "HEAD", text=True).stdout.strip()


@contextlib.contextmanager
def snapshot_run(prefix: str) -> Iterator[tuple[Path, Path, dict]]:
    """A temporary folder holding the committed tree (``source``, see :func:`snapshot`)
    and an empty ``workdir``; yields them with the run's info so far (machine, load
    before, commit). Both are removed on exit."""
    info = {"machine": machine(), "load_before": load()}
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        source, workdir = Path(tmp, "source"), Path(tmp, "run")
        source.mkdir()
        workdir.mkdir()
        info["commit"] = snapshot(source)
        yield source, workdir, info


def run_snakemake(source: Path, workdir: Path, args: list[str]) -> float:
    """Seconds ``snakemake <args>`` took in ``workdir`` with the Snakefile, config.yaml
    and hwbench of ``source``; exits naming the failure if it failed."""
    shutil.copy2(source / "config.yaml", workdir / "config.yaml")
    snakemake = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))
    cmd = [snakemake, "-s", str(source / "Snakefile"), "--directory", str(workdir), *args]
    env = dict(os.environ, PYTHONPATH=str(source))
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return seconds


def disk_use(folder: Path) -> int:
    """Bytes of the files under ``folder`` (what the run wrote: data, results, logs...)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def machine() -> str:
    cpu = platform.machine()
    info = Path("/proc/cpuinfo")
    for line in info.read_text().splitlines() if info.exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"


def load() -> str:
    """The 1-minute load average (other work on the machine slows a run down)."""
    return f"{os.getloadavg()[0]:.2f}"


def minutes(seconds: float) -> str:
    mins, secs = divmod(round(seconds), 60)
    return f"{mins} min {secs} s" if mins else f"{secs} s"


def job_peaks(workdir: Path) -> dict[str, dict]:
    """Per rule, from Snakemake's benchmark files (benchmarks/jobs/<rule>/...tsv): the job
    count, the longest job's wall time (s) and the largest peak RSS (MB)."""
    out: dict[str, dict] = defaultdict(lambda: {"jobs": 0, "s": 0.0, "max_rss": 0.0})
    for tsv in sorted((workdir / "benchmarks" / "jobs").rglob("*.tsv")):
        rule = tsv.relative_to(workdir / "benchmarks" / "jobs").parts[0]
        with tsv.open(newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        for row in rows[-1:]:  # a rerun appends: the last row is the job that made the file
            entry = out[rule]
            entry["jobs"] += 1
            entry["s"] = max(entry["s"], float(row["s"]))
            rss = row.get("max_rss", "NA")
            entry["max_rss"] = max(
                entry["max_rss"], float(rss) if rss not in ("", "NA", "-") else 0.0
            )
    return dict(out)


def replace_block(text: str, start: str, end: str, body: str) -> str:
    """``text`` with the lines between the ``start`` and ``end`` markers set to ``body``."""
    if start not in text or end not in text:
        raise ValueError(f"the page lacks the markers {start!r} ... {end!r}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def rewrite_block(path: Path, start: str, end: str, body: str) -> None:
    """Set the block between the ``start`` and ``end`` markers of the page ``path``."""
    text = path.read_text(encoding="utf-8")
    path.write_text(replace_block(text, start, end, body), encoding="utf-8")
