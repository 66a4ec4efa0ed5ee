"""docs/cluster.md's site examples ("Your site's partitions and account") as the tests
run them: each is a ```sh block whose first line is ``# site example: <name>``."""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path

from tests.conftest import REPO

DOC = REPO / "docs/cluster.md"
# The preemption warning every training job asks for (profiles/slurm, docs/cluster.md).
SIGNAL = "--signal=USR1@120"


def example(name: str) -> str:
    """The text of the site example ``name``, as a shell script."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    for block in blocks:
        script = textwrap.dedent(block)
        if script.startswith(f"# site example: {name}\n"):
            return script
    raise AssertionError(f"docs/cluster.md has no ```sh block '# site example: {name}'")


def snakemake_args(script: str, home: Path, cwd: Path = REPO) -> list[str]:
    """The arguments the example passes to snakemake, with every other line of it run
    by bash as written (HOME=``home``, in ``cwd``)."""
    shim = 'snakemake() { printf "%s\\0" "$@"; }\n'  # prints the arguments instead
    proc = subprocess.run(
        ["bash", "-euc", shim + script],
        cwd=cwd,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.split("\0")[:-1]


def partition_file(script: str) -> str:
    """The YAML of the partition file the example writes (its here-document)."""
    found = re.search(r"<<'EOF'\n(.*?)\nEOF\n", script, flags=re.S)
    assert found, f"no here-document in:\n{script}"
    return found.group(1) + "\n"


def without_target(args: list[str]) -> list[str]:
    """``args`` less the example's ``--configfile`` and its ``-- <targets>``."""
    args = args[: args.index("--")] if "--" in args else list(args)
    at = args.index("--configfile")
    return args[:at] + args[at + 2 :]
