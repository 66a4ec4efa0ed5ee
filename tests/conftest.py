"""Shared test helpers: run the real Snakefile in a temporary folder."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

# Skips fail a CI run unless tests/skip_allowlist.txt names them (see tests/skipcheck.py).
from tests.skipcheck import pytest_configure  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def deep_update(base: dict, overrides: dict) -> dict:
    """Return ``base`` with ``overrides`` merged in, mappings merged key by key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def write_config(workdir: Path, overrides: dict | None = None, base: Path | None = None) -> Path:
    """Write ``workdir/config.yaml``: the repo's config.yaml (or ``base``) plus overrides."""
    config = yaml.safe_load((base or REPO / "config.yaml").read_text(encoding="utf-8"))
    config = deep_update(config, overrides or {})
    path = Path(workdir) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_config(config), encoding="utf-8")
    return path


def dump_config(config: dict) -> str:
    """A config mapping as YAML, keys in their order (as config.yaml reads)."""
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def run_snakemake(
    workdir: Path,
    *args: str,
    cores: int | None = 2,
    check: bool = True,
    timeout: float = 1200,
    repo: Path = REPO,
) -> subprocess.CompletedProcess:
    """Run ``repo``'s Snakefile (this checkout's by default) with ``workdir`` as working dir.

    ``cores=None`` passes no --cores (a cluster run: --cores would cap every rule's threads).
    """
    cmd = [SNAKEMAKE, "-s", str(repo / "Snakefile"), "--directory", str(workdir)]
    cmd += [*(["--cores", str(cores)] if cores is not None else []), *args]
    env = dict(os.environ, PYTHONPATH=str(repo), PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


_STAT_ROW = re.compile(r"^(\S+)\s+(\d+)$")


def planned_jobs(workdir: Path, *targets: str, repo: Path = REPO) -> dict[str, int]:
    """Rule name -> job count that ``snakemake -n`` would run (empty when up to date)."""
    proc = run_snakemake(workdir, "-n", *targets, repo=repo)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    counts: dict[str, int] = {}
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        match = _STAT_ROW.match(line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def copy_checkout(dest: Path) -> Path:
    """Copy the code of this checkout (no data, no venv) so a test may edit it."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("hwbench", "workflow", "profiles"):
        shutil.copytree(REPO / name, dest / name, ignore=ignore, symlinks=True)
    return dest


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working folder for a Snakemake run."""
    path = tmp_path / "run"
    path.mkdir()
    return path


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 serving generated dataset fixture files."""
    from tests._datasets_support import FixtureServer

    srv = FixtureServer().start()
    yield srv
    srv.stop()


@dataclass(frozen=True)
class RuleInfo:
    """What the parsed workflow says of one rule."""

    gpu: bool  # declares a `gpu` resource
    report: bool  # has an output marked report()
    local: bool  # listed in localrules


@contextlib.contextmanager
def parsed_workflow(snakefile: Path = REPO / "Snakefile", configfiles=()):
    """The workflow object Snakemake parses from ``snakefile`` (with ``configfiles``)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        OutputSettings,
        ResourceSettings,
        StorageSettings,
    )

    with SnakemakeApi(OutputSettings()) as api:
        yield api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=list(configfiles)),
            storage_settings=StorageSettings(),
            snakefile=snakefile,
            workdir=snakefile.parent,
        )._workflow


def workflow_rules(snakefile: Path = REPO / "Snakefile") -> dict[str, RuleInfo]:
    """Every rule of the workflow as Snakemake itself parses it (no text matching)."""
    with parsed_workflow(snakefile) as workflow:
        return {
            rule.name: RuleInfo(
                gpu="gpu" in dict(rule.resources),
                report=any(getattr(o, "flags", {}).get("report") for o in rule.output),
                local=rule.name in workflow._localrules,
            )
            for rule in workflow.rules
        }
