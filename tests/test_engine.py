"""The training loop: determinism, resume, early stopping, freezing, plug-ins, data helpers."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from hwbench import data as hwdata
from hwbench.engine import (
    CHECKPOINT,
    METRICS,
    EarlyStopping,
    TrainConfig,
    claim_gpu,
    fit,
    pick_device,
    seed_everything,
)
from hwbench.models import build_model
from hwbench.store import save_processed

torch.set_num_threads(1)


def toy_data(n=240, classes=4, seed=0):
    """Images whose class sets a bright square in one quadrant, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.3
    for c in range(classes):
        r, col = divmod(c, 2)
        x[y == c, :, r * 14 + 3 : r * 14 + 11, col * 14 + 3 : col * 14 + 11] += 0.7
    return {"x": x, "y": y}


def make_model(name="small_cnn", seed=0, classes=4):
    seed_everything(seed)
    return build_model(name, classes)


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


CFG = dict(epochs=3, batch_size=32, seed=3, amp=False)
# Tests that interrupt a run at an epoch end checkpoint at every epoch end (the default
# writes one when checkpoint_every_s has passed, and at the end).
EVERY_EPOCH = dict(checkpoint_every_s=0)


def test_learns_and_logs_metrics(tmp_path):
    train, val = toy_data(), toy_data(80, seed=1)
    result = fit(make_model(), train, TrainConfig(**CFG), tmp_path, eval_sets={"val": val})
    frame = pd.read_csv(tmp_path / METRICS)
    assert list(frame["epoch"]) == [1, 2, 3]
    for col in ["train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr", "time_s"]:
        assert col in frame.columns
    assert frame["val_acc"].iloc[-1] > 0.9  # four classes: chance is 0.25
    assert frame["train_loss"].iloc[-1] < frame["train_loss"].iloc[0]
    assert result.stop_reason == "epochs" and result.best_epoch is not None
    for name in ["model.pt", "best.pt", "run.json"]:
        assert (tmp_path / name).exists()
    # The checkpoint serves an interrupted run only; a complete run leaves none behind.
    assert not (tmp_path / CHECKPOINT).exists()


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    train = toy_data()
    runs = []
    for i, seed in enumerate([3, 3, 4]):
        model = make_model("base_cnn")  # has dropout: the loop's RNG matters
        fit(model, train, TrainConfig(**{**CFG, "epochs": 2, "seed": seed}), tmp_path / str(i))
        runs.append(weights(model))
    assert_same_weights(runs[0], runs[1])
    assert not torch.equal(runs[0]["head.weight"], runs[2]["head.weight"])


class Interrupt(Exception):
    pass


def test_resumed_run_equals_uninterrupted(tmp_path):
    train, val = toy_data(), toy_data(60, seed=1)
    cfg = TrainConfig(**{**CFG, "epochs": 4, "lr_milestones": [2]}, **EVERY_EPOCH)

    full = make_model("base_cnn")
    fit(full, train, cfg, tmp_path / "full", eval_sets={"val": val})

    def kill_after_2(epoch, row):
        if epoch == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(make_model("base_cnn"), train, cfg, tmp_path / "cut", eval_sets={"val": val},
            on_epoch_end=kill_after_2)  # fmt: skip
    assert len(pd.read_csv(tmp_path / "cut" / METRICS)) == 2
    # A fresh process: a model built with another seed; everything comes from the checkpoint.
    resumed = make_model("base_cnn", seed=99)
    result = fit(resumed, train, cfg, tmp_path / "cut", eval_sets={"val": val})
    assert_same_weights(weights(full), weights(resumed))
    a = pd.read_csv(tmp_path / "full" / METRICS).drop(columns="time_s")
    b = pd.read_csv(tmp_path / "cut" / METRICS).drop(columns="time_s")
    pd.testing.assert_frame_equal(a, b)
    assert [r["lr"] for r in result.history] == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4])

    # A complete run keeps no checkpoint, so a rerun (Snakemake reruns a job whose code
    # or params changed) trains afresh instead of returning stale weights.
    assert not (tmp_path / "cut" / CHECKPOINT).exists()
    again = make_model("base_cnn", seed=7)
    result2 = fit(again, train, cfg, tmp_path / "cut", eval_sets={"val": val})
    assert len(result2.history) == 4
    assert not torch.equal(weights(full)["head.weight"], weights(again)["head.weight"])


def test_changed_config_starts_over(tmp_path):
    train = toy_data(64)
    fit(make_model(), train, TrainConfig(**{**CFG, "epochs": 2}), tmp_path)
    result = fit(make_model(), train, TrainConfig(**{**CFG, "epochs": 2, "lr": 0.01}), tmp_path)
    assert len(result.history) == 2 and result.history[0]["lr"] == 0.01
    assert list(pd.read_csv(tmp_path / METRICS)["lr"]) == [0.01, 0.01]


def test_changed_run_fingerprint_starts_over(tmp_path):
    # settings outside TrainConfig (a loss weight, a data checksum) decide resuming too
    train = toy_data(64)
    cfg = TrainConfig(**{**CFG, "epochs": 2}, **EVERY_EPOCH)

    def stop_after_1(epoch, row):
        raise Interrupt

    for name in ("same", "other"):
        with pytest.raises(Interrupt):
            fit(make_model(), train, cfg, tmp_path / name, fingerprint={"sigma": 0.2},
                on_epoch_end=stop_after_1)  # fmt: skip
    same = fit(make_model(seed=5), train, cfg, tmp_path / "same", fingerprint={"sigma": 0.2})
    other = fit(make_model(seed=5), train, cfg, tmp_path / "other", fingerprint={"sigma": 0.5})
    assert len(same.history) == len(other.history) == 2
    # resumed: epoch 1 comes from the checkpoint; started over: from the seed-5 weights
    assert same.history[0]["train_loss"] != other.history[0]["train_loss"]


def scripted(values, key="score"):
    """An eval_fn returning the given monitored value at each epoch."""
    return lambda model, epoch: {key: values[epoch - 1]}


def test_early_stopping_patience(tmp_path):
    values = [1.0, 0.5, 0.49, 0.6, 0.55, 0.4, 0.3]
    cfg = TrainConfig(**{**CFG, "epochs": 7, "monitor": "score", "patience": 2, "min_delta": 0.05})
    result = fit(make_model(), toy_data(64), cfg, tmp_path, eval_fn=scripted(values))
    # Epoch 3 (0.49) is not better by more than 0.05; epochs 3 and 4 fail -> stop after 4.
    assert len(result.history) == 4
    assert result.stop_reason == "patience"
    assert (result.best_epoch, result.best_value) == (2, 0.5)


def test_early_stopping_plateau_rule():
    stopper = EarlyStopping(stop_eps=1e-5)
    assert stopper.update(0.5, 1) == (True, None)
    assert stopper.update(0.3, 2) == (True, None)
    assert stopper.update(0.300005, 3) == (False, "plateau")
    maxer = EarlyStopping(mode="max", patience=1)
    assert maxer.update(0.5, 1) == (True, None)
    assert maxer.update(0.4, 2) == (False, "patience")


def test_plateau_stops_the_loop(tmp_path):
    cfg = TrainConfig(**{**CFG, "epochs": 6, "monitor": "score", "stop_eps": 1e-5})
    result = fit(make_model(), toy_data(64), cfg, tmp_path, eval_fn=scripted([3, 2, 1, 1, 0, 0]))
    assert len(result.history) == 4 and result.stop_reason == "plateau"


def test_missing_monitor_is_a_clear_error(tmp_path):
    cfg = TrainConfig(**{**CFG, "epochs": 2, "patience": 1})
    with pytest.raises(ValueError, match="val_loss"):
        fit(make_model(), toy_data(64), cfg, tmp_path)


def test_frozen_parameters_and_bn_statistics_stay_unchanged(tmp_path):
    model = make_model()
    before = weights(model)
    cfg = TrainConfig(**{**CFG, "epochs": 2, "trainable": ["head"]})
    fit(model, toy_data(), cfg, tmp_path)
    after = weights(model)
    for k in before:
        if k.startswith("head."):
            assert not torch.equal(before[k], after[k]), k
        else:
            assert torch.equal(before[k], after[k]), k


class LearnedWeightLoss(nn.Module):
    """Cross-entropy with a learned scale, to check nn.Module losses are optimised."""

    def __init__(self):
        super().__init__()
        self.log_var = nn.Parameter(torch.zeros(()))

    def forward(self, outputs, batch):
        ce = nn.functional.cross_entropy(outputs["main"], batch["y"])
        aux = nn.functional.cross_entropy(outputs["parity"], batch["y"] % 2)
        loss = torch.exp(-self.log_var) * ce + self.log_var + aux
        return loss, {"ce": ce, "aux": aux}


def test_plugged_heads_and_module_loss(tmp_path):
    model = make_model()
    model.add_head("parity", 2)
    loss = LearnedWeightLoss()
    val = toy_data(40, seed=2)
    saved = {}

    def read_checkpoint(epoch, row):
        saved.update(torch.load(tmp_path / CHECKPOINT, weights_only=False))

    result = fit(model, toy_data(), TrainConfig(**CFG, **EVERY_EPOCH), tmp_path, loss_fn=loss,
                 eval_sets={"val": val}, on_epoch_end=read_checkpoint)  # fmt: skip
    assert loss.log_var.item() != 0.0
    row = result.final
    for col in ["train_ce", "train_aux", "val_ce", "val_aux", "val_acc", "val_f1"]:
        assert col in row
    assert saved["loss_fn"]["log_var"].item() == pytest.approx(loss.log_var.item())


def test_batch_schedule(tmp_path):
    cfg = TrainConfig(**{**CFG, "batch_schedule": [[2, 16], [1, 64]]})
    assert cfg.epochs == 3
    result = fit(make_model(), toy_data(64), cfg, tmp_path)
    assert [r["batch_size"] for r in result.history] == [16, 16, 64]


def test_config_from_dict_rejects_unknown_keys():
    assert TrainConfig.from_dict({"epochs": 2, "optimizer": "sgd"}).optimizer == "sgd"
    with pytest.raises(ValueError, match="unknown training keys.*'epoch'"):
        TrainConfig.from_dict({"epoch": 2})
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="rmsprop")


def test_pick_device_cpu():
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert pick_device().type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA"):
            pick_device("cuda")


# --- data helpers -----------------------------------------------------------------------


def test_load_arrays_from_store_and_split(tmp_path):
    images = np.arange(6 * 28 * 28, dtype=np.uint32).reshape(6, 28, 28).astype(np.uint8)
    meta = pd.DataFrame(
        {
            "label": [3, 4, 3, 5, 4, 5],
            "label_name": list("abcdef"),
            "script": "latin",
            "writer": "w",
            "pen": "p",
            "source_split": "train",
        }
    )
    save_processed(tmp_path / "ds", images, meta)
    pd.DataFrame({"index": [4, 1, 0, 2, 5, 3], "split": ["train"] * 3 + ["test"] * 3}).to_csv(
        tmp_path / "split.csv", index=False
    )
    x, y = hwdata.load_arrays(tmp_path / "ds", tmp_path / "split.csv", "train", {3: 0, 4: 1, 5: 2})
    assert x.dtype == torch.uint8 and torch.equal(x, torch.from_numpy(images[[4, 1, 0]]))
    assert y.tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match=r"labels \[5\] are not in the label map"):
        hwdata.load_arrays(tmp_path / "ds", tmp_path / "split.csv", "test", {3: 0, 4: 1})
    with pytest.raises(ValueError, match="no rows in split 'val'"):
        hwdata.load_arrays(tmp_path / "ds", tmp_path / "split.csv", "val")


def test_to_model_input_once_for_all():
    images = torch.zeros(5, 28, 28, dtype=torch.uint8)
    images[:, 10:18, 10:18] = 255
    x = hwdata.to_model_input(images, size=32, channels=3, normalize="imagenet", chunk=2)
    assert x.shape == (5, 3, 32, 32) and x.dtype == torch.float32
    # Background 0 normalised per channel: (0 - mean) / std.
    torch.testing.assert_close(
        x[0, :, 0, 0], torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    )
    plain = hwdata.to_model_input(images)
    assert plain.shape == (5, 1, 28, 28) and plain.max() == 1.0 and plain.min() == 0.0
    with pytest.raises(ValueError, match="3 channels"):
        hwdata.to_model_input(images, normalize="imagenet")


def test_schemas_match_the_code():
    import dataclasses
    import inspect
    from pathlib import Path

    import jsonschema
    import yaml

    from hwbench.models import MODEL_NAMES, build_model

    root = Path(__file__).resolve().parents[1] / "workflow" / "schemas"
    train = yaml.safe_load((root / "train.schema.yaml").read_text())
    assert set(train["properties"]) == {f.name for f in dataclasses.fields(TrainConfig)}
    jsonschema.validate(dataclasses.asdict(TrainConfig()), train)
    jsonschema.validate(
        {"epochs": 3, "batch_schedule": [[2, 32], [1, 64]], "patience": None}, train
    )
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"optimiser": "adam"}, train)

    model = yaml.safe_load((root / "model.schema.yaml").read_text())
    build_args = set(inspect.signature(build_model).parameters) - {"name", "num_classes"}
    assert set(model["properties"]) == build_args | {"name", "normalize"}
    assert model["properties"]["name"]["enum"] == list(MODEL_NAMES)
    assert set(model["properties"]["normalize"]["enum"]) == set(hwdata.NORMALIZATION)


def test_model_and_input_from_config():
    from hwbench.models import model_from_config

    cfg = {"name": "resnet18", "stem": "imagenet", "in_channels": 3, "input_size": 32,
           "normalize": "imagenet"}  # fmt: skip
    model = model_from_config(cfg, 5).eval()
    x = hwdata.to_model_input(
        torch.zeros(2, 28, 28, dtype=torch.uint8), **hwdata.input_options(cfg)
    )
    assert x.shape == (2, 3, 32, 32)
    with torch.no_grad():
        assert model(x).shape == (2, 5)


def test_checkpoint_of_another_model_starts_over_from_initial_weights(tmp_path):
    train = toy_data(64)
    cfg = TrainConfig(**{**CFG, "epochs": 2}, **EVERY_EPOCH)

    def stop_after_1(epoch, row):
        raise Interrupt

    with pytest.raises(Interrupt):
        fit(make_model(classes=4), train, cfg, tmp_path / "a", on_epoch_end=stop_after_1)
    other = make_model(classes=5)  # other head shape, same config
    reference = make_model(classes=5)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / CHECKPOINT).write_bytes((tmp_path / "a" / CHECKPOINT).read_bytes())
    fit(other, {"x": train["x"], "y": train["y"] % 5}, cfg, tmp_path / "b")
    fit(reference, {"x": train["x"], "y": train["y"] % 5}, cfg, tmp_path / "c")
    assert_same_weights(weights(other), weights(reference))


def test_claim_gpu_gives_concurrent_jobs_different_gpus(tmp_path):
    free = [10, 30, 20]
    first, lock1 = claim_gpu(free, tmp_path)
    second, lock2 = claim_gpu(free, tmp_path)  # a second job starting at once
    third, lock3 = claim_gpu(free, tmp_path)
    assert (first, second, third) == (1, 2, 0)  # most free memory first, none shared
    shared, none = claim_gpu(free, tmp_path)  # all claimed: share the most free one
    assert (shared, none) == (1, None)
    lock2.close()  # that job ended: its GPU is free again
    again, lock4 = claim_gpu(free, tmp_path)
    assert again == 2 and lock4 is not None
    for lock in (lock1, lock3, lock4):
        lock.close()
