"""OneModel plan (hwbench/studies/onemodel/plan.py): runs, each job's inputs and params."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from hwbench.studies.onemodel import plan
from tests.conftest import REPO


def section(**overrides) -> dict:
    om = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["onemodel"]
    om["tasks"] = [
        {"name": "latin_digits", "dataset": "synth", "charset": "latin_digits", "kind": "both"},
        {
            "name": "words",
            "dataset": "iam",
            "words": "label_name",
            "hash": False,
            "paper_row": "IAM",
        },
    ]
    om.update(overrides)
    return om


def test_importing_the_plan_does_not_import_torch():
    code = "import sys, hwbench.studies.onemodel.plan; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_runs_joint_per_discriminator_then_single_per_task():
    om = section(discriminator="djb2", compare_discriminators=["none", "djb2"], single=True)
    assert plan.runs(om) == ["joint_djb2", "joint_none", "single_latin_digits", "single_words"]
    assert plan.runs({**om, "single": False}) == ["joint_djb2", "joint_none"]
    assert plan.run_tasks(om, "joint_none") == ["latin_digits", "words"]
    assert plan.run_tasks(om, "single_latin_digits") == ["latin_digits"]
    with pytest.raises(ValueError, match="run 'latin': use joint_<discriminator>"):
        plan.run_tasks(om, "latin")


def test_train_inputs_name_each_tasks_files_and_refuse_an_unbuildable_dataset():
    om = section()
    assert plan.train_inputs(om, "single_latin_digits", {"synth"}) == {
        "images_latin_digits": "data/processed/synth/images.npy",
        "meta_latin_digits": "data/processed/synth/meta.csv",
        "split_latin_digits": "data/splits/synth/stratified.csv",
    }
    with pytest.raises(ValueError, match="task 'words': no rule builds dataset 'iam'"):
        plan.train_inputs(om, "joint_djb2", {"synth"})


def test_train_params_hold_only_what_the_job_uses():
    om = section(prime=101)
    joint = plan.train_params(om, "joint_djb2", 3)
    assert joint["run"] == "joint_djb2" and joint["mode"] == "joint" and joint["seed"] == 3
    assert joint["discriminator"] == "djb2" and joint["prime"] == 101
    # paper_row only reaches the report; hash only the joint runs
    assert joint["tasks"][1] == {
        "name": "words",
        "dataset": "iam",
        "words": "label_name",
        "hash": False,
    }
    assert joint["data"]["words"] == {
        "processed": "data/processed/iam",
        "split": "data/splits/iam/stratified.csv",
    }
    assert plan.train_params(om, "joint_none", 3)["prime"] is None
    single = plan.train_params(om, "single_words", 0)
    assert single["discriminator"] == "none" and single["prime"] is None
    assert single["tasks"] == [{"name": "words", "dataset": "iam", "words": "label_name"}]
    assert list(single["data"]) == ["words"]
    assert (single["levels"], single["canvas"]) == (om["phoc_levels"], om["canvas"])
    assert (single["model"], single["train"]) == (om["model"], om["train"])
    assert single["validation"] is False  # the embedded default: train on train + val


def test_report_inputs_and_config():
    om = section(seeds=[0, 1], compare_discriminators=[], single=False)
    inputs = plan.report_inputs(om)
    assert inputs["evals"] == [
        "results/onemodel/joint_djb2/seed0/eval.json",
        "results/onemodel/joint_djb2/seed1/eval.json",
    ]
    assert inputs["metrics"][1] == "results/onemodel/joint_djb2/seed1/metrics.csv"
    assert inputs["datasets"] == [
        "data/processed/iam/images.npy",
        "data/processed/iam/meta.csv",
        "data/processed/synth/images.npy",
        "data/processed/synth/meta.csv",
    ]
    assert plan.run_files(om, plan.BENCHMARK)[0] == "benchmarks/jobs/onemodel/joint_djb2/seed0.tsv"
    # job resources do not change the table: editing them reruns no report
    assert "resources" in om and "resources" not in plan.report_config(om)


def test_checked_reports_task_errors_at_parse_time():
    om = section()
    assert plan.checked(om) is om
    bad = section()
    bad["tasks"][0]["kind"] = "rank"
    with pytest.raises(ValueError, match="task latin_digits: kind='rank'"):
        plan.checked(bad)


def test_early_stopping_needs_the_validation_set():
    om = section()
    om["train"] = {**om["train"], "patience": 3}
    with pytest.raises(ValueError, match="onemodel.validation is false"):
        plan.checked(om)
    assert plan.checked({**om, "validation": True})["validation"] is True
