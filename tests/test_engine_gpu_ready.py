"""Issue #28 items 2 and 6: checkpoints by time (not per epoch), the fused Adam on
CUDA only, and ``train.compile`` (same losses as eager, or a logged eager fallback)."""

import logging
import time

import pytest
import torch

from hwbench.engine import CHECKPOINT, Preempted, TrainConfig, fit, safe_load
from hwbench.engine import loop as engine_loop
from hwbench.engine.compiled import CompiledForward
from tests.test_engine import assert_same_weights, make_model, toy_data, weights

torch.set_num_threads(1)

CFG = dict(epochs=3, batch_size=32, seed=3, amp=False)


def count_checkpoints(monkeypatch) -> list:
    """Record (epoch of the history, position) at each checkpoint write."""
    writes = []
    original = engine_loop._save_checkpoint

    def counting(run):
        writes.append((len(run.history), run.position and run.position.step))
        return original(run)

    monkeypatch.setattr(engine_loop, "_save_checkpoint", counting)
    return writes


def test_default_writes_one_checkpoint_at_the_end_and_none_per_epoch(tmp_path, monkeypatch):
    writes = count_checkpoints(monkeypatch)
    config = TrainConfig(**CFG)
    assert config.checkpoint_every_s == 600.0
    result = fit(make_model(), toy_data(), config, tmp_path, progress=False)
    assert len(result.history) == 3
    assert writes == [(3, None)]  # after the last epoch only, none mid-epoch
    assert not (tmp_path / CHECKPOINT).exists()  # removed once model.pt is written


def test_early_stop_is_an_end_and_checkpoints(tmp_path, monkeypatch):
    writes = count_checkpoints(monkeypatch)
    config = TrainConfig(**CFG, monitor="score", patience=1)
    scores = iter([1.0, 1.0, 1.0])  # no improvement after epoch 1: stops at epoch 2
    fit(make_model(), toy_data(), config, tmp_path, progress=False,
        eval_fn=lambda model, epoch: {"score": next(scores)})  # fmt: skip
    assert writes == [(2, None)]


def test_interval_zero_checkpoints_every_step_and_epoch(tmp_path, monkeypatch):
    writes = count_checkpoints(monkeypatch)
    config = TrainConfig(**{**CFG, "epochs": 2}, checkpoint_every_s=0)
    fit(make_model(), toy_data(), config, tmp_path, progress=False)
    # 240 samples / 32: 8 steps; after steps 1..7 inside each epoch, then the epoch end
    first, second = [(0, s) for s in range(1, 8)], [(1, s) for s in range(1, 8)]
    assert writes == first + [(1, None)] + second + [(2, None)]


def test_a_due_interval_checkpoints_at_an_epoch_end(tmp_path, monkeypatch):
    clock = {"t": time.monotonic()}  # a clock that moves only when told
    monkeypatch.setattr(time, "monotonic", lambda: clock["t"])
    writes = count_checkpoints(monkeypatch)

    def tick(epoch, row):  # 700 s pass during epoch 2 only
        clock["t"] += 700.0 if epoch == 1 else 0.0

    config = TrainConfig(**CFG)
    fit(make_model(), toy_data(), config, tmp_path, progress=False, on_epoch_end=tick)
    # the 700 s elapse after epoch 1's end: epoch 2's first step finds it due
    assert writes == [(1, 1), (3, None)]


def test_a_signal_after_the_last_step_checkpoints_at_the_epoch_end(tmp_path):
    import os
    import signal

    calls = {"n": 0}

    def eval_fn(model, epoch):  # the signal arrives while evaluating epoch 1
        calls["n"] += 1
        if calls["n"] == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return {}

    with pytest.raises(Preempted, match="after epoch 1"):
        fit(make_model(), toy_data(), TrainConfig(**CFG), tmp_path, progress=False,
            eval_fn=eval_fn)  # fmt: skip
    state = safe_load(tmp_path / CHECKPOINT)
    assert len(state["history"]) == 1 and state["position"] is None


# --- the optimiser ---------------------------------------------------------------------


def test_adam_is_fused_on_cuda_only():
    params = [torch.nn.Parameter(torch.zeros(3))]
    config = TrainConfig()
    assert engine_loop._optimizer(params, config, torch.device("cuda")).defaults["fused"] is True
    assert not engine_loop._optimizer(params, config, torch.device("cpu")).defaults["fused"]


def test_cpu_training_equals_plain_adam(tmp_path, monkeypatch):
    """The CPU path trains with torch's default Adam, as before the fused option."""
    ours = make_model()
    fit(ours, toy_data(), TrainConfig(**CFG), None, progress=False, device="cpu")

    def plain(params, config, device):
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)

    monkeypatch.setattr(engine_loop, "_optimizer", plain)
    reference = make_model()
    fit(reference, toy_data(), TrainConfig(**CFG), None, progress=False, device="cpu")
    assert_same_weights(weights(ours), weights(reference))


# --- train.compile ---------------------------------------------------------------------


def test_compile_setting_is_checked():
    with pytest.raises(ValueError, match="compile='max'"):
        TrainConfig(compile="max")
    assert TrainConfig().compile == "off"
    assert TrainConfig(compile=False).compile == "off"  # YAML's unquoted `off`


def _losses(result):
    return [row["train_loss"] for row in result.history]


COMPILE_CFG = dict(epochs=2, batch_size=40, seed=3, amp=False)  # 240 / 40: one shape


def test_compiled_training_has_eager_losses_or_falls_back_with_a_reason(tmp_path, caplog):
    """Same losses as eager within 1e-4 (relative) when inductor compiles on this CPU;
    where it cannot, the run falls back to eager (exactly eager's losses) and logs why."""
    eager = fit(make_model(), toy_data(), TrainConfig(**COMPILE_CFG), None, progress=False,
                device="cpu")  # fmt: skip
    model = make_model()
    with caplog.at_level(logging.WARNING, logger="hwbench.engine"):
        compiled = fit(model, toy_data(), TrainConfig(**COMPILE_CFG, compile="default"),
                       tmp_path, progress=False, device="cpu")  # fmt: skip
    if "compiling the model failed" in caplog.text:
        assert _losses(compiled) == _losses(eager)
    else:
        assert _losses(compiled) == pytest.approx(_losses(eager), rel=1e-4)
    # the saved weights carry the eager model's names, not torch.compile's _orig_mod.
    saved = safe_load(tmp_path / "model.pt")
    assert saved.keys() == model.state_dict().keys()
    assert not any(k.startswith("_orig_mod") for k in saved)


def test_a_failing_compiler_falls_back_to_eager_with_a_logged_reason(caplog, monkeypatch):
    """No C++ compiler for inductor's CPU kernels: the step runs eagerly, says why."""
    import torch._inductor.config as inductor_config

    torch._dynamo.reset()
    monkeypatch.setattr(inductor_config.cpp, "cxx", (None, "/nonexistent/hwbench-no-cxx"))
    eager = fit(make_model(), toy_data(), TrainConfig(**COMPILE_CFG), None, progress=False,
                device="cpu")  # fmt: skip
    forwards = []
    original = engine_loop.forward_of

    def spy(model, mode):
        forwards.append(original(model, mode))
        return forwards[-1]

    monkeypatch.setattr(engine_loop, "forward_of", spy)
    with caplog.at_level(logging.WARNING, logger="hwbench.engine"):
        compiled = fit(make_model(), toy_data(), TrainConfig(**COMPILE_CFG, compile="default"),
                       None, progress=False, device="cpu")  # fmt: skip
    torch._dynamo.reset()
    (forward,) = forwards
    assert isinstance(forward, CompiledForward) and forward.compiled is None
    assert forward.fallback_reason
    assert "train.compile=default: compiling the model failed" in caplog.text
    assert "training eagerly" in caplog.text
    assert _losses(compiled) == _losses(eager)
