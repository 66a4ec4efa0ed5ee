"""The rehearsal of the paper preset (config/rehearsal.yaml on top of config/paper.yaml):
its plan, its stand-in datasets, the marking of what it builds, and a rehearsal
training job preempted mid-epoch and resumed."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from hwbench import engine
from hwbench import report as hwreport
from hwbench.datasets import registry, rules, standin
from hwbench.datasets.standin import NOTE, StandinParams
from hwbench.engine import loop as engine_loop
from hwbench.store import save_processed
from tests.conftest import REPO, deep_update, planned_jobs, write_config

TABLES = [f"reports/{t}.csv" for t in ("table4", "transfer", "lifelong", "onemodel", "adaptation")]
STUDIES = ("onemodel", "multiscript", "transfer", "lifelong", "adaptation")


def _yaml(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text(encoding="utf-8"))


def rehearsal_overrides() -> dict:
    """config/paper.yaml with config/rehearsal.yaml merged in, as Snakemake merges them."""
    return deep_update(_yaml("config/paper.yaml"), _yaml("config/rehearsal.yaml"))


@pytest.fixture(scope="module")
def config() -> dict:
    """The validated rehearsal config (config.yaml < paper.yaml < rehearsal.yaml)."""
    from snakemake.utils import validate

    merged = deep_update(_yaml("config.yaml"), rehearsal_overrides())
    validate(merged, str(REPO / "workflow/schemas/config.schema.yaml"))
    return merged


# --- (a) the plan --------------------------------------------------------------------


def test_rehearsal_config_is_random_init_one_seed_few_steps(config):
    from hwbench.weights import imagenet_models

    paper = _yaml("config/paper.yaml")
    assert rules.standin_enabled(config) and rules.data_note(config) == NOTE
    assert imagenet_models(config) == []  # nothing to download
    for study in ("onemodel", "multiscript", "transfer", "lifelong"):
        assert config[study]["seeds"] == [0]
        assert config[study]["train"]["epochs"] == 1
        assert config[study]["train"]["max_steps"] >= 1
    # what decides shapes and code paths stays the paper's
    for study in STUDIES:
        model, paper_model = config[study]["model"], paper[study]["model"]
        assert model.get("pretrained") is None, study  # random initialisation
        assert {k: v for k, v in model.items() if k != "pretrained"} == {
            k: v for k, v in paper_model.items() if k != "pretrained"
        }, study
    assert config["onemodel"]["model"]["name"] == "resnet152"
    for key in ("canvas", "phoc_levels", "discriminator", "tasks"):
        assert config["onemodel"][key] == paper["onemodel"][key]
    for study in ("onemodel", "multiscript", "transfer", "lifelong"):
        for key in ("batch_size", "optimizer", "lr"):
            assert config[study]["train"][key] == paper[study]["train"][key], (study, key)
    assert config["lifelong"]["ewc"] == paper["lifelong"]["ewc"]
    batches = [b for _, b in config["adaptation"]["train"]["batch_schedule"]]
    assert batches == [b for _, b in paper["adaptation"]["train"]["batch_schedule"]]


def test_rehearsal_plans_all_five_tables_from_stand_ins(workdir):
    from hwbench.studies.lifelong import plan as ll_plan
    from hwbench.studies.multiscript import plan as ms_plan
    from hwbench.studies.onemodel import plan as om_plan

    write_config(workdir, rehearsal_overrides())
    jobs = planned_jobs(workdir, *TABLES)
    merged = deep_update(_yaml("config.yaml"), rehearsal_overrides())
    # every report and one training job per run of the single seed
    for rule in ("multiscript_table4", "transfer_report", "lifelong_report", "onemodel_report"):
        assert jobs[rule] == 1, rule
    assert jobs["adaptation_report"] == 1
    assert jobs["multiscript_train"] == len(ms_plan.runs(merged["multiscript"]))
    assert jobs["onemodel_train"] == len(om_plan.runs(merged["onemodel"]))
    assert jobs["lifelong_sequence"] + jobs["lifelong_multitask"] == len(
        ll_plan.runs(merged["lifelong"])
    )
    # the data come from stand-ins: nothing is fetched or read from a real archive
    used = {"mnist", "madbase", "kannada_mnist", "cifar100", "speech_commands", "imdb"}
    used |= {"iam", "ifn_enit"}  # OneModel's word-spotting tasks (manual datasets)
    assert jobs["standin_arrays"] == len(used)
    assert jobs["standin_manifest"] == len({"nist", "deepwriting", "amharic"})
    for rule in ("fetch_raw", "real_arrays", "real_manifest", "fetch_weights"):
        assert rule not in jobs


def test_documented_fresh_folder_command_plans_the_rehearsal(workdir):
    """docs/rehearsal.md: ``snakemake --directory <folder> --configfile config/paper.yaml
    config/rehearsal.yaml`` in a fresh folder (no config.yaml of its own) failed with
    "'synth' is a required property": the embedded default was looked up in the folder."""
    assert not (workdir / "config.yaml").exists()
    configs = [str(REPO / "config/paper.yaml"), str(REPO / "config/rehearsal.yaml")]
    jobs = planned_jobs(workdir, "--configfile", *configs, "--", *TABLES)
    assert jobs["multiscript_table4"] == 1 and jobs["adaptation_report"] == 1
    assert "fetch_raw" not in jobs and jobs["standin_arrays"] > 0


def test_the_rehearsal_refuses_a_folder_with_real_data(tmp_path, config):
    record = tmp_path / "data/raw/mnist/verified/train-images-idx3-ubyte.gz.json"
    record.parent.mkdir(parents=True)
    record.write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match=r"holds real data \(mnist\).*--directory"):
        rules.check_standin_workdir(config, root=str(tmp_path / "data/raw"))
    rules.check_standin_workdir({"data": {}}, root=str(tmp_path / "data/raw"))  # real run: fine


# --- (b) the stand-ins ---------------------------------------------------------------

PARAMS = StandinParams(enabled=True, per_class=1, writers=2, test_images=5)


@pytest.mark.parametrize("dataset", sorted(registry.ARRAY_DATASETS))
def test_array_stand_in_has_the_real_shape_classes_and_names(dataset, tmp_path):
    spec = registry.get(dataset)
    images, meta = standin.standin_arrays(dataset, {}, PARAMS)
    assert images.dtype == np.uint8 and images.shape[1:] == spec.image_shape
    assert meta["label_name"].tolist() == [spec.classes[i] for i in meta["label"]]
    assert sorted(set(meta["label"])) == list(range(len(spec.classes)))
    assert set(meta["source_split"]) == set(spec.source_splits)
    for split in spec.test_splits:
        held_out = meta.loc[meta["source_split"] == split, "label"]
        assert len(held_out) == PARAMS.test_images
        # spread over the label range: a study testing on a subset still finds images
        assert held_out.max() >= len(spec.classes) // 2 or len(spec.classes) <= 2
    if spec.writer_format:
        assert (meta["writer"] != "").all() and meta["writer"].nunique() > 1
    save_processed(tmp_path, images, meta)  # the processed format accepts it


def test_option_dependent_shapes_are_the_readers():
    from hwbench.datasets.imdb import review_image
    from hwbench.datasets.speech import spectrogram_images

    speech = registry.get("speech_commands")
    waves = np.zeros((1, standin.SPEECH_RATE), np.float32)
    assert spectrogram_images(waves, 256, 128).shape[1:] == speech.image_shape
    options = {"n_fft": 64, "hop": 200}
    images, _ = standin.standin_arrays("speech_commands", options, PARAMS)
    assert images.shape[1:] == spectrogram_images(waves, 64, 200).shape[1:]
    assert review_image(["a"], 32, 600, {}).shape == registry.get("imdb").image_shape
    images, _ = standin.standin_arrays("imdb", {"embed_dim": 8, "max_words": 20}, PARAMS)
    assert images.shape[1:] == (8, 20)
    _, meta = standin.standin_arrays("emnist", {"split": "letters"}, PARAMS)
    assert sorted(set(meta["label"])) == list(range(1, 27))  # letters has no label 0
    assert set(meta["label_name"]) == set(registry.NIST62[10:36])
    _, meta = standin.standin_arrays("madbase", {"variant": "csv"}, PARAMS)
    assert (meta["writer"] == "").all()  # the CSV mirror has no writer ids


@pytest.mark.parametrize("dataset", sorted(registry.IMAGE_DATASETS))
def test_image_stand_in_is_a_raw_manifest_of_real_size_pngs(dataset, tmp_path):
    from PIL import Image

    spec = registry.get(dataset)
    options = {"include_null": True} if dataset == "deepwriting" else {}
    frame = standin.write_standin_manifest(dataset, tmp_path, options, PARAMS)
    manifest = pd.read_csv(tmp_path / "manifest.csv", keep_default_na=False, dtype=str)
    assert manifest["file"].tolist() == frame["file"].tolist()
    assert sorted(set(frame["label"])) == list(range(len(spec.classes)))
    assert frame["label_name"].tolist() == [spec.classes[i] for i in frame["label"]]
    with Image.open(tmp_path / frame["file"].iloc[0]) as img:
        assert img.size[::-1] == spec.image_shape and img.mode == "L"
        assert np.asarray(img)[0, 0] == 255  # black ink on white, as the raw images
    if spec.writer_format:
        assert frame.groupby("source_split")["writer"].nunique().min() == PARAMS.writers


def test_stand_ins_are_repeatable():
    a, meta_a = standin.standin_arrays("cifar100", {}, PARAMS)
    b, meta_b = standin.standin_arrays("cifar100", {}, PARAMS)
    assert np.array_equal(a, b) and meta_a.equals(meta_b)
    c, _ = standin.standin_arrays("cifar100", {}, StandinParams(enabled=True, per_class=1, seed=1))
    assert not np.array_equal(a[: len(c)], c[: len(a)])


# --- marking ------------------------------------------------------------------------


def test_a_table_from_stand_ins_says_so_in_csv_md_html_and_provenance(tmp_path):
    table = pd.DataFrame({"model": ["base"], "accuracy": ["12.5"]})
    prov = hwreport.provenance(config={"x": 1}, repo=REPO, data_note=NOTE)
    hwreport.write_report(table, tmp_path / "t.csv", prov)
    csv = pd.read_csv(tmp_path / "t.csv")
    assert csv.columns[0] == "data" and (csv["data"] == NOTE).all()
    assert (
        (tmp_path / "t.md")
        .read_text(encoding="utf-8")
        .startswith("**Stand-in data: not a result.**")
    )
    assert NOTE in (tmp_path / "t.html").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))["data"] == NOTE
    # a real run's table has none of it
    hwreport.write_report(table, tmp_path / "r.csv", hwreport.provenance(repo=REPO))
    assert list(pd.read_csv(tmp_path / "r.csv").columns) == ["model", "accuracy"]
    assert "data" not in json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))


def test_every_report_rule_passes_the_note_and_its_captions_print_it():
    """Each rule that writes a report table gets the note as a param, and every caption
    of its report() outputs prints it (snakemake --report renders captions with Jinja)."""
    from tests.conftest import parsed_workflow

    configs = [REPO / "config/paper.yaml", REPO / "config/rehearsal.yaml"]
    with parsed_workflow(configfiles=configs) as workflow:
        tables = [
            rule
            for rule in workflow.rules
            if any(str(o).startswith("reports/") and str(o).endswith(".json") for o in rule.output)
        ]
        assert len(tables) == 7  # the five tables, adaptation's base-CNN table, the findings
        for rule in tables:
            assert dict(rule.params.items())["data_note"] == NOTE, rule.name
            for out in rule.output:
                caption = getattr(out, "flags", {}).get("report", {})
                caption = getattr(caption, "caption", None)
                if caption is not None:
                    text = Path(str(caption)).read_text(encoding="utf-8")
                    assert "snakemake.params.data_note" in text, (rule.name, caption)


# --- (c) a rehearsal job preempted mid-epoch ------------------------------------------


def _digits_job(config, tmp_path) -> dict:
    """The multiscript digits/UW job of the rehearsal (ResNet-18, ImageNet stem, the
    paper's batch 32, Adam, learned loss weights) on its stand-in data."""
    from hwbench.splits import make_split, read_meta
    from hwbench.store import write_csv
    from hwbench.studies.multiscript import plan as ms_plan

    ms = config["multiscript"]
    params = StandinParams.from_config(config["data"]["standin"])
    sources = ms_plan.sources(ms, "digits", "uw")
    paths = {}
    for script, source in sources.items():
        folder = tmp_path / "data" / source["dataset"]
        options = rules.reader_options(config, source["dataset"])
        images, meta = standin.standin_arrays(source["dataset"], options, params)
        save_processed(folder, images, meta)
        split = make_split(ms["split"], read_meta(folder / "meta.csv"), config["splits"])
        write_csv(folder / "split.csv", split)
        paths[script] = (folder, folder / "split.csv")
    return dict(
        group="digits",
        method="uw",
        seed=ms["seeds"][0],
        sources=sources,
        paths=paths,
        model_cfg=ms["model"],
        train=ms["train"],
        method_params=ms_plan.method_params(ms, "digits", "uw"),
        select=ms["select"],
        device="cpu",
        progress=False,
    )


def _sigterm_at_step(monkeypatch, step: int):
    """Send this process SIGTERM, as SLURM does before a kill, once the engine has
    finished training step ``step`` of an epoch (its handler then checkpoints)."""
    original = engine_loop._maybe_checkpoint_mid_epoch

    def hook(run, flag, more_steps):
        if run.position.step == step and more_steps:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(run, flag, more_steps)

    monkeypatch.setattr(engine_loop, "_maybe_checkpoint_mid_epoch", hook)


def _state(run_dir: Path) -> dict:
    return torch.load(run_dir / engine.FINAL_MODEL, map_location="cpu", weights_only=True)


def test_a_rehearsal_job_preempted_mid_epoch_resumes_to_the_same_result(
    config, tmp_path, monkeypatch
):
    from hwbench.studies.multiscript import job

    assert config["multiscript"]["train"]["max_steps"] >= 2  # a step to resume into
    kwargs = _digits_job(config, tmp_path)
    reference = job.train_job(**kwargs, eval_path=tmp_path / "ref/eval.json")

    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _sigterm_at_step(patch, 1)
        with pytest.raises(engine.Preempted, match="resumes"):
            job.train_job(**kwargs, eval_path=run / "eval.json")
    saved = engine.safe_load(run / engine.CHECKPOINT)
    assert saved["position"]["epoch"] == 1 and saved["position"]["step"] == 1
    assert not (run / "eval.json").exists()

    resumed = job.train_job(**kwargs, eval_path=run / "eval.json")  # the job's retry
    assert resumed["metrics"] == reference["metrics"]
    ref_state, run_state = _state(tmp_path / "ref"), _state(run)
    assert ref_state.keys() == run_state.keys()
    for key, value in ref_state.items():
        assert torch.equal(value, run_state[key]), key
    drop = ["epoch_s", "time_s", "wall_s"]
    ref_metrics = pd.read_csv(tmp_path / "ref" / engine.METRICS)
    run_metrics = pd.read_csv(run / engine.METRICS)
    pd.testing.assert_frame_equal(
        ref_metrics.drop(columns=[c for c in drop if c in ref_metrics]),
        run_metrics.drop(columns=[c for c in drop if c in run_metrics]),
    )
