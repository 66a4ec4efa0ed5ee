"""The README and docs/ as a reader gets them: no typed results, no paths outside the repo."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CONFIGS = [REPO / "config.yaml", *sorted((REPO / "config").glob("*.yaml"))]
# A block a command writes (e.g. hwbench.configdoc's): <!-- name:start ... --> ... <!-- name:end -->
GENERATED = re.compile(r"<!-- ([\w-]+):start\b.*?-->.*?<!-- \1:end -->", re.S)


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
