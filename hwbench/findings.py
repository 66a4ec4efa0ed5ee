"""The findings scorecard: each paper's stated findings, tested on this run's seeds.

A study declares its claims (``hwbench/studies/<study>/findings.py``) as
:class:`Finding` records built from the per-seed values its report reads: each
claim is one or more :class:`Comparison` of two :class:`Sample` (or a sample and a
bound), oriented so that the paper's claim is a positive difference. The verdict
comes from :func:`verdict` only (:data:`RULE`), never from the study: nothing in
the verdict column is written by hand. :func:`scorecard` makes the table,
:func:`write_scorecard` writes reports/findings.csv (+ .md, .html, .json).
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
SE_FACTOR = 2.0  # how many standard errors a difference must exceed
# Differences this small are float rounding, not a difference (zero-variance samples).
TOLERANCE = 1e-9

RULE = (
    "Each comparison takes the difference in the direction the paper claims (positive: "
    "as the paper says) and its standard error over this run's seeds (runs of "
    "different models: Welch, sqrt(sd_a^2/n_a + sd_b^2/n_b); two numbers of the same "
    "run: the sd of the per-seed differences / sqrt(n); against a fixed bound: "
    "sd/sqrt(n)). reproduced: difference > 2 SE; not reproduced: difference < -2 SE; "
    "inconclusive: otherwise (within 2 SE, fewer than 2 seeds on a side so no SE, or "
    "no runs). With zero variance any nonzero difference (above 1e-9, float rounding) "
    "exceeds 2 SE. A claim of "
    "several comparisons (e.g. 'smallest of all') is reproduced when all are, not "
    "reproduced when any is, else inconclusive."
)

COLUMNS = [
    "study",
    "claim",
    "source",
    "paper",
    "ours",
    "test",
    "diff",
    "se",
    "verdict",
    "rule",
]


def verdict(diff: float, se: float) -> str:
    """The verdict of one comparison (:data:`RULE`): ``diff`` in the claimed
    direction, ``se`` its standard error (NaN: undefined, e.g. one seed)."""
    if diff is None or se is None or math.isnan(diff) or math.isnan(se):
        return INCONCLUSIVE
    if abs(diff) <= TOLERANCE:
        return INCONCLUSIVE
    if diff > SE_FACTOR * se:
        return REPRODUCED
    if diff < -SE_FACTOR * se:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def combine(verdicts: Iterable[str]) -> str:
    """A claim of several comparisons: reproduced if all are, not reproduced if any
    is, else (or with none) inconclusive."""
    verdicts = list(verdicts)
    if not verdicts:
        return INCONCLUSIVE
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    return INCONCLUSIVE


@dataclass(frozen=True)
class Sample:
    """One quantity's per-seed values (seed -> value; NaN values are dropped)."""

    name: str
    values: Mapping[int, float]
    digits: int = 2

    @property
    def series(self) -> pd.Series:
        s = pd.Series({int(k): float(v) for k, v in self.values.items()}, dtype=float)
        return s.dropna().sort_index()

    @property
    def n(self) -> int:
        return len(self.series)

    @property
    def mean(self) -> float:
        return float(self.series.mean()) if self.n else math.nan

    @property
    def sd(self) -> float:
        return float(self.series.std(ddof=1)) if self.n >= 2 else math.nan

    def describe(self) -> str:
        """``name mean ± sd (n=k)``; ``name: no runs`` when empty."""
        if not self.n:
            return f"{self.name}: no runs"
        sd = "" if math.isnan(self.sd) else f" ± {self.sd:.{self.digits}f}"
        return f"{self.name} {self.mean:.{self.digits}f}{sd} (n={self.n})"


@dataclass(frozen=True)
class Comparison:
    """A difference in the claimed direction and its standard error."""

    label: str
    diff: float
    se: float
    samples: tuple[Sample, ...]
    how: str
    digits: int = 2

    @property
    def verdict(self) -> str:
        return verdict(self.diff, self.se)

    @property
    def z(self) -> float:
        """diff / se (±inf for a nonzero diff with se 0; NaN where undefined)."""
        if math.isnan(self.diff) or math.isnan(self.se):
            return math.nan
        if self.se == 0:
            return math.copysign(math.inf, self.diff) if self.diff else 0.0
        return self.diff / self.se

    def describe(self) -> str:
        d = self.digits
        diff = "n/a" if math.isnan(self.diff) else f"{self.diff:+.{d}f}"
        se = "undefined" if math.isnan(self.se) else f"{self.se:.{d}f}"
        return f"{self.label}: {diff} (SE {se}, {self.how}) -> {self.verdict}"


def greater(a: Sample, b: Sample, label: str | None = None) -> Comparison:
    """Claim ``a > b`` for runs of different models: mean difference, Welch SE."""
    diff = a.mean - b.mean
    se = math.sqrt(a.sd**2 / a.n + b.sd**2 / b.n) if a.n >= 2 and b.n >= 2 else math.nan
    return Comparison(
        label or f"{a.name} - {b.name}",
        diff,
        se,
        (a, b),
        f"{a.n} vs {b.n} seeds",
        max(a.digits, b.digits),
    )


def less(a: Sample, b: Sample, label: str | None = None) -> Comparison:
    """Claim ``a < b`` for runs of different models (:func:`greater` of ``b`` over ``a``)."""
    c = greater(b, a, label or f"{b.name} - {a.name}")
    return Comparison(c.label, c.diff, c.se, (a, b), c.how, c.digits)


def paired_greater(a: Sample, b: Sample, label: str | None = None) -> Comparison:
    """Claim ``a > b`` where seed k of both comes from the same run: the mean of the
    per-seed differences and their SE (sd / sqrt(n)), on the seeds both have."""
    d = (a.series - b.series).dropna()
    diff = float(d.mean()) if len(d) else math.nan
    se = float(d.std(ddof=1)) / math.sqrt(len(d)) if len(d) >= 2 else math.nan
    return Comparison(
        label or f"{a.name} - {b.name}",
        diff,
        se,
        (a, b),
        f"paired, {len(d)} seeds",
        max(a.digits, b.digits),
    )


def above(a: Sample, bound: float, label: str | None = None) -> Comparison:
    """Claim ``a > bound`` for a fixed number: mean - bound, SE sd / sqrt(n)."""
    se = a.sd / math.sqrt(a.n) if a.n >= 2 else math.nan
    return Comparison(
        label or f"{a.name} - {bound:g}",
        a.mean - bound,
        se,
        (a,),
        f"{a.n} seeds vs a bound",
        a.digits,
    )


@dataclass(frozen=True)
class Finding:
    """One row of the scorecard: a paper's claim and the comparisons that test it."""

    study: str
    claim: str
    source: str  # where the paper says it: file, section, table
    paper: str  # the paper's numbers (as printed), or what it shows
    comparisons: tuple[Comparison, ...]
    note: str = ""  # why the data may not carry it, or what stands in for the paper's data
    extra: tuple[Sample, ...] = field(default=())  # more of this run's numbers to show

    @property
    def verdict(self) -> str:
        return combine(c.verdict for c in self.comparisons)

    def decisive(self) -> Comparison | None:
        """The comparison that decides the verdict: the weakest (smallest diff / SE,
        undefined first) among those sharing the claim's verdict."""
        if not self.comparisons:
            return None
        pool = [c for c in self.comparisons if c.verdict == self.verdict] or list(self.comparisons)

        def key(c: Comparison):
            return (0, 0.0) if math.isnan(c.z) else (1, c.z)

        return min(pool, key=key)

    def ours(self) -> str:
        samples = {}
        for c in self.comparisons:
            for s in c.samples:
                samples.setdefault(s.name, s)
        for s in self.extra:
            samples.setdefault(s.name, s)
        return "; ".join(s.describe() for s in samples.values()) or "nothing measured"

    def row(self) -> dict:
        d = self.decisive()
        test = "; ".join(c.describe() for c in self.comparisons) or "nothing to compare"
        if self.note:
            test = f"{test}. {self.note}"
        return {
            "study": self.study,
            "claim": self.claim,
            "source": self.source,
            "paper": self.paper,
            "ours": self.ours(),
            "test": test,
            "diff": np.nan if d is None else d.diff,
            "se": np.nan if d is None else d.se,
            "verdict": self.verdict,
            "rule": RULE,
        }


def read_records(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """The runs' eval.json records, in the given order."""
    import json
    from pathlib import Path

    return [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]


def sample(name: str, values: Mapping | pd.Series | None, digits: int = 2) -> Sample:
    """A :class:`Sample` from seed -> value (a Series or mapping; None: no runs)."""
    if values is None:
        return Sample(name, {}, digits)
    if isinstance(values, pd.Series):
        values = values.to_dict()
    return Sample(name, dict(values), digits)


# --- the table -------------------------------------------------------------------------


def scorecard(findings: Sequence[Finding]) -> pd.DataFrame:
    """One row per finding, :data:`COLUMNS`; verdicts checked against :data:`VERDICTS`."""
    frame = pd.DataFrame([f.row() for f in findings], columns=COLUMNS)
    bad = set(frame["verdict"]) - set(VERDICTS)
    if bad:  # only reachable through a bug in this module
        raise ValueError(f"verdicts {sorted(bad)} are not among {VERDICTS}")
    return frame


def verdict_counts(frame: pd.DataFrame) -> dict[str, int]:
    """verdict -> number of rows, every verdict listed."""
    counts = frame["verdict"].value_counts()
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """The .md/.html table: no repeated rule column (it is stated above the table)."""
    shown = frame.drop(columns=["rule"]).copy()
    for col in ("diff", "se"):
        shown[col] = ["" if pd.isna(v) else f"{v:.4g}" for v in shown[col]]
    return shown


def write_scorecard(frame: pd.DataFrame, csv_path: str | os.PathLike, prov: Mapping) -> None:
    """reports/findings.csv (with the rule column) and its .md, .html and .json: the
    page and the markdown state the rule and the verdict counts above the table."""
    from hwbench import report
    from hwbench.store import atomic_path, write_json, write_text

    csv_path = os.fspath(csv_path)
    if not csv_path.endswith(".csv"):
        raise ValueError(f"{csv_path}: the scorecard path must end in .csv")
    stem = csv_path[: -len(".csv")]
    counts = verdict_counts(frame)
    summary = ", ".join(f"{v}: {n}" for v, n in counts.items())
    # a rehearsal's stand-ins: said first in every file, as report.write_report does
    note = prov.get(report.DATA_NOTE_KEY)
    heading = f"**{note.capitalize()}.**\n\n" if note else ""
    shown = report.mark_data(_display(frame), note)
    write_text(
        f"{stem}.md",
        f"{heading}Rule: {RULE}\n\nVerdicts: {summary}\n\n" + report.to_markdown(shown),
    )
    title = os.path.basename(csv_path) + (f" ({note})" if note else "")
    page = report.to_html(shown, title)
    # the claims are sentences: let their cells wrap (the shared page keeps cells on one line)
    intro = (
        "<style>td { white-space: normal; min-width: 8em; max-width: 36em; }</style>\n"
        f"<p><b>Rule.</b> {html.escape(RULE)}</p>\n<p><b>Verdicts.</b> {html.escape(summary)}</p>\n"
    )
    write_text(f"{stem}.html", page.replace("</h3>\n", "</h3>\n" + intro, 1))
    write_json(f"{stem}.json", {**prov, "rule": RULE, "verdicts": counts})
    frame = report.mark_data(frame, note)
    with atomic_path(csv_path) as tmp:  # last: the .csv is the rule's target
        frame.to_csv(tmp, index=False)
