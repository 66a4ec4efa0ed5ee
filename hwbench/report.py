"""Report tables: per-run results aggregated over seeds, the paper beside, provenance.

A study collects one row per training job (its keys, ``seed``, metric values),
calls :func:`aggregate`, :func:`join_paper` and :func:`format_table`, and writes
the result with :func:`write_report`, which adds ``<table>.md`` and a
``<table>.json`` provenance sidecar (from :func:`provenance`).

Wall time per job comes from the Snakemake ``benchmark:`` files every rule
declares (``benchmarks/jobs/...tsv``, column ``s``): Snakemake writes them for
every job, so no job has to time itself. Pass their paths to :func:`provenance`.
"""

from __future__ import annotations

import hashlib
import html
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hwbench.store import atomic_path, write_csv, write_json, write_text

# Distribution names (pip's), not import names. Pillow and OpenCV are here because the
# "byte-identical" synthetic and preprocessed images depend on their versions.
PACKAGES = [
    "hwbench-pipeline",
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "scikit-learn",
    "snakemake",
    "pillow",
    "opencv-python-headless",
]


# --- tables -------------------------------------------------------------------------


def aggregate(
    runs: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str], seed_col: str = "seed"
) -> pd.DataFrame:
    """Mean, sample sd (ddof 1; NaN for one run) and n of each metric per ``keys`` group.

    Columns: ``keys``, then ``<metric>_mean``, ``<metric>_sd``, ``<metric>_n``. Rows
    keep the order in which groups first appear. A seed repeated within a group
    is an error (two jobs wrote the same run).
    """
    missing = [c for c in [*keys, *metrics] if c not in runs.columns]
    if missing:
        raise ValueError(f"run table lacks columns {missing}; it has {list(runs.columns)}")
    if seed_col in runs.columns:
        dup = runs.duplicated([*keys, seed_col], keep=False)
        if dup.any():
            raise ValueError(f"repeated seeds for {runs.loc[dup, [*keys, seed_col]].values[:5]}")
    grouped = runs.groupby(list(keys), sort=False, dropna=False)
    out = grouped[list(metrics)].agg(["mean", "std", "count"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out = out.rename(columns=lambda c: c.replace("_std", "_sd").replace("_count", "_n"))
    return out.reset_index()


def format_mean_sd(mean: float, sd: float, digits: int = 2) -> str:
    """``"mean ± sd"``; only the mean where sd is undefined (one run); ``""`` for NaN mean."""
    if mean is None or (isinstance(mean, float) and np.isnan(mean)):
        return ""
    if sd is None or np.isnan(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def join_paper(
    agg: pd.DataFrame,
    paper: pd.DataFrame,
    keys: Sequence[str],
    metric: str,
    paper_col: str = "paper",
) -> pd.DataFrame:
    """Add the paper's value (``paper_col`` of ``paper``) and ``diff`` = our mean - paper.

    A key without a paper value gets NaN in both columns. ``keys`` may be fewer than
    ``agg``'s own, so several of our rows can meet one paper row (lifelong: a
    curriculum order that computed a configured order); each paper key must be unique.
    """
    merged = agg.merge(paper[[*keys, paper_col]], on=list(keys), how="left", validate="m:1")
    merged[f"{metric}_paper"] = merged.pop(paper_col)
    merged[f"{metric}_diff"] = merged[f"{metric}_mean"] - merged[f"{metric}_paper"]
    return merged


def format_table(
    agg: pd.DataFrame, keys: Sequence[str], metrics: Sequence[str], digits: int = 2
) -> pd.DataFrame:
    """Display table: keys, ``<metric>`` as "mean ± sd", ``<metric>_paper``/``_diff`` if joined."""
    out = agg[list(keys)].copy()
    for m in metrics:
        out[m] = [
            format_mean_sd(a, b, digits)
            for a, b in zip(agg[f"{m}_mean"], agg[f"{m}_sd"], strict=True)
        ]
        for extra in ("paper", "diff"):
            col = f"{m}_{extra}"
            if col in agg:
                sign = "+" if extra == "diff" else ""
                # round(...) + 0.0 turns a -0.0 into 0.0, so no "-0.00" appears.
                out[col] = [
                    "" if pd.isna(v) else f"{round(v, digits) + 0.0:{sign}.{digits}f}"
                    for v in agg[col].astype(float)
                ]
    return out


def to_markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False) + "\n"


# --- provenance -----------------------------------------------------------------------

# The provenance field (and table column) that says a table's data are no result.
DATA_NOTE_KEY = "data"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def git_state(repo: str | os.PathLike = ".") -> dict:
    """``{"commit", "dirty"}`` of the checkout (None values outside a git checkout)."""

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        # Generated files (reports/, results/, ...) are git-ignored, so they don't count.
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def native_library_versions() -> dict[str, str | None]:
    """Versions of the C libraries the images depend on, as the Python bindings see them:
    FreeType renders the synthetic glyphs (through Pillow), OpenCV resizes and blurs."""
    import cv2
    from PIL import features

    return {"freetype": features.version("freetype2"), "opencv": cv2.__version__}


def read_benchmark_seconds(path: str | os.PathLike) -> float:
    """Wall seconds of one job from its Snakemake benchmark file (column ``s``)."""
    frame = pd.read_csv(path, sep="\t")
    if "s" not in frame.columns:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no column 's')")
    return float(frame["s"].iloc[-1])


def device_summary() -> str:
    """The machine the report step runs on (jobs record their own in run.json)."""
    import torch

    if torch.cuda.is_available():
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        return f"cuda: {', '.join(names)}"
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def provenance(
    config: Mapping | None = None,
    dataset_files: Iterable[str | os.PathLike] = (),
    benchmark_files: Iterable[str | os.PathLike] = (),
    job_devices: Mapping[str, str] | None = None,
    repo: str | os.PathLike = ".",
    data_note: str | None = None,
) -> dict:
    """The sidecar's content: config, git commit and dirty flag, sha256 of the given
    dataset files (processed images.npy / meta.csv), package and image-library
    (FreeType, OpenCV) versions, devices and
    wall seconds per job (keyed by benchmark file path).

    ``data_note``: what the table's data are when they are no result (a rehearsal's
    stand-ins: hwbench.datasets.rules.data_note); it is the record's ``data`` field
    and :func:`write_report` puts it in the table itself."""
    note = {DATA_NOTE_KEY: data_note} if data_note else {}
    return {
        **note,
        "config": dict(config or {}),
        "git": git_state(repo),
        "datasets": {str(p): sha256_file(p) for p in dataset_files},
        "packages": package_versions(),
        "libraries": native_library_versions(),
        "python": platform.python_version(),
        "device": device_summary(),
        "job_devices": dict(job_devices or {}),
        "wall_s": {str(p): read_benchmark_seconds(p) for p in benchmark_files},
    }


_HTML_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; font-size: 13px; margin: 1em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; white-space: nowrap; }}
th {{ background: #f0f0f0; position: sticky; top: 0; }}
tr:nth-child(even) td {{ background: #fafafa; }}
</style></head>
<body><h3>{title}</h3>
{table}
</body></html>
"""


def to_html(frame: pd.DataFrame, title: str) -> str:
    """A standalone HTML page of the table, for reading it in `snakemake --report`."""
    table = frame.to_html(index=False, na_rep="", border=0, escape=True)
    return _HTML_PAGE.format(title=html.escape(title), table=table)


def mark_data(frame: pd.DataFrame, note: str | None) -> pd.DataFrame:
    """``frame`` with a first column ``data`` saying ``note`` on every row (None: as is),
    so a table of stand-in numbers cannot be read as a result, even as a bare csv."""
    if not note:
        return frame
    return pd.concat(
        [pd.DataFrame({DATA_NOTE_KEY: [note] * len(frame)}, index=frame.index), frame], axis=1
    )


def write_report(frame: pd.DataFrame, csv_path: str | os.PathLike, prov: Mapping) -> None:
    """Write ``frame`` to ``<name>.csv``, ``.md`` and ``.html``, ``prov`` to ``<name>.json``.

    When ``prov`` carries a data note (:func:`provenance`), the csv gets it as its first
    column and the markdown and HTML as a heading line above the table."""
    csv_path = Path(csv_path)
    if csv_path.suffix != ".csv":
        raise ValueError(f"{csv_path}: a report table path must end in .csv")
    note = prov.get(DATA_NOTE_KEY)
    frame = mark_data(frame, note)
    heading = f"**{note.capitalize()}.**\n\n" if note else ""
    title = f"{csv_path.name} ({note})" if note else csv_path.name
    write_text(csv_path.with_suffix(".md"), heading + to_markdown(frame))
    write_text(csv_path.with_suffix(".html"), to_html(frame, title))
    write_json(csv_path.with_suffix(".json"), prov)
    with atomic_path(csv_path) as tmp:  # last: the .csv is the rule's target
        frame.to_csv(tmp, index=False)


# --- figures --------------------------------------------------------------------------


def new_figure(*args, **kwargs):
    """``plt.subplots`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Save ``fig`` atomically (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


BENCH_COLUMNS = ["benchmark", "metric", "value", "unit", "kind", "target", "note"]
# ``kind``: ``measured`` (a timing or count this run observed), ``counted`` (a value
# computed from the code, not observed: FLOPs a counter adds up over the operators) or
# ``projected`` (computed from measurements under an assumption, e.g. a time scaled to a
# larger run).
BENCH_KINDS = ("measured", "counted", "projected")
# Files written before the ``kind`` column existed: the metrics that were projections.
# Every other old row was a measurement, so the rule for old rows is by metric name.
LEGACY_PROJECTED_METRICS = frozenset(
    {"speedup_cpu_x_workers", "projected_full", "projected_nist_time"}
)


def read_bench(path: str | os.PathLike) -> pd.DataFrame:
    """``reports/bench.csv`` with every column of :data:`BENCH_COLUMNS`.

    A file from before the ``kind`` column gets it by rule: ``projected`` for the
    metrics in :data:`LEGACY_PROJECTED_METRICS` (or with "projected" in the name),
    ``measured`` for the rest; a missing ``target`` column is left empty.
    """
    path = Path(path)
    frame = pd.read_csv(path)
    missing = [c for c in ("benchmark", "metric", "value", "unit") if c not in frame]
    if missing:
        raise ValueError(
            f"{path}: missing columns {missing}; a benchmark file needs {BENCH_COLUMNS}. "
            "Move it aside and rerun the benchmarks to start a new one."
        )
    if "kind" not in frame:
        metric = frame["metric"].astype(str)
        legacy = metric.isin(LEGACY_PROJECTED_METRICS) | metric.str.contains("projected")
        frame["kind"] = np.where(legacy, "projected", "measured")
    for column in ("target", "note"):
        if column not in frame:
            frame[column] = ""
    _check_kinds(frame, str(path))
    return frame[BENCH_COLUMNS]


def _check_kinds(frame: pd.DataFrame, where: str) -> None:
    bad = frame.loc[~frame["kind"].isin(BENCH_KINDS), ["benchmark", "metric", "kind"]]
    if len(bad):
        first = bad.iloc[0]
        raise ValueError(
            f"{where}: {len(bad)} row(s) with kind not in {BENCH_KINDS}, e.g. "
            f"{first['benchmark']}/{first['metric']} kind={first['kind']!r}; say whether "
            "the value was measured, counted or projected"
        )


def append_bench_rows(path, rows: list[dict]) -> None:
    """Append benchmark result rows to ``reports/bench.csv`` (or ``path``), atomically.

    Each row needs ``benchmark``, ``metric``, ``value``, ``unit`` and ``kind`` (one of
    :data:`BENCH_KINDS`); ``target`` (e.g. ``">= 0.9"``) and ``note`` are optional.
    An older file without ``kind`` is rewritten with it (see :func:`read_bench`).
    """
    path = Path(path)
    for i, row in enumerate(rows):
        missing = [c for c in ("benchmark", "metric", "value", "unit", "kind") if c not in row]
        if missing:
            raise ValueError(f"benchmark row {i} ({row.get('metric')!r}) lacks {missing}")
    frame = pd.DataFrame(rows, columns=BENCH_COLUMNS)
    _check_kinds(frame, "new benchmark rows")
    if path.exists():
        frame = pd.concat([read_bench(path), frame], ignore_index=True)
    write_csv(path, frame)
