"""The OneModel study through the real Snakefile, on a tiny synthetic dataset."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, planned_jobs, run_snakemake
from tests.test_onemodel_report import COLUMNS

pytestmark = pytest.mark.e2e

TARGET = "reports/onemodel.csv"


def tiny_config(**onemodel) -> dict:
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    # A tiny dataset of its own: the other studies' datasets stay defined (the config's
    # references are checked before any job, whatever the target: hwbench.configcheck).
    config["datasets"] = ["synth_om"]
    config["synth"]["synth_om"] = {
        **config["synth"]["synth"],
        "writers": 4,
        "samples_per_class": 3,
        "scripts": ["latin_digits", "arabic_digits"],
    }
    om = config["onemodel"]
    om.update(seeds=[0, 1], canvas=[1, 16, 32], train={**om["train"], "epochs": 1})
    om["tasks"] = [
        {"name": "latin_digits", "dataset": "synth_om", "charset": "latin_digits", "kind": "both"},
        {"name": "arabic_digits", "dataset": "synth_om", "charset": "arabic_digits"},
    ]
    om.update(onemodel)
    return config


def write(workdir, config):
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")


def test_onemodel_report_and_reruns(workdir):
    config = tiny_config()
    write(workdir, config)
    run_snakemake(workdir, TARGET)

    table = pd.read_csv(workdir / TARGET, keep_default_na=False)
    assert list(table.columns) == COLUMNS
    ours = table[table["task"] != ""]
    assert list(zip(ours["task"], ours["metric"], strict=True)) == [
        ("latin_digits", "accuracy"),
        ("latin_digits", "qbs_map"),
        ("latin_digits", "qbe_map"),
        ("latin_digits", "accuracy_all_tasks"),
        ("arabic_digits", "accuracy"),
        ("arabic_digits", "accuracy_all_tasks"),
    ]
    assert (ours["joint"] != "").all() and (ours["joint_none"] != "").all()
    assert (ours.loc[ours["metric"] != "accuracy_all_tasks", "single"] != "").all()
    assert len(table) - len(ours) == 8  # Table 3's rows, paper values only
    # without a discriminator the arabic classes tie with (and lose to) the latin ones
    none_all = ours.set_index(["task", "metric"]).loc[("arabic_digits", "accuracy_all_tasks")]
    assert none_all["joint_none"] == "0.0 ± 0.0"

    collisions = pd.read_csv(workdir / "reports/onemodel_collisions.csv")
    assert collisions.set_index("prime", drop=False).iloc[0]["colliding_strings"] == 10
    assert collisions["discriminator"].tolist() == ["none", "concat", "djb2", "djb2"]
    assert collisions["colliding_strings"].tolist()[1] == 0
    prov = json.loads((workdir / "reports/onemodel.json").read_text())
    assert prov["config"]["onemodel"]["discriminator"] == "djb2" and prov["wall_s"]
    assert (workdir / "reports/onemodel_loss.png").stat().st_size > 0
    assert (workdir / "reports/onemodel_fig5.png").stat().st_size > 0
    record = json.loads((workdir / "results/onemodel/joint_djb2/seed0/eval.json").read_text())
    assert record["vocabulary"]["prime"] == 23  # first prime above 20 classes
    assert record["run"] == "joint_djb2" and record["fit"]["epochs_run"] == 1
    assert not (workdir / "results/onemodel/joint_djb2/seed0/checkpoint.pt").exists()
    # a cell is the mean ± sd over seeds of the runs' eval.json values
    values = [
        json.loads((workdir / f"results/onemodel/joint_djb2/seed{s}/eval.json").read_text())[
            "metrics"
        ]["latin_digits/accuracy"]
        for s in (0, 1)
    ]
    cell = ours.set_index(["task", "metric"]).loc[("latin_digits", "accuracy"), "joint"]
    assert cell == f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"

    # a rerun does nothing; each config key reruns only the jobs that use it
    assert planned_jobs(workdir, TARGET) == {}
    changed = copy.deepcopy(config)
    changed["onemodel"]["prime"] = 101
    write(workdir, changed)
    assert planned_jobs(workdir, TARGET) == {"onemodel_train": 2, "onemodel_report": 1}
    changed = copy.deepcopy(config)
    changed["onemodel"]["tasks"][1]["paper_row"] = "IFN"
    write(workdir, changed)
    assert planned_jobs(workdir, TARGET) == {"onemodel_report": 1}
    changed = copy.deepcopy(config)
    changed["onemodel"]["tasks"][1]["kind"] = "spot"
    write(workdir, changed)
    # the joint runs and arabic's single-task run, each seed; latin's single-task run stays
    assert planned_jobs(workdir, TARGET) == {"onemodel_train": 6, "onemodel_report": 1}
    changed = copy.deepcopy(config)
    changed["onemodel"]["validation"] = True  # other training rows: every job, the caption
    write(workdir, changed)
    assert planned_jobs(workdir, TARGET) == {"onemodel_train": 8, "onemodel_report": 1}
    changed = copy.deepcopy(config)
    changed["onemodel"]["resources"]["threads"] = 2
    write(workdir, changed)
    assert planned_jobs(workdir, TARGET) == {}  # how a job runs is not what it computes
