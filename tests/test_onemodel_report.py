"""OneModel report: every cell of Table 3 and of the collision table from hand-made records.

The records have eval.json's shape (hwbench.engine.write_result) and known values,
so each mean, sd and difference to the paper below is computed by hand.
"""

from __future__ import annotations

import jinja2
import pandas as pd
import pytest

from hwbench.studies.onemodel.labels import djb2
from hwbench.studies.onemodel.report import PAPER_TABLE3, build_report, job_devices, loss_figure
from hwbench.studies.onemodel.spec import PAPER_ROWS
from tests.conftest import REPO

WORDS = {"a": ["apple", "pear"], "w": ["apple", "fig"]}
CONFIG = {
    "discriminator": "djb2",
    "prime": None,
    "phoc_levels": [2],
    "tasks": [
        {"name": "a", "dataset": "cifar100", "words": "label_name", "paper_row": "CIFAR-100"},
        {
            "name": "w",
            "dataset": "iam",
            "words": "label_name",
            "kind": "spot",
            "hash": False,
            "paper_row": "IAM",
        },
    ],
}


def record(run, seed, metrics):
    mode, _, rest = run.partition("_")
    return {
        "run": run,
        "mode": mode,
        "discriminator": rest if mode == "joint" else "none",
        "seed": seed,
        "tasks": list(WORDS) if mode == "joint" else [rest],
        "vocabulary": {"words": WORDS if mode == "joint" else {rest: WORDS[rest]}},
        "metrics": metrics,
        "fit": {"device": f"cpu{seed}", "wall_s": 1.0, "epochs_run": 1},
    }


def records():
    """Per metric the seeds' values; asymmetric, so mean and median differ."""
    values = {
        "joint_djb2": {
            "a/accuracy": [90, 92, 97],  # mean 93, sd sqrt(13) = 3.61
            "a/accuracy_all_tasks": [80, 81, 85],  # 82, sqrt(7) = 2.65
            "w/qbs_map": [70, 71, 75],  # 72, sqrt(7)
            "w/qbe_map": [60, 61, 71],  # 64, sqrt(37) = 6.08
            "w/accuracy_all_tasks": [50, 50, 50],  # 50, 0
        },
        "single_a": {"a/accuracy": [95, 95, 98]},  # 96, sqrt(3) = 1.73
        "single_w": {"w/qbs_map": [80, 80, 83], "w/qbe_map": [76, 78, 80]},  # 81, 1.73; 78, 2
        "joint_none": {
            "a/accuracy": [85, 87],  # 86, sqrt(2) = 1.41
            "a/accuracy_all_tasks": [40, 44],  # 42, sqrt(8) = 2.83
            "w/qbs_map": [70, 70],  # 70, 0
            "w/qbe_map": [60, 62],  # 61, 1.41
            "w/accuracy_all_tasks": [0, 10],  # 5, sqrt(50) = 7.07
        },
    }
    out = []
    for run, metrics in values.items():
        seeds = len(next(iter(metrics.values())))
        for seed in range(seeds):
            out.append(record(run, seed, {k: float(v[seed]) for k, v in metrics.items()}))
    return out


COLUMNS = [
    "task",
    "paper_task",
    "metric",
    "joint",
    "single",
    "joint_none",
    "paper_joint",
    "paper_single",
    "diff_joint",
    "diff_single",
    "paper_sota",
]
CIFAR, IAM = "CIFAR-100: Image Classification", "IAM: English Handwriting"
EXPECTED = [
    # task, paper_task, metric, joint, single, joint_none, paper joint/single, diffs, sota
    ["a", CIFAR, "accuracy", "93.0 ± 3.6", "96.0 ± 1.7", "86.0 ± 1.4"]
    + ["71.0", "74.4", "+22.0", "+21.6", "79.3* [8]"],
    ["a", CIFAR, "accuracy_all_tasks", "82.0 ± 2.6", "", "42.0 ± 2.8", "", "", "", "", ""],
    ["w", IAM, "qbs_map", "72.0 ± 2.6", "81.0 ± 1.7", "70.0 ± 0.0"]
    + ["88.7", "88.5", "-16.7", "-7.5", "94.6 [34]"],
    ["w", IAM, "qbe_map", "64.0 ± 6.1", "78.0 ± 2.0", "61.0 ± 1.4"]
    + ["89.9", "89.4", "-25.9", "-11.4", "88.3 [34]"],
    ["w", IAM, "accuracy_all_tasks", "50.0 ± 0.0", "", "5.0 ± 7.1", "", "", "", "", ""],
    # Table 3's rows no task stands for: the paper's values only
    ["", "IFN: Arabic Handwriting", "qbs_map", "", "", "", "98.1", "99.0", "", "", "99.0 [2]"],
    ["", "IFN: Arabic Handwriting", "qbe_map", "", "", "", "98.5", "99.0", "", "", "99.0 [2]"],
    ["", "dDRIVER: Distracted Driver", "accuracy", "", "", "", "93.2", "94.5", "", "", "88.6 [7]"],
    ["", "SPCHD: Speech Recognition", "accuracy", "", "", "", "96.6", "95.9", "", "", "95.8 [39]"],
    ["", "IMDB: Text Sentiment Analysis", "accuracy", "", "", "", "81.2", "85.3", "", ""]
    + ["89.2 [12]"],
]


def test_every_cell_of_table3_from_hand_made_records():
    table, _ = build_report(records(), CONFIG)
    assert list(table.columns) == COLUMNS
    assert table.values.tolist() == EXPECTED


def test_a_missing_seed_changes_the_cells():
    # seed 2 of joint_djb2 dropped: a/accuracy is then 90, 92 -> 91.0 ± 1.4
    kept = [r for r in records() if not (r["run"] == "joint_djb2" and r["seed"] == 2)]
    table, _ = build_report(kept, CONFIG)
    assert table.loc[0, "joint"] == "91.0 ± 1.4" and table.loc[0, "diff_joint"] == "+20.0"


def test_collision_table_cells():
    _, collisions = build_report(records(), CONFIG)
    # w is unhashed (plain "apple", "fig"); a's words get the discriminator.
    p = 5  # the first prime above the 4 classes
    codes = [str(djb2(w + "a") % p) for w in WORDS["a"]]
    fig5 = [str(djb2(w + "a") % 1000003) for w in WORDS["a"]]
    letters = "aefgilpr"  # apple, pear, fig

    def alphabet(*extra):
        return len(set(letters + "".join(extra)))

    expected = pd.DataFrame(
        {
            "discriminator": ["none", "concat", "djb2", "djb2"],
            "prime": ["", "", p, 1000003],
            "classes": [4, 4, 4, 4],
            "alphabet_size": [8, 8, alphabet(*codes), alphabet(*fig5)],
            "phoc_size": [16, 16, 2 * alphabet(*codes), 2 * alphabet(*fig5)],
            # without a discriminator "apple" is a class of both tasks
            "colliding_strings": [1, 0, 0, 0],
            "colliding_phocs": [1, 0, 0, 0],
        }
    )
    pd.testing.assert_frame_equal(collisions, expected, check_dtype=False)


def test_report_needs_a_joint_run_and_some_metrics():
    singles = [r for r in records() if r["mode"] == "single"]
    with pytest.raises(ValueError, match="no joint run among the OneModel results"):
        build_report(singles, CONFIG)
    empty = [{**r, "metrics": {}} for r in records()]
    with pytest.raises(ValueError, match="every eval.json had empty metrics"):
        build_report(empty, CONFIG)


def test_job_devices_by_run_and_seed():
    devices = job_devices(records())
    assert devices["single_w/seed2"] == "cpu2" and len(devices) == 11


def test_paper_rows_match_the_paper_table():
    assert tuple(PAPER_TABLE3) == PAPER_ROWS


@pytest.mark.parametrize("validation", [False, True])
def test_captions_say_whether_validation_was_held_out(validation):
    """The captions are Jinja templates Snakemake renders with the report rule's params."""
    snakemake = type("Job", (), {"params": type("Params", (), {"config": {}})()})()
    snakemake.params.config = {"validation": validation}
    folder = REPO / "workflow/report/onemodel"
    table = jinja2.Template((folder / "table.rst").read_text()).render(snakemake=snakemake)
    loss = jinja2.Template((folder / "loss.rst").read_text()).render(snakemake=snakemake)
    if validation:
        assert "Validation held out" in table and "never" in table
        assert "validation rows were held out" in loss
    else:
        assert "full training set" in table and "Validation held out" not in table
        assert "no validation loss" in loss


def test_loss_figure_shows_validation_only_when_logged():
    train_only = {"joint_djb2/seed0": pd.DataFrame({"epoch": [1, 2], "train_loss": [0.5, 0.2]})}
    assert len(loss_figure(train_only).axes) == 1
    with_val = {"joint_djb2/seed0": train_only["joint_djb2/seed0"].assign(val_loss=[0.6, 0.4])}
    assert len(loss_figure(with_val).axes) == 2
