"""Rerun semantics of the real Snakefile: only what a change makes stale reruns.

One tiny DAG is built once in a copy of the checkout; every test then edits the
copy (config or code), asks `snakemake -n` what would run, and restores the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import (
    REPO,
    copy_checkout,
    dump_config,
    planned_jobs,
    run_snakemake,
    write_config,
)

pytestmark = pytest.mark.e2e

TINY = {
    "synth": {"synth": {"writers": 6, "samples_per_class": 1, "scripts": ["latin_digits"]}},
}
TARGETS = [f"data/splits/synth/{s}.csv" for s in ("stratified", "writer", "adaptation")]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    repo = copy_checkout(tmp_path_factory.mktemp("checkout"))
    write_config(repo, TINY, base=repo / "config.yaml")
    run_snakemake(repo, *TARGETS, repo=repo)
    return repo


def plan(repo: Path) -> dict[str, int]:
    return planned_jobs(repo, *TARGETS, repo=repo)


@contextlib.contextmanager
def edited(path: Path, change):
    """Apply ``change(text) -> text`` to ``path`` for the block, then restore it."""
    original = path.read_bytes()
    stat = path.stat()
    path.write_text(change(original.decode("utf-8")), encoding="utf-8")
    try:
        yield
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def edited_config(repo: Path, change):
    """``edited`` for config.yaml, with ``change(config)`` editing the parsed mapping."""

    def rewrite(text):
        config = yaml.safe_load(text)
        change(config)
        return dump_config(config)

    return edited(repo / "config.yaml", rewrite)


def touch_code_and_config(repo: Path) -> None:
    """Touch config.yaml and every file under hwbench/ and workflow/ without changing them."""
    for path in [repo / "config.yaml", *repo.glob("hwbench/**/*"), *repo.glob("workflow/**/*")]:
        if path.is_file():
            path.touch()


def add_comment(text: str) -> str:
    return text + "\n# a comment that changes the file's checksum\n"


def test_noop_rerun_runs_nothing(built):
    assert plan(built) == {}


def test_touching_code_and_config_reruns_nothing(built):
    touch_code_and_config(built)
    assert plan(built) == {}


def test_editing_preprocessing_reruns_preprocessing_and_what_follows(built):
    with edited(built / "hwbench/preprocess.py", add_comment):
        assert plan(built) == {"preprocess": 1, "splits": 3}


def test_editing_split_code_reruns_only_splits(built):
    with edited(built / "hwbench/splits.py", add_comment):
        assert plan(built) == {"splits": 3}


def test_changing_one_split_parameter_reruns_only_that_scheme(built):
    def more_resamples(config):
        config["splits"]["adaptation_resamples"] += 1

    with edited_config(built, more_resamples):
        assert plan(built) == {"splits": 1}


# --- every study in one DAG ---------------------------------------------------------------
#
# One tiny run of `rule all` with all five studies; each test then asks what a change
# would rerun. Expected job counts follow from the tiny config below:
#   multiscript: 7 digit models x 1 seed + table4
#   transfer:    1 source model + 3 sets x 3 modes + report
#   lifelong:    basic and ewc on one order (no curriculum, no multitask) + report
#   onemodel:    joint_djb2 + 2 single-task models + report
#   adaptation:  train, features, styles, adapt x 2 weightings, report, base-CNN table
# and the findings scorecard, which reads every study's per-seed records: any study's
# new results rerun it (FINDINGS).

FINDINGS = {"findings": 1}
STUDY_JOBS = {
    "multiscript": {"multiscript_train": 7, "multiscript_table4": 1, **FINDINGS},
    "transfer": {"transfer_source": 1, "transfer_train": 9, "transfer_report": 1, **FINDINGS},
    "lifelong": {"lifelong_sequence": 2, "lifelong_report": 1, **FINDINGS},
    "onemodel": {"onemodel_train": 3, "onemodel_report": 1, **FINDINGS},
    "adaptation": {
        "adaptation_train": 1,
        "adaptation_features": 1,
        "adaptation_styles": 1,
        "adaptation_adapt": 2,
        "adaptation_report": 1,
        "adaptation_base_table": 1,
        **FINDINGS,
    },
}


def synth(seed: int, writers: int, samples_per_class: int, scripts: list[str]) -> dict:
    return {
        "seed": seed,
        "writers": writers,
        "samples_per_class": samples_per_class,
        "scripts": scripts,
        "image_size": 64,
    }


def all_studies_config() -> dict:
    """The embedded default shrunk to seconds per job, every study kept."""
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    one_epoch = {"epochs": 1, "batch_size": 32}
    config["datasets"] = ["synth"]
    digits, letters = ["latin_digits"], ["latin_letters"]
    config["synth"] = {
        "synth": synth(0, 4, 2, ["latin_digits", "arabic_digits", "kannada_digits"]),
        "synth_writers_a": synth(101, 4, 3, digits),
        "synth_writers_b": synth(102, 8, 1, digits + letters),
        "synth_writers_b_digits": synth(102, 8, 2, digits),
        "synth_writers": synth(0, 12, 3, digits),
        "synth_lifelong": {**config["synth"]["synth_lifelong"], "samples_per_class": 1},
    }
    config["splits"].update(adaptation_resamples=2, app_fraction=0.2)

    ms = config["multiscript"]
    ms.update(seeds=[0], groups=["digits"], train={**ms["train"], **one_epoch})
    config["transfer"].update(seeds=[0], train={**config["transfer"]["train"], **one_epoch})
    ll = config["lifelong"]
    ll.update(
        orders=["Shen_Peng_Cheng_Wang"],
        methods=["basic", "ewc"],
        seeds=[0],
        train={**ll["train"], "epochs": 1},
        device="cpu",
    )
    om = config["onemodel"]
    om.update(
        seeds=[0],
        compare_discriminators=[],
        canvas=[1, 16, 32],
        train={**om["train"], **one_epoch},
        tasks=[
            {"name": "latin_digits", "dataset": "synth", "charset": "latin_digits"},
            {"name": "arabic_digits", "dataset": "synth", "charset": "arabic_digits"},
        ],
    )
    config["adaptation"].update(
        charsets={"synth_writers": ["latin_digits"]},
        train={"epochs": 1, "batch_size": 32, "batch_schedule": []},
        n_init=2,
        quality_ks=[1, 3],
        workers=1,
    )
    return config


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    repo = copy_checkout(tmp_path_factory.mktemp("studies"))
    (repo / "config.yaml").write_text(dump_config(all_studies_config()), encoding="utf-8")
    # two CPU training jobs at a time (profiles/default allows one GPU job)
    run_snakemake(repo, "--resources", "gpu=2", repo=repo)
    return repo


def plan_all(repo: Path) -> dict[str, int]:
    """Jobs ``snakemake -n all`` plans, less the target rule ``all`` itself."""
    planned = planned_jobs(repo, "all", repo=repo)
    assert planned.pop("all", 1) == 1
    return planned


def study_of(rule: str) -> str:
    return rule.split("_", 1)[0]


def test_all_studies_ran_and_a_rerun_runs_nothing(studies):
    for table in ("table4", "transfer", "lifelong", "onemodel", "adaptation"):
        assert (studies / f"reports/{table}.csv").stat().st_size > 0, table
    assert plan_all(studies) == {}


def test_findings_scorecard_of_all_studies(studies):
    """reports/findings.csv: >= 2 claims per study, >= 10 rows, verdicts from the rule's
    three values only (one seed per run here: mostly inconclusive)."""
    from hwbench.findings import RULE, VERDICTS

    frame = pd.read_csv(studies / "reports/findings.csv")
    assert len(frame) >= 10
    assert frame["study"].value_counts().reindex(list(STUDY_JOBS)).min() >= 2
    assert set(frame["verdict"]) <= set(VERDICTS)
    assert set(frame["rule"]) == {RULE}
    assert frame[["claim", "source", "paper", "ours", "test"]].notna().all().all()
    assert "Rule." in (studies / "reports/findings.html").read_text(encoding="utf-8")


def test_touching_every_file_of_all_studies_reruns_nothing(studies):
    touch_code_and_config(studies)
    assert plan_all(studies) == {}


# The rerun contract of the study packages (hwbench/studies/<study>/): an edit to
# report.py reruns that study's report jobs only, to job.py its training jobs and
# reports, to plan.py nothing (no params or inputs change).
# The findings scorecard imports every study's report module: it reruns too.
REPORT_RULES = {
    "multiscript": {"multiscript_table4": 1, **FINDINGS},
    "transfer": {"transfer_report": 1, **FINDINGS},
    "lifelong": {"lifelong_report": 1, **FINDINGS},
    "onemodel": {"onemodel_report": 1, **FINDINGS},
    "adaptation": {"adaptation_report": 1, "adaptation_base_table": 1, **FINDINGS},
}


def study_file(study: str, module: str) -> str:
    return f"hwbench/studies/{study}/{module}.py"


@pytest.mark.parametrize("study", sorted(STUDY_JOBS))
def test_editing_a_study_report_reruns_only_its_report_jobs(studies, study):
    with edited(studies / study_file(study, "report"), add_comment):
        assert plan_all(studies) == REPORT_RULES[study]


@pytest.mark.parametrize("study", sorted(STUDY_JOBS))
def test_editing_a_study_job_reruns_its_training_and_report(studies, study):
    # adaptation: job.py is the base CNN, the study's first job, so every job follows
    with edited(studies / study_file(study, "job"), add_comment):
        assert plan_all(studies) == STUDY_JOBS[study]


@pytest.mark.parametrize("study", sorted(STUDY_JOBS))
def test_editing_a_study_plan_reruns_nothing(studies, study):
    with edited(studies / study_file(study, "plan"), add_comment):
        assert plan_all(studies) == {}


def test_editing_the_adaptation_loop_reruns_the_loop_not_the_cnn(studies):
    with edited(studies / study_file("adaptation", "loop"), add_comment):
        assert plan_all(studies) == {
            "adaptation_styles": 1,
            "adaptation_adapt": 2,
            **REPORT_RULES["adaptation"],
        }


def test_study_plans_import_no_torch():
    """The DAG is planned without torch: a dry run stays fast and needs no GPU stack."""
    modules = ", ".join(f"hwbench.studies.{s}.plan" for s in sorted(STUDY_JOBS))
    code = f"import sys, {modules}; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


ENGINE_MODULES = sorted(p.name for p in (REPO / "hwbench/engine").glob("*.py"))


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_editing_the_shared_engine_reruns_all_training_and_nothing_else(studies, module):
    """Every module of the engine package is a code input of every training job."""
    with edited(studies / "hwbench/engine" / module, add_comment):
        planned = plan_all(studies)
    expected = {rule: n for jobs in STUDY_JOBS.values() for rule, n in jobs.items()}
    assert planned == expected
    assert not {"synth", "preprocess", "splits"} & set(planned)


@pytest.mark.parametrize("study", ["multiscript", "transfer", "lifelong", "onemodel"])
def test_adding_a_seed_trains_only_the_new_seed(studies, study):
    with edited_config(studies, lambda config: config[study].update(seeds=[0, 1])):
        assert plan_all(studies) == STUDY_JOBS[study]
    # the new seed's jobs only: the old seed's results stay as they are
    assert plan_all(studies) == {}


def _set(path: str, value):
    """A config change setting the key at dotted ``path``."""

    def change(config):
        *parents, key = path.split(".")
        node = config
        for name in parents:
            node = node[name]
        node[key] = value

    return change


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # one loss's sigma: the Wloss model only
        (
            _set("multiscript.wloss.digits.sigma1", 0.5),
            {"multiscript_train": 1, "multiscript_table4": 1},
        ),
        # the EWC penalty: the EWC sequence only, not the basic one
        (_set("lifelong.ewc.lambda", 5.0), {"lifelong_sequence": 1, "lifelong_report": 1}),
        # a fresh head for the transfer modes: frozen and fine-tuned of 3 sets, no control
        (_set("transfer.head_init", "fresh"), {"transfer_train": 6, "transfer_report": 1}),
        # the DJB2 prime: the joint DJB2 model only, not the single-task ones
        (_set("onemodel.prime", 1000003), {"onemodel_train": 1, "onemodel_report": 1}),
        # the KNN sizes: the adaptation loop only, not the CNN or the styles
        (_set("adaptation.knn_ks", [2, 4]), {"adaptation_adapt": 2, "adaptation_report": 1}),
    ],
    ids=["multiscript", "lifelong", "transfer", "onemodel", "adaptation"],
)
def test_one_method_hyper_parameter_reruns_that_method_and_its_report(studies, change, expected):
    with edited_config(studies, change):
        planned = plan_all(studies)
    # and the findings scorecard, which reads the new results
    assert planned == {**expected, **FINDINGS}
    assert len({study_of(rule) for rule in planned if rule not in FINDINGS}) == 1


# Every figure and table a person reads, by the report category (study) it is filed under;
# the main tables as HTML pages (their .csv beside them in reports/).
REPORT_FILES = {
    "data": ["synth_contact_sheet.png"],
    "multiscript": ["table4.html", "table4_curves.png", "table4_new_losses.png"],
    "transfer": [
        "transfer.html",
        "transfer_f1.png",
        "transfer_frozen.png",
        "transfer_per_class.png",
    ],
    "lifelong": ["lifelong.html", "lifelong_R.png", "lifelong_curves.png"],
    "onemodel": [
        "onemodel.html",
        "onemodel_collisions.csv",
        "onemodel_fig5.png",
        "onemodel_loss.png",
    ],
    "adaptation": [
        "adaptation.html",
        "adaptation_base.html",
        "adaptation_diagnostics.csv",
        "adaptation_styles.csv",
        "adaptation_writers.png",
    ],
    "findings": ["findings.html"],
}


def test_report_holds_every_table_and_figure_with_captions_by_study(studies):
    run_snakemake(studies, "--report", "reports/report.html", repo=studies)
    html = (studies / "reports/report.html").read_text(encoding="utf-8")
    found = re.search(r"var categories = (\{.*?\});\n", html)
    assert found, "no category index in the report"
    categories = {
        study: sorted(Path(f).name for files in groups.values() for f in files)
        for study, groups in json.loads(found.group(1)).items()
    }
    assert categories == {study: sorted(files) for study, files in REPORT_FILES.items()}
    # no figure is left out of the report
    assert {p.name for p in (studies / "reports").glob("*.png")} <= {
        f for files in REPORT_FILES.values() for f in files
    }
    # each caption is in it: the opening words of every caption file
    for caption in sorted((studies / "workflow/report").glob("*/*.rst")):
        # a caption may be a Jinja template: one of its branches is rendered
        branches = re.split(r"\{[%{].*?[%}]\}", caption.read_text(encoding="utf-8"))
        openings = [" ".join(b.replace("`", "").split()[:4]) for b in branches if b.strip()]
        assert any(o in html for o in openings), f"{caption.name}: caption missing from the report"
    assert plan_all(studies) == {}  # writing the report reruns nothing
