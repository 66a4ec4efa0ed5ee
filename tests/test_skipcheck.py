"""The CI skip check (tests/skipcheck.py), run as a plugin of a pytest subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.skipcheck import DEFAULT_ALLOWLIST, is_allowed, read_allowlist

TINY = """
import pytest

def test_runs():
    assert True

@pytest.mark.skipif(True, reason="no frobnicator here")
def test_skipped():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    if n == 2:
        pytest.skip("two is skipped")

@pytest.mark.xfail(reason="expected to fail")
def test_xfail():
    assert False
"""


def run_tiny(tmp_path: Path, allowlist: str | None, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "test_tiny.py").write_text(TINY)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # the rootdir: ids are test_tiny.py::...
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "HWBENCH_STRICT_SKIPS")}
    environ.update(PYTHONPATH=str(REPO), **env)
    if allowlist is not None:
        (tmp_path / "allow.txt").write_text(allowlist)
        environ["HWBENCH_SKIP_ALLOWLIST"] = str(tmp_path / "allow.txt")
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.skipcheck", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*cmd, "-q", "test_tiny.py"], cwd=tmp_path, env=environ, capture_output=True, text=True
    )


def test_unlisted_skips_fail_a_ci_run_and_are_named(tmp_path):
    proc = run_tiny(tmp_path, "test_tiny.py::test_skipped | no frobnicator on CI\n", CI="true")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "skips not on the allowlist" in proc.stdout
    assert "SKIPPED test_tiny.py::test_param[2]: two is skipped" in proc.stdout
    assert "test_tiny.py::test_skipped:" not in proc.stdout  # listed: allowed
    # an xfail is a skip too: unlisted, it fails the run
    assert "SKIPPED test_tiny.py::test_xfail: xfail: expected to fail" in proc.stdout


def test_listed_skips_pass_and_a_star_matches_parameters(tmp_path):
    allow = (
        "# comment\n\ntest_tiny.py::test_skipped | reason one\ntest_tiny.py::test_param* | r\n"
        "test_tiny.py::test_xfail | known failure\n"
    )
    proc = run_tiny(tmp_path, allow, HWBENCH_STRICT_SKIPS="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 skipped" in proc.stdout and "skips not on the allowlist" not in proc.stdout


def test_outside_ci_skips_are_only_reported(tmp_path):
    proc = run_tiny(tmp_path, "", CI="false")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 skipped" in proc.stdout
    proc = run_tiny(tmp_path, "", CI="true", HWBENCH_STRICT_SKIPS="0")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_entry_without_a_reason_is_refused(tmp_path):
    proc = run_tiny(tmp_path, "test_tiny.py::test_skipped\n", CI="true")
    assert proc.returncode != 0
    assert "allow.txt:1" in proc.stderr and "<test id> | <reason" in proc.stderr


def test_a_failing_run_keeps_its_exit_status(tmp_path):
    (tmp_path / "test_fail.py").write_text("def test_no():\n    assert False\n")
    (tmp_path / "allow.txt").write_text("")
    cmd = [sys.executable, "-m", "pytest", "-p", "tests.skipcheck", "-q", "test_fail.py"]
    env = dict(os.environ, PYTHONPATH=str(REPO), CI="true")
    env["HWBENCH_SKIP_ALLOWLIST"] = str(tmp_path / "allow.txt")
    failed = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and "1 failed" in failed.stdout


def test_the_repository_allowlist_names_existing_tests_with_reasons():
    entries = read_allowlist(DEFAULT_ALLOWLIST)
    assert entries and all(reason for reason in entries.values())
    for test_id in entries:
        path, _, name = test_id.rstrip("*").partition("::")
        source = (REPO / path).read_text(encoding="utf-8")
        assert f"def {name.split('[')[0]}(" in source, f"{test_id}: no such test"
    assert is_allowed("tests/test_slurm.py::test_demo_dag_runs_through_sbatch", entries)
    assert not is_allowed("tests/test_slurm.py::test_other", entries)
    # the RAR tests (path traversal included) must run on CI: .ci/run installs bsdtar
    assert not [t for t in entries if "rar" in t.lower()], "RAR tests may not skip on CI"


@pytest.mark.parametrize("value, strict", [("true", True), ("1", True), ("", False), ("0", False)])
def test_ci_variable_turns_the_check_on(monkeypatch, value, strict):
    from tests.skipcheck import strict_skips

    monkeypatch.delenv("HWBENCH_STRICT_SKIPS", raising=False)
    monkeypatch.setenv("CI", value)
    assert strict_skips() is strict
