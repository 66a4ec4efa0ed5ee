"""Multiscript study: losses against hand computations, the label grid, heads."""

from __future__ import annotations

import math

import pytest
import torch

from hwbench.studies import multiscript as ms


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
    assert ms.GROUPS["digits"].n_classes == 30


def test_row_col_amharic_77_classes():
    labels = torch.tensor([0, 6, 7, 13, 40, 76])
    row, col = ms.row_col(labels, 7)
    assert row.tolist() == [0, 0, 1, 1, 5, 10]
    assert col.tolist() == [0, 6, 0, 6, 5, 6]
    assert ms.GROUPS["amharic"].n_classes == 77
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

    arabic = "".join(chr(c) for c in range(0x0660, 0x066A))
    meta = pd.DataFrame({"label_name": ["٣", "7", "٠", "٩"]})
    pos = ms.charset_positions(meta, arabic)
    assert pos.tolist() == [3, -1, 0, 9]  # "7" is Latin, not in the Arabic charset
    keep = pos[pos >= 0]
    assert ms.grid_labels("digits", "base", "arabic", keep).tolist() == [13, 10, 19]
    assert ms.grid_labels("digits", "arab", "arabic", keep).tolist() == [3, 0, 9]
    assert ms.grid_labels("digits", "new", "kannada", keep).tolist() == [23, 20, 29]
    assert ms.scripts_of("digits", "kan") == ("kannada",)
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
TINY_TRAIN = {"epochs": 3, "batch_size": 16, "lr": 0.003, "monitor": "val_acc", "mode": "max"}


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
        tmp_path / "run",
        device="cpu",
        progress=False,
    )
    assert set(rec["accuracy"]) == {"latin", "arabic", "kannada"}
    assert rec["n_test"] == {"latin": 10, "arabic": 10, "kannada": 10}
    assert rec["n_train"] == 150 and rec["classes"] == 30
    assert all(0.0 <= a <= 1.0 for a in rec["accuracy"].values())
    assert 0.0 <= rec["aux_accuracy"] <= 1.0
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
        tmp_path / "kan",
        device="cpu",
        progress=False,
    )
    assert list(single["accuracy"]) == ["kannada"] and single["classes"] == 10
    # distinct blobs per class: a few epochs separate them well above chance (10%)
    assert single["accuracy"]["kannada"] >= 0.5


def test_resumed_job_ends_with_the_same_weights(tmp_path, fake_paths, monkeypatch):
    from hwbench import engine

    torch.set_num_threads(1)
    args = ("digits", "uw", 1, SOURCES, fake_paths, TINY_MODEL, TINY_TRAIN, {"init_log_var": 0.0})
    whole = ms.train_job(*args, tmp_path / "whole", device="cpu", progress=False)

    real_fit = engine.fit

    def interrupted_fit(*a, **kw):
        def stop(epoch, row):
            if epoch == 2:
                raise KeyboardInterrupt

        return real_fit(*a, **kw, on_epoch_end=stop)

    monkeypatch.setattr(engine, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        ms.train_job(*args, tmp_path / "resumed", device="cpu", progress=False)
    monkeypatch.setattr(engine, "fit", real_fit)
    resumed = ms.train_job(*args, tmp_path / "resumed", device="cpu", progress=False)

    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["accuracy"] == whole["accuracy"]
    # the learned loss weights resumed too
    learned = whole["loss_state"]["log_vars"]
    assert resumed["loss_state"]["log_vars"] == learned and learned != [0.0, 0.0, 0.0]


def test_changed_method_params_retrain(tmp_path, fake_paths):
    torch.set_num_threads(1)
    train = {**TINY_TRAIN, "epochs": 1}
    args = ("digits", "wloss", 0, SOURCES, fake_paths, TINY_MODEL, train)
    first = ms.train_job(
        *args, {"sigma1": 0.2, "sigma2": 0.3}, tmp_path / "r", device="cpu", progress=False
    )
    again = ms.train_job(
        *args, {"sigma1": 0.2, "sigma2": 0.3}, tmp_path / "r", device="cpu", progress=False
    )
    assert again["accuracy"] == first["accuracy"]  # finished run: reused, not retrained
    w0 = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    ms.train_job(
        *args, {"sigma1": 5.0, "sigma2": 0.3}, tmp_path / "r", device="cpu", progress=False
    )
    w1 = torch.load(tmp_path / "r" / "model.pt", weights_only=True)
    assert not all(torch.equal(w0[k], w1[k]) for k in w0)  # other sigma: trained anew


# ---------------------------------------------------------------- the rule file


def test_rule_file_lists_the_module_models():
    import ast
    import re

    from tests.conftest import REPO

    text = (REPO / "workflow/rules/multiscript.smk").read_text(encoding="utf-8")
    literal = re.search(r"MS_MODELS = (\{.*?\n\})", text, re.S).group(1)
    assert ast.literal_eval(literal) == {g: list(s.methods) for g, s in ms.GROUPS.items()}
    scripts = ast.literal_eval(re.search(r"MS_GROUP_SCRIPTS = (\{.*?\})", text).group(1))
    assert scripts == {g: list(s.scripts) for g, s in ms.GROUPS.items()}


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
        "seeds": [0],
        "model": {"name": "small_cnn", "in_channels": 1, "normalize": "mnist"},
        "train": {"epochs": 1, "batch_size": 32, "monitor": "val_acc", "mode": "max"},
    },
}


@pytest.mark.e2e
def test_snakefile_writes_table4_and_reruns_only_what_changed(workdir):
    import pandas as pd

    from tests.conftest import planned_jobs, run_snakemake, write_config

    write_config(workdir, TINY)
    run_snakemake(workdir, "reports/table4.csv")

    table = pd.read_csv(workdir / "reports/table4.csv", dtype=str, keep_default_na=False)
    assert list(table["model"]) == ["Lat", "Arab", "Kan", "Base", "Wloss", "UW", "New"]
    for col in ms.COLUMNS:
        assert {col, f"{col} paper", f"{col} diff"} <= set(table.columns)
    assert (table != "").all().all(), "every cell is filled"
    lat = table.set_index("model").loc["Lat"]
    assert (lat["Arabic"], lat["Kannada"], lat["Average"], lat["Amharic"]) == ("0", "0", "-", "-")
    assert lat["Latin paper"] == "98.45" and lat["Arabic paper"] == "0.00"
    new = table.set_index("model").loc["New"]
    assert new["Amharic paper"] == "75.91" and "±" not in new["Amharic"]  # one seed: no sd
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
        "multiscript_train": 1,
        "multiscript_table4": 1,
    }
    # another seed: only that seed's jobs (7 digit models + 4 Amharic) and the report
    write_config(workdir, {**TINY, "multiscript": {**TINY["multiscript"], "seeds": [0, 1]}})
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
