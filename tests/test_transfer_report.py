"""The transfer report from hand-made eval.json records with known numbers.

Every cell of reports/transfer.csv's table is written out here by hand (means, sample
sds, the paper's values, our differences, findings and verdicts), so a change to how a
cell is computed fails a test. The end-to-end check that a cell equals the mean over
seeds of real runs' eval.json values is in tests/test_transfer.py.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from hwbench.engine import FitResult, result_record
from hwbench.studies.transfer import report as rp
from tests.conftest import REPO


def record(set_name: str, mode: str, seed: int, f1s, classes=("0", "1")) -> dict:
    """An eval.json record as engine.write_result writes it, with test F1 ``f1s`` per epoch."""
    history = [
        {"epoch": i + 1, "train_loss": 1.0, "test_loss": 1.0 - f1, "test_f1": f1}
        | {f"test_class_acc_{c}": f1 for c in classes}
        for i, f1 in enumerate(f1s)
    ]
    fit = FitResult(history, None, None, "epochs", "cpu (1 threads)", 1.0, None)
    metrics = {"classes": list(classes), "n_train": 10, "n_test": 4000, "history": history}
    return result_record(fit, metrics, set=set_name, mode=mode, seed=seed)


SETS = {
    "s1": {"paper_set": 1, "source": "a", "target": "b", "title": "1: A -> B"},
    "s2": {"paper_set": 2, "source": "a", "target": "c"},
    "s3": {"paper_set": 3, "source": "a", "target": "d"},
    "extra": {"paper_set": None, "source": "a", "target": "b"},
    "lonely": {"paper_set": 1, "source": "a", "target": "b"},
}

# Test F1 per epoch of each run: (set, mode, seed) -> history.
RUNS = {
    # set 1: three seeds each, values spaced so that means and sds are round
    ("s1", "control", 0): [0.50, 0.70, 0.80],
    ("s1", "control", 1): [0.60, 0.80, 0.85],
    ("s1", "control", 2): [0.70, 0.90, 0.90],  # peak tied at epochs 2 and 3: the first
    ("s1", "frozen", 0): [0.40, 0.50, 0.60],
    ("s1", "frozen", 1): [0.50, 0.60, 0.70],
    ("s1", "frozen", 2): [0.60, 0.70, 0.80],
    ("s1", "finetuned", 0): [0.70, 0.85, 0.84],
    ("s1", "finetuned", 1): [0.75, 0.90, 0.89],
    ("s1", "finetuned", 2): [0.80, 0.95, 0.94],
    # set 2: two seeds; control peaks at epoch 3 and declines, fine-tuned still rises
    ("s2", "control", 0): [0.30, 0.60, 0.82, 0.70],
    ("s2", "control", 1): [0.50, 0.70, 0.84, 0.80],
    ("s2", "frozen", 0): [0.10, 0.20],
    ("s2", "frozen", 1): [0.30],  # stopped early: no F1 after epoch 2
    ("s2", "finetuned", 0): [0.40, 0.60, 0.70, 0.80],
    ("s2", "finetuned", 1): [0.40, 0.60, 0.70, 0.80],
    # set 3: one seed; frozen beats fine-tuned (the paper's finding does not hold)
    ("s3", "control", 0): [0.50, 0.60],
    ("s3", "frozen", 0): [0.45, 0.58],
    ("s3", "finetuned", 0): [0.40, 0.55],
    # no paper set; a paper set with one mode only
    ("extra", "control", 0): [0.90],
    ("lonely", "frozen", 7): [0.20, 0.30],
}

COLUMNS = [
    "set",
    "title",
    "paper_set",
    "mode",
    "n",
    "f1_epoch1",
    "f1_epoch2",
    "peak_f1",
    "peak_f1_paper",
    "peak_f1_diff",
    "peak_epoch",
    "peak_epoch_paper",
    "peak_epoch_diff",
    "epochs_run",
    "final_f1",
    "paper_finding",
    "checked",
    "agrees",
]

# `checked` and `agrees`: the scorecard's finding for the row and its verdict
# (hwbench.studies.transfer.findings); with 1-3 seeds a set, every one is inconclusive
# here (e.g. s1 frozen vs control: t 2.30 at df 3.1, below the 3.1 critical value).
FROZEN = (
    "Frozen-weight transfer is the worst of the three on set {p} ({title}): its peak F1 is "
    "below control and fine-tuned ({s})."
)
FROZEN_S1 = FROZEN.format(p=1, title="MNIST -> NIST digits", s="s1")
FROZEN_S2 = FROZEN.format(p=2, title="MNIST -> NIST digits + letters", s="s2")
FROZEN_S3 = FROZEN.format(p=3, title="NIST digits -> NIST letters", s="s3")
FROZEN_LONELY = FROZEN.format(p=1, title="MNIST -> NIST digits", s="lonely")
SAME_S1 = (
    "On set 1 fine-tuned transfer brings no significant gain over control: the same final "
    "F1 within the margin (s1)."
)
SAME_S2 = (
    "On set 2 fine-tuned transfer brings no significant gain over control: the same peak "
    "F1 within the margin (s2)."
)
STARTS_S1 = (
    "On set 1 fine-tuned transfer starts better than control: a higher F1 after the first "
    "epoch (s1)."
)
WORSE_S3 = (
    "On set 3 (digits -> letters) fine-tuned transfer is slightly worse than control: a "
    "lower peak F1 (s3)."
)
NONE = "inconclusive"
# Every cell, by hand. Column order as COLUMNS.
EXPECTED = [
    # s1 control: F1 e1 .5 .6 .7; e2 .7 .8 .9; peaks .80@3 .85@3 .90@2 (mean epoch 8/3, sd
    # sqrt(1/3)); finals .80 .85 .90 vs fine-tuned .84 .89 .94: |0.85 - 0.89| <= 0.05 (sd)
    ["s1", "1: A -> B", 1, "control", 3, "0.600 ± 0.100", "0.800 ± 0.100", "0.850 ± 0.050",
     "0.980", "-0.130", "2.7 ± 0.6", "", "", "3.0 ± 0.0", "0.850 ± 0.050",
     "plateaus near 0.98 F1; same as fine-tuned after epoch 2",
     SAME_S1, NONE],
    # s1 frozen: peak 0.70 below control 0.85 and fine-tuned 0.90; no paper number
    ["s1", "1: A -> B", 1, "frozen", 3, "0.500 ± 0.100", "0.600 ± 0.100", "0.700 ± 0.100",
     "", "", "3.0 ± 0.0", "", "", "3.0 ± 0.0", "0.700 ± 0.100",
     "worst of the three; still improving at epoch 20", FROZEN_S1, NONE],
    # s1 fine-tuned: 0.75 > 0.60 after epoch 1 and 0.90 > 0.80 after epoch 2
    ["s1", "1: A -> B", 1, "fine-tuned", 3, "0.750 ± 0.050", "0.900 ± 0.050", "0.900 ± 0.050",
     "0.980", "-0.080", "2.0 ± 0.0", "", "", "3.0 ± 0.0", "0.890 ± 0.050",
     "better than control in epochs 1-2, then the same (~0.98)",
     STARTS_S1, NONE],
    # s2 control: sd of two values is |a - b| / sqrt(2); peak at 3 of 4 epochs, final below
    ["s2", "set 2: s2", 2, "control", 2, "0.400 ± 0.141", "0.650 ± 0.071", "0.830 ± 0.014",
     "0.820", "+0.010", "3.0 ± 0.0", "6.0", "-3.0", "4.0 ± 0.0", "0.750 ± 0.071",
     "peaks just above 0.82 F1 around epoch 6, then declines",
     SAME_S2, NONE],
    # s2 frozen: epoch 2 F1 only from the run that reached it (one value: no sd); n counts 2
    ["s2", "set 2: s2", 2, "frozen", 2, "0.200 ± 0.141", "0.200", "0.250 ± 0.071",
     "", "", "1.5 ± 0.7", "", "", "1.5 ± 0.7", "0.250 ± 0.071",
     "worst of the three; digits far better than letters", FROZEN_S2, NONE],
    # s2 fine-tuned: identical seeds (sd 0); peaks at its last epoch: the finding fails
    ["s2", "set 2: s2", 2, "fine-tuned", 2, "0.400 ± 0.000", "0.600 ± 0.000", "0.800 ± 0.000",
     "0.820", "-0.020", "4.0 ± 0.0", "6.0", "-2.0", "4.0 ± 0.0", "0.800 ± 0.000",
     "like control; better and less variable at first; peak ~0.82",
     SAME_S2, NONE],
    # s3: one run each (no sd); control 0.60 above fine-tuned 0.55
    ["s3", "set 3: s3", 3, "control", 1, "0.500", "0.600", "0.600",
     "", "", "2.0", "", "", "2.0", "0.600",
     "above fine-tuned", WORSE_S3, NONE],
    # s3 frozen: the paper's 0.58 met exactly (+0.000), but above fine-tuned 0.55
    ["s3", "set 3: s3", 3, "frozen", 1, "0.450", "0.580", "0.580",
     "0.580", "+0.000", "2.0", "", "", "2.0", "0.580",
     "worst of the three; peak F1 error about 42%", FROZEN_S3, NONE],
    ["s3", "set 3: s3", 3, "fine-tuned", 1, "0.400", "0.550", "0.550",
     "", "", "2.0", "", "", "2.0", "0.550",
     "slightly below control", WORSE_S3, NONE],
    # no paper set: nothing from the paper, nothing checked; one epoch: no epoch-2 F1
    ["extra", "extra", "", "control", 1, "0.900", "", "0.900",
     "", "", "1.0", "", "", "1.0", "0.900", "", "", ""],
    # frozen alone: the check has nothing to compare with
    ["lonely", "set 1: lonely", 1, "frozen", 1, "0.200", "0.300", "0.300",
     "", "", "2.0", "", "", "2.0", "0.300",
     "worst of the three; still improving at epoch 20", FROZEN_LONELY, NONE],
]  # fmt: skip


def evals(runs=RUNS) -> list[dict]:
    # reversed: the table orders rows by the config's sets and the modes, not by input
    return [record(s, m, seed, f1s) for (s, m, seed), f1s in reversed(list(runs.items()))]


def test_every_cell_of_the_table_from_hand_made_records():
    table, _ = rp.transfer_table(evals(), SETS)
    assert list(table.columns) == COLUMNS
    got = [list(row) for row in table.itertuples(index=False)]
    assert len(got) == len(EXPECTED)
    for row, want in zip(got, EXPECTED, strict=True):
        assert row == want, f"{want[0]} {want[3]}"


def test_aggregated_numbers_are_means_sds_and_counts():
    _, agg = rp.transfer_table(evals(), SETS)
    rows = agg.set_index(["set", "mode"])
    ctrl = rows.loc[("s1", "control")]
    assert ctrl["peak_f1_mean"] == pytest.approx(0.85)
    assert ctrl["peak_f1_sd"] == pytest.approx(0.05)
    assert ctrl["peak_epoch_mean"] == pytest.approx(8 / 3)
    assert ctrl["peak_epoch_sd"] == pytest.approx(math.sqrt(1 / 3))
    assert ctrl["peak_f1_diff"] == pytest.approx(0.85 - 0.98)
    frozen = rows.loc[("s2", "frozen")]
    assert (frozen["f1_epoch2_n"], frozen["peak_f1_n"]) == (1, 2)
    assert math.isnan(frozen["f1_epoch2_sd"])
    assert rows.loc[("s2", "control"), "peak_epoch_diff"] == pytest.approx(3 - 6)


def test_table_cell_is_the_mean_over_seeds_not_another_statistic():
    """Skewed seeds: mean 0.4, median 0.2; a table of medians or of one seed fails."""
    runs = {("s3", m, seed): [f1] for m in rp.MODES for seed, f1 in enumerate((0.1, 0.2, 0.9))}
    table, _ = rp.transfer_table(evals(runs), {"s3": SETS["s3"]})
    assert set(table["peak_f1"]) == {"0.400 ± 0.436"}
    assert set(table["n"]) == {3}


def check_rows(runs, sets) -> dict:
    table, _ = rp.transfer_table(evals(runs), sets)
    return {(r.set, r.mode): (r.checked, r.agrees) for r in table.itertuples()}


def test_agrees_is_the_scorecards_verdict_of_the_rows_finding():
    """Three seeds of set 1 on 4000 test images each: frozen far above the others is
    "not reproduced", fine-tuned far ahead after epoch 1 "reproduced"; a set with no
    paper set checks nothing."""
    runs = {}
    for seed, eps in enumerate((-0.01, 0.0, 0.012)):
        runs[("s1", "control", seed)] = [0.50 + eps, 0.70 + eps, 0.80 + eps]
        runs[("s1", "finetuned", seed)] = [0.70 + eps, 0.80 + eps, 0.80 - eps]
        runs[("s1", "frozen", seed)] = [0.40 + eps, 0.90 + eps, 0.95 + eps]
        runs[("extra", "control", seed)] = [0.5 + eps]
    got = check_rows(runs, {"s1": SETS["s1"], "extra": SETS["extra"]})
    assert got[("s1", "frozen")] == (FROZEN_S1, "not reproduced")
    assert got[("s1", "fine-tuned")] == (STARTS_S1, "reproduced")
    assert got[("s1", "control")] == (SAME_S1, "inconclusive")
    assert got[("extra", "control")] == ("", "")


def test_runs_of_an_unknown_set_or_none_are_errors():
    with pytest.raises(ValueError, match="set 'gone'"):
        rp.transfer_table([record("gone", "control", 0, [0.5])], SETS)
    with pytest.raises(ValueError, match="no transfer runs"):
        rp.transfer_table([], SETS)
    with pytest.raises(ValueError, match="repeated seeds"):
        rp.transfer_table([record("s1", "control", 0, [0.5])] * 2, SETS)


def test_run_summary_values():
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "test_f1": [0.5, 0.7, 0.9, 0.8]})
    assert rp.run_summary(history) == {
        "f1_epoch1": 0.5,
        "f1_epoch2": 0.7,
        "peak_f1": 0.9,
        "peak_epoch": 3,
        "final_f1": 0.8,
        "epochs_run": 4,
    }
    one = rp.run_summary(pd.DataFrame({"epoch": [1], "test_f1": [0.4]}))
    assert math.isnan(one["f1_epoch2"]) and one["epochs_run"] == 1
    with pytest.raises(ValueError, match="no 'test_f1' per epoch"):
        rp.run_summary(pd.DataFrame([]))


def test_titles_and_the_per_class_set():
    assert rp.set_titles(SETS) == {
        "s1": "1: A -> B",
        "s2": "set 2: s2",
        "s3": "set 3: s3",
        "extra": "extra",
        "lonely": "set 1: lonely",
    }
    assert rp.per_class_set(SETS) == "s2"
    assert rp.per_class_set({"s1": SETS["s1"]}) == "s1"
    assert rp.per_class_set(SETS, "s3") == "s3"
    with pytest.raises(ValueError, match="per_class_set 'x' is not a set"):
        rp.per_class_set(SETS, "x")


def per_class_record(seed, first, last) -> dict:
    rec = record("s", "frozen", seed, [0.0, 0.0])
    for row, accs in zip(rec["metrics"]["history"], (first, last), strict=True):
        row.update({"test_class_acc_0": accs[0], "test_class_acc_1": accs[1]})
    return rec


def test_per_class_after_first_and_last_epoch():
    runs = [
        per_class_record(0, (0.0, 0.5), (1.0, 0.5)),
        per_class_record(1, (0.5, 0.5), (1.0, 1.0)),
    ]
    table = rp.per_class_after(runs, "s")
    assert list(table.columns) == [("frozen", "first"), ("frozen", "last")]
    assert table[("frozen", "first")].tolist() == [0.25, 0.5]
    assert table[("frozen", "last")].tolist() == [1.0, 0.75]
    # a class without test images (NaN) is left out of the mean, not counted as 0
    nan = per_class_record(2, (float("nan"), 0.5), (float("nan"), 0.5))
    assert rp.per_class_after([*runs, nan], "s")[("frozen", "first")].tolist() == [0.25, 0.5]


def test_write_report_writes_table_sidecars_and_figures(tmp_path):
    paths = []
    for i, rec in enumerate(evals()):
        path = tmp_path / f"run{i}.json"
        path.write_text(json.dumps(rec), encoding="utf-8")
        paths.append(path)
    reports = tmp_path / "reports"
    reports.mkdir()
    rp.write_report(
        paths,
        SETS,
        "s1",
        csv=reports / "transfer.csv",
        f1=reports / "f1.png",
        frozen=reports / "frozen.png",
        per_class_png=reports / "per_class.png",
        config={"seeds": [0]},
        dataset_files=[],
        benchmark_files=[tmp_path / "missing.tsv"],
        repo=REPO,
    )
    table = pd.read_csv(reports / "transfer.csv", keep_default_na=False, dtype=str)
    assert [list(r) for r in table.itertuples(index=False)] == [
        [str(v) for v in row] for row in EXPECTED
    ]
    prov = json.loads((reports / "transfer.json").read_text())
    assert len(prov["job_devices"]) == len(RUNS) and prov["wall_s"] == {}
    assert (reports / "transfer.md").exists() and (reports / "transfer.html").exists()
    for png in ("f1", "frozen", "per_class"):
        assert (reports / f"{png}.png").stat().st_size > 10_000
