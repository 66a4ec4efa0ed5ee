"""Activation checkpointing: the same training step, BatchNorm stats included."""

import copy
import logging

import pytest
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from hwbench import recompute
from hwbench.engine import CHECKPOINT, TrainConfig, fit
from tests.test_engine import make_model, toy_data, weights

torch.set_num_threads(1)

CFG = dict(epochs=2, batch_size=16, seed=3, amp=False, optimizer="sgd", lr=0.05)


def small_set():
    data = toy_data(48)
    return {"x": data["x"][:, :, :16, :16].contiguous(), "y": data["y"]}


def trained(setting, run_dir=None, epochs=2):
    model = make_model("resnet18", seed=0)
    config = TrainConfig(**{**CFG, "epochs": epochs}, activation_checkpointing=setting)
    result = fit(model, small_set(), config, run_dir, progress=False, device="cpu")
    return model, result


def test_checkpointed_training_equals_plain_training():
    plain, plain_result = trained("never")
    ckpt, ckpt_result = trained("always")
    a, b = weights(plain), weights(ckpt)
    assert a.keys() == b.keys()  # parameter names unchanged by the wrapping
    for k in a:  # running stats and batch counts too: updated once per step, not twice
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    assert int(b["body.bn1.num_batches_tracked"]) == 2 * 3  # 2 epochs x 48/16 steps
    for row_a, row_b in zip(plain_result.history, ckpt_result.history, strict=True):
        assert row_b["train_loss"] == pytest.approx(row_a["train_loss"], rel=1e-5)


def test_fit_leaves_the_model_unwrapped():
    model, _ = trained("always", epochs=1)
    blocks = recompute.residual_blocks(model)
    assert len(blocks) == 8  # resnet18: 4 stages x 2 blocks
    assert all("forward" not in block.__dict__ for block in blocks)


def test_blocks_recompute_in_backward_and_the_guard_keeps_running_stats(monkeypatch):
    calls = []
    original = BasicBlock.forward

    def counted(self, x):
        calls.append(id(self))
        return original(self, x)

    monkeypatch.setattr(BasicBlock, "forward", counted)
    model = make_model("resnet18", seed=0)
    model.train()
    x, y = small_set()["x"][:8], small_set()["y"][:8]
    assert recompute.enable(model) == 8

    loss = nn.functional.cross_entropy(model(x), y)
    assert len(calls) == 8
    loss.backward()
    assert len(calls) == 16  # every block ran again for its gradients
    # ...and so counted a second batch: what the guard exists to undo
    assert int(model.body.layer1[0].bn1.num_batches_tracked) == 2

    model.zero_grad()
    before = weights(model)
    loss = nn.functional.cross_entropy(model(x), y)
    after_forward = weights(model)
    with recompute.kept_running_stats(model):
        loss.backward()
    assert int(model.body.layer1[0].bn1.num_batches_tracked) == 3
    for k, v in weights(model).items():
        torch.testing.assert_close(v, after_forward[k], rtol=0, atol=0, msg=k)
    assert not torch.equal(
        after_forward["body.layer1.0.bn1.running_mean"], before["body.layer1.0.bn1.running_mean"]
    )


def test_evaluation_does_not_checkpoint(monkeypatch):
    model = make_model("resnet18", seed=0).eval()
    recompute.enable(model)
    used = []
    monkeypatch.setattr(recompute, "checkpoint", lambda *a, **k: used.append(1))
    with torch.no_grad():
        out = model(small_set()["x"][:4])
    assert used == [] and out.shape == (4, 4)


def test_a_deep_copy_runs_its_own_blocks():
    model = make_model("resnet18", seed=0)
    recompute.enable(model)
    twin = copy.deepcopy(model)
    block, twin_block = model.body.layer1[0], twin.body.layer1[0]
    assert twin_block.forward.__self__ is twin_block
    with torch.no_grad():
        twin_block.conv1.weight.zero_()
    x = torch.rand(2, 64, 8, 8)
    assert not torch.allclose(block(x), twin_block(x))


@pytest.mark.parametrize(
    "setting, device, expected",
    [
        ("never", "cpu", False),
        ("never", "cuda", False),
        ("always", "cpu", True),
        ("always", "cuda", True),
        ("cpu", "cpu", True),
        ("cpu", "cuda", False),
    ],
)
def test_where_it_applies(setting, device, expected):
    assert recompute.wanted(setting, torch.device(device)) is expected


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="activation_checkpointing='gpu'"):
        TrainConfig(activation_checkpointing="gpu")
    with pytest.raises(ValueError, match="no residual blocks.*'never'"):
        recompute.enable(make_model("small_cnn"))


class Interrupt(Exception):
    pass


def stop_after_1(epoch, row):
    raise Interrupt


def test_a_checkpoint_resumes_across_the_setting(tmp_path, caplog):
    """The setting does not change the result, so it is not in the resume fingerprint:
    a job interrupted on a CPU ("cpu": on) resumes on a GPU (off) where it stopped."""
    full, _ = trained("never", tmp_path / "full")
    config = TrainConfig(**CFG, activation_checkpointing="always", checkpoint_every_s=0)
    with pytest.raises(Interrupt):
        fit(make_model("resnet18", seed=0), small_set(), config, tmp_path / "cut",
            progress=False, device="cpu", on_epoch_end=stop_after_1)  # fmt: skip
    assert (tmp_path / "cut" / CHECKPOINT).exists()
    with caplog.at_level(logging.INFO, logger="hwbench.engine"):
        resumed, result = trained("never", tmp_path / "cut")
    assert "resumed" in caplog.text and "at epoch 2" in caplog.text
    assert [row["epoch"] for row in result.history] == [1, 2]
    for k, v in weights(full).items():
        torch.testing.assert_close(weights(resumed)[k], v, rtol=1e-5, atol=1e-6, msg=k)
