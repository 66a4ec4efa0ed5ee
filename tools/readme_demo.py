"""The README's "what the demo prints" block, written from one real demo run.

    python tools/readme_demo.py

Runs the demo's command (`make demo`: ``snakemake --cores all reports/table4.csv``
with config.yaml) on the committed tree (git archive HEAD) in a fresh temporary
folder, so nothing already built shortens it and uncommitted edits do not count.
Then rewrites the block between the markers in README.md with the header and a few
rows of that run's reports/table4.md, one of its figures (copied to
docs/img/demo_table4_curves.png), its wall time and disk use, and the commit, the
machine and the load it ran with. Takes as long as the demo.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = "python tools/readme_demo.py"
START = f"<!-- demo-output:start ({COMMAND}) -->"
END = "<!-- demo-output:end -->"
TARGET = "reports/table4.csv"
FIGURE_SOURCE = "reports/table4_curves.png"
FIGURE = Path("docs/img/demo_table4_curves.png")
# The rows shown: the multi-task models the paper compares (Table 4's lower half).
ROWS = ("Base", "Wloss", "New")


def table_excerpt(markdown: str, rows=ROWS) -> list[str]:
    """The header, the separator and the ``rows`` (by model name) of a markdown table."""
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    if len(lines) < 2:
        raise ValueError("no markdown table found")
    picked = [line for line in lines[2:] if line.split("|")[1].strip() in rows]
    return [*lines[:2], *picked]


def header_columns(line: str) -> list[str]:
    """The column names of a markdown table's header line."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def disk_use(folder: Path) -> int:
    """Bytes of the files under ``folder`` (what the run wrote: data, results, logs...)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    for line in (
        Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    ):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def git(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, **kwargs)


def snapshot(dest: Path) -> str:
    """The committed tree (git archive HEAD) unpacked in ``dest``; returns the commit.

    The demo runs this copy, so the block is true of the commit it names, whatever
    the working tree holds."""
    archive = git("archive", "HEAD").stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return git("rev-parse", "--short", "HEAD", text=True).stdout.strip()


def run_demo(source: Path, workdir: Path) -> float:
    """Seconds the demo's snakemake command took in ``workdir`` (an empty folder), with
    the Snakefile, config.yaml and hwbench of ``source``."""
    shutil.copy2(source / "config.yaml", workdir / "config.yaml")
    snakemake = shutil.which("snakemake") or str(Path(sys.executable).with_name("snakemake"))
    cmd = [snakemake, "-s", str(source / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--cores", "all", TARGET]
    env = dict(os.environ, PYTHONPATH=str(source))
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"the demo failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return seconds


def block(excerpt: list[str], seconds: float, nbytes: int, info: dict) -> str:
    """The README block's body (markdown)."""
    minutes, secs = divmod(round(seconds), 60)
    return "\n".join(
        [
            f"From one `make demo` run in an empty folder at commit {info['commit']}, on "
            f"{info['machine']} (load {info['load_before']} before, {info['load_after']} "
            "after; a shared machine): "
            f"{minutes} min {secs} s wall time, {nbytes / 1e6:.0f} MB on disk (data, results, "
            "reports, logs). Table 4's header and its multi-task rows (reports/table4.md):",
            "",
            *excerpt,
            "",
            "Training curves of the same run (reports/table4_curves.png):",
            "",
            f"![Table 4 models' training curves, demo run]({FIGURE.as_posix()})",
        ]
    )


def replace_block(text: str, body: str) -> str:
    if START not in text or END not in text:
        raise ValueError(f"README.md lacks the markers {START!r} ... {END!r}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{body}\n{END}{tail}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = parser.parse_args(argv)
    info = {"machine": machine(), "load_before": load()}
    with tempfile.TemporaryDirectory(prefix="hwbench-demo-") as tmp:
        source, workdir = Path(tmp, "source"), Path(tmp, "run")
        source.mkdir()
        workdir.mkdir()
        info["commit"] = snapshot(source)
        seconds = run_demo(source, workdir)
        info["load_after"] = load()
        nbytes = disk_use(workdir)
        excerpt = table_excerpt((workdir / TARGET).with_suffix(".md").read_text(encoding="utf-8"))
        (REPO / FIGURE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workdir / FIGURE_SOURCE, REPO / FIGURE)
    text = args.readme.read_text(encoding="utf-8")
    args.readme.write_text(
        replace_block(text, block(excerpt, seconds, nbytes, info)), encoding="utf-8"
    )
    print(f"{args.readme}: demo block written ({seconds:.0f} s, {nbytes / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
