"""The adaptation study through the real Snakefile on a tiny synthetic dataset."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import planned_jobs, run_snakemake, write_config

pytestmark = pytest.mark.e2e

TARGET = "reports/adaptation.csv"
TINY = {
    "datasets": [],
    "synth": {
        "synth_writers": {
            "seed": 0,
            "writers": 12,
            "samples_per_class": 3,
            "scripts": ["latin_digits"],
            "image_size": 64,
        }
    },
    "preprocess": {"workers": 2},
    "splits": {"adaptation_resamples": 2, "app_fraction": 0.2},
    "adaptation": {
        "datasets": ["synth_writers"],
        "charsets": {"synth_writers": ["latin_digits"]},
        "train": {"epochs": 1, "batch_size": 32, "batch_schedule": []},
        "n_init": 2,
        "quality_ks": [1, 3],
        "knn_weights": ["uniform", "distance"],
        "workers": 2,
    },
}


def test_adaptation_report_and_reruns(workdir):
    write_config(workdir, TINY)
    run_snakemake(workdir, TARGET, "reports/adaptation_base.csv")

    table = pd.read_csv(workdir / TARGET)
    assert table[["dataset", "knn_weights"]].values.tolist() == [
        ["synth_writers", "uniform"],
        ["synth_writers", "distance"],
    ]
    for m in ("base_acc", "improved_acc", "gain", "upper_bound", "writers_improved"):
        assert {m, f"{m}_paper", f"{m}_diff"} <= set(table.columns)
        assert table[m].notna().all()
    assert (table["resamples"] == 2).all()
    # Both weightings start from the same CNN predictions on the same test images.
    scores = {
        w: pd.read_csv(workdir / f"results/adaptation/synth_writers/{w}/scores.csv")
        for w in ("uniform", "distance")
    }
    assert scores["uniform"]["base_acc"].tolist() == scores["distance"]["base_acc"].tolist()
    assert (scores["uniform"]["upper_bound"] >= scores["uniform"]["base_acc"]).all()
    # A report cell is the mean over resamples of the jobs' per-resample scores.
    for row, w in zip(table.itertuples(), ("uniform", "distance"), strict=True):
        mean = scores[w]["improved_acc"].mean()
        assert float(row.improved_acc.split(" ± ")[0]) == pytest.approx(mean, abs=0.005)
    # The base CNN's accuracies come from its eval.json (the engine's result record).
    record = json.loads((workdir / "results/adaptation/synth_writers/base/eval.json").read_text())
    assert {"train_acc", "val_acc", "app_acc"} <= set(record["metrics"])
    assert record["fit"]["epochs_run"] == 1
    base = pd.read_csv(workdir / "reports/adaptation_base.csv")
    assert base["split"].tolist() == ["train", "val", "app"]
    app = base.iloc[2]
    assert app["accuracy"] == pytest.approx(100 * record["metrics"]["app_acc"], abs=0.005)
    assert app["images"] == record["metrics"]["app_images"]
    quality = pd.read_csv(workdir / "reports/adaptation_styles.csv")
    assert quality["k"].tolist() == [1, 3]
    for name in ("adaptation.md", "adaptation.json", "adaptation_writers.png"):
        assert (workdir / "reports" / name).exists()

    # A rerun does nothing; a KNN option reruns only the loop and the report.
    assert planned_jobs(workdir, TARGET) == {}
    write_config(workdir, {**TINY, "adaptation": {**TINY["adaptation"], "knn_ks": [2, 4]}})
    assert planned_jobs(workdir, TARGET) == {"adaptation_adapt": 2, "adaptation_report": 1}
    write_config(workdir, {**TINY, "adaptation": {**TINY["adaptation"], "n_init": 3}})
    assert planned_jobs(workdir, TARGET) == {
        "adaptation_styles": 1,
        "adaptation_adapt": 2,
        "adaptation_report": 1,
    }
