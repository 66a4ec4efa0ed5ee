"""The adaptation table from hand-made records: every cell, and the plan's torch-free import."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from hwbench.studies.adaptation import plan
from hwbench.studies.adaptation.report import adaptation_table, base_cnn_table, paper_value


def scores(dataset, weights, rows):
    """Per-resample score rows (resample_scores' columns) with their run keys."""
    cols = ["resample", "writers", "test_images", "base_acc", "improved_acc", "gain"]
    cols += ["upper_bound", "writers_improved", "writers_tied", "writers_worse"]
    frame = pd.DataFrame(rows, columns=cols)
    return frame.assign(dataset=dataset, knn_weights=weights)


RECORDS = pd.concat(
    [
        scores(
            "synth",
            "uniform",
            [
                [0, 10, 50, 80.0, 82.0, 2.0, 90.0, 6, 2, 2],
                [1, 10, 52, 84.0, 88.0, 4.0, 92.0, 8, 1, 1],
            ],
        ),
        scores(
            "synth",
            "distance",
            [
                [0, 10, 50, 80.0, 81.0, 1.0, 90.0, 5, 3, 2],
                [1, 10, 52, 84.0, 84.0, 0.0, 92.0, 4, 2, 4],
            ],
        ),
        scores("real", "uniform", [[0, 200, 8000, 87.0, 89.5, 2.5, 91.0, 150, 20, 30]]),
    ],
    ignore_index=True,
)


def test_every_cell_of_the_adaptation_table():
    agg, table = adaptation_table(RECORDS, {"synth": None, "real": "nist"})
    assert table[["dataset", "knn_weights", "resamples"]].values.tolist() == [
        ["synth", "uniform", 2],
        ["synth", "distance", 2],
        ["real", "uniform", 1],
    ]
    # mean ± sample sd over resamples: (80, 84) -> 82 ± 2.83; (82, 88) -> 85 ± 4.24
    row = table.iloc[0]
    assert row["base_acc"] == "82.00 ± 2.83"
    assert row["improved_acc"] == "85.00 ± 4.24"
    assert row["gain"] == "3.00 ± 1.41"
    assert row["upper_bound"] == "91.00 ± 1.41"
    assert row["writers"] == "10.0 ± 0.0"
    assert row["test_images"] == "51.0 ± 1.4"
    assert row["writers_improved"] == "7.0 ± 1.4"
    assert row["writers_tied"] == "1.5 ± 0.7"
    assert row["writers_worse"] == "1.5 ± 0.7"
    # no paper row for synth: empty paper and diff cells
    assert row["base_acc_paper"] == "" and row["base_acc_diff"] == ""
    dist = table.iloc[1]
    assert dist["improved_acc"] == "82.50 ± 2.12" and dist["gain"] == "0.50 ± 0.71"
    assert dist["writers_worse"] == "3.0 ± 1.4"
    # one resample: the mean alone; the paper's NIST values and our difference
    real = table.iloc[2]
    assert real["base_acc"] == "87.00" and real["base_acc_paper"] == "87.24"
    assert real["base_acc_diff"] == "-0.24"
    assert real["improved_acc_paper"] == "89.60" and real["improved_acc_diff"] == "-0.10"
    assert real["gain_paper"] == "2.36" and real["gain_diff"] == "+0.14"
    assert real["upper_bound_paper"] == "91.42" and real["upper_bound_diff"] == "-0.42"
    # the paper's test images are a total over its 10 resamples: 81685 / 10 per resample
    assert real["test_images_paper"] == "8168.5" and real["test_images_diff"] == "-168.5"
    assert real["writers_paper"] == "200.0" and real["writers_improved_paper"] == "167.0"
    assert real["writers_tied_paper"] == "9.0" and real["writers_worse_paper"] == "24.0"
    assert agg.loc[0, "base_acc_mean"] == pytest.approx(82.0)
    assert np.isnan(agg.loc[2, "base_acc_sd"])


def test_paper_value_per_resample_and_missing():
    assert paper_value("deepwriting", "test_images") == pytest.approx(3767.2)
    assert paper_value("deepwriting", "gain") == pytest.approx(2.72)
    assert np.isnan(paper_value(None, "gain"))


def test_base_cnn_table_reads_the_engine_records(tmp_path):
    record = {
        "num_classes": 62,
        "model": {"name": "base_cnn"},
        "metrics": {"train_acc": 0.9, "val_acc": 0.8, "app_acc": 0.7, "app_images": 12},
        "fit": {"device": "cpu (2 threads)", "wall_s": 3.0},
    }
    (tmp_path / "eval.json").write_text(json.dumps(record))
    base = base_cnn_table(["nist"], [tmp_path / "eval.json"])
    assert base.iloc[0].to_dict() == {
        "dataset": "nist",
        "num_classes": 62,
        "train_acc": 0.9,
        "val_acc": 0.8,
        "app_acc": 0.7,
        "app_images": 12,
        "device": "cpu (2 threads)",
    }


def test_plan_lists_runs_and_report_inputs():
    cfg = {"datasets": ["a", "b"], "knn_weights": ["uniform", "distance"]}
    assert plan.runs(cfg) == [
        ("a", "uniform"),
        ("a", "distance"),
        ("b", "uniform"),
        ("b", "distance"),
    ]
    inputs = plan.report_inputs(cfg)
    assert inputs["evals"] == [
        "results/adaptation/a/base/eval.json",
        "results/adaptation/b/base/eval.json",
    ]
    assert len(inputs["benchmarks"]) == 2 * 3 + 4
    assert plan.targets({"datasets": []}) == []


def test_plan_imports_no_torch():
    code = "import sys, hwbench.studies.adaptation.plan; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_base_split_table_beside_the_paper(tmp_path):
    from hwbench.studies.adaptation.report import base_split_table

    metrics = {"train_acc": 0.9, "val_acc": 0.85, "app_acc": 0.8125}
    metrics |= {"train_images": 650000, "val_images": 70000, "app_images": 80000}
    metrics |= {"train_writers": 3000, "val_writers": 340, "app_writers": 200}
    (tmp_path / "a.json").write_text(json.dumps({"metrics": metrics}))
    (tmp_path / "b.json").write_text(json.dumps({"metrics": metrics}))
    table = base_split_table(
        ["nist", "mine"], [tmp_path / "a.json", tmp_path / "b.json"], {"nist": "nist", "mine": None}
    )
    assert table[["dataset", "split"]].values.tolist() == [
        ["nist", "train"],
        ["nist", "val"],
        ["nist", "app"],
        ["mine", "train"],
        ["mine", "val"],
        ["mine", "app"],
    ]
    train = table.iloc[0]
    assert (train["accuracy"], train["accuracy_paper"], train["accuracy_diff"]) == (
        "90.00",
        "88.36",
        "+1.64",
    )
    assert (train["images"], train["images_paper"], train["images_diff"]) == (
        "650000",
        "659541",
        "-9541",
    )
    assert (train["writers"], train["writers_paper"], train["writers_diff"]) == (
        "3000",
        "3057",
        "-57",
    )
    app = table.iloc[2]
    assert (app["accuracy"], app["accuracy_paper"], app["accuracy_diff"]) == (
        "81.25",
        "87.35",
        "-6.10",
    )
    assert app["writers_diff"] == "+0"
    mine = table.iloc[4]
    assert (
        mine["accuracy"] == "85.00" and mine["accuracy_paper"] == "" and mine["images_diff"] == ""
    )


def test_train_settings_per_dataset():
    cfg = {
        "train": {"lr": 0.001, "batch_schedule": [[20, 64], [10, 128]]},
        "train_per_dataset": {"deepwriting": {"batch_schedule": [], "epochs": 20, "patience": 3}},
    }
    assert plan.train_settings(cfg, "nist") == cfg["train"]
    assert plan.train_settings(cfg, "deepwriting") == {
        "lr": 0.001,
        "batch_schedule": [],
        "epochs": 20,
        "patience": 3,
    }
    assert plan.train_settings({"train": {"lr": 1}}, "x") == {"lr": 1}
