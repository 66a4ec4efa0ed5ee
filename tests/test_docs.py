"""The README, docs/ and config comments as a reader gets them: no typed results or
measurements, no paths outside the repo, nothing named that does not exist, and every
generated block as its command writes it."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CONFIGS = [REPO / "config.yaml", *sorted((REPO / "config").glob("*.yaml"))]
# A block a command writes (e.g. hwbench.configdoc's): <!-- name:start ... --> ... <!-- name:end -->
GENERATED = re.compile(r"<!-- ([\w-]+):start\b.*?-->.*?<!-- \1:end -->", re.S)
BLOCK = re.compile(r"<!-- ([\w-]+):start(?: \((.+?)\))? -->\n(.*?)<!-- \1:end -->", re.S)
# A number with a unit of time, size, share or throughput: "896 s", "3.1-4.2 GB", "~12 GB",
# "16%", "14.9 min", "1,500 img/s". Not followed by a letter or "/" ("10 seeds", "2 s/step"
# is caught as "2 s" only when the "/" does not follow).
FIGURE = re.compile(
    r"(?<![\w.])(?:~\s?)?\d[\d,.]*(?:\s?[-\u2013]\s?\d[\d,.]*)?\s?"
    r"(?:s|ms|min|h|GB|MB|KB|kB|TB|GiB|MiB|%|img/s|images/s)(?![\w/])"
)
FIGURES_ALLOWLIST = REPO / "tests" / "docs_figures_allowlist.txt"


def typed_figures(text: str) -> list[str]:
    """Numbers with a unit outside generated blocks: a measurement typed by hand goes
    stale with the next change; a command's block says the commit it was measured at."""
    return [" ".join(m.group(0).split()) for m in FIGURE.finditer(GENERATED.sub("", text))]


def config_comments(text: str) -> str:
    """The comments of a YAML file (its values are config, not prose)."""
    return "\n".join(line[line.index("#") :] for line in text.splitlines() if "#" in line)


# A block a command writes into a YAML file: # name:start (command) ... # name:end
YAML_GENERATED = re.compile(r"# ([\w-]+):start\b.*?# \1:end", re.S)


def prose(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return config_comments(YAML_GENERATED.sub("", text)) if path.suffix == ".yaml" else text


@cache
def figures_allowlist() -> dict[tuple[str, str], str]:
    """(page, figure) -> why that figure is no measurement."""
    entries = {}
    for number, line in enumerate(FIGURES_ALLOWLIST.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        page, figure, reason = (part.strip() for part in (line.split("|") + ["", ""])[:3])
        assert page and figure and reason, (
            f"{FIGURES_ALLOWLIST.name}:{number}: page | figure | reason"
        )
        entries[(page, figure)] = reason
    return entries


def typed_results(text: str) -> list[str]:
    """Lines outside generated blocks that carry a "mean ± sd": a result typed by hand.

    Results belong in the generated reports/*.md, which say the commit and config they
    came from; a number typed into a page goes stale with the next change."""
    return [line.strip() for line in GENERATED.sub("", text).splitlines() if "±" in line]


def outside_links(text: str) -> list[str]:
    """Paths that leave the repository (the design notes and papers do not ship with it)."""
    return re.findall(r"\S*(?:\.\./|shared/|papers/)\S*", text)


def test_typed_results_are_found_outside_generated_blocks_only():
    page = (
        "| Base | 87.65 ± 1.46 |\n"
        "<!-- config-keys:start (python -m hwbench.configdoc) -->\n| seeds | mean ± sd |\n"
        "<!-- config-keys:end -->\ntext\n"
    )
    assert typed_results(page) == ["| Base | 87.65 ± 1.46 |"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_quotes_no_typed_results(page):
    typed = typed_results(page.read_text(encoding="utf-8"))
    assert not typed, (
        f"{page.relative_to(REPO)} quotes results by hand; point to the generated "
        f"reports/<table>.md instead (or put them in a generated block): {typed[:3]}"
    )


@pytest.mark.parametrize("path", PAGES + CONFIGS, ids=lambda p: p.name)
def test_no_path_points_outside_the_repository(path):
    found = outside_links(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(REPO)} points outside the repository: {found}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_resolve(page):
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8"))
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    missing = [link for link in local if not (page.parent / link).exists()]
    assert not missing, f"{page.relative_to(REPO)} links to missing files: {missing}"


def test_readme_is_a_quick_start():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; details go to docs/"
    assert (REPO / "LICENSE").is_file()


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_help_lists_every_documented_target():
    out = subprocess.run(
        ["make", "-s", "-C", str(REPO), "help"], capture_output=True, text=True, check=True
    ).stdout
    listed = set(re.findall(r"make (\S+)", out))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert set(re.findall(r"`make ([a-z-]+)`", readme)) <= listed
    expected = {"demo", "test", "test-cluster", "lint", "report", "dryrun", "paper-dryrun"}
    assert expected | {"clean", "help"} <= listed


# --- measured figures ----------------------------------------------------------------

# The "Cost on a 2-core CPU" section of docs/rehearsal.md before the figures moved into a
# generated block: what the check must catch.
OLD_REHEARSAL = (
    "87 jobs. `make rehearsal` in a fresh clone, after `make` had installed `.venv` (98 s),\n"
    "built all five tables in 14.9 min (896 s, exit 0). The machine was quiet (load average\n"
    "1.1 at the start, 1.6 at the end; nothing else ran). The seven OneModel jobs took 41\n"
    "to 77 s each, with peak RSS from 3.1 to 4.2 GB."
)


def test_typed_figures_are_found_outside_generated_blocks_only():
    assert typed_figures(OLD_REHEARSAL) == ["98 s", "14.9 min", "896 s", "77 s", "4.2 GB"]
    assert typed_figures("2.5 min on 2 cores, 12 min 28 s; 3.1\u20134.2 GB; ~3.7 GB") == [
        "2.5 min",
        "12 min",
        "28 s",
        "3.1\u20134.2 GB",
        "~3.7 GB",
    ]
    assert typed_figures("10 seeds, 3 heads, 28x28, 2048 steps, ResNet-18, 1.5x faster") == []
    block = "<!-- b:start (python x.py) -->\n896 s\n<!-- b:end -->\n"
    assert typed_figures(block) == [] and typed_figures("96 img/s, 16%") == ["96 img/s", "16%"]


@pytest.mark.parametrize("path", PAGES + CONFIGS, ids=lambda p: p.name)
def test_no_measured_figure_is_typed_by_hand(path):
    page = path.relative_to(REPO).as_posix()
    allowed = {figure for (p, figure) in figures_allowlist() if p == page}
    typed = [f for f in typed_figures(prose(path)) if f not in allowed]
    assert not typed, (
        f"{page} has figures typed by hand: {typed}. A measurement goes in a generated "
        "block that a command writes (naming the commit, machine and load), or is removed; "
        f"a fact derived from the inputs goes in {FIGURES_ALLOWLIST.name} with its reason"
    )


def test_every_figures_allowlist_entry_is_still_used():
    found = {
        (path.relative_to(REPO).as_posix(), figure)
        for path in PAGES + CONFIGS
        for figure in typed_figures(prose(path))
    }
    unused = [entry for entry in figures_allowlist() if entry not in found]
    assert not unused, f"{FIGURES_ALLOWLIST.name}: entries that match nothing: {unused}"


# --- generated blocks ------------------------------------------------------------------


def _load_tool(relative: str):
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(f"doctool_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def check_configdoc_block(body: str) -> None:
    from hwbench import configdoc

    assert body.strip() == configdoc.table(REPO / configdoc.SCHEMA).strip()


def check_demo_block(body: str) -> None:
    """The README's demo excerpt: measured facts named, and Table 4's columns exactly
    those the current table writer (hwbench.studies.multiscript.report) writes."""
    demo = _load_tool("tools/readme_demo.py")
    for fact in ("commit", "load", "cores", "wall time", "MB written"):
        assert fact in body, f"the demo block does not say its {fact}"
    excerpt = [line for line in body.splitlines() if line.startswith("|")]
    assert demo.header_columns(excerpt[0]) == table4_columns()
    assert {line.split("|")[1].strip() for line in excerpt[2:]} == set(demo.ROWS)
    figure = re.search(r"!\[[^]]*\]\(([^)]+)\)", body)
    assert figure and (REPO / figure.group(1)).is_file()


def check_rehearsal_block(body: str) -> None:
    """A whole rehearsal is no test's work: the block either says it was not measured
    yet or names what tools/rehearsal_cost.py writes."""
    if body.startswith("Not measured"):
        assert "python tools/rehearsal_cost.py" in body
        return
    for fact in ("commit", "load", "cores", "jobs", "wall time"):
        assert fact in body, f"the rehearsal block does not say its {fact}"
    assert "| rule | jobs | longest job (s) | largest peak RSS (MB) |" in body


# Each generated block's command -> a check of its body against what that command
# computes now (or, where running it is no test's work, of what it must state).
BLOCK_CHECKS = {
    "python -m hwbench.configdoc": check_configdoc_block,
    "python tools/readme_demo.py": check_demo_block,
    "python tools/rehearsal_cost.py": check_rehearsal_block,
    # benchmarks/cost.py's block: tests/test_bench_cost.py recomputes its arithmetic.
    "python benchmarks/cost.py --docs": None,
    # benchmarks/gpu.py's block: it runs on a GPU only; until then the block says so.
    "python benchmarks/gpu.py": None,
}


def table4_columns() -> list[str]:
    """The columns of reports/table4.md as the current writer makes them (one seed of
    every model, made-up accuracies)."""
    from hwbench.report import to_markdown
    from hwbench.studies.multiscript import report
    from hwbench.studies.multiscript.spec import DIGIT_SCRIPTS, GROUPS

    evals = []
    for group, spec in GROUPS.items():
        scripts = DIGIT_SCRIPTS if group == "digits" else ("amharic",)
        for method in spec.methods:
            acc = {s: 0.5 for s in scripts}
            evals.append(
                {"group": group, "method": method, "seed": 0, "metrics": {"accuracy": acc}}
            )
    header = to_markdown(report.table4(evals)).splitlines()[0]
    return [cell.strip() for cell in header.strip().strip("|").split("|")]


def generated_blocks() -> list[tuple[str, str, str | None, str]]:
    """(page, block name, command, body) of every generated block in the docs."""
    return [
        (page.relative_to(REPO).as_posix(), m.group(1), m.group(2), m.group(3))
        for page in PAGES
        for m in BLOCK.finditer(page.read_text(encoding="utf-8"))
    ]


def test_every_generated_block_names_a_known_command():
    blocks = generated_blocks()
    assert {"config-keys", "demo-output", "rehearsal-cost"} <= {b[1] for b in blocks}
    for page, name, command, _ in blocks:
        assert command, f"{page}: block {name} does not name the command that writes it"
        assert command in BLOCK_CHECKS, f"{page}: block {name}'s command {command!r} is unchecked"


@pytest.mark.parametrize(
    "page, name, command, body",
    [b for b in generated_blocks() if BLOCK_CHECKS.get(b[2])],
    ids=lambda v: v if isinstance(v, str) and "/" not in v and "\n" not in v else None,
)
def test_generated_block_matches_its_command(page, name, command, body):
    BLOCK_CHECKS[command](body)


# --- what the docs name exists --------------------------------------------------------

# Repository paths a page names (generated folders such as data/, results/, reports/,
# logs/ and benchmarks/jobs/ are outputs, not checked).
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:hwbench|workflow|docs|tests|benchmarks|config|profiles|tools|requirements|\.ci)"
    r"/[\w./{},<>-]*[\w/}>])(\*?)"
)
# steps-cuda.json: written by `benchmarks/cost.py --device cuda` on a GPU.
OUTPUTS = ("benchmarks/jobs/", "benchmarks/measured/steps-cuda.json")
# Paths the docs name as gone on purpose (what was dropped and why).
GONE = {"workflow/envs/hwbench.yaml", "profiles/kubernetes"}
CONFIG_KEY = re.compile(r"`([a-z][a-z_0-9]*(?:\.(?:[a-z_0-9]+|<[a-z_]+>))+)`")
FILE_SUFFIX = re.compile(r"\.(?:smk|csv|md|py|yaml|json|png|tsv|txt|npy|pt|html|log|sif)$")


@cache
def make_help() -> str:
    return subprocess.run(
        ["make", "-s", "-C", str(REPO), "help"], capture_output=True, text=True, check=True
    ).stdout


@cache
def schema_keys() -> tuple[set[str], list[list[str]]]:
    from hwbench import configdoc

    schema = yaml.safe_load((REPO / configdoc.SCHEMA).read_text(encoding="utf-8"))
    rows = configdoc.rows(schema, (REPO / configdoc.SCHEMA).parent, schema)
    return set(schema["properties"]), [row[0].split(".") for row in rows]


def named_paths(text: str) -> list[str]:
    missing = []
    for m in REPO_PATH.finditer(text):
        path, star = m.groups()
        if any(c in path for c in "<{") or path.startswith(OUTPUTS) or path in GONE:
            continue
        found = list(REPO.glob(path + "*")) if star else [REPO / path.rstrip(".")]
        if not any(p.exists() for p in found):
            missing.append(path + star)
    return missing


def unknown_config_keys(text: str) -> list[str]:
    """Dotted config keys (`data.standin.enabled`, `data.<dataset>.local_copy`) that the
    schema does not have; <...> matches any name."""
    tops, rows = schema_keys()
    unknown = []
    for key in CONFIG_KEY.findall(text):
        parts = key.split(".")
        if parts[0] not in tops or FILE_SUFFIX.search(key):
            continue
        if not any(
            len(row) == len(parts)
            and all(
                a == b or a.startswith("<") or b.startswith("<")
                for a, b in zip(parts, row, strict=True)
            )
            for row in rows
        ):
            unknown.append(key)
    return unknown


def test_the_existence_checks_find_what_is_missing():
    text = "see `hwbench/nothere.py`, tests/test_docs.py, tests/test_datasets_*.py, `data/x`"
    assert named_paths(text) == ["hwbench/nothere.py"]
    keys = "`data.standin.enabled`, `data.<dataset>.local_copy`, `gpu_per_job.x`, `data.nope`"
    assert unknown_config_keys(keys) == ["data.nope"]


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
@pytest.mark.parametrize("name", [*[p.name for p in PAGES], "make help"])
def test_every_named_path_target_and_config_key_exists(name):
    text = (
        make_help()
        if name == "make help"
        else ((REPO / name) if name == "README.md" else (REPO / "docs" / name)).read_text(
            encoding="utf-8"
        )
    )
    targets = set(re.findall(r"make (\S+)", make_help()))
    assert not named_paths(text), f"{name} names paths that do not exist: {named_paths(text)}"
    unknown_targets = sorted(set(re.findall(r"`make ([a-z-]+)", text)) - targets)
    assert not unknown_targets, f"{name} names make targets that do not exist: {unknown_targets}"
    keys = unknown_config_keys(text)
    assert not keys, f"{name} names config keys the schema does not have: {keys}"
    assert "(pending)" not in text, f"{name} still says (pending)"
