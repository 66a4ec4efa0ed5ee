"""Multiscript study: losses against hand computations, the label grid, heads, the plan,
Table 4 from hand-made records, and the Snakefile end to end."""

from __future__ import annotations

import math

import pytest
import torch

from hwbench.studies.multiscript import job as ms
from hwbench.studies.multiscript import plan, report, spec


def hand_ce(logits: list[list[float]], targets: list[int]) -> float:
    """Mean cross-entropy written out: -log(exp(z_y) / sum exp(z))."""
    total = 0.0
    for row, t in zip(logits, targets, strict=True):
        total += -(row[t] - math.log(sum(math.exp(v) for v in row)))
    return total / len(targets)


def one_hot_logits(preds: list[int], n: int, high: float = 2.0) -> list[list[float]]:
    """Logits whose argmax is ``preds``, with distinct values so CE is not trivial."""
    rows = []
    for i, p in enumerate(preds):
        row = [0.1 * ((i + k) % 5) for k in range(n)]
        row[p] = high + 0.3 * i
        rows.append(row)
    return rows


def head_outputs(**logits: list[list[float]]) -> dict[str, torch.Tensor]:
    """A model's output mapping (head name -> logits tensor) from nested lists."""
    return {head: torch.tensor(values) for head, values in logits.items()}


# ---------------------------------------------------------------- label grid


def test_row_col_digits_30_classes():
    labels = torch.arange(30)
    row, col = ms.row_col(labels, 10)
    assert row.tolist() == [0] * 10 + [1] * 10 + [2] * 10  # Latin, Arabic, Kannada
    assert col.tolist() == list(range(10)) * 3
    assert spec.GROUPS["digits"].n_classes == 30


def test_row_col_amharic_77_classes():
    labels = torch.tensor([0, 6, 7, 13, 40, 76])
    row, col = ms.row_col(labels, 7)
    assert row.tolist() == [0, 0, 1, 1, 5, 10]
    assert col.tolist() == [0, 6, 0, 6, 5, 6]
    assert spec.GROUPS["amharic"].n_classes == 77
    full_row, full_col = ms.row_col(torch.arange(77), 7)
    assert torch.equal(full_row * 7 + full_col, torch.arange(77))
    assert full_row.max().item() == 10 and full_col.max().item() == 6


def test_aux_labels_meaning():
    # targets and predictions on the 3 x 10 grid
    y = torch.tensor([0, 13, 25, 7, 29])
    pred = torch.tensor([0, 17, 5, 21, 29])
    # 0 right; 17 vs 13 same script (row) only; 5 vs 25 same digit (column) only;
    # 21 vs 7 neither; 29 right
    assert ms.aux_labels(pred, y, 10).tolist() == [3, 2, 1, 0, 3]


# ---------------------------------------------------------------- losses


def test_base_loss_is_plain_ce():
    y = [3, 14, 27]
    logits = one_hot_logits([3, 10, 2], 30)
    loss, parts = ms.base_loss({"main": torch.tensor(logits)}, torch.tensor(y))
    assert loss.item() == pytest.approx(hand_ce(logits, y), rel=1e-6)
    assert parts["main"].item() == pytest.approx(loss.item())


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_new_loss_hand_computed(reduction):
    y = [0, 13, 25, 7]
    preds = [0, 17, 5, 21]  # aux labels 3, 2, 1, 0 (see test_aux_labels_meaning)
    main_logits = one_hot_logits(preds, 30)
    aux_logits = [
        [0.5, -0.2, 0.1, 0.9],
        [0.0, 0.3, 1.2, -0.4],
        [1.0, 1.0, 0.2, 0.0],
        [0.2, 0.0, 0.0, 0.7],
    ]
    outputs = {
        "main": torch.tensor(main_logits, requires_grad=True),
        "aux": torch.tensor(aux_logits, requires_grad=True),
    }
    loss, parts = ms.new_loss(outputs, torch.tensor(y), 10, reduction)

    factor = 6.0 if reduction == "sum" else 1.5  # 3 + 2 + 1 + 0
    main = hand_ce(main_logits, y)
    aux = hand_ce(aux_logits, [3, 2, 1, 0])
    assert parts["factor"].item() == pytest.approx(factor)
    assert parts["main"].item() == pytest.approx(main, rel=1e-6)
    assert parts["aux"].item() == pytest.approx(aux, rel=1e-6)
    assert loss.item() == pytest.approx(factor * main + aux, rel=1e-6)

    # factor is detached: the main head's gradient is exactly factor * dCE(main)
    loss.backward()
    ref = torch.tensor(main_logits, requires_grad=True)
    torch.nn.functional.cross_entropy(ref, torch.tensor(y)).backward()
    assert torch.allclose(outputs["main"].grad, factor * ref.grad, atol=1e-6)


def test_new_loss_rejects_unknown_reduction():
    outputs = {"main": torch.zeros(2, 30), "aux": torch.zeros(2, 4)}
    with pytest.raises(ValueError, match="reduction"):
        ms.new_loss(outputs, torch.tensor([0, 1]), 10, "max")


def test_wloss_hand_computed_amharic_grid():
    y = [0, 15, 76]  # (row, col): (0, 0), (2, 1), (10, 6)
    main_logits = one_hot_logits([0, 3, 70], 77)
    col_logits = one_hot_logits([0, 2, 6], 7)
    row_logits = one_hot_logits([1, 2, 10], 11)
    outputs = head_outputs(main=main_logits, col=col_logits, row=row_logits)
    loss, parts = ms.wloss_loss(outputs, torch.tensor(y), 7, 0.65, 0.35)
    main = hand_ce(main_logits, y)
    col = hand_ce(col_logits, [0, 1, 6])
    row = hand_ce(row_logits, [0, 2, 10])
    assert parts["col"].item() == pytest.approx(col, rel=1e-6)
    assert parts["row"].item() == pytest.approx(row, rel=1e-6)
    assert loss.item() == pytest.approx(main + 0.65 * col + 0.35 * row, rel=1e-6)


def test_uw_loss_hand_computed():
    y = [3, 14, 27]  # rows 0, 1, 2; columns 3, 4, 7
    main_logits = one_hot_logits([3, 10, 2], 30)
    col_logits = one_hot_logits([3, 4, 1], 10)
    row_logits = one_hot_logits([0, 1, 0], 3)
    outputs = head_outputs(main=main_logits, col=col_logits, row=row_logits)
    s = [0.2, -0.5, 1.0]  # log variances of main, col, row
    log_vars = torch.tensor(s, requires_grad=True)
    loss, parts = ms.uw_loss(outputs, torch.tensor(y), 10, log_vars)
    terms = [
        hand_ce(main_logits, y),
        hand_ce(col_logits, [3, 4, 7]),
        hand_ce(row_logits, [0, 1, 2]),
    ]
    expected = sum(math.exp(-si) * li + 0.5 * si for si, li in zip(s, terms, strict=True))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert parts["logvar_col"].item() == pytest.approx(-0.5)
    # d/ds (exp(-s) L + s/2) = -exp(-s) L + 1/2: the weights are learned
    loss.backward()
    grad = [-math.exp(-si) * li + 0.5 for si, li in zip(s, terms, strict=True)]
    assert log_vars.grad.tolist() == pytest.approx(grad, rel=1e-5)


def test_make_loss_uses_method_params():
    outputs = {"main": torch.randn(4, 30), "col": torch.randn(4, 10), "row": torch.randn(4, 3)}
    y = torch.tensor([1, 12, 23, 5])
    fn = ms.make_loss("digits", "wloss", {"sigma1": 0.2, "sigma2": 0.3})
    loss, parts = fn(outputs, {"x": None, "y": y})
    assert loss.item() == pytest.approx(
        (parts["main"] + 0.2 * parts["col"] + 0.3 * parts["row"]).item(), rel=1e-6
    )
    pred = outputs["main"].argmax(dim=1)
    assert parts["acc"].item() == pytest.approx((pred == y).float().mean().item())
    uw = ms.make_loss("amharic", "uw", {"init_log_var": 0.25})
    assert isinstance(uw, torch.nn.Module) and uw.log_vars.tolist() == [0.25] * 3
    new = ms.make_loss("digits", "new", {"reduction": "mean"})
    outputs["aux"] = torch.randn(4, 4)
    _, parts = new(outputs, {"y": y})
    assert 0 <= parts["factor"].item() <= 3
    with pytest.raises(ValueError, match="not run for amharic"):
        ms.make_loss("amharic", "lat")


def test_head_sizes():
    assert ms.head_sizes("digits", "lat") == {"main": 10}
    assert ms.head_sizes("digits", "base") == {"main": 30}
    assert ms.head_sizes("digits", "wloss") == {"main": 30, "col": 10, "row": 3}
    assert ms.head_sizes("amharic", "uw") == {"main": 77, "col": 7, "row": 11}
    assert ms.head_sizes("amharic", "new") == {"main": 77, "aux": 4}


def test_grid_labels_from_characters():
    import pandas as pd

    from hwbench.data import charset_classes, class_positions

    meta = pd.DataFrame({"label_name": ["٣", "7", "٠", "٩"]})
    pos = class_positions(meta, charset_classes(["arabic_digits"]), "meta.csv")
    assert pos.tolist() == [3, -1, 0, 9]  # "7" is Latin, not in the Arabic charset
    keep = pos[pos >= 0]
    assert ms.grid_labels("digits", "base", "arabic", keep).tolist() == [13, 10, 19]
    assert ms.grid_labels("digits", "arab", "arabic", keep).tolist() == [3, 0, 9]
    assert ms.grid_labels("digits", "new", "kannada", keep).tolist() == [23, 20, 29]
    assert spec.scripts_of("digits", "kan") == ("kannada",)
    with pytest.raises(ValueError, match="not part of the digits group"):
        ms.grid_labels("digits", "base", "amharic", keep)


def test_build_adds_heads():
    train = {"name": "small_cnn", "in_channels": 1}
    x = torch.zeros(2, 1, 28, 28)
    lat = ms.build("digits", "lat", train)
    assert lat(x).shape == (2, 10)
    out = ms.build("amharic", "uw", train)(x)
    assert {k: v.shape[1] for k, v in out.items()} == {"main": 77, "col": 7, "row": 11}
    new = ms.build("digits", "new", train)
    assert {k: v.shape[1] for k, v in new(x).items()} == {"main": 30, "aux": 4}


# ---------------------------------------------------------------- one job on tiny data

TINY_MODEL = {"name": "small_cnn", "in_channels": 1, "normalize": "mnist"}
# checkpoint_every_s=0: a checkpoint at every epoch end, for the interrupted-run tests
TINY_TRAIN = {
    "epochs": 3,
    "batch_size": 16,
    "lr": 0.003,
    "monitor": "val_acc",
    "mode": "max",
    "checkpoint_every_s": 0,
}


def fake_dataset(folder, charsets=("latin_digits", "arabic_digits", "kannada_digits"), per_class=8):
    """A processed dataset whose classes are learnable blobs, and its stratified split."""
    import numpy as np
    import pandas as pd

    from hwbench.charsets import CHARSETS
    from hwbench.store import save_processed

    rng = np.random.default_rng(0)
    images, names, splits = [], [], []
    for charset in charsets:
        for char in CHARSETS[charset]:
            proto = rng.random((28, 28)) > 0.7
            for i in range(per_class):
                noise = rng.random((28, 28)) > 0.95
                images.append(((proto ^ noise) * 255).astype(np.uint8))
                names.append(char)
                splits.append(
                    "train" if i < per_class - 3 else ("val" if i < per_class - 1 else "test")
                )
    n = len(images)
    meta = pd.DataFrame(
        {
            "label": range(n),
            "label_name": names,
            "script": "x",
            "writer": "",
            "pen": "",
            "source_split": "",
        }
    )
    save_processed(folder, np.stack(images), meta)
    split_csv = folder / "stratified.csv"
    pd.DataFrame({"index": range(n), "split": splits}).to_csv(split_csv, index=False)
    return split_csv


SOURCES = {
    "latin": {"dataset": "fake", "charset": "latin_digits"},
    "arabic": {"dataset": "fake", "charset": "arabic_digits"},
    "kannada": {"dataset": "fake", "charset": "kannada_digits"},
}


@pytest.fixture
def fake_paths(tmp_path):
    split_csv = fake_dataset(tmp_path / "fake")
    return {s: (str(tmp_path / "fake"), str(split_csv)) for s in SOURCES}


def test_train_job_records_per_script_accuracy(tmp_path, fake_paths):
    import json

    torch.set_num_threads(1)
    rec = ms.train_job(
        "digits",
        "new",
        0,
        SOURCES,
        fake_paths,
        TINY_MODEL,
        TINY_TRAIN,
        {"reduction": "sum"},
        tmp_path / "run" / "eval.json",
        device="cpu",
        progress=False,
    )
    # the engine's one record shape, written by the engine
    assert json.loads((tmp_path / "run" / "eval.json").read_text()) == rec
    assert {k: rec[k] for k in ("group", "method", "seed")} == {
        "group": "digits",
        "method": "new",
        "seed": 0,
    }
    assert rec["fit"]["epochs_run"] == 3 and rec["fit"]["device"]
    m = rec["metrics"]
    assert set(m["accuracy"]) == {"latin", "arabic", "kannada"}
    assert m["n_test"] == {"latin": 10, "arabic": 10, "kannada": 10}
    assert m["n_train"] == 150 and m["classes"] == 30
    assert all(0.0 <= a <= 1.0 for a in m["accuracy"].values())
    assert 0.0 <= m["aux_accuracy"] <= 1.0
    assert m["selected"] == f"best val_acc (epoch {rec['fit']['best_epoch']})"
    import pandas as pd

    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert {"train_main", "train_aux", "train_factor", "val_acc"} <= set(metrics.columns)
    assert len(metrics) == 3

    single = ms.train_job(
        "digits",
        "kan",
        0,
        SOURCES,
        fake_paths,
        TINY_MODEL,
        TINY_TRAIN,
        {},
        tmp_path / "kan" / "eval.json",
        device="cpu",
        progress=False,
    )
    assert list(single["metrics"]["accuracy"]) == ["kannada"]
    assert single["metrics"]["classes"] == 10
    # distinct blobs per class: a few epochs separate them well above chance (10%)
    assert single["metrics"]["accuracy"]["kannada"] >= 0.5


def test_job_trains_on_the_uint8_images_as_the_former_float_copy(tmp_path, fake_paths, monkeypatch):
    """The job hands the engine its uint8 images (no float copy of the dataset) and the
    per-batch transform; it ends with the weights and metrics of the former job, which
    made float model input of every set first."""
    from hwbench import engine

    torch.set_num_threads(1)
    real_fit, seen = engine.fit, {}

    def spy(model, train, *a, **kw):
        seen.update(train=train["x"], val=kw["eval_sets"]["val"]["x"], transform=kw["transform"])
        return real_fit(model, train, *a, **kw)

    def former(model, train, *a, transform, **kw):
        def as_float(data):
            return {**data, "x": transform(data["x"])}

        kw["eval_sets"] = {k: as_float(v) for k, v in kw["eval_sets"].items()}
        return real_fit(model, as_float(train), *a, **kw)

    args = ("digits", "base", 0, SOURCES, fake_paths, TINY_MODEL, TINY_TRAIN, {})
    monkeypatch.setattr(engine, "fit", spy)
    compact = ms.train_job(*args, tmp_path / "compact" / "eval.json", device="cpu", progress=False)
    assert seen["train"].dtype == torch.uint8 and tuple(seen["train"].shape) == (150, 28, 28)
    assert seen["val"].dtype == torch.uint8
    assert repr(seen["transform"]) == "BatchTransform(size=None, channels=1, normalize='mnist')"
    monkeypatch.setattr(engine, "fit", former)
    old = ms.train_job(*args, tmp_path / "former" / "eval.json", device="cpu", progress=False)
    a = engine.safe_load(tmp_path / "compact" / "model.pt")
    b = engine.safe_load(tmp_path / "former" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert compact["metrics"] == old["metrics"]


def test_resumed_job_ends_with_the_same_weights(tmp_path, fake_paths, monkeypatch):
    from hwbench import engine

    torch.set_num_threads(1)
    args = ("digits", "uw", 1, SOURCES, fake_paths, TINY_MODEL, TINY_TRAIN, {"init_log_var": 0.0})
    whole = ms.train_job(*args, tmp_path / "whole" / "eval.json", device="cpu", progress=False)

    real_fit = engine.fit

    def interrupted_fit(*a, **kw):
        def stop(epoch, row):
            if epoch == 2:
                raise KeyboardInterrupt

        return real_fit(*a, **kw, on_epoch_end=stop)

    monkeypatch.setattr(engine, "fit", interrupted_fit)
    resumed_eval = tmp_path / "resumed" / "eval.json"
    with pytest.raises(KeyboardInterrupt):
        ms.train_job(*args, resumed_eval, device="cpu", progress=False)
    monkeypatch.setattr(engine, "fit", real_fit)
    resumed = ms.train_job(*args, resumed_eval, device="cpu", progress=False)

    a = engine.safe_load(tmp_path / "whole" / "model.pt")
    b = engine.safe_load(tmp_path / "resumed" / "model.pt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["metrics"]["accuracy"] == whole["metrics"]["accuracy"]
    # the learned loss weights resumed too
    learned = whole["metrics"]["loss_state"]["log_vars"]
    assert resumed["metrics"]["loss_state"]["log_vars"] == learned
    assert learned != [0.0, 0.0, 0.0]


def test_changed_method_params_do_not_resume(tmp_path, fake_paths, monkeypatch):
    """An interrupted run resumes only with the same loss weights (the fingerprint)."""
    from hwbench import engine

    torch.set_num_threads(1)
    train = {**TINY_TRAIN, "epochs": 2}
    args = ("digits", "wloss", 0, SOURCES, fake_paths, TINY_MODEL, train)
    other = {"sigma1": 5.0, "sigma2": 0.3}
    fresh = ms.train_job(
        *args, other, tmp_path / "fresh" / "eval.json", device="cpu", progress=False
    )

    real_fit = engine.fit

    def interrupted_fit(*a, **kw):
        def stop(epoch, row):
            raise KeyboardInterrupt

        return real_fit(*a, **kw, on_epoch_end=stop)

    monkeypatch.setattr(engine, "fit", interrupted_fit)
    run = tmp_path / "r" / "eval.json"
    with pytest.raises(KeyboardInterrupt):
        ms.train_job(*args, {"sigma1": 0.2, "sigma2": 0.3}, run, device="cpu", progress=False)
    assert (run.parent / engine.CHECKPOINT).exists()
    monkeypatch.setattr(engine, "fit", real_fit)
    again = ms.train_job(*args, other, run, device="cpu", progress=False)
    # trained anew from epoch 1: the same weights as a fresh run with these sigmas
    a = engine.safe_load(tmp_path / "fresh" / "model.pt")
    b = engine.safe_load(run.parent / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert again["metrics"]["accuracy"] == fresh["metrics"]["accuracy"]


# ---------------------------------------------------------------- the plan


def test_plan_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, hwbench.studies.multiscript.plan; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plan_runs_inputs_and_params():
    import yaml

    from tests.conftest import REPO

    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["multiscript"]
    config = {**config, "seeds": [0, 3], "groups": ["digits", "amharic"]}
    runs = plan.runs(config)
    assert len(runs) == (7 + 4) * 2
    assert runs[:2] == [
        "results/multiscript/digits/lat/seed0",
        "results/multiscript/digits/lat/seed3",
    ]
    assert runs[-1] == "results/multiscript/amharic/new/seed3"
    assert plan.evals(config)[0] == "results/multiscript/digits/lat/seed0/eval.json"
    assert plan.benchmarks(config)[0] == "benchmarks/jobs/multiscript/digits/lat/seed0.tsv"
    assert plan.datasets(config) == [
        "data/processed/synth/images.npy",
        "data/processed/synth/meta.csv",
    ]
    # a single-script model reads only its script; Base all three, in script order
    assert plan.train_inputs(config, "digits", "arab") == {
        "images": ["data/processed/synth/images.npy"],
        "meta": ["data/processed/synth/meta.csv"],
        "splits": ["data/splits/synth/stratified.csv"],
    }
    assert len(plan.train_inputs(config, "digits", "base")["splits"]) == 3
    assert list(plan.sources(config, "digits", "kan")) == ["kannada"]
    assert list(plan.sources(config, "digits", "new")) == ["latin", "arabic", "kannada"]
    # only the model's own hyper-parameters, for its group
    assert plan.method_params(config, "amharic", "wloss") == {"sigma1": 0.65, "sigma2": 0.35}
    assert plan.method_params(config, "digits", "wloss") == {"sigma1": 0.2, "sigma2": 0.3}
    assert plan.method_params(config, "digits", "new") == {"reduction": "sum"}
    assert plan.method_params(config, "digits", "base") == {}
    with pytest.raises(ValueError, match="not run for amharic"):
        plan.method_params(config, "amharic", "lat")


def test_plan_wildcard_patterns_come_from_the_spec():
    import re

    for group, g in spec.GROUPS.items():
        assert re.fullmatch(plan.GROUP_PATTERN, group)
        assert all(re.fullmatch(plan.MODEL_PATTERN, m) for m in g.methods)
    assert not re.fullmatch(plan.MODEL_PATTERN, "uwx")
    assert set(plan.MODEL_PATTERN.split("|")) == {
        m for g in spec.GROUPS.values() for m in g.methods
    }


def test_plan_check_config_names_missing_keys():
    config = {"groups": ["digits", "amharic"], "sources": {"latin": {}}, "wloss": {"digits": {}}}
    with pytest.raises(ValueError, match="multiscript.sources.arabic, multiscript.sources.kannada"):
        plan.check_config({**config, "groups": ["digits"]})
    config = {
        "groups": ["amharic"],
        "sources": {"latin": {}},
        "wloss": {"digits": {}},
    }
    with pytest.raises(ValueError, match="multiscript.sources.amharic, multiscript.wloss.amharic"):
        plan.check_config(config)


# ---------------------------------------------------------------- Table 4 from hand-made records


def record(group, method, seed, **accuracy):
    """An eval.json record as the engine writes it, with the given test accuracies."""
    return {
        "group": group,
        "method": method,
        "seed": seed,
        "metrics": {"accuracy": accuracy},
        "fit": {"device": "cpu", "wall_s": 1.0, "epochs_run": 1},
    }


# Three Base seeds whose best script differs (Latin on seeds 0 and 2, Arabic on
# seed 1), so the mean of per-seed ranges (14.33) and the range of the means
# (86 - 75 = 11) differ, and so do the mean and the median of most columns.
HAND_RECORDS = [
    record("digits", "base", 0, latin=0.90, arabic=0.80, kannada=0.70),
    record("digits", "base", 1, latin=0.80, arabic=0.90, kannada=0.76),
    record("digits", "base", 2, latin=0.88, arabic=0.85, kannada=0.79),
    record("amharic", "base", 0, amharic=0.70),
    record("amharic", "base", 1, amharic=0.74),
    record("digits", "lat", 0, latin=0.98),
    record("digits", "lat", 1, latin=0.96),
    record("digits", "new", 0, latin=0.97, arabic=0.99, kannada=0.95),
]


def test_table4_values_per_seed_from_hand_made_records():
    values = report.table4_values(HAND_RECORDS).set_index(["model", "seed"])
    assert list(values.index) == [
        ("Lat", 0),
        ("Lat", 1),
        ("Base", 0),
        ("Base", 1),
        ("Base", 2),
        ("New", 0),
    ]
    assert values.loc["Base", "Average"].tolist() == pytest.approx([80.0, 82.0, 84.0])
    assert values.loc["Base", "Range per seed"].tolist() == pytest.approx([20.0, 14.0, 9.0])
    assert values.loc[("Base", 1), "Amharic"] == pytest.approx(74.0)
    unmeasured = ["Arabic", "Kannada", "Average", "Range per seed", "Amharic"]
    assert values.loc[("Lat", 0), unmeasured].isna().all()


def assert_range_is_range_of_means(table):
    """Every multi-task row's Range is max - min of its Latin/Arabic/Kannada means
    (the paper's definition), as the table prints them."""
    checked = 0
    for _, row in table.iterrows():
        if row["model"] not in ("Base", "Wloss", "UW", "New"):
            continue
        means = [float(row[c].split(" ± ")[0]) for c in ("Latin", "Arabic", "Kannada")]
        assert float(row["Range"]) == pytest.approx(round(max(means) - min(means), 2), abs=1e-9)
        checked += 1
    assert checked


def assert_nothing_unmeasured_prints_a_number(table):
    """A single-script model's cells for the scripts it never saw are "-" in our
    columns (no 0), and no cell of ours is a bare 0."""
    own = {"Lat": "Latin", "Arab": "Arabic", "Kan": "Kannada"}
    ours = report.COLUMNS + ["Range per seed"]
    for _, row in table.iterrows():
        if row["model"] in own:
            assert [row[c] for c in ours if c != own[row["model"]]] == ["-"] * (len(ours) - 1)
            assert row[f"{own[row['model']]}"] != "-"
        assert "0" not in {row[c] for c in ours}


def test_table4_every_cell_from_hand_made_records():
    table = report.table4(HAND_RECORDS)
    cells = {
        # model: seeds, (ours, paper, diff) per column of report.COLUMNS, Range per seed
        "Lat": (
            2,
            [
                ("97.00 ± 1.41", "98.45", "-1.45"),
                # not measured: "-" in ours; the paper's printed 0 stays in its column
                ("-", "0", "-"),
                ("-", "0", "-"),
                ("-", "-", "-"),
                ("-", "-", "-"),
                ("-", "-", "-"),
            ],
            "-",
        ),
        "Base": (
            3,
            [
                ("86.00 ± 5.29", "97.19", "-11.19"),
                ("85.00 ± 5.00", "95.51", "-10.51"),
                ("75.00 ± 4.58", "94.90", "-19.90"),
                ("82.00 ± 2.00", "95.87", "-13.87"),
                # the range of the means 86 - 75, not the mean of per-seed ranges
                ("11.00", "2.99", "+8.01"),
                ("72.00 ± 2.83", "73.83", "-1.83"),
            ],
            "14.33 ± 5.51",
        ),
        "New": (
            1,
            [
                ("97.00", "97.85", "-0.85"),
                ("99.00", "98.07", "+0.93"),
                ("95.00", "97.23", "-2.23"),
                ("97.00", "97.71", "-0.71"),
                ("4.00", "0.84", "+3.16"),
                ("-", "75.91", "-"),
            ],
            "4.00",
        ),
    }
    expected = []
    for model, (seeds, columns, per_seed) in cells.items():
        row = {"model": model, "seeds": seeds}
        for col, (ours, paper, diff) in zip(report.COLUMNS, columns, strict=True):
            row.update({col: ours, f"{col} paper": paper, f"{col} diff": diff})
            if col == "Range":
                row["Range per seed"] = per_seed
        expected.append(row)
    assert table.to_dict("records") == expected
    assert_range_is_range_of_means(table)
    assert_nothing_unmeasured_prints_a_number(table)


def test_range_is_taken_of_the_printed_means():
    # means 90.004 and 80.006 print as 90.00 and 80.01: Range 9.99, their difference
    records = [
        record("digits", "wloss", 0, latin=0.90004, arabic=0.80006, kannada=0.85),
    ]
    table = report.table4(records)
    assert table.loc[0, ["Latin", "Arabic", "Range"]].tolist() == ["90.00", "80.01", "9.99"]
    assert_range_is_range_of_means(table)


# ---------------------------------------------------------------- end to end

TINY = {
    "datasets": ["synth"],
    "synth": {
        "synth": {
            "writers": 4,
            "samples_per_class": 2,
            "scripts": ["latin_digits", "arabic_digits", "kannada_digits", "amharic"],
            "image_size": 64,
        }
    },
    "multiscript": {
        "seeds": [0, 1],  # two: a cell is a real mean over seeds
        "model": {"name": "small_cnn", "in_channels": 1, "normalize": "mnist"},
        "train": {"epochs": 1, "batch_size": 32, "monitor": "val_acc", "mode": "max"},
    },
}


@pytest.mark.e2e
def test_snakefile_writes_table4_and_reruns_only_what_changed(workdir):
    import json

    import pandas as pd

    from tests.conftest import planned_jobs, run_snakemake, write_config

    write_config(workdir, TINY)
    run_snakemake(workdir, "reports/table4.csv")

    table = pd.read_csv(workdir / "reports/table4.csv", dtype=str, keep_default_na=False)
    assert list(table["model"]) == ["Lat", "Arab", "Kan", "Base", "Wloss", "UW", "New"]
    for col in report.COLUMNS:
        assert {col, f"{col} paper", f"{col} diff"} <= set(table.columns)
    # a report cell is the mean over seeds of the runs' eval.json values
    for group, model, script, row, col in [
        ("digits", "wloss", "arabic", "Wloss", "Arabic"),
        ("amharic", "new", "amharic", "New", "Amharic"),
    ]:
        accs = [
            json.loads(p.read_text())["metrics"]["accuracy"][script]
            for p in sorted(
                (workdir / f"results/multiscript/{group}/{model}").glob("seed*/eval.json")
            )
        ]
        assert len(accs) == len(TINY["multiscript"]["seeds"])
        cell = table.set_index("model").loc[row, col]
        assert float(cell.split(" ± ")[0]) == pytest.approx(100 * sum(accs) / len(accs), abs=0.005)
    assert (table != "").all().all(), "every cell is filled"
    assert_range_is_range_of_means(table)
    lat = table.set_index("model").loc["Lat"]
    assert (lat["Arabic"], lat["Kannada"], lat["Average"], lat["Amharic"]) == ("-",) * 4
    assert lat["Latin paper"] == "98.45" and lat["Arabic paper"] == "0"
    assert_nothing_unmeasured_prints_a_number(table)
    new = table.set_index("model").loc["New"]
    assert new["Amharic paper"] == "75.91" and " ± " in new["Amharic"]
    for name in ("table4.md", "table4.json", "table4_curves.png", "table4_new_losses.png"):
        assert (workdir / "reports" / name).stat().st_size > 0

    assert planned_jobs(workdir, "reports/table4.csv") == {}  # a rerun does nothing

    # one model's hyper-parameter: only its jobs and the report
    write_config(
        workdir,
        {
            **TINY,
            "multiscript": {
                **TINY["multiscript"],
                "wloss": {"digits": {"sigma1": 0.5, "sigma2": 0.3}},
            },
        },
    )
    assert planned_jobs(workdir, "reports/table4.csv") == {
        "multiscript_train": 2,  # one per seed
        "multiscript_table4": 1,
    }
    # another seed: only that seed's jobs (7 digit models + 4 Amharic) and the report
    write_config(workdir, {**TINY, "multiscript": {**TINY["multiscript"], "seeds": [0, 1, 2]}})
    assert planned_jobs(workdir, "reports/table4.csv") == {
        "multiscript_train": 11,
        "multiscript_table4": 1,
    }


def test_job_data_selects_scripts_and_names_a_missing_one(tmp_path):
    split_csv = fake_dataset(tmp_path / "fake", charsets=("latin_digits", "arabic_digits"))
    paths = {s: (str(tmp_path / "fake"), str(split_csv)) for s in SOURCES}
    data = ms.load_job_data("digits", "arab", SOURCES, paths)
    assert sorted(data["train"].y.unique().tolist()) == list(range(10))
    assert set(data["test"].script) == {"arabic"} and len(data["test"].y) == 10
    with pytest.raises(ValueError, match="no kannada_digits images.*sources.kannada"):
        ms.load_job_data("digits", "base", SOURCES, paths)


def test_a_trimmed_study_needs_only_its_groups_keys_and_names_a_missing_one(workdir):
    import yaml

    from tests.conftest import REPO, planned_jobs, run_snakemake

    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    ms = config["multiscript"]
    ms["groups"] = ["digits"]
    del ms["sources"]["amharic"], ms["wloss"]["amharic"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    planned = planned_jobs(workdir, "reports/table4.csv")
    assert planned["multiscript_train"] == 7 * len(ms["seeds"])  # digit models only

    ms["groups"] = ["digits", "amharic"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    proc = run_snakemake(workdir, "-n", "reports/table4.csv", check=False)
    assert proc.returncode != 0
    assert (
        "multiscript.groups has 'amharic', which needs multiscript.sources.amharic, "
        "multiscript.wloss.amharic" in proc.stdout + proc.stderr
    )


def test_job_images_reach_the_engine_fingerprinted_by_store_digest(fake_paths):
    """Issue #28: the job's x is identified by the store's digest.json and its rows,
    so the engine's resume fingerprint reads no image."""
    from hwbench.engine import data_fingerprint
    from hwbench.store import recorded_digest

    data = ms.load_job_data("digits", "new", SOURCES, fake_paths)
    digest = recorded_digest(fake_paths["latin"][0])["digest"]
    entry = data_fingerprint({"train": {"x": data["train"].x}})["train.x"]
    assert entry[2].count(f"store blake2b-128:{digest} rows") == 3  # one per script


def test_a_demo_job_writes_one_checkpoint_not_one_per_epoch(tmp_path, fake_paths, monkeypatch):
    """Issue #28: `make demo`'s training config (config.yaml's multiscript.train, 8
    epochs, the default checkpoint_every_s) writes one checkpoint per job, at its end;
    the engine wrote one per epoch before (8 per job, 33 jobs: 264)."""
    import yaml

    from hwbench.engine import loop as engine_loop
    from tests.conftest import REPO

    torch.set_num_threads(1)
    demo = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["multiscript"]
    assert "checkpoint_every_s" not in demo["train"] and demo["train"]["epochs"] == 8
    writes = []
    original = engine_loop._save_checkpoint
    monkeypatch.setattr(
        engine_loop, "_save_checkpoint", lambda run: writes.append(1) or original(run)
    )
    record = ms.train_job("digits", "new", 0, SOURCES, fake_paths, TINY_MODEL, demo["train"],
                          {"reduction": "sum"}, tmp_path / "run" / "eval.json", device="cpu",
                          progress=False)  # fmt: skip
    assert record["fit"]["epochs_run"] == 8
    assert len(writes) == 1
