"""The transfer study: tasks, transfer modes, early stop, metrics, table, DAG, end to end."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score

from hwbench.store import Processed
from hwbench.studies import transfer as tr
from tests.conftest import REPO, planned_jobs, run_snakemake, write_config

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


def source_model(classes, seed=0):
    torch.manual_seed(seed)
    model, _ = tr.transfer_model("control", MODEL, classes)
    with torch.no_grad():  # non-trivial BatchNorm statistics, as after pre-training
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return model


def test_shared_head_keeps_source_rows_of_shared_classes():
    digits = tr.task_classes(["latin_digits"])
    both = tr.task_classes(["latin_digits", "latin_letters"])
    src = source_model(digits)
    state = {k: v.clone() for k, v in src.state_dict().items()}
    torch.manual_seed(1)
    model, trainable = tr.transfer_model("finetuned", MODEL, both, state, digits, "shared")
    assert trainable is None and model.head.out_features == 62
    assert torch.equal(model.head.weight[:10], state["head.weight"])
    assert torch.equal(model.head.bias[:10], state["head.bias"])
    assert torch.equal(model.body[0].weight, state["body.0.weight"])
    # same classes: the whole source model, head included
    same, _ = tr.transfer_model("frozen", MODEL, digits, state, digits, "shared")
    for k, v in same.state_dict().items():
        assert torch.equal(v, state[k]), k
    # letters share nothing with digits; fresh never copies
    letters, _ = tr.transfer_model("frozen", MODEL, both[10:], state, digits, "shared")
    fresh, _ = tr.transfer_model("frozen", MODEL, digits, state, digits, "fresh")
    assert not torch.equal(fresh.head.weight, state["head.weight"])
    assert letters.head.out_features == 52
    with pytest.raises(ValueError, match="needs the source"):
        tr.transfer_model("frozen", MODEL, digits)


def tiny_task(classes, n=64, seed=0) -> tr.TaskData:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % len(classes)
    return tr.TaskData(list(classes), x, y, x[:32].clone(), y[:32].clone())


def test_frozen_step_changes_only_the_final_layer_and_keeps_bn_statistics(tmp_path):
    digits = tr.task_classes(["latin_digits"])
    letters = tr.task_classes(["latin_letters"])
    state = {k: v.clone() for k, v in source_model(digits).state_dict().items()}
    torch.manual_seed(0)
    model, trainable = tr.transfer_model("frozen", MODEL, letters, state, digits)
    assert trainable == ["head"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tr.train_run(model, trainable, tiny_task(letters), MODEL, TRAIN, 0, tmp_path, "cpu")
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}
    bn = [k for k in before if "running_mean" in k or "running_var" in k]
    assert bn and all(torch.equal(before[k], after[k]) for k in bn)


def test_finetuned_step_changes_every_layer(tmp_path):
    digits = tr.task_classes(["latin_digits"])
    state = {k: v.clone() for k, v in source_model(digits).state_dict().items()}
    torch.manual_seed(0)
    model, trainable = tr.transfer_model("finetuned", MODEL, digits, state, digits)
    before = {k: v.clone() for k, v in model.named_parameters()}
    tr.train_run(model, trainable, tiny_task(digits), MODEL, TRAIN, 0, tmp_path, "cpu")
    unchanged = [k for k, v in model.named_parameters() if torch.equal(before[k], v)]
    assert unchanged == []
    bn_mean = model.body[1].running_mean
    assert not torch.equal(bn_mean, state["body.1.running_mean"])


def test_rerun_with_another_source_model_trains_again(tmp_path):
    """A finished run is reused only when its data and starting weights are the same."""
    digits = tr.task_classes(["latin_digits"])
    task = tiny_task(digits)

    def run(source_seed):
        state = source_model(digits, seed=source_seed).state_dict()
        torch.manual_seed(0)
        model, trainable = tr.transfer_model("finetuned", MODEL, digits, state, digits)
        tr.train_run(model, trainable, task, MODEL, TRAIN, 0, tmp_path, "cpu")
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
    out = tr.train_run(model, ["head"], tiny_task(digits), MODEL, flat, 0, tmp_path, "cpu")
    assert out["summary"]["epochs_run"] == 2 and out["stop_reason"] == "plateau"
    never = {**flat, "stop_eps": None}
    out = tr.train_run(model, ["head"], tiny_task(digits), MODEL, never, 0, tmp_path / "b", "cpu")
    assert out["summary"]["epochs_run"] == 5


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


def test_run_summary_values():
    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "test_f1": [0.5, 0.7, 0.9, 0.8]})
    assert tr.run_summary(history) == {
        "f1_epoch1": 0.5,
        "f1_epoch2": 0.7,
        "peak_f1": 0.9,
        "peak_epoch": 3,
        "final_f1": 0.8,
        "epochs_run": 4,
    }
    one = tr.run_summary(pd.DataFrame({"epoch": [1], "test_f1": [0.4]}))
    assert math.isnan(one["f1_epoch2"]) and one["epochs_run"] == 1


# --- table ---------------------------------------------------------------------------


def fake_eval(set_name, mode, seed, f1s):
    history = [{"epoch": i + 1, "test_f1": v} for i, v in enumerate(f1s)]
    return {
        "set": set_name,
        "mode": mode,
        "seed": seed,
        "summary": tr.run_summary(pd.DataFrame(history)),
        "history": history,
    }


SETS = {
    "digits": {"paper_set": 1, "source": "a", "target": "b", "title": "1: A -> B"},
    "letters": {"paper_set": 3, "source": "a", "target": "c"},
}


def test_transfer_table_values_paper_and_checks():
    evals = [
        fake_eval("digits", "control", 0, [0.6, 0.8, 0.9]),
        fake_eval("digits", "control", 1, [0.7, 0.8, 0.95]),
        fake_eval("digits", "finetuned", 0, [0.8, 0.9, 0.92]),
        fake_eval("digits", "finetuned", 1, [0.8, 0.9, 0.94]),
        fake_eval("digits", "frozen", 0, [0.5, 0.6, 0.7]),
        fake_eval("digits", "frozen", 1, [0.5, 0.6, 0.6]),
        fake_eval("letters", "finetuned", 0, [0.3, 0.5]),
        fake_eval("letters", "control", 0, [0.2, 0.6]),
        fake_eval("letters", "frozen", 0, [0.1, 0.7]),
    ]
    table, agg = tr.transfer_table(evals, SETS)
    rows = table.set_index(["set", "mode"])
    assert list(table["mode"]) == ["control", "frozen", "fine-tuned"] * 2
    assert list(table["title"]) == ["1: A -> B"] * 3 + ["set 3: letters"] * 3
    ctrl = rows.loc[("digits", "control")]
    assert ctrl["f1_epoch1"] == f"0.650 ± {np.std([0.6, 0.7], ddof=1):.3f}"
    assert ctrl["peak_f1"] == "0.925 ± 0.035"
    assert ctrl["peak_f1_paper"] == "0.980" and ctrl["peak_f1_diff"] == "-0.055"
    assert ctrl["n"] == 2 and ctrl["epochs_run"] == "3.0 ± 0.0"
    assert rows.loc[("letters", "frozen"), "peak_f1_paper"] == "0.580"
    assert rows.loc[("letters", "frozen"), "f1_epoch2"] == "0.700"  # one run: no sd
    # findings: fine-tuned above control after epochs 1 and 2 (0.8 > 0.65, 0.9 > 0.8)
    assert rows.loc[("digits", "fine-tuned"), "agrees"] == "yes"
    # final F1 control 0.925 vs fine-tuned 0.93: within max(sd, 0.01)
    assert rows.loc[("digits", "control"), "agrees"] == "yes"
    assert rows.loc[("digits", "frozen"), "agrees"] == "yes"
    # set 3: frozen peak 0.7 above fine-tuned 0.5 -> not the worst; control 0.6 > 0.5
    assert rows.loc[("letters", "frozen"), "agrees"] == "no"
    assert rows.loc[("letters", "control"), "agrees"] == "yes"
    assert "slightly below control" in rows.loc[("letters", "fine-tuned"), "paper_finding"]
    assert agg.loc[0, "peak_f1_mean"] == pytest.approx(0.925)


def test_per_class_after_first_and_last_epoch():
    def ev(seed, first, last):
        hist = [
            {"epoch": 1, "test_f1": 0, "test_class_acc_0": first[0], "test_class_acc_1": first[1]},
            {"epoch": 2, "test_f1": 0, "test_class_acc_0": last[0], "test_class_acc_1": last[1]},
        ]
        return {"set": "s", "mode": "frozen", "seed": seed, "classes": ["0", "1"], "history": hist}

    table = tr.per_class_after([ev(0, (0.0, 0.5), (1.0, 0.5)), ev(1, (0.5, 0.5), (1.0, 1.0))], "s")
    assert table[("frozen", "first")].tolist() == [0.25, 0.5]
    assert table[("frozen", "last")].tolist() == [1.0, 0.75]
    assert tr.per_class_set(SETS) == "digits"
    assert tr.per_class_set({**SETS, "x": {"paper_set": 2}}) == "x"


def test_rule_file_modes_match_the_module():
    text = (REPO / "workflow/rules/transfer.smk").read_text(encoding="utf-8")
    modes = re.search(r"TR_MODES = (\[.*?\])", text).group(1)
    assert json.loads(modes) == list(tr.MODES)


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


@pytest.mark.e2e
def test_end_to_end_tiny_run_writes_the_table_and_figures(workdir):
    write_config(workdir, TINY)
    run_snakemake(workdir, "reports/transfer.csv")
    table = pd.read_csv(workdir / "reports/transfer.csv", keep_default_na=False)
    assert list(table["set"]) == ["digits"] * 3 + ["digits_letters"] * 3 + ["letters"] * 3
    assert list(table["mode"]) == ["control", "frozen", "fine-tuned"] * 3
    for col in ("f1_epoch1", "f1_epoch2", "peak_f1", "final_f1", "epochs_run"):
        assert all(re.fullmatch(r"\d\.\d+", v) for v in table[col].astype(str)), col
    assert (table["n"] == 1).all()
    assert table["paper_finding"].str.len().gt(0).all()
    for png in ("transfer_f1", "transfer_per_class", "transfer_frozen"):
        assert (workdir / f"reports/{png}.png").stat().st_size > 10_000
    prov = json.loads((workdir / "reports/transfer.json").read_text())
    assert any("synth_writers_b/images.npy" in p for p in prov["datasets"])
    ev = json.loads(
        (workdir / "results/transfer/sets/digits_letters/frozen/seed0/eval.json").read_text()
    )
    assert len(ev["classes"]) == 62 and ev["source_classes"] == list("0123456789")
    assert {"train_loss", "test_loss", "test_f1", "test_class_acc_z"} <= set(ev["history"][0])
    # nothing left to do; adding a seed trains only that seed; head_init touches no control
    assert planned_jobs(workdir, "reports/transfer.csv") == {}
    write_config(workdir, {**TINY, "transfer": {**TINY["transfer"], "seeds": [0, 1]}})
    assert planned_jobs(workdir, "reports/transfer.csv") == {
        "transfer_source": 1,
        "transfer_train": 9,
        "transfer_report": 1,
    }
    write_config(workdir, {**TINY, "transfer": {**TINY["transfer"], "head_init": "fresh"}})
    assert planned_jobs(workdir, "reports/transfer.csv") == {
        "transfer_train": 6,
        "transfer_report": 1,
    }
