"""The job lifecycle owned by the engine: data fingerprints, mid-epoch checkpoints,
preemption, weights-only loading, restore, the result record."""

import json
import os
import pickle
import signal
import subprocess
import sys

import pytest
import torch

from hwbench.engine import (
    BEST_MODEL,
    CHECKPOINT,
    CheckpointError,
    Preempted,
    TrainConfig,
    fit,
    load_weights,
    result_record,
    safe_load,
    write_result,
)
from tests.test_engine import assert_same_weights, make_model, toy_data, weights

CFG = dict(epochs=2, batch_size=32, seed=5, amp=False)


def preempting_loss(at_step):
    """Cross-entropy that sends this process SIGTERM at the ``at_step``-th call."""
    calls = {"n": 0}

    def loss(outputs, batch):
        calls["n"] += 1
        if calls["n"] == at_step:
            os.kill(os.getpid(), signal.SIGTERM)
        return torch.nn.functional.cross_entropy(outputs, batch["y"]), {}

    return loss


def plain_loss(outputs, batch):
    return torch.nn.functional.cross_entropy(outputs, batch["y"]), {}


def interrupt_at(run_dir, call):
    """A run of CFG on toy_data preempted by SIGTERM at loss call ``call``."""
    with pytest.raises(Preempted):
        fit(
            make_model(),
            toy_data(),
            TrainConfig(**CFG),
            run_dir,
            loss_fn=preempting_loss(call),
            progress=False,
        )


def test_sigterm_mid_epoch_checkpoints_and_the_rerun_ends_identical(tmp_path):
    train, val = toy_data(), toy_data(60, seed=1)
    reference = make_model()
    fit(
        reference,
        train,
        TrainConfig(**CFG),
        tmp_path / "ref",
        loss_fn=plain_loss,
        eval_sets={"val": val},
        progress=False,
    )

    run_dir = tmp_path / "run"
    with pytest.raises(Preempted, match="resumes"):
        # 8 training steps in epoch 1, then 1 loss call for val: call 11 is epoch 2's step 2
        fit(
            make_model(),
            train,
            TrainConfig(**CFG),
            run_dir,
            loss_fn=preempting_loss(11),
            eval_sets={"val": val},
            progress=False,
        )
    state = safe_load(run_dir / CHECKPOINT)
    assert state["position"]["epoch"] == 2 and state["position"]["step"] == 2
    assert len(state["history"]) == 1
    # the retry is a fresh process in real life: another model object, same seed
    resumed = make_model(seed=99)
    result = fit(
        resumed,
        train,
        TrainConfig(**CFG),
        run_dir,
        loss_fn=plain_loss,
        eval_sets={"val": val},
        progress=False,
    )
    assert len(result.history) == 2
    assert_same_weights(weights(resumed), weights(reference))
    assert not (run_dir / CHECKPOINT).exists()


def test_checkpoint_every_s_writes_mid_epoch_checkpoints(tmp_path):
    seen = []

    def spy(outputs, batch):
        if (tmp_path / CHECKPOINT).exists():
            seen.append(safe_load(tmp_path / CHECKPOINT)["position"])
        return plain_loss(outputs, batch)

    cfg = TrainConfig(**{**CFG, "epochs": 1, "checkpoint_every_s": 0})
    fit(make_model(), toy_data(), cfg, tmp_path, loss_fn=spy, progress=False)
    steps = [p["step"] for p in seen if p is not None]
    assert steps == list(range(1, 8))  # after each of steps 1..7 (step 8 ends the epoch)


def test_checkpoint_interval_does_not_invalidate_a_checkpoint(tmp_path):
    interrupt_at(tmp_path, 3)
    cfg = TrainConfig(**{**CFG, "checkpoint_every_s": 5.0})
    result = fit(make_model(), toy_data(), cfg, tmp_path, loss_fn=plain_loss, progress=False)
    assert len(result.history) == 2
    assert not list(tmp_path.glob("*.rejected"))


def test_changed_data_starts_over(tmp_path, caplog):
    interrupt_at(tmp_path, 10)
    other = toy_data(seed=7)  # same shapes, other pixels: a rebuilt dataset
    fresh = make_model()
    with caplog.at_level("WARNING", logger="hwbench.engine"):
        fit(fresh, other, TrainConfig(**CFG), tmp_path, loss_fn=plain_loss, progress=False)
    assert "other settings" in caplog.text and "data" in caplog.text
    clean = make_model()
    fit(clean, other, TrainConfig(**CFG), tmp_path / "clean", loss_fn=plain_loss, progress=False)
    assert_same_weights(weights(fresh), weights(clean))


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = "/tmp/hwbench-test-payload-ran"


def test_planted_pickle_checkpoint_runs_no_code_and_is_set_aside(tmp_path, caplog):
    if os.path.exists(MARKER):
        os.unlink(MARKER)
    (tmp_path / CHECKPOINT).write_bytes(pickle.dumps({"fingerprint": Payload()}))
    torch.save({"x": Payload()}, tmp_path / "other.pt")
    model = make_model()
    with caplog.at_level("WARNING", logger="hwbench.engine"):
        fit(model, toy_data(), TrainConfig(**CFG), tmp_path, loss_fn=plain_loss, progress=False)
    assert not os.path.exists(MARKER), "a checkpoint ran code"
    assert (tmp_path / (CHECKPOINT + ".rejected")).exists()
    assert str(tmp_path / CHECKPOINT) in caplog.text
    with pytest.raises(CheckpointError, match=r"other\.pt.*delete it"):
        safe_load(tmp_path / "other.pt")
    assert not os.path.exists(MARKER)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_is_named_and_set_aside(tmp_path, caplog, damage):
    interrupt_at(tmp_path, 3)
    path = tmp_path / CHECKPOINT
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"\x00junk" * 50, "empty": b""}[damage]
    )
    with pytest.raises(CheckpointError, match=str(path)):
        safe_load(path)
    with caplog.at_level("WARNING", logger="hwbench.engine"):
        result = fit(
            make_model(),
            toy_data(),
            TrainConfig(**CFG),
            tmp_path,
            loss_fn=plain_loss,
            progress=False,
        )
    assert len(result.history) == 2
    assert "starting over" in caplog.text and str(path) in caplog.text


def test_restore_best_ends_with_the_best_epoch_weights(tmp_path):
    train, val = toy_data(), toy_data(60, seed=1)
    cfg = TrainConfig(**{**CFG, "epochs": 3, "monitor": "val_loss"})
    model = make_model()
    result = fit(
        model,
        train,
        cfg,
        tmp_path,
        eval_sets={"val": val},
        restore="best",
        loss_fn=plain_loss,
        progress=False,
    )
    best = make_model()
    load_weights(best, tmp_path / BEST_MODEL)
    assert_same_weights(weights(model), weights(best))
    assert result.best_epoch is not None
    in_memory = make_model()
    fit(
        in_memory,
        train,
        cfg,
        None,
        eval_sets={"val": val},
        restore="best",
        loss_fn=plain_loss,
        progress=False,
    )
    assert_same_weights(weights(in_memory), weights(best))
    with pytest.raises(ValueError, match="restore"):
        fit(make_model(), train, cfg, None, restore="first", progress=False)


def test_max_steps_caps_each_epoch(tmp_path):
    calls = []

    def counting(outputs, batch):
        calls.append(len(batch["y"]))
        return plain_loss(outputs, batch)

    fit(
        make_model(),
        toy_data(),
        TrainConfig(**{**CFG, "max_steps": 3}),
        None,
        loss_fn=counting,
        progress=False,
    )
    assert calls == [32] * 6
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)


def test_result_record_has_one_shape(tmp_path):
    result = fit(make_model(), toy_data(), TrainConfig(**CFG), tmp_path, progress=False)
    record = write_result(
        tmp_path / "eval.json", result, {"accuracy": torch.tensor(0.5)}, seed=3, method="base"
    )
    assert json.loads((tmp_path / "eval.json").read_text()) == record
    assert record["seed"] == 3 and record["method"] == "base"
    assert record["metrics"] == {"accuracy": 0.5}
    assert set(record["fit"]) == {
        "device",
        "wall_s",
        "epochs_run",
        "best_epoch",
        "best_value",
        "stop_reason",
    }
    assert record["fit"]["epochs_run"] == 2
    assert result_record(result, {}, seed=1)["fit"] == record["fit"]


def test_sigterm_to_a_training_process_exits_non_zero_with_a_checkpoint(tmp_path):
    """The real signal path: a child process trains, gets SIGTERM, exits non-zero."""
    script = f"""
import sys, time, torch
sys.path.insert(0, {str(os.getcwd())!r})
from tests.test_engine import make_model, toy_data
from hwbench.engine import TrainConfig, fit
import os, signal
def loss(outputs, batch):
    if not os.path.exists({str(tmp_path / "started")!r}):
        open({str(tmp_path / "started")!r}, 'w').close()
        os.kill(os.getpid(), signal.SIGUSR1)
    return torch.nn.functional.cross_entropy(outputs, batch['y']), {{}}
fit(make_model(), toy_data(), TrainConfig(epochs=2, batch_size=32, seed=5, amp=False),
    {str(tmp_path / "run")!r}, loss_fn=loss, progress=False)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert "Preempted" in proc.stderr and "resumes" in proc.stderr
    assert safe_load(tmp_path / "run" / CHECKPOINT)["position"]["step"] == 1


def test_per_batch_transform_equals_the_whole_dataset_transform():
    from hwbench.data import BatchTransform, to_model_input

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (37, 28, 28), dtype=torch.uint8, generator=g)
    for opts in ({}, {"size": 56, "channels": 3, "normalize": "imagenet"}, {"normalize": "mnist"}):
        whole = to_model_input(
            images,
            size=opts.get("size"),
            channels=opts.get("channels", 1),
            normalize=opts.get("normalize", "none"),
            chunk=10,
        )
        transform = BatchTransform(**opts)
        batches = torch.cat([transform(images[i : i + 8]) for i in range(0, 37, 8)])
        torch.testing.assert_close(batches, whole, rtol=0, atol=0)


def test_the_transform_is_part_of_the_fingerprint(tmp_path):
    """A checkpoint records the transform's settings: another transform starts over."""
    from hwbench.data import BatchTransform
    from hwbench.engine import transform_fingerprint

    assert transform_fingerprint(None) is None
    assert transform_fingerprint(BatchTransform(size=32, normalize="mnist")) == (
        "BatchTransform(size=32, channels=1, normalize='mnist')"
    )

    def scale(x):
        return x.float() / 255

    # no memory address (it would never match again): the function's name
    assert transform_fingerprint(scale).endswith(
        "test_the_transform_is_part_of_the_fingerprint.<locals>.scale"
    )
    g = torch.Generator().manual_seed(0)
    data = {"x": torch.randint(0, 256, (40, 28, 28), dtype=torch.uint8, generator=g),
            "y": torch.arange(40) % 4}  # fmt: skip
    cfg = TrainConfig(epochs=1, batch_size=16, seed=0, amp=False)
    fit(make_model(), data, cfg, tmp_path / "a", progress=False, transform=BatchTransform())
    info = json.loads((tmp_path / "a" / "run.json").read_text())
    assert info["config"]["transform"] == "BatchTransform(size=None, channels=1, normalize='none')"


def test_fit_on_uint8_data_with_a_batch_transform_equals_fit_on_the_float_copy():
    """The compact path (uint8 store + per-batch transform, data in host memory) trains
    to the same weights as the float copy made once for all."""
    from hwbench.data import BatchTransform, to_model_input
    from hwbench.engine import seed_everything
    from hwbench.models import build_model

    g = torch.Generator().manual_seed(1)
    y = torch.arange(120) % 4
    images = torch.randint(0, 256, (120, 20, 20), dtype=torch.uint8, generator=g)
    opts = {"size": 28, "channels": 3, "normalize": "imagenet"}  # upsampled per batch
    cfg = dict(epochs=2, batch_size=16, seed=2, amp=False)
    seed_everything(0)
    float_model = build_model("small_cnn", 4, in_channels=3)
    seed_everything(0)
    compact_model = build_model("small_cnn", 4, in_channels=3)
    float_x = to_model_input(images, **opts)
    fit(float_model, {"x": float_x, "y": y}, TrainConfig(**cfg), None, progress=False)
    host = TrainConfig(**cfg, data_on_device_mb=0)  # keep the uint8 store on the host
    result = fit(
        compact_model,
        {"x": images, "y": y},
        host,
        None,
        progress=False,
        eval_sets={"val": {"x": images[:20], "y": y[:20]}},
        transform=BatchTransform(**opts),
    )
    assert_same_weights(weights(float_model), weights(compact_model))
    assert 0.0 <= result.final["val_acc"] <= 1.0


def test_full_disk_at_a_checkpoint_names_it_and_the_rerun_resumes(tmp_path, monkeypatch):
    # issue 25 item 2: with ~2 MB free, torch.save raised "[enforce fail at
    # inline_container.cc:672] . unexpected pos ..." naming no path and no full disk
    from hwbench.store import StorageError

    real_save, epoch_one_saved = torch.save, []

    def short_write(obj, file, *args, **kwargs):
        if CHECKPOINT.split(".")[0] in os.path.basename(file):
            if epoch_one_saved:  # the next checkpoint after epoch 1's: the disk is full
                with open(file, "wb") as f:
                    f.write(b"PK\x03\x04")
                raise RuntimeError(
                    "[enforce fail at inline_container.cc:672] . unexpected pos 476736 vs 476628"
                )
            saved = real_save(obj, file, *args, **kwargs)
            epoch_one_saved.extend([1] if len(obj.get("history", [])) == 1 else [])
            return saved
        return real_save(obj, file, *args, **kwargs)

    monkeypatch.setattr(torch, "save", short_write)
    every_step = TrainConfig(**{**CFG, "checkpoint_every_s": 0})  # a checkpoint after each step
    with pytest.raises(StorageError) as caught:
        fit(make_model(), toy_data(), every_step, tmp_path, loss_fn=plain_loss)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / CHECKPOINT}: could not be written: ")
    assert "most likely the disk is full" in message and "MiB free" in message
    kept = safe_load(tmp_path / CHECKPOINT)  # the first checkpoint, intact
    assert len(kept["history"]) == 1
    monkeypatch.setattr(torch, "save", real_save)
    steps = []

    def counting(outputs, batch):
        steps.append(1)
        return plain_loss(outputs, batch)

    result = fit(make_model(), toy_data(), TrainConfig(**CFG), tmp_path, loss_fn=counting)
    assert len(result.history) == 2 and result.history[0] == kept["history"][0]
    assert len(steps) == 8  # only the second epoch's steps: it resumed, nothing was lost
