"""The findings scorecard: the verdict rule on hand-made samples, each study's claims on
hand-made records with known verdicts, and the files it writes.

The end-to-end build of reports/findings.csv is checked in tests/test_reruns.py, whose
fixture runs every study's DAG once.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hwbench import findings as F
from hwbench.findings import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from hwbench.studies.adaptation import findings as adaptation
from hwbench.studies.lifelong import findings as lifelong
from hwbench.studies.multiscript import findings as multiscript
from hwbench.studies.onemodel import findings as onemodel
from hwbench.studies.transfer import findings as transfer

SEEDS = (0, 1, 2)
NOISE = (-0.01, 0.0, 0.01)  # the same small spread on every quantity, one value a seed


def s(name, *values):
    return F.sample(name, dict(enumerate(values)))


# --- the rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diff", "se", "expected"),
    [
        (1.0, 0.4, REPRODUCED),  # beyond 2 SE in the claimed direction
        (-1.0, 0.4, NOT_REPRODUCED),  # beyond 2 SE the other way
        (0.7, 0.4, INCONCLUSIVE),  # the claimed direction, within noise
        (-0.7, 0.4, INCONCLUSIVE),  # the wrong direction, within noise
        (0.8, 0.4, INCONCLUSIVE),  # exactly 2 SE is not beyond 2 SE
        (1.0, math.nan, INCONCLUSIVE),  # one seed: SE undefined
        (math.nan, 0.1, INCONCLUSIVE),  # no runs
        (0.001, 0.0, REPRODUCED),  # zero variance: any difference is beyond it
        (-0.001, 0.0, NOT_REPRODUCED),
        (0.0, 0.0, INCONCLUSIVE),  # zero variance, no difference
        (1e-15, 0.0, INCONCLUSIVE),  # float rounding is no difference
    ],
)
def test_verdict_rule(diff, se, expected):
    assert F.verdict(diff, se) == expected


def test_welch_comparison_of_two_samples():
    a, b = s("a", 1.0, 1.2, 1.4), s("b", 0.0, 0.5)
    c = F.greater(a, b)
    assert c.diff == pytest.approx(1.2 - 0.25)
    assert c.se == pytest.approx(math.sqrt(0.04 / 3 + 0.125 / 2))
    assert c.verdict == REPRODUCED
    assert "3 vs 2 seeds" in c.describe()
    # the same comparison the other way round is not reproduced
    assert F.less(a, b).verdict == NOT_REPRODUCED
    assert F.less(a, b).diff == pytest.approx(-c.diff)


def test_one_seed_on_a_side_is_inconclusive_however_large_the_difference():
    assert F.greater(s("a", 100.0), s("b", 0.0, 0.1, 0.2)).verdict == INCONCLUSIVE
    assert math.isnan(F.greater(s("a", 100.0), s("b", 0.0, 0.1)).se)


def test_zero_variance_samples():
    assert F.greater(s("a", 2.0, 2.0, 2.0), s("b", 1.0, 1.0, 1.0)).verdict == REPRODUCED
    assert F.greater(s("a", 1.0, 1.0), s("b", 1.0, 1.0)).verdict == INCONCLUSIVE


def test_paired_comparison_uses_the_per_seed_differences_on_shared_seeds():
    # large spread between seeds, constant difference within a seed: paired reproduces
    a, b = s("a", 10.0, 50.0, 90.0), s("b", 9.0, 49.0, 89.0)
    assert F.greater(a, b).verdict == INCONCLUSIVE
    paired = F.paired_greater(a, b)
    assert (paired.diff, paired.se, paired.verdict) == (1.0, 0.0, REPRODUCED)
    # a seed only one side has is left out
    partial = F.paired_greater(F.sample("a", {0: 2.0, 1: 3.0, 7: 100.0}), s("b", 1.0, 2.0))
    assert partial.diff == 1.0 and "2 seeds" in partial.how


def test_comparison_to_a_bound():
    assert F.above(s("a", 1.0, 1.1, 0.9), 0.5).verdict == REPRODUCED
    assert F.above(s("a", 0.4, 0.5, 0.6), 0.5).verdict == INCONCLUSIVE
    assert F.above(s("a", 0.1, 0.1), 0.5).verdict == NOT_REPRODUCED


def test_nan_values_are_left_out_of_a_sample():
    a = F.sample("a", {0: 1.0, 1: math.nan, 2: 2.0})
    assert (a.n, a.mean) == (2, 1.5)
    assert F.sample("a", None).describe() == "a: no runs"


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


def test_a_finding_row_carries_the_decisive_comparison_and_the_rule():
    strong = F.greater(s("a", 5.0, 5.1, 4.9), s("b", 0.0, 0.1, -0.1))
    weak = F.greater(s("a", 5.0, 5.1, 4.9), s("c", 4.0, 4.1, 3.9))
    finding = F.Finding("x", "a beats b and c.", "p.md, 4", "a 1, b 0", (strong, weak))
    row = finding.row()
    assert row["verdict"] == REPRODUCED
    assert row["diff"] == pytest.approx(1.0)  # the weaker of the two decides
    assert row["rule"] == F.RULE
    assert "a 5.00 ± 0.10 (n=3)" in row["ours"] and "c 4.00" in row["ours"]
    assert row["test"].count("-> reproduced") == 2


def test_scorecard_and_its_files(tmp_path):
    claims = [
        F.Finding("x", "up", "p.md", "1 > 0", (F.greater(s("a", 2, 2.1, 1.9), s("b", 0, 0.1)),)),
        F.Finding("x", "down", "p.md", "0 > 1", (F.greater(s("b", 0, 0.1), s("a", 2, 2.1)),)),
        F.Finding("y", "noise", "p.md", "-", (F.greater(s("a", 1), s("b", 0)),), note="why"),
    ]
    frame = F.scorecard(claims)
    assert list(frame.columns) == F.COLUMNS
    assert list(frame["verdict"]) == [REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE]
    assert F.verdict_counts(frame) == {REPRODUCED: 1, NOT_REPRODUCED: 1, INCONCLUSIVE: 1}
    F.write_scorecard(frame, tmp_path / "findings.csv", {"git": {}})
    back = pd.read_csv(tmp_path / "findings.csv")
    assert list(back["verdict"]) == list(frame["verdict"])
    assert set(back["rule"]) == {F.RULE}
    page = (tmp_path / "findings.html").read_text(encoding="utf-8")
    assert "Rule." in page and "reproduced: 1" in page and "<table" in page
    assert "Rule: " in (tmp_path / "findings.md").read_text(encoding="utf-8")
    assert '"verdicts"' in (tmp_path / "findings.json").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="must end in .csv"):
        F.write_scorecard(frame, tmp_path / "findings.txt", {})


def test_a_scorecard_from_stand_ins_says_so_in_every_file(tmp_path):
    from hwbench import report
    from hwbench.datasets.standin import NOTE

    claims = [F.Finding("x", "up", "p.md", "1 > 0", (F.greater(s("a", 2, 2.1), s("b", 0, 0.1)),))]
    prov = report.provenance(config={}, repo=tmp_path, data_note=NOTE)
    F.write_scorecard(F.scorecard(claims), tmp_path / "findings.csv", prov)
    back = pd.read_csv(tmp_path / "findings.csv")
    assert list(back[report.DATA_NOTE_KEY]) == [NOTE] and "verdict" in back.columns
    assert (
        (tmp_path / "findings.md")
        .read_text(encoding="utf-8")
        .startswith(f"**{NOTE.capitalize()}.**")
    )
    assert NOTE in (tmp_path / "findings.html").read_text(encoding="utf-8")
    assert NOTE in (tmp_path / "findings.json").read_text(encoding="utf-8")


# --- the studies' claims on hand-made records ------------------------------------------------


def verdicts(findings) -> list[str]:
    return [f.verdict for f in findings]


def by_claim(findings) -> dict[str, str]:
    return {f.claim: f.verdict for f in findings}


def ms_record(group, method, seed, **acc):
    return {"group": group, "method": method, "seed": seed, "metrics": {"accuracy": acc}}


def multiscript_records(single=0.98, new_gap=0.05, new_amharic=0.80):
    """Single-script models at ``single`` on their script, Base at 0.86-0.90, Wloss
    and UW at 0.90-0.96, New at 0.90 + ``new_gap`` on all three scripts."""
    recs = []
    for seed, eps in zip(SEEDS, NOISE, strict=True):
        for method, script in (("lat", "latin"), ("arab", "arabic"), ("kan", "kannada")):
            recs.append(ms_record("digits", method, seed, **{script: single + eps}))
        spread = {"latin": 0.90, "arabic": 0.93, "kannada": 0.96}
        levels = {
            "base": {"latin": 0.90 + eps, "arabic": 0.88 + eps, "kannada": 0.86 + eps},
            "wloss": {k: v + eps for k, v in spread.items()},
            "uw": {k: v + eps for k, v in spread.items()},
            "new": {k: 0.90 + new_gap + eps for k in spread},
        }
        for method, acc in levels.items():
            recs.append(ms_record("digits", method, seed, **acc))
            amharic = new_amharic if method == "new" else 0.70
            recs.append(ms_record("amharic", method, seed, amharic=amharic + eps))
    return recs


def test_multiscript_claims_reproduced_on_records_that_show_them():
    found = multiscript.findings(multiscript_records())
    assert len(found) == 7
    assert verdicts(found) == [REPRODUCED] * 7


def test_multiscript_claims_not_reproduced_on_records_that_show_the_opposite():
    # single-script models below Base, New below Base and Wloss on average and Amharic
    found = multiscript.findings(multiscript_records(single=0.80, new_gap=-0.05, new_amharic=0.5))
    claims = by_claim(found)
    assert [v for c, v in claims.items() if "single-script" in c] == [NOT_REPRODUCED] * 3
    assert claims["New's average accuracy over the three digit scripts is above Base's."] == (
        NOT_REPRODUCED
    )
    assert claims["New is the most accurate model on Amharic characters."] == NOT_REPRODUCED
    # New's range is still 0 on every seed: the range claim holds
    assert (
        claims["New has the smallest Range (max - min over the three digit scripts)."] == REPRODUCED
    )


def test_multiscript_one_seed_is_inconclusive_and_missing_runs_too():
    one_seed = [r for r in multiscript_records() if r["seed"] == 0]
    assert set(verdicts(multiscript.findings(one_seed))) == {INCONCLUSIVE}
    digits_only = [r for r in multiscript_records() if r["group"] == "digits"]
    found = by_claim(multiscript.findings(digits_only))
    assert found["New is the most accurate model on Amharic characters."] == INCONCLUSIVE
    assert multiscript.findings([])  # every claim still has its row


TRANSFER_SETS = {
    "digits": {"paper_set": 1},
    "digits_letters": {"paper_set": 2},
    "letters": {"paper_set": 3},
}


def tr_record(set_name, mode, seed, f1s):
    history = [{"epoch": e + 1, "test_f1": f} for e, f in enumerate(f1s)]
    return {"set": set_name, "mode": mode, "seed": seed, "metrics": {"history": history}}


def transfer_records(frozen_best=False):
    """Curves per set: control and fine-tuned reach 0.9 (set 3: control 0.9, fine-tuned
    0.85), fine-tuned starts higher; frozen peaks at 0.8 on set 1, 0.5 elsewhere."""
    recs = []
    for seed, eps in zip(SEEDS, NOISE, strict=True):
        for set_name in TRANSFER_SETS:
            frozen = 0.8 if set_name == "digits" else 0.5
            if frozen_best:
                frozen = 0.99
            finetuned_peak = 0.85 if set_name == "letters" else 0.9
            curves = {
                "control": [0.5, 0.8, 0.9],
                "finetuned": [0.7, 0.85, finetuned_peak],
                "frozen": [0.3, 0.4, frozen],
            }
            for mode, f1s in curves.items():
                recs.append(tr_record(set_name, mode, seed, [f + eps for f in f1s]))
    return recs


def test_transfer_claims_reproduced_on_records_that_show_them():
    found = transfer.findings(transfer_records(), TRANSFER_SETS)
    assert len(found) == 6
    assert verdicts(found) == [REPRODUCED] * 6


def test_transfer_frozen_best_is_not_reproduced():
    found = transfer.findings(transfer_records(frozen_best=True), TRANSFER_SETS)
    worst = [f.verdict for f in found if f.claim.startswith("Frozen-weight transfer is the worst")]
    assert worst == [NOT_REPRODUCED] * 3
    # frozen is 0.99 on every set: no difference between sets, zero variance
    assert found[-1].verdict == INCONCLUSIVE


def ll_runs(ewc_gain=0.05, multitask=0.99):
    orders = ["Wang_Shen_Peng_Cheng", "Shen_Peng_Cheng_Wang"]
    rows = []
    for seed, eps in zip(SEEDS, NOISE, strict=True):
        for order in orders:
            wang_last = 0.05 if order.endswith("Wang") else 0.0
            for method, acc in (("basic", 0.8), ("ewc", 0.8 + ewc_gain)):
                rows.append(
                    {"method": method, "order": order, "seed": seed, "acc": acc + wang_last + eps}
                )
        rows.append({"method": "multitask", "order": "multitask", "seed": seed, "acc": multitask})
    return pd.DataFrame(rows)


def test_lifelong_claims_on_hand_made_runs():
    found = lifelong.findings(ll_runs())
    assert len(found) == 4  # EWC > basic per order, multi-task, Wang last
    assert verdicts(found) == [REPRODUCED] * 4
    worse = lifelong.findings(ll_runs(ewc_gain=-0.05, multitask=0.5))
    assert verdicts(worse) == [NOT_REPRODUCED, NOT_REPRODUCED, NOT_REPRODUCED, REPRODUCED]


def test_lifelong_without_runs_lists_the_papers_orders_inconclusive():
    found = lifelong.findings(pd.DataFrame())
    assert len(found) == 6 and set(verdicts(found)) == {INCONCLUSIVE}


def test_lifelong_with_one_order_shows_it_with_nothing_to_compare():
    runs = ll_runs()
    found = lifelong.findings(runs[runs["order"] != "Wang_Shen_Peng_Cheng"])
    wang_last = found[-1].row()
    assert wang_last["verdict"] == INCONCLUSIVE
    assert wang_last["ours"].startswith("ResNet with EWC Shen_Peng_Cheng_Wang ACC 0.9000")
    assert wang_last["test"].startswith("nothing to compare")


def test_a_finding_with_nothing_measured_says_so():
    row = F.Finding("x", "c", "p.md", "1", ()).row()
    assert (row["ours"], row["verdict"]) == ("nothing measured", INCONCLUSIVE)


OM_CONFIG = {
    "tasks": [
        {"name": "latin_digits", "dataset": "synth", "charset": "latin_digits"},
        {"name": "arabic_digits", "dataset": "synth", "charset": "arabic_digits"},
    ],
    "discriminator": "djb2",
    "phoc_levels": [2, 3],
    "prime": 1000003,  # the paper's Fig. 5 modulus: no DJB2 collision among these words
}
WORDS = {"latin_digits": ["zero", "one", "two"], "arabic_digits": ["zero", "one", "two"]}


def om_record(mode, discriminator, seed, metrics, words=WORDS):
    return {
        "mode": mode,
        "discriminator": discriminator,
        "seed": seed,
        "metrics": metrics,
        "vocabulary": {"words": words},
    }


def onemodel_records(single=95.0, joint=90.0, none_all_tasks=50.0):
    recs = []
    for seed, eps in zip(SEEDS[:2], (-0.5, 0.5), strict=True):
        for task in WORDS:
            recs.append(om_record("single", "djb2", seed, {f"{task}/accuracy": single + eps}))
        for disc, all_tasks in (("djb2", joint), ("none", none_all_tasks)):
            metrics = {}
            for task in WORDS:
                metrics[f"{task}/accuracy"] = joint + eps
                metrics[f"{task}/accuracy_all_tasks"] = all_tasks + eps
            recs.append(om_record("joint", disc, seed, metrics))
    return recs


def test_onemodel_claims_on_hand_made_records():
    found = onemodel.findings(onemodel_records(), OM_CONFIG)
    assert verdicts(found) == [REPRODUCED] * 3
    # three shared words collide without a discriminator, none with DJB2, on both seeds
    without, with_djb2 = onemodel.collisions(onemodel_records(), OM_CONFIG)
    assert without.values == {0: 3.0, 1: 3.0} and with_djb2.values == {0: 0.0, 1: 0.0}
    reversed_ = onemodel.findings(
        onemodel_records(single=80.0, joint=90.0, none_all_tasks=95.0), OM_CONFIG
    )
    assert verdicts(reversed_) == [REPRODUCED, NOT_REPRODUCED, NOT_REPRODUCED]


def test_onemodel_collisions_with_a_small_prime_are_counted_too():
    """The default prime (the first above the 6 classes: 7) leaves a DJB2 collision."""
    without, with_djb2 = onemodel.collisions(onemodel_records(), {**OM_CONFIG, "prime": None})
    assert without.values == {0: 3.0, 1: 3.0} and with_djb2.values == {0: 1.0, 1: 1.0}


def test_onemodel_without_shared_words_or_none_runs():
    distinct = {"latin_digits": ["zero", "one"], "arabic_digits": ["sifr", "wahid"]}
    recs = [
        om_record("joint", "djb2", seed, {"latin_digits/accuracy": 90.0}, distinct)
        for seed in (0, 1)
    ]
    found = onemodel.findings(recs, OM_CONFIG)
    # nothing collides either way: no difference; no joint_none or single runs: no test
    assert verdicts(found) == [INCONCLUSIVE] * 3


def ad_scores(gain=2.0):
    rows = []
    for resample, eps in zip(SEEDS, NOISE, strict=True):
        rows.append(
            {
                "dataset": "synth_writers",
                "knn_weights": "distance",
                "resample": resample,
                "base_acc": 80.0 + 10 * eps,
                "improved_acc": 80.0 + gain + 10 * eps,
                "upper_bound": 80.0 + max(gain, 0) + 3.0,
                "writers_improved": 8 if gain > 0 else 1,
                "writers_worse": 1 if gain > 0 else 8,
            }
        )
    return pd.DataFrame(rows)


RUNS = [("synth_writers", "distance")]


def test_adaptation_claims_on_hand_made_scores():
    found = adaptation.findings(ad_scores(), RUNS, {"synth_writers": None})
    assert verdicts(found) == [REPRODUCED] * 3
    assert "NIST: 87.24 -> 89.60" in found[0].paper and "DeepWriting" in found[0].paper
    worse = adaptation.findings(ad_scores(gain=-1.0), RUNS, {"synth_writers": "nist"})
    assert verdicts(worse) == [NOT_REPRODUCED, REPRODUCED, NOT_REPRODUCED]
    assert "DeepWriting" not in worse[0].paper


def test_adaptation_reads_the_loop_jobs_scores_files(tmp_path):
    path = tmp_path / "scores.csv"
    ad_scores().drop(columns=["dataset", "knn_weights"]).to_csv(path, index=False)
    found = adaptation.from_files([str(path)], RUNS, {"synth_writers": None})
    assert verdicts(found) == [REPRODUCED] * 3


# --- a broken claim computation is caught ---------------------------------------------------


def all_studies_reproduced() -> None:
    """Every study's claims on the records built to show them: all reproduced."""
    found = [
        *multiscript.findings(multiscript_records()),
        *transfer.findings(transfer_records(), TRANSFER_SETS),
        *lifelong.findings(ll_runs()),
        *onemodel.findings(onemodel_records(), OM_CONFIG),
        *adaptation.findings(ad_scores(), RUNS, {"synth_writers": None}),
    ]
    assert len(found) >= 10
    assert verdicts(found) == [REPRODUCED] * len(found)


def test_every_study_reproduces_its_claims_on_records_that_show_them():
    all_studies_reproduced()


@pytest.mark.parametrize("study", [multiscript, transfer, lifelong, onemodel])
def test_a_claim_compared_the_wrong_way_round_fails(monkeypatch, study):
    """Swap the sides of every two-sample comparison of one study: the checks above fail."""
    monkeypatch.setattr(study, "greater", lambda a, b, label=None: F.greater(b, a, label))
    with pytest.raises(AssertionError):
        all_studies_reproduced()


def test_a_claim_reading_the_wrong_column_fails(monkeypatch):
    """The adaptation claim compares the base CNN with itself: the check fails."""
    real = adaptation._values
    monkeypatch.setattr(
        adaptation,
        "_values",
        lambda scores, metric, label, digits=2: real(
            scores, "base_acc" if metric == "improved_acc" else metric, label, digits
        ),
    )
    with pytest.raises(AssertionError):
        all_studies_reproduced()


def test_the_verdicts_come_only_from_the_rule(monkeypatch):
    monkeypatch.setattr(F, "SE_FACTOR", np.inf)  # no difference is ever beyond the noise
    found = multiscript.findings(multiscript_records())
    assert set(verdicts(found)) == {INCONCLUSIVE}
