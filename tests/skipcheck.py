"""Skipped tests fail a CI run unless tests/skip_allowlist.txt names them with a reason.

A skip hides a test as quietly as a deletion would: on a CI machine every test is
expected to run. With ``CI`` set (``true``/``1``, as CI services set it) or
``HWBENCH_STRICT_SKIPS=1`` the session fails (exit status 1) when a test or module
was skipped and its id does not match an allowlist entry; the terminal summary names
each such skip and its reason. An xfail counts as a skip: it, too, keeps a test from
passing. ``HWBENCH_STRICT_SKIPS=0`` turns the check off.

The allowlist (``HWBENCH_SKIP_ALLOWLIST`` overrides its path) has one entry a line,
``<test id> | <reason>``; a test id ending in ``*`` matches every id starting with
the rest (e.g. all parameters of a test). Blank lines and ``#`` comments are ignored;
an entry without a reason is an error.

tests/conftest.py imports :func:`pytest_configure`, so ``make test`` (plain pytest) enforces it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DEFAULT_ALLOWLIST = Path(__file__).resolve().with_name("skip_allowlist.txt")


def strict_skips() -> bool:
    """Whether skips are checked: HWBENCH_STRICT_SKIPS=1/0 decides, else a CI variable."""
    explicit = os.environ.get("HWBENCH_STRICT_SKIPS")
    if explicit is not None and explicit != "":
        return explicit not in ("0", "false", "no")
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def allowlist_path() -> Path:
    return Path(os.environ.get("HWBENCH_SKIP_ALLOWLIST") or DEFAULT_ALLOWLIST)


def read_allowlist(path: Path) -> dict[str, str]:
    """Test id (or ``prefix*``) -> reason; a missing reason names the file and line."""
    if not path.exists():
        raise pytest.UsageError(
            f"{path}: skip allowlist not found; create it (it may hold only comments)"
        )
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test_id, _, reason = (part.strip() for part in line.partition("|"))
        if not test_id or not reason:
            raise pytest.UsageError(
                f"{path}:{number}: {line!r}: write '<test id> | <reason the skip is fine>'"
            )
        entries[test_id] = reason
    return entries


def is_allowed(test_id: str, allowlist: dict[str, str]) -> bool:
    if test_id in allowlist:
        return True
    return any(p.endswith("*") and test_id.startswith(p[:-1]) for p in allowlist)


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: ...")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


class SkipCheck:
    """Collects the session's skips; fails the session on those not allowed."""

    def __init__(self, allowlist: dict[str, str], path: Path):
        self.allowlist, self.path = allowlist, path
        self.skips: list[tuple[str, str]] = []
        self.unallowed: list[tuple[str, str]] = []

    def _record(self, report) -> None:
        # An xfail hides a test as a skip does: it counts as one (reason: the xfail's).
        if report.skipped:
            why = f"xfail: {report.wasxfail}" if hasattr(report, "wasxfail") else _reason(report)
            self.skips.append((report.nodeid, why))

    def pytest_runtest_logreport(self, report):
        self._record(report)

    def pytest_collectreport(self, report):  # a module skipped as a whole
        self._record(report)

    def pytest_sessionfinish(self, session):
        self.unallowed = [s for s in self.skips if not is_allowed(s[0], self.allowlist)]
        if self.unallowed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if not self.unallowed:
            return
        terminalreporter.section("skips not on the allowlist (they fail a CI run)", red=True)
        for test_id, why in self.unallowed:
            terminalreporter.line(f"SKIPPED {test_id}: {why}")
        terminalreporter.line(
            f"Make these tests run here, or add '<test id> | <reason>' to {self.path}."
        )


def pytest_configure(config):
    """Registers the check when skips are strict (a malformed allowlist fails at once)."""
    if strict_skips():
        path = allowlist_path()
        config.pluginmanager.register(SkipCheck(read_allowlist(path), path), "hwbench-skipcheck")
