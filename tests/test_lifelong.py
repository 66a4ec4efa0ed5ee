"""The lifelong study: plan, orders, the curriculum, task rows, the protocol, Table 1, e2e."""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from hwbench.store import Processed
from hwbench.studies.lifelong import job, plan, spec
from hwbench.studies.lifelong import report as llr
from tests.conftest import REPO, planned_jobs, run_snakemake, write_config

WRITERS = {"Wang": "w000", "Shen": "w001", "Peng": "w002", "Cheng": "w003"}


# --- orders and the curriculum ---------------------------------------------------------


def test_parse_order_maps_paper_orders_and_rejects_bad_ones():
    assert spec.parse_order("Shen_Peng_Cheng_Wang", WRITERS) == ["Shen", "Peng", "Cheng", "Wang"]
    for order in spec.PAPER_ORDERS:
        assert sorted(spec.parse_order(order, WRITERS)) == sorted(WRITERS)
    with pytest.raises(ValueError, match="Zhao"):
        spec.parse_order("Shen_Peng_Cheng_Zhao", WRITERS)
    with pytest.raises(ValueError, match="exactly once"):
        spec.parse_order("Shen_Peng_Cheng", WRITERS)
    with pytest.raises(ValueError, match="exactly once"):
        spec.parse_order("Shen_Shen_Peng_Cheng_Wang", WRITERS)
    assert spec.resolve_order("curriculum", WRITERS, ["Peng", "Wang", "Shen", "Cheng"]) == [
        "Peng",
        "Wang",
        "Shen",
        "Cheng",
    ]
    with pytest.raises(ValueError, match="order.json"):
        spec.resolve_order("curriculum", WRITERS, None)


def test_curriculum_order_easiest_first_ties_by_loss_then_name():
    scores = {
        "Wang": {"acc": 0.70, "loss": 0.9},
        "Shen": {"acc": 1.00, "loss": 0.20},
        "Peng": {"acc": 1.00, "loss": 0.05},
        "Cheng": {"acc": 0.90, "loss": 0.3},
        "Zhao": {"acc": 0.90, "loss": 0.3},
    }
    assert spec.curriculum_order(scores) == ["Peng", "Shen", "Cheng", "Zhao", "Wang"]


def _pattern_images(labels: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """28x28 images whose class is a bright 7x7 block at one of 10 places, plus noise."""
    out = rng.normal(0.0, noise, (len(labels), 28, 28))
    for i, label in enumerate(labels):
        r, c = divmod(int(label), 4)
        out[i, r * 7 : r * 7 + 7, c * 7 : c * 7 + 7] += 1.0
    return np.clip(out * 255, 0, 255).astype(np.uint8)


def load_state(path):
    from hwbench.engine import safe_load

    return safe_load(path)


def _tasks_from_arrays(images, labels, rows, channels=1) -> job.Tasks:
    from hwbench.data import BatchTransform

    return job.Tasks(
        x=torch.from_numpy(images),
        y=torch.from_numpy(labels).long(),
        rows=rows,
        classes=list(range(10)),
        transform=BatchTransform(channels=channels, normalize="mnist"),
    )


def _cfg(**over) -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["lifelong"]
    cfg = {**cfg, "device": "cpu"}
    cfg["input"] = {"source": "processed", "resize": None}
    cfg["train"] = {**cfg["train"], "epochs": 3, "batch_size": 16}
    cfg["curriculum"] = {**cfg["curriculum"], "epochs": 4}
    for key, value in over.items():
        cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
    return cfg


def test_curriculum_finds_the_known_easy_to_hard_order(tmp_path):
    """Clean patterns, noisy patterns, random labels: the order must be just that."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    per = 80
    labels = np.tile(np.arange(10), per // 10)
    parts = {
        "clean": _pattern_images(labels, 0.05, rng),
        "noisy": _pattern_images(labels, 0.9, rng),
        "random": _pattern_images(rng.permutation(labels), 0.05, rng),  # labels unrelated
    }
    images = np.concatenate([parts["random"], parts["noisy"], parts["clean"]])
    y = np.tile(labels, 3)
    rows = {}
    for k, name in enumerate(["random", "noisy", "clean"]):
        idx = np.arange(k * per, (k + 1) * per)
        rows[name] = {"fit": idx[:60], "heldout": idx[60:]}
    tasks = _tasks_from_arrays(images, y, rows)
    result = job.run_curriculum(tasks, _cfg(), tmp_path / "cur", torch.device("cpu"))
    assert result["order"] == ["clean", "noisy", "random"]
    saved = json.loads((tmp_path / "cur" / "order.json").read_text())
    assert saved["order"] == result["order"]
    assert saved["scores"]["clean"]["acc"] > saved["scores"]["random"]["acc"]


# --- task rows --------------------------------------------------------------------------


def _meta(writers, labels, names=None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "label": labels,
            "label_name": [str(v) for v in (names or labels)],
            "script": "latin",
            "writer": writers,
            "pen": "pen",
            "source_split": "",
        }
    )


def test_task_rows_split_each_writer_and_name_bad_writers():
    meta = _meta(["w000", "w001", "w000", "w001", "w000", "w001"], [0, 1, 5, 1, 0, 5])
    data = Processed(np.zeros((6, 28, 28), np.uint8), meta)
    split = pd.DataFrame({"index": [0, 1, 2, 3, 4, 5],
                          "split": ["train", "train", "val", "test", "test", "val"]})  # fmt: skip
    every = job.class_names(meta, None, "ds")
    assert every == ["0", "1", "5"]
    parts = {"train": ["train", "val"], "test": ["test"]}
    rows = job.select_task_rows(data, split, {"A": "w000", "B": "w001"}, parts, every, "ds")
    assert rows["A"]["train"].tolist() == [0, 2] and rows["A"]["test"].tolist() == [4]
    assert rows["B"]["train"].tolist() == [1, 5] and rows["B"]["test"].tolist() == [3]
    with pytest.raises(ValueError, match="lifelong.writers.C: writer 'w009'"):
        job.select_task_rows(data, split, {"C": "w009"}, {"train": ["train"]}, every, "ds")
    with pytest.raises(ValueError, match="no rows in splits"):
        job.select_task_rows(data, split, {"A": "w000"}, {"x": ["nosuch"]}, every, "ds")
    kept_classes = job.class_names(meta, [1, 0], "ds")  # keep classes 0 and 1 only
    assert kept_classes == ["0", "1"]
    kept = job.select_task_rows(
        data, split, {"A": "w000"}, {"train": ["train", "val"]}, kept_classes, "ds"
    )
    assert kept["A"]["train"].tolist() == [0]
    with pytest.raises(ValueError, match=r"lifelong.labels: \[7\]"):
        job.class_names(meta, [0, 7], "ds")
    with pytest.raises(ValueError, match="not one to one"):
        job.class_names(_meta(["w0", "w0"], [0, 1], ["a", "a"]), None, "ds")


def test_center_crop_takes_the_middle():
    from hwbench.data import center_crop

    x = torch.arange(36.0).view(1, 1, 6, 6)
    assert center_crop(x, 2).flatten().tolist() == [14.0, 15.0, 20.0, 21.0]
    assert center_crop(x, None) is x
    with pytest.raises(ValueError, match="cannot crop 8 x 8 from 6 x 6"):
        center_crop(x, 8)


def _tiny_store(tmp_path):
    """A processed dataset of 2 writers x 4 images, its raw PNGs and a split file."""
    import cv2

    from hwbench.store import save_processed

    meta = pd.DataFrame(
        {
            "label": [0, 1, 0, 1, 0, 1, 0, 1],
            "label_name": list("01010101"),
            "script": "latin",
            "writer": ["w000"] * 4 + ["w001"] * 4,
            "pen": "pen",
            "source_split": "",
        }
    )
    images = np.zeros((8, 28, 28), np.uint8)
    images[:, 10:18, 12:16] = 255
    save_processed(tmp_path / "proc", images, meta)
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    files = []
    for i in range(8):
        img = np.full((64, 64), 255, np.uint8)
        img[24 + i : 32 + i, :] = 0  # a black bar whose position encodes the row
        files.append(f"images/{i}.png")
        cv2.imwrite(str(raw / files[-1]), img)
    meta.assign(file=files).to_csv(raw / "manifest.csv", index=False)
    split = pd.DataFrame({"index": range(8), "split": ["train", "train", "val", "test"] * 2})
    split.to_csv(tmp_path / "split.csv", index=False)
    return tmp_path / "proc", tmp_path / "split.csv", raw / "manifest.csv"


def test_load_tasks_resizes_then_crops_and_reads_raw_images(tmp_path):
    proc, split, manifest = _tiny_store(tmp_path)
    cfg = {
        "writers": {"A": "w000", "B": "w001"},
        "train_splits": ["train", "val"],
        "test_split": "test",
        "input": {"source": "processed", "resize": 32},
        "model": {"name": "small_cnn", "in_channels": 3, "input_size": 28, "normalize": "none"},
    }
    tasks = job.load_tasks(proc, split, cfg)
    # the stored input stays the uint8 images; the transform resizes and crops per batch
    assert tasks.x.dtype == torch.uint8 and tuple(tasks.x.shape) == (8, 28, 28)
    assert repr(tasks.transform) == (
        "BatchTransform(size=32, channels=3, normalize='none', crop=28)"
    )
    assert tuple(tasks.transform(tasks.x).shape) == (8, 3, 28, 28)
    assert tasks.rows["A"]["train"].tolist() == [0, 1, 2]
    assert tasks.rows["B"]["test"].tolist() == [7]
    assert tasks.num_classes == 2 and tasks.y.tolist() == [0, 1] * 4
    raw_cfg = {**cfg, "input": {"source": "raw", "resize": 40}}
    raw = job.load_tasks(proc, split, raw_cfg, manifest)
    assert tuple(raw.x.shape) == (8, 40, 40)  # read at the resize, cropped per batch
    raw_x = raw.transform(raw.x)
    assert tuple(raw_x.shape) == (8, 3, 28, 28)
    # Raw images keep their polarity (white background) and their own content.
    assert float(raw_x[0].max()) == pytest.approx(1.0) and float(raw_x[0].min()) < 0.1
    assert not torch.equal(raw_x[0], raw_x[5])
    with pytest.raises(ValueError, match="input_size"):
        job.load_tasks(proc, split, {**cfg, "input": {"source": "processed", "resize": 20}})
    # Only the tasks' rows are loaded; rows are positions among them.
    only_b = {**raw_cfg, "writers": {"B": "w001"}}
    b = job.load_tasks(proc, split, only_b, manifest)
    assert tuple(b.x.shape) == (4, 40, 40) and b.rows["B"]["test"].tolist() == [3]
    assert torch.equal(b.x, raw.x[4:]) and b.y.tolist() == [0, 1, 0, 1]
    bad = pd.read_csv(manifest).iloc[:7]
    bad.to_csv(manifest, index=False)
    with pytest.raises(ValueError, match="do not line up"):
        job.load_tasks(proc, split, raw_cfg, manifest)


@pytest.mark.parametrize("source,resize", [("processed", 32), ("processed", None), ("raw", 40)])
def test_per_batch_input_equals_the_former_resize_then_crop(tmp_path, source, resize):
    """The tasks' transform, batch by batch, gives the model input the job used to
    compute for all rows at once: to_model_input at the resize, then the centre crop."""
    from hwbench.data import center_crop, to_model_input

    proc, split, manifest = _tiny_store(tmp_path)
    model = {"name": "small_cnn", "in_channels": 3, "input_size": 28, "normalize": "mnist"}
    cfg = {
        "writers": {"A": "w000", "B": "w001"},
        "train_splits": ["train", "val"],
        "test_split": "test",
        "input": {"source": source, "resize": resize},
        "model": model,
    }
    tasks = job.load_tasks(proc, split, cfg, manifest)
    size = None if source == "raw" else resize or 28
    whole = to_model_input(tasks.x, size=size, channels=3, normalize="mnist")
    whole = center_crop(whole, 28 if resize else None).contiguous()
    per_batch = torch.cat([tasks.transform(tasks.x[i : i + 3]) for i in range(0, 8, 3)])
    assert torch.equal(per_batch, whole)


def test_fisher_through_the_transform_equals_the_fisher_of_the_float_input():
    """EWC's Fisher over uint8 chunks made model input on the device, as the job
    computes it, equals the Fisher of the float copy of the whole task."""
    from hwbench.data import to_model_input

    tasks = _two_writer_tasks()
    model = job.make_model(_cfg(), 10, 0, torch.device("cpu"))
    part = tasks.part("Ann", "train")
    float_x = to_model_input(part["x"], normalize="mnist")
    whole = job.continual.fisher_diagonal(model, float_x, part["y"], chunk_size=16)
    transform = job._on_device(tasks.transform, torch.device("cpu"))
    chunked = job.continual.fisher_diagonal(
        model, part["x"], part["y"], transform=transform, chunk_size=16
    )
    assert whole.keys() == chunked.keys()
    assert all(torch.equal(whole[k], chunked[k]) for k in whole)


# --- the protocol -----------------------------------------------------------------------


def _two_writer_tasks(seed: int = 0) -> job.Tasks:
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(10), 6)
    images = np.concatenate([_pattern_images(labels, 0.3, rng), _pattern_images(labels, 0.3, rng)])
    images[len(labels) :] = images[len(labels) :, ::-1]  # writer B mirrors the blocks
    y = np.tile(labels, 2)
    idx = np.arange(len(y))
    rows = {
        "Ann": {"train": idx[:40], "test": idx[40:60]},
        "Bob": {"train": idx[60:100], "test": idx[100:]},
    }
    return _tasks_from_arrays(np.ascontiguousarray(images), y, rows)


def test_sequence_fills_R_from_row_zero_and_is_deterministic(tmp_path):
    torch.set_num_threads(1)
    tasks = _two_writer_tasks()
    cfg = _cfg(train={"epochs": 2})
    cpu = torch.device("cpu")
    a = job.run_sequence(tasks, ["Ann", "Bob"], "ewc", cfg, 0, tmp_path / "a", cpu)
    b = job.run_sequence(tasks, ["Ann", "Bob"], "ewc", cfg, 0, tmp_path / "b", cpu)
    job.run_sequence(tasks, ["Ann", "Bob"], "ewc", cfg, 1, tmp_path / "c", cpu)
    Ra = pd.read_csv(tmp_path / "a" / "R.csv")
    assert Ra["after"].tolist() == ["none", "Ann", "Bob"]
    assert Ra.shape == (3, 3)
    # Row 0 is the untrained model: chance level, not the trained accuracy.
    assert Ra.loc[0, "Ann"] < 0.5 and Ra.loc[1, "Ann"] > 0.8
    pd.testing.assert_frame_equal(Ra, pd.read_csv(tmp_path / "b" / "R.csv"))
    assert a["metrics"] == b["metrics"]
    wa = load_state(tmp_path / "a" / "model.pt")
    wb = load_state(tmp_path / "b" / "model.pt")
    wc = load_state(tmp_path / "c" / "model.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    metrics = job.continual.transfer_metrics(Ra[["Ann", "Bob"]].to_numpy())
    assert a["metrics"]["acc"] == pytest.approx(metrics["acc"])
    curves = pd.read_csv(tmp_path / "a" / "curves.csv")
    assert curves["step"].tolist() == [1, 2, 3, 4]
    assert curves["task"].tolist() == ["Ann", "Ann", "Bob", "Bob"]
    assert {"test_acc_Ann", "test_acc_Bob", "train_ewc"} <= set(curves.columns)
    # EWC has nothing to guard during the first task, and something during the second.
    assert curves["train_ewc"].iloc[:2].eq(0).all() and curves["train_ewc"].iloc[2:].gt(0).all()
    assert not (tmp_path / "a" / "state.pt").exists()


def _kill_during_second_task(monkeypatch, tasks, cfg, run_dir):
    """Run an EWC sequence Ann, Bob that dies as its second task starts (state.pt kept)."""
    real_fit, calls = job.fit, []

    def dying_fit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed during the second task")
        return real_fit(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(job, "fit", dying_fit)
        with pytest.raises(KeyboardInterrupt):
            job.run_sequence(tasks, ["Ann", "Bob"], "ewc", cfg, 0, run_dir, "cpu")
    assert (run_dir / "state.pt").exists()


def test_sequence_resumes_after_a_killed_task(tmp_path, monkeypatch):
    torch.set_num_threads(1)
    tasks = _two_writer_tasks()
    cfg = _cfg(train={"epochs": 2})
    cpu = torch.device("cpu")
    whole = job.run_sequence(tasks, ["Ann", "Bob"], "ewc", cfg, 0, tmp_path / "whole", cpu)
    _kill_during_second_task(monkeypatch, tasks, cfg, tmp_path / "cut")
    resumed = job.run_sequence(tasks, ["Ann", "Bob"], "ewc", cfg, 0, tmp_path / "cut", cpu)
    assert resumed["metrics"] == whole["metrics"]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "whole" / "R.csv"), pd.read_csv(tmp_path / "cut" / "R.csv")
    )


@pytest.mark.parametrize("change", ["data", "ewc_lambda"])
def test_stale_sequence_state_starts_over(tmp_path, monkeypatch, caplog, change):
    """A job killed after its first task, rerun on changed data (or another EWC lambda),
    must not resume the old model, R and EWC anchors: it starts over, with a log line,
    and ends exactly like a fresh run on the new data and settings."""
    torch.set_num_threads(1)
    cfg = _cfg(train={"epochs": 2})
    cpu = torch.device("cpu")
    _kill_during_second_task(monkeypatch, _two_writer_tasks(0), cfg, tmp_path / "cut")

    new_tasks, new_cfg = _two_writer_tasks(0), cfg
    if change == "data":
        new_tasks = _two_writer_tasks(1)  # other images of the same shape and labels
    else:
        new_cfg = _cfg(train={"epochs": 2}, ewc={"lambda": 5.0})
    with caplog.at_level(logging.WARNING, logger="hwbench.lifelong"):
        again = job.run_sequence(
            new_tasks, ["Ann", "Bob"], "ewc", new_cfg, 0, tmp_path / "cut", cpu
        )
    fresh = job.run_sequence(new_tasks, ["Ann", "Bob"], "ewc", new_cfg, 0, tmp_path / "new", cpu)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "cut" / "R.csv"), pd.read_csv(tmp_path / "new" / "R.csv")
    )
    assert again["metrics"] == fresh["metrics"]
    cut, new = load_state(tmp_path / "cut" / "model.pt"), load_state(tmp_path / "new" / "model.pt")
    assert all(torch.equal(cut[k], new[k]) for k in cut)
    assert "starting over" in caplog.text
    assert ("(['data'])" if change == "data" else "(['settings'])") in caplog.text


def test_sequence_eval_json_is_the_engine_record(tmp_path):
    torch.set_num_threads(1)
    cfg = _cfg(train={"epochs": 1})
    record = job.run_sequence(_two_writer_tasks(), ["Bob", "Ann"], "basic", cfg, 3,
                              tmp_path, "cpu", "B_first")  # fmt: skip
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert {k: saved[k] for k in ("method", "order", "sequence", "seed")} == {
        "method": "basic",
        "order": "B_first",
        "sequence": ["Bob", "Ann"],
        "seed": 3,
    }
    assert set(saved["metrics"]) == {"acc", "bwt", "fwt", "final"}
    fit = saved["fit"]
    assert fit["epochs_run"] == 2 and fit["stop_reason"] == "epochs" and fit["wall_s"] > 0
    walls = [json.loads((tmp_path / d / "run.json").read_text())["wall_s"]
             for d in ("task1_Bob", "task2_Ann")]  # fmt: skip
    assert fit["wall_s"] == pytest.approx(sum(walls))
    assert fit["device"].startswith("cpu")


def test_multitask_trains_on_all_writers(tmp_path):
    torch.set_num_threads(1)
    tasks = _two_writer_tasks()
    result = job.run_multitask(tasks, _cfg(multitask={"epochs": 8}), 0, tmp_path, "cpu")
    assert set(result["metrics"]["final"]) == {"Ann", "Bob"}
    metrics = result["metrics"]
    assert metrics["acc"] == pytest.approx(np.mean(list(metrics["final"].values())))
    assert metrics["acc"] > 0.8
    assert result["method"] == "multitask" and result["order"] == "Whole Dataset"
    assert result["fit"]["epochs_run"] == 8
    assert len(pd.read_csv(tmp_path / "curves.csv")) == 8


# --- the table ---------------------------------------------------------------------------


def test_table_layout_paper_beside_and_curriculum_joined_on_sequence():
    runs = pd.DataFrame(
        [
            ("basic", "Wang_Shen_Peng_Cheng", "Wang_Shen_Peng_Cheng", 0, 0.90, 0.01, 0.70),
            ("basic", "Wang_Shen_Peng_Cheng", "Wang_Shen_Peng_Cheng", 1, 0.92, 0.03, 0.72),
            ("ewc", "curriculum", "Shen_Peng_Cheng_Wang", 0, 0.95, 0.00, 0.50),
            ("ewc", "curriculum", "Shen_Peng_Cheng_Wang", 1, 0.97, 0.02, 0.60),
            ("multitask", "Whole Dataset", "Whole Dataset", 0, 0.99, np.nan, np.nan),
            ("multitask", "Whole Dataset", "Whole Dataset", 1, 1.00, np.nan, np.nan),
        ],
        columns=["method", "order", "sequence", "seed", "acc", "bwt", "fwt"],
    )
    table = llr.lifelong_table(runs, model="small_cnn")
    assert table["method"].tolist() == ["ewc", "basic", "multitask"]
    assert table.columns[:4].tolist() == ["method", "model", "order", "sequence"]
    for m in ("ACC", "BWT", "FWT"):
        assert {m, f"{m}_paper", f"{m}_diff"} <= set(table.columns)
    basic = table[table["method"] == "basic"].iloc[0]
    assert basic["ACC"] == f"0.9100 ± {np.std([0.90, 0.92], ddof=1):.4f}"
    assert basic["ACC_paper"] == "0.9565 ± 0.0215"
    assert basic["ACC_diff"] == f"{0.91 - 0.9565:+.4f}"
    cur = table[table["method"] == "ewc"].iloc[0]
    assert cur["ACC_paper"] == "0.9694 ± 0.0181"  # the paper's Shen_Peng_Cheng_Wang row
    multi = table[table["method"] == "multitask"].iloc[0]
    assert multi["ACC_paper"] == "0.9958 ± 0.0042" and multi["BWT"] == ""
    assert table["n"].tolist() == [2, 2, 2]


def _record(method, order, sequence, seed, acc, bwt=None, fwt=None) -> dict:
    """An eval.json as engine.write_result writes it, with known numbers."""
    metrics = {"acc": acc, "final": {}}
    if bwt is not None:
        metrics.update(bwt=bwt, fwt=fwt)
    fit = {"device": "cpu (1 threads)", "wall_s": 1.0, "epochs_run": 4, "best_epoch": None,
           "best_value": None, "stop_reason": "epochs"}  # fmt: skip
    return {"method": method, "order": order, "sequence": sequence, "seed": seed,
            "metrics": metrics, "fit": fit}  # fmt: skip


def _cell(values, digits=4):
    """Our "mean ± sd" the independent way: statistics' mean and sample sd."""
    if len(values) == 1:
        return f"{statistics.mean(values):.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def test_table_every_cell_from_hand_made_records(tmp_path):
    """Known eval.json numbers -> every cell of Table 1 (issue 19 item 3)."""
    wssc, spcw = "Wang_Shen_Peng_Cheng", "Shen_Peng_Cheng_Wang"
    basic = [(0.90, 0.01, 0.70), (0.92, 0.03, 0.72), (0.97, -0.01, 0.80)]
    ewc = [(0.95, 0.00, 0.50), (0.99, 0.04, 0.56)]
    multi = [0.99, 1.00, 0.96]
    records = [_record("basic", wssc, wssc.split("_"), s, *v) for s, v in enumerate(basic)]
    records += [_record("ewc", "curriculum", spcw.split("_"), s, *v) for s, v in enumerate(ewc)]
    records += [_record("multitask", "Whole Dataset", ["Wang", "Shen", "Peng", "Cheng"], s, a)
                for s, a in enumerate(multi)]  # fmt: skip
    files = []
    for i, rec in enumerate(records):
        files.append(tmp_path / f"r{i}" / "eval.json")
        files[-1].parent.mkdir()
        files[-1].write_text(json.dumps(rec))
    table = llr.lifelong_table(llr.collect_runs(files), model="resnet18")

    def mean(vals):
        return statistics.mean(vals)

    def diff(ours, paper):
        return f"{round(mean(ours) - paper, 4) + 0.0:+.4f}"

    b = list(zip(*basic, strict=True))
    e = list(zip(*ewc, strict=True))
    expected = pd.DataFrame(
        [
            ["ewc", "resnet18", "curriculum", spcw,
             _cell(e[0]), "0.9694 ± 0.0181", diff(e[0], 0.9694),
             _cell(e[1]), "0.0055 ± 0.0148", diff(e[1], 0.0055),
             _cell(e[2]), "0.5505 ± 0.0389", diff(e[2], 0.5505), 2],
            ["basic", "resnet18", wssc, wssc,
             _cell(b[0]), "0.9565 ± 0.0215", diff(b[0], 0.9565),
             _cell(b[1]), "0.0623 ± 0.0145", diff(b[1], 0.0623),
             _cell(b[2]), "0.7649 ± 0.0103", diff(b[2], 0.7649), 3],
            ["multitask", "resnet18", "Whole Dataset", "Whole Dataset",
             _cell(multi), "0.9958 ± 0.0042", diff(multi, 0.9958),
             "", "", "", "", "", "", 3],
        ],
        columns=["method", "model", "order", "sequence",
                 "ACC", "ACC_paper", "ACC_diff", "BWT", "BWT_paper", "BWT_diff",
                 "FWT", "FWT_paper", "FWT_diff", "n"],
    )  # fmt: skip
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    # spot values written out, so the expectation above is not only a re-derivation
    assert table.loc[1, "ACC"] == "0.9300 ± 0.0361" and table.loc[1, "ACC_diff"] == "-0.0265"


def test_table_when_the_curriculum_equals_a_configured_order(tmp_path):
    """Issue 17 item 3: two of our rows (the configured order and the curriculum that
    computed the same sequence) meet one paper row; each gets it, none is lost."""
    wspc = "Wang_Shen_Peng_Cheng"
    records = [
        _record("basic", order, wspc.split("_"), seed, acc, bwt, fwt)
        for order, values in ((wspc, [(0.90, 0.01, 0.70), (0.94, 0.03, 0.74)]),
                              ("curriculum", [(0.80, -0.02, 0.60), (0.84, 0.00, 0.66)]))
        for seed, (acc, bwt, fwt) in enumerate(values)
    ]  # fmt: skip
    runs = pd.DataFrame(
        [
            {
                "method": r["method"],
                "order": r["order"],
                "sequence": "_".join(r["sequence"]),
                "seed": r["seed"],
                **r["metrics"],
            }
            for r in records
        ]  # fmt: skip
    ).drop(columns="final")
    table = llr.lifelong_table(runs, model="small_cnn")
    assert table["order"].tolist() == [wspc, "curriculum"]
    assert table["sequence"].tolist() == [wspc, wspc]
    assert table["ACC"].tolist() == [_cell([0.90, 0.94]), _cell([0.80, 0.84])]
    assert table["ACC_paper"].tolist() == ["0.9565 ± 0.0215"] * 2
    assert table["ACC_diff"].tolist() == [f"{0.92 - 0.9565:+.4f}", f"{0.82 - 0.9565:+.4f}"]
    assert table["FWT_diff"].tolist() == [f"{0.72 - 0.7649:+.4f}", f"{0.63 - 0.7649:+.4f}"]
    assert table["n"].tolist() == [2, 2]


# --- the plan ----------------------------------------------------------------------------


def test_plan_does_not_import_torch():
    code = "import sys, hwbench.studies.lifelong.plan; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def _ll(**over) -> dict:
    ll = yaml.safe_load((REPO / "config.yaml").read_text())["lifelong"]
    return {**ll, **over}


def test_plan_runs_inputs_and_params():
    ll = _ll(orders=["Shen_Peng_Cheng_Wang", "curriculum"], methods=["ewc", "multitask"],
             seeds=[0, 2])  # fmt: skip
    assert plan.runs(ll) == [
        "results/lifelong/ewc/Shen_Peng_Cheng_Wang/s0",
        "results/lifelong/ewc/curriculum/s0",
        "results/lifelong/ewc/Shen_Peng_Cheng_Wang/s2",
        "results/lifelong/ewc/curriculum/s2",
        "results/lifelong/multitask/s0",
        "results/lifelong/multitask/s2",
    ]
    inputs = plan.report_inputs(ll)
    assert inputs["evals"][0] == "results/lifelong/ewc/Shen_Peng_Cheng_Wang/s0/eval.json"
    assert len(inputs["curves"]) == 6 and len(inputs["matrices"]) == 4
    assert inputs["dataset"] == [
        "data/processed/synth_lifelong/images.npy",
        "data/processed/synth_lifelong/meta.csv",
    ]
    assert plan.benchmarks(ll)[-1] == "benchmarks/jobs/lifelong/curriculum.tsv"
    assert plan.benchmarks(ll)[0] == "benchmarks/jobs/lifelong/ewc/Shen_Peng_Cheng_Wang/s0.tsv"
    data = plan.data_inputs(ll)
    assert data["split"] == "data/splits/synth_lifelong/stratified.csv" and "raw" not in data
    raw = plan.data_inputs({**ll, "input": {"source": "raw", "resize": 256}})
    assert raw["raw"] == "data/raw/synth_lifelong/manifest.csv"
    assert plan.sequence_inputs(ll, "curriculum")["order"] == plan.CURRICULUM_ORDER
    assert "order" not in plan.sequence_inputs(ll, "Shen_Peng_Cheng_Wang")
    # basic does not see the EWC lambda: changing it reruns only EWC jobs
    assert "ewc" not in plan.sequence_cfg(ll, "basic")
    assert plan.sequence_cfg(ll, "ewc")["ewc"] == ll["ewc"]
    assert "curriculum" in plan.job_cfg(ll, "curriculum") and "ewc" not in plan.job_cfg(ll)
    with pytest.raises(ValueError, match="multitask"):
        plan.sequence_cfg(ll, "multitask")


def test_plan_checks_orders_against_writers():
    plan.check_config(_ll())
    with pytest.raises(ValueError, match="Zhao"):
        plan.check_config(_ll(orders=["Shen_Peng_Cheng_Zhao"]))


# --- end to end ----------------------------------------------------------------------------


@pytest.mark.e2e
def test_snakefile_end_to_end_writes_the_table(workdir):
    overrides = {
        "synth": {"synth_lifelong": {"samples_per_class": 1, "image_size": 64}},
        "lifelong": {
            "orders": ["Shen_Peng_Cheng_Wang", "curriculum"],
            "methods": ["ewc", "multitask"],
            "seeds": [0, 1],
            "train": {"epochs": 1},
            "multitask": {"epochs": 1},
            "curriculum": {"epochs": 1},
            "device": "cpu",
        },
    }
    write_config(workdir, overrides)
    run_snakemake(workdir, "reports/lifelong.csv")
    table = pd.read_csv(workdir / "reports" / "lifelong.csv", keep_default_na=False)
    assert table["method"].tolist() == ["ewc", "ewc", "multitask"]
    assert table["order"].tolist()[:2] == ["Shen_Peng_Cheng_Wang", "curriculum"]
    assert table.loc[0, "ACC_paper"] == "0.9694 ± 0.0181"
    assert table["n"].tolist() == [2, 2, 2]
    # A cell is the mean ± sd over seeds of the runs' eval.json values.
    for row, run in ((0, "ewc/Shen_Peng_Cheng_Wang"), (2, "multitask")):
        accs = [
            json.loads((workdir / f"results/lifelong/{run}/s{s}/eval.json").read_text())
            for s in (0, 1)
        ]
        assert table.loc[row, "ACC"] == _cell([r["metrics"]["acc"] for r in accs])
    for name in ("lifelong.md", "lifelong.json", "lifelong_curves.png", "lifelong_R.png"):
        assert (workdir / "reports" / name).stat().st_size > 0
    R = pd.read_csv(workdir / "results/lifelong/ewc/curriculum/s0/R.csv")
    assert R.shape == (5, 5)
    assert planned_jobs(workdir, "reports/lifelong.csv") == {}
    # A new EWC lambda reruns the EWC runs and the report, nothing else.
    write_config(workdir, {**overrides, "lifelong": {**overrides["lifelong"],
                                                     "ewc": {"lambda": 5.0}}})  # fmt: skip
    assert planned_jobs(workdir, "reports/lifelong.csv") == {
        "lifelong_sequence": 4,
        "lifelong_report": 1,
    }


def test_evaluation_passes_use_the_configured_eval_batch(monkeypatch):
    """task_accuracies predicts in train.eval_batch_size batches, not one fixed size: the
    activations of a pass stay bounded whatever the test set's size."""
    import torch

    from hwbench.studies.lifelong import job

    seen = []

    def fake_predict(model, x, batch_size, transform=None, device=None):
        seen.append(batch_size)
        return torch.zeros(len(x), 2)

    monkeypatch.setattr(job, "predict", fake_predict)
    x = torch.zeros(10, 4, 4, dtype=torch.uint8)
    y = torch.zeros(10, dtype=torch.long)
    rows = {"a": {"test": np.arange(6)}, "b": {"test": np.arange(6, 10)}}
    tasks = job.Tasks(x, y, rows, ["0", "1"], eval_batch_size=3)
    model = torch.nn.Linear(1, 1)
    assert job.task_accuracies(model, tasks) == {"a": 1.0, "b": 1.0}
    assert job.task_accuracies(model, tasks, batch_size=5) == {"a": 1.0, "b": 1.0}
    assert seen == [3, 5]
