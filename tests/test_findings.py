"""The findings scorecard: the verdict rule (one-sided Welch t at LEVEL, test-set noise,
TOST) on hand-made samples and its edge cases, and the files it writes.

Each study's claims on hand-made per-seed records, with every printed number checked
as a literal string, are in tests/test_findings_studies.py. The end-to-end build of
reports/findings.csv is checked in tests/test_reruns.py, whose fixture runs every
study's DAG once.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hwbench import findings as F
from hwbench.findings import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from hwbench.studies.lifelong import findings as lifelong
from hwbench.studies.lifelong.report import PAPER_TABLE1
from hwbench.studies.lifelong.spec import PAPER_ORDERS


def s(name, *values, **kw):
    return F.Sample(name, dict(enumerate(values)), **kw)


def with_mean_sd(mean: float, sd: float, n: int) -> tuple[float, ...]:
    """``n`` values whose mean and sd (ddof 1) are exactly ``mean`` and ``sd``."""
    z = np.arange(n) - (n - 1) / 2
    z = z / z.std(ddof=1)
    return tuple(mean + sd * z)


# --- the rule ------------------------------------------------------------------------------


def test_the_level_and_its_critical_values():
    assert F.LEVEL == 0.025 and F.MARGIN == 0.01
    assert F.critical_t(4) == pytest.approx(2.7764, abs=1e-4)
    assert F.critical_t(18) == pytest.approx(2.1009, abs=1e-4)
    assert f"level {F.LEVEL}" in F.RULE and f"margin {F.MARGIN}" in F.RULE


@pytest.mark.parametrize(
    ("t", "df", "expected"),
    [
        (2.8, 4, REPRODUCED),  # beyond t(0.975, 4) = 2.776
        (2.7, 4, INCONCLUSIVE),  # 2 SE and more, still within the quantile
        (-2.8, 4, NOT_REPRODUCED),
        (2.2, 18, REPRODUCED),  # t(0.975, 18) = 2.101
        (2.0, 18, INCONCLUSIVE),
        (math.nan, 4, INCONCLUSIVE),  # no SE
        (3.0, math.nan, INCONCLUSIVE),
    ],
)
def test_verdict_from_t_and_df(t, df, expected):
    assert F.verdict(t, df) == expected


def test_welch_t_and_df_are_scipys_without_a_test_set():
    a, b = (1.0, 1.2, 1.4, 1.1), (0.0, 0.5, 0.3)
    c = F.greater(s("a", *a), s("b", *b))
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert c.t == pytest.approx(ref.statistic) and c.df == pytest.approx(ref.df)
    assert c.describe() == "a - b: +0.91 (SE 0.17, t 5.39, df 3.4, 4 vs 3 seeds) -> reproduced"
    assert F.less(s("a", *a), s("b", *b)).verdict == NOT_REPRODUCED


def test_paired_t_is_scipys_and_has_n_minus_1_df():
    a, b = (10.0, 50.0, 90.0, 30.0), (9.0, 49.5, 88.0, 29.9)
    c = F.paired_greater(s("a", *a), s("b", *b))
    ref = stats.ttest_rel(a, b)
    assert (c.t, c.df) == (pytest.approx(ref.statistic), 3)
    # the same numbers as runs of different models: the spread between seeds hides it
    assert F.greater(s("a", *a), s("b", *b)).verdict == INCONCLUSIVE
    # a seed only one side has is left out
    partial = F.paired_greater(F.sample("a", {0: 2.0, 1: 3.0, 7: 100.0}), s("b", 1.0, 2.1))
    assert partial.diff == pytest.approx(0.95) and "2 seeds" in partial.how


def test_three_vs_three_seeds_at_2_5_welch_se_is_inconclusive():
    """df 4: the one-sided 97.5 % quantile is 2.78, above 2.5."""
    b = with_mean_sd(0.0, 1.0, 3)
    a = tuple(v + 2.5 * math.sqrt(2 / 3) for v in b)
    c = F.greater(s("a", *a), s("b", *b))
    assert c.describe() == "a - b: +2.04 (SE 0.82, t 2.50, df 4.0, 3 vs 3 seeds) -> inconclusive"


def test_ten_vs_ten_seeds_at_6_se_is_reproduced():
    b = with_mean_sd(0.0, 1.0, 10)
    a = tuple(v + 6 * math.sqrt(2 / 10) for v in b)
    c = F.greater(s("a", *a), s("b", *b))
    assert c.describe() == "a - b: +2.68 (SE 0.45, t 6.00, df 18.0, 10 vs 10 seeds) -> reproduced"


def test_zero_seed_variance_on_10000_test_images_is_inconclusive():
    """1.0 against 0.99999: one test image of 10,000 is worth 1e-4, so each mean has an
    SE of at least 1e-4 and a difference of 1e-5 is noise."""
    a = s("a", 1.0, 1.0, 1.0, digits=5, n_test=10_000)
    b = s("b", 0.99999, 0.99999, 0.99999, digits=5, n_test=10_000)
    c = F.greater(a, b)
    assert c.se == pytest.approx(math.sqrt(2) * 1e-4)
    assert c.describe() == (
        "a - b: +0.00001 (SE 0.00014, t 0.07, df 19998.0, 3 vs 3 seeds) -> inconclusive"
    )
    # the same without a test-set size: SE 0, no measure of noise at all
    bare = F.greater(s("a", 1.0, 1.0, 1.0), s("b", 0.99999, 0.99999, 0.99999))
    assert bare.se == 0 and math.isnan(bare.t) and bare.verdict == INCONCLUSIVE
    # and however large the difference: no noise measured, no verdict
    assert F.greater(s("a", 2.0, 2.0), s("b", 1.0, 1.0)).verdict == INCONCLUSIVE


def test_test_set_variance_of_a_score_and_of_a_difference_of_scores():
    # p(1 - p) / n_test: 0.9 on 100 items, in percent
    assert s("a", 90.0, 90.0, n_test=100, scale=100.0).test_var == pytest.approx(9.0)
    # floored at one item's worth: SE 1/n_test
    assert s("a", 1.0, 1.0, n_test=100).test_var == pytest.approx(1e-4)
    # a difference of scores (range, BWT, FWT): the floor only
    assert s("a", 0.5, 0.5, n_test=100, proportion=False).test_var == pytest.approx(1e-4)
    assert s("a", 0.5, 0.5).test_var == 0.0  # no test-set size: nothing added


def test_one_seed_on_a_side_is_inconclusive_however_large_the_difference():
    c = F.greater(s("a", 100.0, n_test=1000), s("b", 0.0, 0.1, 0.2, n_test=1000))
    assert c.verdict == INCONCLUSIVE and math.isnan(c.se)


def test_equivalence_by_tost_with_the_stated_margin():
    base = with_mean_sd(0.9, 0.001, 5)
    near = F.equivalent(s("a", *[v + 0.002 for v in base]), s("b", *base))
    assert near.describe() == (
        "a - b: +0.00 within ±0.01 (TOST) (SE 0.00, t 12.65, df 8.0, 5 vs 5 seeds) -> reproduced"
    )
    far = F.equivalent(s("a", *[v + 0.05 for v in base]), s("b", *base))
    assert far.verdict == NOT_REPRODUCED  # 0.05 apart, well beyond the 0.01 margin
    noisy = F.equivalent(s("a", 0.90, 0.95, 0.85), s("b", 0.90, 0.86, 0.93))
    assert noisy.verdict == INCONCLUSIVE  # equal means, but the SE spans the margin
    # a percent metric: the margin is one point
    assert F.equivalent(s("a", 90.0, 90.1, scale=100.0), s("b", 90.0, 90.1)).margin == 1.0


def test_no_better_is_one_side_of_the_tost():
    base = with_mean_sd(0.5, 0.001, 5)
    lower = F.no_better(s("a", *[v - 0.01 for v in base]), s("b", *base))
    assert lower.verdict == REPRODUCED and lower.diff == pytest.approx(0.02)
    higher = F.no_better(s("a", *[v + 0.05 for v in base]), s("b", *base))
    assert higher.verdict == NOT_REPRODUCED


def test_comparison_to_a_bound():
    assert F.above(s("a", 1.0, 1.1, 0.9), 0.5).verdict == REPRODUCED
    assert F.above(s("a", 0.4, 0.5, 0.6), 0.5).verdict == INCONCLUSIVE
    assert F.above(s("a", 0.1, 0.1), 0.5).verdict == INCONCLUSIVE  # zero SE


def test_nan_values_are_left_out_of_a_sample():
    a = F.sample("a", {0: 1.0, 1: math.nan, 2: 2.0})
    assert (a.n, a.mean) == (2, 1.5)
    assert F.sample("a", None).describe() == "a: no runs"
    assert s("a", 0.5, 0.7, n_test=80).describe() == "a 0.60 ± 0.14 (n=2, test n=80)"


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([REPRODUCED, REPRODUCED], REPRODUCED),
        ([REPRODUCED, INCONCLUSIVE], INCONCLUSIVE),
        ([REPRODUCED, NOT_REPRODUCED], NOT_REPRODUCED),
        ([INCONCLUSIVE, NOT_REPRODUCED], NOT_REPRODUCED),
        ([], INCONCLUSIVE),
    ],
)
def test_combined_verdict_of_several_comparisons(verdicts, expected):
    assert F.combine(verdicts) == expected


# --- the lifelong paper's own Table 1 -----------------------------------------------------


def table1_runs() -> pd.DataFrame:
    """Five runs per method and order (section 5.3: "we repeat the experiment for each
    setting for 5 times"), each metric with Table 1's mean and its ± read as an sd."""
    rows = []
    for r in PAPER_TABLE1[PAPER_TABLE1["method"].isin(["ewc", "basic"])].itertuples():
        values = {m: with_mean_sd(getattr(r, m), getattr(r, f"{m}_sd"), 5) for m in F_METRICS}
        for seed in range(5):
            rows.append(
                {"method": r.method, "order": r.order, "seed": seed}
                | {m: values[m][seed] for m in F_METRICS}
            )
    return pd.DataFrame(rows)


F_METRICS = ("acc", "bwt", "fwt")


@pytest.mark.parametrize("n_test", [None, 120])  # 120: the paper's 37 + 22 + 42 + 19
def test_the_lifelong_papers_own_table1_ewc_vs_basic_acc_is_inconclusive_in_every_order(n_test):
    found = lifelong.findings(table1_runs(), n_test)
    acc = [f for f in found if f.claim.startswith("EWC raises the average accuracy")]
    assert [f.claim.split("order ")[1].rstrip(").") for f in acc] == list(PAPER_ORDERS)
    assert [f.verdict for f in acc] == [INCONCLUSIVE] * 4
    # Wang_Shen_Peng_Cheng: 0.9598 ± 0.0046 vs 0.9565 ± 0.0215, 5 runs each
    first = acc[0].comparisons[0]
    assert first.diff == pytest.approx(0.0033)
    se = math.sqrt(0.0046**2 / 5 + 0.0215**2 / 5)
    assert first.se == pytest.approx(se) if n_test is None else first.se > se


# --- the table ----------------------------------------------------------------------------


def test_a_finding_row_carries_the_decisive_comparison_and_the_rule():
    strong = F.greater(s("a", 5.0, 5.1, 4.9), s("b", 0.0, 0.1, -0.1))
    weak = F.greater(s("a", 5.0, 5.1, 4.9), s("c", 4.0, 4.1, 3.9))
    finding = F.Finding("x", "a beats b and c.", 'p.md: "a"', "a 1, b 0", (strong, weak))
    row = finding.row()
    assert row["verdict"] == REPRODUCED
    assert row["diff"] == pytest.approx(1.0)  # the weaker of the two decides
    assert row["t"] == pytest.approx(1.0 / math.sqrt(0.02 / 3)) and row["df"] == pytest.approx(4)
    assert row["rule"] == F.RULE and row["by_construction"] == ""
    assert "a 5.00 ± 0.10 (n=3)" in row["ours"] and "c 4.00" in row["ours"]
    assert row["test"].count("-> reproduced") == 2


def test_scorecard_and_its_files_leave_by_construction_rows_out_of_the_counts(tmp_path):
    up = (F.greater(s("a", 2, 2.1, 1.9), s("b", 0, 0.1, -0.1)),)
    claims = [
        F.Finding("x", "up", "p.md", "1 > 0", up),
        F.Finding("x", "down", "p.md", "0 > 1", (F.less(s("a", 2, 2.1, 1.9), s("b", 0, 0.1)),)),
        F.Finding("y", "noise", "p.md", "-", (F.greater(s("a", 1), s("b", 0)),), note="why"),
        F.Finding("y", "bound", "p.md", "-", up, by_construction="cannot fail"),
    ]
    frame = F.scorecard(claims)
    assert list(frame.columns) == F.COLUMNS
    assert list(frame["verdict"]) == [REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, REPRODUCED]
    assert F.verdict_counts(frame) == {
        REPRODUCED: 1,
        NOT_REPRODUCED: 1,
        INCONCLUSIVE: 1,
        F.BY_CONSTRUCTION: 1,
    }
    F.write_scorecard(frame, tmp_path / "findings.csv", {"git": {}})
    back = pd.read_csv(tmp_path / "findings.csv", keep_default_na=False)
    assert list(back["verdict"]) == list(frame["verdict"])
    assert list(back["by_construction"]) == ["", "", "", "cannot fail"]
    assert set(back["rule"]) == {F.RULE}
    page = (tmp_path / "findings.html").read_text(encoding="utf-8")
    assert "Rule." in page and "reproduced: 1" in page and "<table" in page
    assert "by construction (not counted): 1" in page
    assert f"Rule: {F.RULE}" in (tmp_path / "findings.md").read_text(encoding="utf-8")
    assert '"verdicts"' in (tmp_path / "findings.json").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="must end in .csv"):
        F.write_scorecard(frame, tmp_path / "findings.txt", {})


def test_a_scorecard_from_stand_ins_says_so_in_every_file(tmp_path):
    from hwbench import report
    from hwbench.datasets.standin import NOTE

    up = (F.greater(s("a", 2, 2.1), s("b", 0, 0.1)),)
    prov = report.provenance(config={}, repo=tmp_path, data_note=NOTE)
    F.write_scorecard(F.scorecard([F.Finding("x", "up", "p", "1", up)]), tmp_path / "f.csv", prov)
    back = pd.read_csv(tmp_path / "f.csv")
    assert list(back[report.DATA_NOTE_KEY]) == [NOTE] and "verdict" in back.columns
    md = (tmp_path / "f.md").read_text(encoding="utf-8")
    assert md.startswith(f"**{NOTE.capitalize()}.**")
    assert NOTE in (tmp_path / "f.html").read_text(encoding="utf-8")
    assert NOTE in (tmp_path / "f.json").read_text(encoding="utf-8")


def test_a_finding_with_nothing_measured_says_so():
    row = F.Finding("x", "c", "p.md", "1", ()).row()
    assert (row["ours"], row["verdict"]) == ("nothing measured", INCONCLUSIVE)


def test_the_verdicts_come_only_from_the_rule(monkeypatch):
    c = F.greater(s("a", 5.0, 5.1, 4.9), s("b", 0.0, 0.1, -0.1))
    assert c.verdict == REPRODUCED
    monkeypatch.setattr(F, "LEVEL", 1e-12)  # no difference is ever beyond the noise
    assert c.verdict == INCONCLUSIVE


def test_the_caption_and_the_docs_state_the_level_and_the_margin():
    from tests.conftest import REPO

    caption = (REPO / "workflow" / "report" / "findings" / "scorecard.rst").read_text()
    doc = (REPO / "docs" / "findings.md").read_text(encoding="utf-8")
    for text in (caption, doc):
        assert f"level {F.LEVEL}" in text and f"margin of {F.MARGIN}" in text
        assert "Welch-Satterthwaite" in text and "p(1-p)" in text and "TOST" in text
