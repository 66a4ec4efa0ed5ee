"""The transfer study: tasks, transfer modes, early stop, metrics, plan, DAG, end to end.

The table and figures from hand-made records: tests/test_transfer_report.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import f1_score

from hwbench.store import Processed
from hwbench.studies.transfer import job as tr
from hwbench.studies.transfer import plan as tp
from hwbench.studies.transfer import spec
from tests.conftest import REPO, deep_update, planned_jobs, run_snakemake, write_config

MODEL = {"name": "small_cnn", "in_channels": 1, "normalize": "none"}
TRAIN = {
    "epochs": 1,
    "batch_size": 16,
    "optimizer": "adam",
    "lr": 0.01,
    "weight_decay": 0.0,
    "stop_eps": None,
}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def processed(label_names, source_split, writers=None, seed=0) -> Processed:
    rng = np.random.default_rng(seed)
    n = len(label_names)
    meta = pd.DataFrame(
        {
            "label": np.arange(n),
            "label_name": label_names,
            "script": "latin",
            "writer": writers if writers is not None else ["w0"] * n,
            "pen": "",
            "source_split": source_split,
        }
    )
    return Processed(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), meta)


# --- tasks ---------------------------------------------------------------------------


def test_task_classes_follow_charset_order():
    assert tr.task_classes(["latin_digits"]) == list("0123456789")
    both = tr.task_classes(["latin_digits", "latin_letters"])
    assert len(both) == 62 and both[10] == "A" and both[36] == "a" and both[-1] == "z"
    assert tr.task_classes(["latin_letters"])[:3] == ["A", "B", "C"]
    with pytest.raises(ValueError, match="unknown charset"):
        tr.task_classes(["klingon"])


def test_select_task_by_character_and_source_split():
    names = ["3", "A", "a", "7", "%", "3", "b"]
    parts = ["hsf_0", "hsf_4", "hsf_1", "hsf_4", "hsf_0", "hsf_6", "hsf_4"]
    data = processed(names, parts)
    task = {"charsets": ["latin_letters"], "split": {"scheme": "source_split", "test": ["hsf_4"]}}
    got = tr.select_task(data, task)
    assert got.classes[0] == "A" and len(got.classes) == 52
    # letters only: "a" (row 2) trains; "A" (row 1) and "b" (row 6) test
    assert got.y_train.tolist() == [26]
    assert got.y_test.tolist() == [0, 27]
    assert torch.equal(got.x_train[0], torch.from_numpy(data.images[2]))
    digits = tr.select_task(data, {**task, "charsets": ["latin_digits"]})
    assert digits.y_train.tolist() == [3, 3] and digits.y_test.tolist() == [7]
    # an explicit train list leaves hsf_6 out
    only0 = {"scheme": "source_split", "train": ["hsf_0"], "test": ["hsf_4"]}
    assert tr.select_task(
        data, {**task, "charsets": ["latin_digits"], "split": only0}
    ).y_train.tolist() == [3]


def test_nist_tasks_match_the_registry_subsets_and_hsf4_split():
    """config/paper.yaml's NIST tasks select what hwbench.datasets' helpers select."""
    nist = pytest.importorskip("hwbench.datasets.nist")
    chars = tr.task_classes(["latin_digits", "latin_letters"])
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 62, 300)
    parts = rng.choice(["hsf_0", "hsf_1", "hsf_2", "hsf_3", "hsf_4", "hsf_6", "hsf_7"], 300)
    data = processed([chars[i] for i in labels], parts)
    data.meta["label"] = labels
    split = {"scheme": "source_split", "test": ["hsf_4"]}
    for subset, charsets in (
        ("digits", ["latin_digits"]),
        ("letters", ["latin_letters"]),
        ("all", ["latin_digits", "latin_letters"]),
    ):
        ref = nist.select_nist(data, subset)
        roles = nist.transfer_split(ref.meta)
        got = tr.select_task(data, {"charsets": charsets, "split": split})
        assert got.y_train.tolist() == ref.meta["label"][roles == "train"].tolist()
        assert got.y_test.tolist() == ref.meta["label"][roles == "test"].tolist()


def test_select_task_from_split_file_and_errors():
    data = processed(list("0123456789"), [""] * 10)
    frame = pd.DataFrame({"index": range(10), "split": ["train"] * 6 + ["val"] * 2 + ["app"] * 2})
    task = {
        "charsets": ["latin_digits"],
        "split": {"scheme": "writer", "train": ["train"], "test": ["val", "app"]},
    }
    got = tr.select_task(data, task, frame)
    assert got.y_train.tolist() == [0, 1, 2, 3, 4, 5] and got.y_test.tolist() == [6, 7, 8, 9]
    with pytest.raises(ValueError, match="no test rows"):
        tr.select_task(data, {**task, "split": {"scheme": "writer", "test": ["hsf_4"]}}, frame)
    with pytest.raises(ValueError, match="needs its split file"):
        tr.select_task(data, task, None)
    with pytest.raises(ValueError, match="both train and test"):
        bad = {"scheme": "writer", "train": ["train", "val"], "test": ["val"]}
        tr.select_task(data, {**task, "split": bad}, frame)


# --- transfer modes ------------------------------------------------------------------


def source_model(classes, path, seed=0) -> dict:
    """A source model saved to ``path`` as the engine saves model.pt; its state."""
    torch.manual_seed(seed)
    model, _ = tr.transfer_model("control", MODEL, classes)
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after pre-training
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(state, path)
    return state


def test_shared_head_keeps_source_rows_of_shared_classes(tmp_path):
    digits = tr.task_classes(["latin_digits"])
    both = tr.task_classes(["latin_digits", "latin_letters"])
    path = tmp_path / "model.pt"
    state = source_model(digits, path)
    torch.manual_seed(1)
    model, trainable = tr.transfer_model("finetuned", MODEL, both, path, digits, "shared")
    assert trainable is None and model.head.out_features == 62
    assert torch.equal(model.head.weight[:10], state["head.weight"])
    assert torch.equal(model.head.bias[:10], state["head.bias"])
    assert torch.equal(model.body[0].weight, state["body.0.weight"])
    # same classes: the whole source model, head included
    same, _ = tr.transfer_model("frozen", MODEL, digits, path, digits, "shared")
    for k, v in same.state_dict().items():
        assert torch.equal(v, state[k]), k
    # letters share nothing with digits; fresh never copies
    letters, _ = tr.transfer_model("frozen", MODEL, both[10:], path, digits, "shared")
    fresh, _ = tr.transfer_model("frozen", MODEL, digits, path, digits, "fresh")
    assert not torch.equal(fresh.head.weight, state["head.weight"])
    assert letters.head.out_features == 52
    with pytest.raises(ValueError, match="needs the source"):
        tr.transfer_model("frozen", MODEL, digits)
    with pytest.raises(ValueError, match="head_init='copy'"):
        tr.transfer_model("frozen", MODEL, digits, path, digits, "copy")
    with pytest.raises(ValueError, match="model.pt does not fit the model config with 52"):
        tr.transfer_model("frozen", MODEL, digits, path, both[10:], "shared")


def test_source_model_is_loaded_weights_only(tmp_path):
    """A source file carrying a pickled object is refused, naming the file (no code runs)."""
    from hwbench.engine import CheckpointError

    digits = tr.task_classes(["latin_digits"])
    path = tmp_path / "model.pt"
    source_model(digits, path)
    state = torch.load(path, weights_only=True)
    torch.save({**state, "extra": pd.Timestamp("2020-01-01")}, path)
    with pytest.raises(CheckpointError, match="model.pt: not a readable weights-only"):
        tr.transfer_model("frozen", MODEL, digits, path, digits)


def tiny_task(classes, n=64, seed=0) -> tr.TaskData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % len(classes)
    return tr.TaskData(list(classes), x, y, x[:32].clone(), y[:32].clone())


def test_frozen_step_changes_only_the_final_layer_and_keeps_bn_statistics(tmp_path):
    digits = tr.task_classes(["latin_digits"])
    letters = tr.task_classes(["latin_letters"])
    source_model(digits, tmp_path / "model.pt")
    torch.manual_seed(0)
    model, trainable = tr.transfer_model("frozen", MODEL, letters, tmp_path / "model.pt", digits)
    assert trainable == ["head"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tr.train_run(model, trainable, tiny_task(letters), MODEL, TRAIN, 0, tmp_path / "run", "cpu")
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}
    bn = [k for k in before if "running_mean" in k or "running_var" in k]
    assert bn and all(torch.equal(before[k], after[k]) for k in bn)


def test_finetuned_step_changes_every_layer(tmp_path):
    digits = tr.task_classes(["latin_digits"])
    state = source_model(digits, tmp_path / "model.pt")
    torch.manual_seed(0)
    model, trainable = tr.transfer_model("finetuned", MODEL, digits, tmp_path / "model.pt", digits)
    before = {k: v.clone() for k, v in model.named_parameters()}
    tr.train_run(model, trainable, tiny_task(digits), MODEL, TRAIN, 0, tmp_path / "run", "cpu")
    unchanged = [k for k, v in model.named_parameters() if torch.equal(before[k], v)]
    assert unchanged == []
    bn_mean = model.body[1].running_mean
    assert not torch.equal(bn_mean, state["body.1.running_mean"])


def test_rerun_with_another_source_model_trains_again(tmp_path):
    """A finished run is reused only when its data and starting weights are the same."""
    digits = tr.task_classes(["latin_digits"])
    task = tiny_task(digits)

    def run(source_seed):
        path = tmp_path / f"source{source_seed}.pt"
        source_model(digits, path, seed=source_seed)
        torch.manual_seed(0)
        model, trainable = tr.transfer_model("finetuned", MODEL, digits, path, digits)
        tr.train_run(model, trainable, task, MODEL, TRAIN, 0, tmp_path / "run", "cpu")
        return model.head.weight.detach().clone()

    first = run(0)
    assert torch.equal(run(0), first)  # same inputs: the same run (reused or retrained)
    assert not torch.equal(run(1), first)  # a new source model: trained from it


# --- early stop ----------------------------------------------------------------------


def test_early_stop_when_test_loss_changes_less_than_eps():
    from hwbench.engine import EarlyStopping

    cfg = tr.train_config({**TRAIN, "epochs": 20, "stop_eps": 1e-5}, seed=0)
    assert cfg.monitor == "test_loss" and cfg.stop_eps == 1e-5 and cfg.patience is None

    def stop_epoch(losses):
        stopper = EarlyStopping(cfg.mode, cfg.patience, cfg.min_delta, cfg.stop_eps)
        for epoch, loss in enumerate(losses, 1):
            if stopper.update(loss, epoch)[1] is not None:
                return epoch
        return None

    # |L(k) - L(k-1)|: 0.5, 0.1, 2e-5 (goes on), 8e-6 (stops at epoch 5)
    assert stop_epoch([1.0, 0.5, 0.4, 0.39998, 0.399988, 0.3]) == 5
    # a rise counts by its size too: 0.4 -> 0.400005 stops
    assert stop_epoch([1.0, 0.4, 0.400005]) == 3
    assert stop_epoch([1.0, 0.9, 0.8, 0.7]) is None


def test_fit_stops_on_a_flat_test_loss(tmp_path):
    digits = tr.task_classes(["latin_digits"])
    torch.manual_seed(0)
    model, _ = tr.transfer_model("control", MODEL, digits)
    flat = {**TRAIN, "epochs": 5, "lr": 1e-12, "stop_eps": 1e-5}
    result, metrics = tr.train_run(
        model, ["head"], tiny_task(digits), MODEL, flat, 0, tmp_path, "cpu"
    )
    assert len(result.history) == 2 and result.stop_reason == "plateau"
    assert [row["epoch"] for row in metrics["history"]] == [1, 2]
    assert metrics["classes"] == digits and (metrics["n_train"], metrics["n_test"]) == (64, 32)
    never = {**flat, "stop_eps": None}
    result, _ = tr.train_run(
        model, ["head"], tiny_task(digits), MODEL, never, 0, tmp_path / "b", "cpu"
    )
    assert len(result.history) == 5 and result.stop_reason == "epochs"


# --- metrics -------------------------------------------------------------------------


def test_epoch_metrics_macro_f1_equals_sklearn_and_per_class_accuracy():
    classes = ["0", "1", "2", "3"]
    y = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 3])
    pred = torch.tensor([0, 1, 1, 1, 0, 2, 1, 3, 3, 2])
    logits = torch.nn.functional.one_hot(pred, 4).float()
    got = tr.epoch_metrics(classes)(logits, {"x": torch.zeros(10), "y": y})
    assert got["f1"] == pytest.approx(f1_score(y.numpy(), pred.numpy(), average="macro"))
    assert got["acc"] == pytest.approx(0.6)
    per_class = [got[f"class_acc_{c}"] for c in classes]
    assert per_class == pytest.approx([1 / 2, 2 / 3, 1 / 2, 2 / 3])


# --- plan (torch-free) ----------------------------------------------------------------


def test_plan_imports_no_torch():
    code = "import sys, hwbench.studies.transfer.plan; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_spec_source_split_is_the_data_modules():
    from hwbench import data

    assert spec.SOURCE_SPLIT == data.SOURCE_SPLIT


def tr_config(**changes) -> dict:
    """The embedded default's transfer section with ``changes``."""
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["transfer"]
    return {**config, **changes}


def test_check_config_names_the_bad_key():
    tp.check_config(tr_config())
    bad_set = tr_config(sets={"s": {"source": "digits_a", "target": "nope", "paper_set": 1}})
    with pytest.raises(ValueError, match=r"transfer.sets.s.target = 'nope' is not a task"):
        tp.check_config(bad_set)
    with pytest.raises(ValueError, match=r"transfer.per_class_set = 'x' is not a set"):
        tp.check_config(tr_config(per_class_set="x"))
    tasks = tr_config()["tasks"]
    overlap = {"scheme": "writer", "train": ["train", "val"], "test": ["val", "app"]}
    bad_split = tr_config(tasks={**tasks, "all_b": {**tasks["all_b"], "split": overlap}})
    with pytest.raises(ValueError, match=r"tasks.all_b.split: splits \['val'\] are both"):
        tp.check_config(bad_split)


def test_task_inputs_read_a_split_file_only_for_split_file_schemes():
    tr_cfg = tr_config()
    assert tp.task_inputs(tr_cfg, "digits_a") == {
        "images": "data/processed/synth_writers_a/images.npy",
        "meta": "data/processed/synth_writers_a/meta.csv",
        "split": "data/splits/synth_writers_a/stratified.csv",
    }
    own = {
        "dataset": "nist",
        "charsets": ["latin_digits"],
        "split": {"scheme": "source_split", "test": ["hsf_4"]},
    }
    assert tp.task_inputs({"tasks": {"n": own}}, "n") == {
        "images": "data/processed/nist/images.npy",
        "meta": "data/processed/nist/meta.csv",
    }


def test_train_inputs_and_params_per_mode():
    tr_cfg = tr_config()
    target = tp.task_inputs(tr_cfg, "all_b")
    assert tp.train_inputs(tr_cfg, "digits_letters", "control", "3") == target
    source = "results/transfer/sources/digits_a/seed3"
    for mode in ("frozen", "finetuned"):
        assert tp.train_inputs(tr_cfg, "digits_letters", mode, "3") == {
            **target,
            "source_model": f"{source}/model.pt",
            "source_eval": f"{source}/eval.json",
        }
    control = tp.train_params(tr_cfg, "letters", "control")
    assert control == {
        "target": tr_cfg["tasks"]["letters_b"],
        "model": tr_cfg["model"],
        "train": tr_cfg["train"],
        "resident_mb": 2048,
    }
    assert tp.train_params(tr_cfg, "letters", "frozen") == {**control, "head_init": "shared"}
    assert tp.source_params(tr_cfg, "digits_a") == {
        "task": tr_cfg["tasks"]["digits_a"],
        "model": tr_cfg["model"],
        "train": tr_cfg["train"],
        "resident_mb": 2048,
    }


def test_runs_sources_datasets_and_report_files():
    tr_cfg = tr_config(seeds=[0, 5])
    runs = tp.runs(tr_cfg)
    assert len(runs) == 3 * 3 * 2 and len(set(runs)) == len(runs)
    assert runs[:3] == [
        "results/transfer/sets/digits/control/seed0",
        "results/transfer/sets/digits/control/seed5",
        "results/transfer/sets/digits/frozen/seed0",
    ]
    # one source task serves all three sets: one source model per seed
    assert tp.source_runs(tr_cfg) == [
        "results/transfer/sources/digits_a/seed0",
        "results/transfer/sources/digits_a/seed5",
    ]
    assert tp.datasets(tr_cfg) == ["synth_writers_a", "synth_writers_b", "synth_writers_b_digits"]
    assert tp.report_evals(tr_cfg) == [f"{r}/eval.json" for r in runs]
    assert len(tp.report_data(tr_cfg)) == 6
    benchmarks = tp.report_benchmarks(tr_cfg)
    assert benchmarks[0] == "benchmarks/jobs/transfer/sets/digits/control/seed0.tsv"
    assert benchmarks[-1] == "benchmarks/jobs/transfer/sources/digits_a/seed5.tsv"
    # the rules' log and benchmark patterns come from the same functions
    assert tp.log_file(tp.SET_RUN) == "logs/transfer/sets/{set}/{mode}/seed{seed}.log"
    assert (
        tp.benchmark_file(tp.SOURCE_RUN) == "benchmarks/jobs/transfer/sources/{task}/seed{seed}.tsv"
    )
    assert tp.targets() == ["reports/transfer.csv"]


def test_wildcard_constraints_match_only_the_names():
    pattern = tp.one_of(spec.MODES)
    assert [
        m for m in ("control", "frozen", "finetuned", "fine", "frozenx") if re.fullmatch(pattern, m)
    ] == list(spec.MODES)
    assert re.fullmatch(tp.one_of(["a.b"]), "axb") is None


# --- the DAG and an end-to-end run of the real Snakefile --------------------------------

TINY = {
    "synth": {
        "synth_writers_a": {"seed": 101, "writers": 4, "samples_per_class": 3},
        "synth_writers_b": {"seed": 102, "writers": 8, "samples_per_class": 1},
        "synth_writers_b_digits": {"seed": 102, "writers": 8, "samples_per_class": 2},
    },
    "transfer": {
        "seeds": [0],
        "train": {"epochs": 2, "batch_size": 32},
    },
}


def dry_run_jobs(workdir, *targets) -> list[dict]:
    """The jobs ``snakemake -n`` plans: rule, input and output paths, wildcards."""
    text = run_snakemake(workdir, "-n", *targets).stdout
    jobs, job = [], None
    for line in text.splitlines():
        head = re.match(r"^(?:local)?rule (\w+):$", line)
        if head:
            job = {"rule": head.group(1), "input": [], "output": [], "wildcards": {}}
            jobs.append(job)
            continue
        field = re.match(r"^\s+(input|output|wildcards): (.*)$", line)
        if job is not None and field:
            items = [s.strip() for s in field.group(2).split(",")]
            if field.group(1) == "wildcards":
                job["wildcards"] = dict(s.split("=", 1) for s in items)
            else:
                job[field.group(1)] = items
    return jobs


def test_dag_trains_one_source_per_seed_for_both_transfer_modes(workdir):
    write_config(workdir, {**TINY, "transfer": {**TINY["transfer"], "seeds": [0, 1]}})
    jobs = dry_run_jobs(workdir, "reports/transfer.csv")
    sources = [j for j in jobs if j["rule"] == "transfer_source"]
    models = {f"results/transfer/sources/digits_a/seed{s}/model.pt" for s in (0, 1)}
    assert len(sources) == 2 and {o for j in sources for o in j["output"]} >= models
    trains = [j for j in jobs if j["rule"] == "transfer_train"]
    assert len(trains) == 3 * 3 * 2
    for j in trains:
        seed = j["wildcards"]["seed"]
        model = f"results/transfer/sources/digits_a/seed{seed}/model.pt"
        used = [p for p in j["input"] if p.endswith("model.pt")]
        if j["wildcards"]["mode"] == "control":
            assert used == []
        else:
            assert used == [model], j


def mean_sd_cell(values) -> str:
    """A table cell computed here, independently of hwbench.report: "mean ± sd" (ddof 1)."""
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


@pytest.mark.e2e
def test_end_to_end_tiny_run_writes_the_table_and_figures(workdir):
    two_seeds = {**TINY, "transfer": {**TINY["transfer"], "seeds": [0, 1]}}
    write_config(workdir, two_seeds)
    # two CPU training jobs at a time (the default profile allows one GPU job)
    run_snakemake(workdir, "reports/transfer.csv", "--resources", "gpu=2")
    table = pd.read_csv(workdir / "reports/transfer.csv", keep_default_na=False, dtype=str)
    assert list(table["set"]) == ["digits"] * 3 + ["digits_letters"] * 3 + ["letters"] * 3
    assert list(table["mode"]) == ["control", "frozen", "fine-tuned"] * 3
    assert (table["n"] == "2").all()
    assert table["paper_finding"].str.len().gt(0).all()
    # every row's peak and final F1 cell is the mean ± sd over seeds of the runs' eval.json
    for row in table.itertuples():
        mode = {"fine-tuned": "finetuned"}.get(row.mode, row.mode)
        f1s = []
        for seed in (0, 1):
            path = workdir / f"results/transfer/sets/{row.set}/{mode}/seed{seed}/eval.json"
            record = json.loads(path.read_text())
            assert (record["set"], record["mode"], record["seed"]) == (row.set, mode, seed)
            f1s.append([h["test_f1"] for h in record["metrics"]["history"]])
        assert row.peak_f1 == mean_sd_cell([max(f) for f in f1s]), row
        assert row.final_f1 == mean_sd_cell([f[-1] for f in f1s]), row
        assert row.f1_epoch1 == mean_sd_cell([f[0] for f in f1s]), row
    for png in ("transfer_f1", "transfer_per_class", "transfer_frozen"):
        assert (workdir / f"reports/{png}.png").stat().st_size > 10_000
    prov = json.loads((workdir / "reports/transfer.json").read_text())
    assert any("synth_writers_b/images.npy" in p for p in prov["datasets"])
    assert len(prov["job_devices"]) == 18 and all(
        d.startswith("cpu") for d in prov["job_devices"].values()
    )
    ev = json.loads(
        (workdir / "results/transfer/sets/digits_letters/frozen/seed0/eval.json").read_text()
    )
    metrics = ev["metrics"]
    assert len(metrics["classes"]) == 62 and metrics["source_classes"] == list("0123456789")
    assert metrics["source_model"].endswith("sources/digits_a/seed0/model.pt")
    assert {"train_loss", "test_loss", "test_f1", "test_class_acc_z"} <= set(metrics["history"][0])
    assert ev["fit"]["epochs_run"] == len(metrics["history"]) and ev["fit"]["device"].startswith(
        "cpu"
    )
    source = json.loads((workdir / "results/transfer/sources/digits_a/seed1/eval.json").read_text())
    assert (source["task"], source["role"], source["seed"]) == ("digits_a", "source", 1)
    assert source["metrics"]["classes"] == list("0123456789")
    # nothing left to do; adding a seed trains only that seed; head_init touches no control
    assert planned_jobs(workdir, "reports/transfer.csv") == {}
    three_seeds = {**TINY, "transfer": {**TINY["transfer"], "seeds": [0, 1, 2]}}
    write_config(workdir, three_seeds)
    assert planned_jobs(workdir, "reports/transfer.csv") == {
        "transfer_source": 1,
        "transfer_train": 9,
        "transfer_report": 1,
    }
    write_config(
        workdir, {**two_seeds, "transfer": {**two_seeds["transfer"], "head_init": "fresh"}}
    )
    assert planned_jobs(workdir, "reports/transfer.csv") == {
        "transfer_train": 12,
        "transfer_report": 1,
    }


# --- the paper preset at the paper's input (128 px) -------------------------------------

PAPER = REPO / "config/paper.yaml"
TRANSFER28 = REPO / "config/transfer28.yaml"


def test_paper_preset_reads_nist_at_128_px_and_the_28_px_file_undoes_it():
    paper = yaml.safe_load(PAPER.read_text(encoding="utf-8"))
    assert paper["preprocess"]["native_size"] == {"nist128": "nist"}
    tr_cfg = paper["transfer"]
    assert tr_cfg["model"] | {"pretrained": None} == {
        "name": "resnet18",
        "stem": "imagenet",
        "pretrained": None,
        "in_channels": 1,
        "input_size": 128,
        "normalize": "none",
    }
    nist = ["nist_digits", "nist_all", "nist_letters"]
    assert {t: tr_cfg["tasks"][t]["dataset"] for t in [*nist, "mnist"]} == {
        **dict.fromkeys(nist, "nist128"),
        "mnist": "mnist",
    }
    assert tp.datasets(tr_cfg) == ["mnist", "nist128"]
    small = deep_update(paper, yaml.safe_load(TRANSFER28.read_text(encoding="utf-8")))["transfer"]
    assert small["model"]["input_size"] == 28 and small["model"]["stem"] == "cifar"
    assert tp.datasets(small) == ["mnist", "nist"]
    assert small["tasks"]["nist_all"] == {**tr_cfg["tasks"]["nist_all"], "dataset": "nist"}


def _transfer_dry_run(workdir, *configfiles) -> list[dict]:
    write_config(workdir)  # config.yaml, which --configfile overrides (deep-merged)
    return dry_run_jobs(workdir, "--configfile", *map(str, configfiles), "--", tp.TABLE)


def _processed_reads(jobs, rule) -> set[str]:
    return {p for j in jobs if j["rule"] == rule for p in j["input"] if p.endswith("images.npy")}


@pytest.mark.parametrize(
    ("configfiles", "nist"), [((PAPER,), "nist128"), ((PAPER, TRANSFER28), "nist")]
)
def test_paper_dag_plans_the_nist_processing_of_its_input_size(workdir, configfiles, nist):
    jobs = _transfer_dry_run(workdir, *configfiles)
    pre = [j for j in jobs if j["rule"] == "preprocess"]
    assert [j["wildcards"] for j in pre] == [{"dataset": nist}]
    assert "data/raw/nist/manifest.csv" in pre[0]["input"]
    assert f"data/processed/{nist}/images.npy" in pre[0]["output"]
    assert [j["wildcards"] for j in jobs if j["rule"] == "real_manifest"] == [{"dataset": "nist"}]
    assert _processed_reads(jobs, "transfer_source") == {
        "data/processed/mnist/images.npy",  # set 1 and 2's source
        f"data/processed/{nist}/images.npy",  # set 3's source: NIST digits
    }
    assert _processed_reads(jobs, "transfer_train") == {f"data/processed/{nist}/images.npy"}
    assert sum(j["rule"] == "transfer_train" for j in jobs) == 3 * 3 * 30


def _save(folder, label_names, parts, side, seed) -> None:
    from hwbench.store import save_processed

    rng = np.random.default_rng(seed)
    meta = processed(label_names, parts).meta
    save_processed(folder, rng.integers(0, 256, (len(meta), side, side), dtype=np.uint8), meta)


def test_128_px_jobs_upsample_mnist_per_batch_and_keep_uint8_data(tmp_path, monkeypatch):
    """Source at 28 px (MNIST), target at 128 px (NIST): the model sees 128 x 128 from
    both, resized one batch at a time; the data handed to the engine stay uint8."""
    from hwbench import engine

    digits = list("0123456789")
    _save(tmp_path / "mnist", digits * 2, ["train"] * 10 + ["test"] * 10, 28, 0)
    _save(tmp_path / "nist128", digits * 2, ["hsf_0"] * 10 + ["hsf_4"] * 10, 128, 1)
    model_cfg = {"name": "resnet18", "stem": "imagenet", "pretrained": None}
    model_cfg |= {"in_channels": 1, "input_size": 128, "normalize": "none"}
    train_cfg = {**TRAIN, "batch_size": 8}
    seen, real_fit = [], engine.fit

    def spy_fit(model, train, *args, **kwargs):
        sizes = []
        model.register_forward_pre_hook(lambda _m, inp: sizes.append(tuple(inp[0].shape[1:])))
        result = real_fit(model, train, *args, **kwargs)
        seen.append((train["x"].dtype, tuple(train["x"].shape[1:]), set(sizes)))
        return result

    monkeypatch.setattr(engine, "fit", spy_fit)
    task = {"charsets": ["latin_digits"]}
    source = tr.source_job(
        tmp_path / "mnist",
        None,
        {**task, "dataset": "mnist", "split": {"scheme": "source_split", "test": ["test"]}},
        model_cfg,
        train_cfg,
        0,
        tmp_path / "source" / "eval.json",
    )
    tr.transfer_job(
        tmp_path / "nist128",
        None,
        {**task, "dataset": "nist128", "split": {"scheme": "source_split", "test": ["hsf_4"]}},
        "frozen",
        model_cfg,
        train_cfg,
        0,
        tmp_path / "frozen" / "eval.json",
        source_model=tmp_path / "source" / "model.pt",
        source_eval=source,
    )
    assert seen == [
        (torch.uint8, (28, 28), {(1, 128, 128)}),
        (torch.uint8, (128, 128), {(1, 128, 128)}),
    ]


def test_jobs_reading_images_per_batch_equal_jobs_holding_them(tmp_path, monkeypatch):
    """resident_mb 0: the engine gets rows read from images.npy per batch, not a tensor;
    the source and the transfer train to the same weights and metrics, and their
    checkpoints share a fingerprint (either resumes the other)."""
    from hwbench import engine

    digits = list("0123456789")
    _save(tmp_path / "mnist", digits * 4, ["train"] * 30 + ["test"] * 10, 28, 0)
    _save(tmp_path / "nist", digits * 4, ["hsf_0"] * 30 + ["hsf_4"] * 10, 28, 1)
    model_cfg = {"name": "small_cnn", "in_channels": 1, "input_size": 28, "normalize": "none"}
    task = {"charsets": ["latin_digits"]}
    source_task = {
        **task,
        "dataset": "mnist",
        "split": {"scheme": "source_split", "test": ["test"]},
    }
    target = {**task, "dataset": "nist", "split": {"scheme": "source_split", "test": ["hsf_4"]}}
    kinds, real_fit = [], engine.fit

    def spy_fit(model, train, *args, eval_sets=None, **kwargs):
        kinds.append((type(train["x"]).__name__, type(eval_sets["test"]["x"]).__name__))
        return real_fit(model, train, *args, eval_sets=eval_sets, **kwargs)

    monkeypatch.setattr(engine, "fit", spy_fit)
    records = {}
    for name, budget in (("memory", None), ("disk", 0)):
        run = tmp_path / name
        source = tr.source_job(
            tmp_path / "mnist", None, source_task, model_cfg, TRAIN, 0,
            run / "source" / "eval.json", resident_mb=budget,
        )  # fmt: skip
        target_record = tr.transfer_job(
            tmp_path / "nist", None, target, "finetuned", model_cfg, TRAIN, 0,
            run / "finetuned" / "eval.json", source_model=run / "source" / "model.pt",
            source_eval=source, resident_mb=budget,
        )  # fmt: skip
        records[name] = (source, target_record)
    assert kinds == [("Tensor", "Tensor")] * 2 + [("StoredRows", "StoredRows")] * 2

    def timeless(record):  # the history's time_s is wall time
        history = [
            {k: v for k, v in row.items() if k != "time_s"} for row in record["metrics"]["history"]
        ]
        return {**record["metrics"], "history": history, "source_model": None}

    for held, read in zip(records["memory"], records["disk"], strict=True):
        assert timeless(read) == timeless(held)
    for part in ("source", "finetuned"):
        a = torch.load(tmp_path / "memory" / part / "model.pt", weights_only=True)
        b = torch.load(tmp_path / "disk" / part / "model.pt", weights_only=True)
        assert all(torch.equal(a[k], b[k]) for k in a)
        info = [
            json.loads((tmp_path / n / part / "run.json").read_text()) for n in ("memory", "disk")
        ]
        assert info[0]["config"] == info[1]["config"]
