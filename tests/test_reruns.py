"""Rerun semantics of the real Snakefile: only what a change makes stale reruns.

One tiny DAG is built once in a copy of the checkout; every test then edits the
copy (config or code), asks `snakemake -n` what would run, and restores the file.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_checkout, planned_jobs, run_snakemake, write_config

pytestmark = pytest.mark.e2e

TINY = {
    "synth": {"synth": {"writers": 6, "samples_per_class": 1, "scripts": ["latin_digits"]}},
}
TARGETS = [f"data/splits/synth/{s}.csv" for s in ("stratified", "writer", "adaptation")]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    repo = copy_checkout(tmp_path_factory.mktemp("checkout"))
    write_config(repo, TINY, base=repo / "config.yaml")
    run_snakemake(repo, *TARGETS, repo=repo)
    return repo


def plan(repo: Path) -> dict[str, int]:
    return planned_jobs(repo, *TARGETS, repo=repo)


@contextlib.contextmanager
def edited(path: Path, change):
    """Apply ``change(text) -> text`` to ``path`` for the block, then restore it."""
    original = path.read_bytes()
    stat = path.stat()
    path.write_text(change(original.decode("utf-8")), encoding="utf-8")
    try:
        yield
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def add_comment(text: str) -> str:
    return text + "\n# a comment that changes the file's checksum\n"


def test_noop_rerun_runs_nothing(built):
    assert plan(built) == {}


def test_touching_code_and_config_reruns_nothing(built):
    files = [built / "config.yaml", *built.glob("hwbench/**/*.py"), *built.glob("workflow/**/*")]
    for path in files:
        if path.is_file():
            path.touch()
    assert plan(built) == {}


def test_editing_preprocessing_reruns_preprocessing_and_what_follows(built):
    with edited(built / "hwbench/preprocess.py", add_comment):
        assert plan(built) == {"preprocess": 1, "splits": 3}


def test_editing_split_code_reruns_only_splits(built):
    with edited(built / "hwbench/splits.py", add_comment):
        assert plan(built) == {"splits": 3}


def test_changing_one_split_parameter_reruns_only_that_scheme(built):
    def more_resamples(text):
        config = yaml.safe_load(text)
        config["splits"]["adaptation_resamples"] += 1
        return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)

    with edited(built / "config.yaml", more_resamples):
        assert plan(built) == {"splits": 1}
