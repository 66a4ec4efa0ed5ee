"""The findings scorecard: each paper's stated findings, tested on this run's seeds.

A study declares its claims (``hwbench/studies/<study>/findings.py``) as
:class:`Finding` records built from the per-seed values its report reads: each
claim is one or more :class:`Comparison` of two :class:`Sample` (or a sample and a
bound), oriented so that the paper's claim is a positive difference, or an
equivalence within :data:`MARGIN`. The verdict comes from :func:`verdict` only
(:data:`RULE`), never from the study: nothing in the verdict column is written by
hand. :func:`scorecard` makes the table, :func:`write_scorecard` writes
reports/findings.csv (+ .md, .html, .json).
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
LEVEL = 0.025  # one-sided significance level of every test
MARGIN = 0.01  # equivalence margin, on the metric's 0-1 scale (1 point of a percent metric)

RULE = (
    f"One-sided Welch t-tests at level {LEVEL} (critical value: Student's t quantile "
    f"{1 - LEVEL} at the Welch-Satterthwaite df). Each comparison takes the difference "
    "in the direction the paper claims (positive: as the paper says). Its variance: "
    "runs of different models, sd_a^2/n_a + sd_b^2/n_b over seeds; two numbers of the "
    "same run, the per-seed differences' sd^2/n (paired, df n-1). All seeds share one "
    "test set, so each mean also gets the test set's sampling variance, p(1-p)/n_test "
    "for a score p in [0, 1] on n_test items (accuracy, F1, mAP; a count of writers out "
    "of n_test), never below one test item's worth (SE 1/n_test), and (1/n_test)^2 "
    "for a difference of scores (range, BWT, FWT); a test-set term has df n_test-1. "
    "reproduced: t above the critical value; not reproduced: t below minus it; "
    "inconclusive: otherwise, or with fewer than 2 seeds on a side, no runs, or an SE of "
    "zero (no seed spread and no test-set size). A claim of no difference "
    f"('no significant gains', 'comparable') is tested by TOST with margin {MARGIN} "
    f"on a 0-1 scale ({MARGIN * 100:g} point of a percent): t = (margin - |diff|) / SE. "
    "A claim of several comparisons is reproduced when all are, not reproduced when any "
    "is, else inconclusive. Rows true by construction are flagged and left out of the "
    "counts."
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
    "t",
    "df",
    "verdict",
    "by_construction",
    "rule",
]


def critical_t(df: float) -> float:
    """The one-sided critical value of Student's t at :data:`LEVEL` with ``df``."""
    return float(stats.t.ppf(1 - LEVEL, df))


def verdict(t: float, df: float) -> str:
    """The verdict of one comparison (:data:`RULE`) from its t statistic (positive: as
    the paper claims) and degrees of freedom; NaN (no SE, no runs): inconclusive."""
    if t is None or df is None or math.isnan(t) or math.isnan(df):
        return INCONCLUSIVE
    crit = critical_t(df)
    if t > crit:
        return REPRODUCED
    if t < -crit:
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
    """One quantity's per-seed values (seed -> value; NaN values are dropped).

    ``n_test``: the test items every seed's value is measured on (None: unknown);
    ``scale``: the value of a perfect score (1 for a fraction, 100 for a percent,
    the number of writers for a count of writers); ``proportion``: the value is a
    score p in [0, scale] with binomial noise p(1-p)/n_test, else a difference of
    scores with only the one-item floor (:data:`RULE`)."""

    name: str
    values: Mapping[int, float]
    digits: int = 2
    n_test: int | None = None
    scale: float = 1.0
    proportion: bool = True

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

    @property
    def test_var(self) -> float:
        """The test set's sampling variance of the mean (0 with no ``n_test``)."""
        if not self.n_test or not self.n:
            return 0.0
        floor = 1.0 / self.n_test  # one test item's worth: SE 1/n_test
        p = self.mean / self.scale
        var = max(p * (1 - p), floor) if self.proportion else floor
        return var / self.n_test * self.scale**2

    def test_term(self) -> tuple[float, float]:
        """(variance, df) of the test-set term."""
        return (self.test_var, (self.n_test or 1) - 1)

    def describe(self) -> str:
        """``name mean ± sd (n=k, test n=N)``; ``name: no runs`` when empty."""
        if not self.n:
            return f"{self.name}: no runs"
        sd = "" if math.isnan(self.sd) else f" ± {self.sd:.{self.digits}f}"
        test = f", test n={self.n_test}" if self.n_test else ""
        return f"{self.name} {self.mean:.{self.digits}f}{sd} (n={self.n}{test})"


def welch_df(terms: Sequence[tuple[float, float]]) -> float:
    """Welch-Satterthwaite df of a sum of variance terms (variance, df); NaN if zero."""
    terms = [(v, d) for v, d in terms if v > 0]
    total = sum(v for v, _ in terms)
    if total <= 0:
        return math.nan
    return total**2 / sum(v**2 / d if d > 0 else math.inf for v, d in terms)


@dataclass(frozen=True)
class Comparison:
    """A difference in the claimed direction, its variance terms (variance, df) and,
    for an equivalence claim, the margin (``margin``: None for a directional claim)."""

    label: str
    diff: float
    terms: tuple[tuple[float, float], ...] | None  # None: fewer than 2 seeds on a side
    samples: tuple[Sample, ...]
    how: str
    digits: int = 2
    margin: float | None = None

    @property
    def se(self) -> float:
        if self.terms is None or math.isnan(self.diff):
            return math.nan
        return math.sqrt(sum(v for v, _ in self.terms))

    @property
    def df(self) -> float:
        if self.terms is None or math.isnan(self.diff):
            return math.nan
        return welch_df(self.terms)

    @property
    def t(self) -> float:
        """diff / SE (equivalence: (margin - |diff|) / SE); NaN where the SE is 0 or
        undefined."""
        se = self.se
        if math.isnan(se) or se == 0:
            return math.nan
        if self.margin is None:
            return self.diff / se
        return (self.margin - abs(self.diff)) / se

    @property
    def verdict(self) -> str:
        return verdict(self.t, self.df)

    def describe(self) -> str:
        d = self.digits
        diff = "n/a" if math.isnan(self.diff) else f"{self.diff:+.{d}f}"
        if self.margin is not None:
            diff = f"{diff} within ±{self.margin:g} (TOST)"
        se = "undefined" if math.isnan(self.se) else f"{self.se:.{d}f}"
        t = "n/a" if math.isnan(self.t) else f"{self.t:.2f}"
        df = "n/a" if math.isnan(self.df) else f"{self.df:.1f}"
        return f"{self.label}: {diff} (SE {se}, t {t}, df {df}, {self.how}) -> {self.verdict}"


def _seed_term(sample: Sample) -> tuple[float, float]:
    return (sample.sd**2 / sample.n, sample.n - 1)


def greater(a: Sample, b: Sample, label: str | None = None) -> Comparison:
    """Claim ``a > b`` for runs of different models: mean difference, Welch t."""
    terms = None
    if a.n >= 2 and b.n >= 2:
        terms = (_seed_term(a), _seed_term(b), a.test_term(), b.test_term())
    return Comparison(
        label or f"{a.name} - {b.name}",
        a.mean - b.mean,
        terms,
        (a, b),
        f"{a.n} vs {b.n} seeds",
        max(a.digits, b.digits),
    )


def less(a: Sample, b: Sample, label: str | None = None) -> Comparison:
    """Claim ``a < b`` for runs of different models (:func:`greater` of ``b`` over ``a``)."""
    c = greater(b, a, label or f"{b.name} - {a.name}")
    return Comparison(c.label, c.diff, c.terms, (a, b), c.how, c.digits)


def paired_greater(a: Sample, b: Sample, label: str | None = None) -> Comparison:
    """Claim ``a > b`` where seed k of both comes from the same run: the mean of the
    per-seed differences, paired t (df n-1), on the seeds both have."""
    d = (a.series - b.series).dropna()
    diff = float(d.mean()) if len(d) else math.nan
    terms = None
    if len(d) >= 2:
        seeds = (float(d.var(ddof=1)) / len(d), len(d) - 1)
        terms = (seeds, a.test_term(), b.test_term())
    return Comparison(
        label or f"{a.name} - {b.name}",
        diff,
        terms,
        (a, b),
        f"paired, {len(d)} seeds",
        max(a.digits, b.digits),
    )


def equivalent(a: Sample, b: Sample, label: str | None = None) -> Comparison:
    """Claim ``a`` and ``b`` do not differ (runs of different models): TOST of the
    Welch difference with margin :data:`MARGIN` times the metric's scale."""
    c = greater(a, b, label)
    return Comparison(
        c.label, c.diff, c.terms, c.samples, c.how, c.digits, MARGIN * max(a.scale, b.scale)
    )


def no_better(a: Sample, b: Sample, label: str | None = None) -> Comparison:
    """Claim ``a`` does not outperform ``b``: one side of a TOST, ``a - b`` below the
    margin (:data:`MARGIN` times the scale); the difference shown is margin - (a - b)."""
    c = greater(a, b, label)
    margin = MARGIN * max(a.scale, b.scale)
    return Comparison(
        f"{c.label} below the margin {margin:g}",
        margin - c.diff,
        c.terms,
        c.samples,
        c.how,
        c.digits,
    )


def above(a: Sample, bound: float, label: str | None = None) -> Comparison:
    """Claim ``a > bound`` for a fixed number: mean - bound, one-sample t."""
    terms = (_seed_term(a), a.test_term()) if a.n >= 2 else None
    return Comparison(
        label or f"{a.name} - {bound:g}",
        a.mean - bound,
        terms,
        (a,),
        f"{a.n} seeds vs a bound",
        a.digits,
    )


@dataclass(frozen=True)
class Finding:
    """One row of the scorecard: a paper's claim and the comparisons that test it."""

    study: str
    claim: str
    source: str  # where the paper says it, its own words quoted verbatim
    paper: str  # the paper's numbers (as printed), or what it shows
    comparisons: tuple[Comparison, ...]
    note: str = ""  # why the data may not carry it, or what stands in for the paper's data
    extra: tuple[Sample, ...] = field(default=())  # more of this run's numbers to show
    by_construction: str = ""  # why the test cannot fail: flagged, left out of the counts

    @property
    def verdict(self) -> str:
        return combine(c.verdict for c in self.comparisons)

    def decisive(self) -> Comparison | None:
        """The comparison that decides the verdict: the weakest (smallest t, undefined
        first) among those sharing the claim's verdict."""
        if not self.comparisons:
            return None
        pool = [c for c in self.comparisons if c.verdict == self.verdict] or list(self.comparisons)

        def key(c: Comparison):
            return (0, 0.0) if math.isnan(c.t) else (1, c.t)

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

        def num(x):
            return np.nan if d is None else x

        return {
            "study": self.study,
            "claim": self.claim,
            "source": self.source,
            "paper": self.paper,
            "ours": self.ours(),
            "test": test,
            "diff": num(d and d.diff),
            "se": num(d and d.se),
            "t": num(d and d.t),
            "df": num(d and d.df),
            "verdict": self.verdict,
            "by_construction": self.by_construction,
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


BY_CONSTRUCTION = "by construction (not counted)"


def verdict_counts(frame: pd.DataFrame) -> dict[str, int]:
    """verdict -> number of rows, every verdict listed, rows true by construction left
    out of them and counted on their own (:data:`BY_CONSTRUCTION`)."""
    flagged = frame["by_construction"].fillna("").astype(str) != ""
    counts = frame.loc[~flagged, "verdict"].value_counts()
    return {**{v: int(counts.get(v, 0)) for v in VERDICTS}, BY_CONSTRUCTION: int(flagged.sum())}


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """The .md/.html table: no repeated rule column (it is stated above the table)."""
    shown = frame.drop(columns=["rule"]).copy()
    for col in ("diff", "se", "t", "df"):
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
