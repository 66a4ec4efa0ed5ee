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
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docrun import REPO, disk_use, load, minutes, rewrite_block, run_snakemake, snapshot_run  # noqa: E402

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


def block(excerpt: list[str], seconds: float, nbytes: int, info: dict) -> str:
    """The README block's body (markdown)."""
    return "\n".join(
        [
            f"One `make demo` run in an empty folder at commit {info['commit']}, on "
            f"{info['machine']} (load {info['load_before']} before, {info['load_after']} "
            f"after; a shared machine): {minutes(seconds)} wall time, "
            f"{nbytes / 1e6:.0f} MB written (data, results, reports, logs). "
            "Table 4's header and its multi-task rows (reports/table4.md):",
            "",
            *excerpt,
            "",
            f"![Table 4's training curves in that run (reports/table4_curves.png)]"
            f"({FIGURE.as_posix()})",
        ]
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = parser.parse_args(argv)
    with snapshot_run("hwbench-demo-") as (source, workdir, info):
        seconds = run_snakemake(source, workdir, ["--cores", "all", TARGET])
        info["load_after"] = load()
        nbytes = disk_use(workdir)
        table = (workdir / TARGET).with_suffix(".md").read_text(encoding="utf-8")
        excerpt = table_excerpt(table)
        (REPO / FIGURE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workdir / FIGURE_SOURCE, REPO / FIGURE)
    rewrite_block(args.readme, START, END, block(excerpt, seconds, nbytes, info))
    print(f"{args.readme}: demo block written ({seconds:.0f} s, {nbytes / 1e6:.0f} MB)")


if __name__ == "__main__":
    main()
