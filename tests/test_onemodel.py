"""OneModel study: PHOC, DJB2 discriminator, decoding, retrieval mAP, collisions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from hwbench import charsets
from hwbench.geometry import scaled_size
from hwbench.report import aggregate
from hwbench.retrieval import average_precision, qbe_map, qbs_map
from hwbench.rows import StoredRows
from hwbench.store import save_processed
from hwbench.studies.onemodel import job, plan
from hwbench.studies.onemodel.job import Evaluator, PhocLoss, load_task_split, set_splits
from hwbench.studies.onemodel.labels import (
    build_vocabulary,
    count_collisions,
    discriminate,
    djb2,
    next_prime,
)
from hwbench.studies.onemodel.phoc import nearest_phoc, phoc, phoc_alphabet, phoc_matrix
from hwbench.studies.onemodel.report import collision_table, long_results, report_table
from hwbench.studies.onemodel.sensory import (
    images_to_canvas,
    pad_to_canvas,
    spectrogram,
)
from hwbench.studies.onemodel.spec import Task, parse_tasks
from tests.conftest import REPO

# --- PHOC ------------------------------------------------------------------


def test_phoc_two_letters_levels_2_3():
    # "ab": a spans [0, .5], b [.5, 1].
    # L2: R0 [0,.5] holds a, R1 holds b.  L3: a covers 2/3 of itself in R0 [0,1/3]
    # (kept), 1/3 in R1 (dropped); b likewise in R2.
    expected = [1, 0, 0, 1] + [1, 0, 0, 0, 0, 1]
    assert phoc("ab", "ab", [2, 3]).tolist() == expected


def test_phoc_exactly_half_counts():
    # "abc", level 2: b spans [1/3, 2/3], exactly half in each region -> in both.
    assert phoc("abc", "abc", [2]).tolist() == [1, 1, 0, 0, 1, 1]


def test_phoc_single_character_only_level_2():
    # one character spans [0, 1]: half in each L2 region, a third in each L3 region.
    assert phoc("a", "ab", [2, 3]).tolist() == [1, 0, 1, 0] + [0] * 6


def test_phoc_layout_level_region_symbol():
    # alphabet "abc", level 2 then 3; "ca": c in L2R0 (index 2), a in L2R1 (3 + 0),
    # c in L3R0 (6 + 2), a in L3R2 (6 + 6 + 0).
    vec = phoc("ca", "abc", [2, 3])
    assert np.flatnonzero(vec).tolist() == [2, 3, 8, 12]
    assert vec.dtype == np.float32 and vec.shape == (15,)


def test_phoc_paper_levels_size_and_unknown_symbol():
    alphabet = phoc_alphabet(["three", "two"])
    assert alphabet == "ehortw"  # sorted by code point
    assert phoc_matrix(["three", "two"], alphabet, [2, 3, 4, 5]).shape == (2, 6 * 14)
    with pytest.raises(ValueError, match="'s' of 'six' is not in the PHOC alphabet"):
        phoc("six", alphabet, [2])


# --- DJB2 and the discriminator -------------------------------------------


def test_djb2_known_values():
    assert djb2("") == 5381
    assert djb2("a") == 177670  # 5381 * 33 + 97
    assert djb2("ab") == 177670 * 33 + 98


def test_djb2_reproduces_paper_figure5():
    codes = {
        "payspeech": 99881,
        "payvision": 712162,
        "paylanguage": 834868,
        "wayspeech": 893078,
        "wayvision": 505356,
        "waylanguage": 623809,
        "sayspeech": 296965,
        "sayvision": 909246,
        "saylanguage": 458699,
    }
    for text, code in codes.items():
        assert djb2(text) % 1000003 == code, text


def test_next_prime_and_discriminators():
    assert next_prime(127) == 131  # the paper's stop-word example
    assert next_prime(30) == 31 and next_prime(31) == 37 and next_prime(0) == 2
    assert discriminate("sky", "speech", "none") == "sky"
    assert discriminate("sky", "speech", "concat") == "skyspeech"
    assert discriminate("pay", "speech", "djb2", 1000003) == "pay99881"
    with pytest.raises(ValueError, match="unknown discriminator"):
        discriminate("sky", "speech", "md5")


def test_vocabulary_djb2_default_prime_and_alphabet():
    words = {"latin": ["one", "two"], "arabic": ["one", "two"]}
    vocab = build_vocabulary(words, [2], "djb2")
    assert vocab.prime == 5  # first prime above 4 classes
    expected = [w + str(djb2(w + t) % 5) for t, ws in words.items() for w in ws]
    assert vocab.strings == expected
    digits = {c for s in vocab.strings for c in s if c.isdigit()}
    assert digits <= set(vocab.alphabet)
    assert vocab.phocs.shape == (4, 2 * len(vocab.alphabet))
    assert vocab.index("arabic", ["two", "one"]).tolist() == [3, 2]
    with pytest.raises(KeyError, match="'three' is not a class of task 'latin'"):
        vocab.index("latin", ["three"])
    with pytest.raises(ValueError, match="not prime"):
        build_vocabulary(words, [2], "djb2", prime=9)


def test_vocabulary_unhashed_task_keeps_plain_words():
    vocab = build_vocabulary({"a": ["x"], "b": ["x"]}, [2], "concat", unhashed=["b"])
    assert vocab.strings == ["xa", "x"]


# --- collisions ------------------------------------------------------------


def test_count_collisions_hand_made():
    vocab = {"A": ["three", "one"], "B": ["three", "two"], "C": ["three", "one", "one"]}
    # "three" is used by A, B, C; "one" by A and C; "two" only by B.
    assert count_collisions(vocab) == 2
    assert count_collisions({"A": ["x", "x"]}) == 0  # repeats inside one task don't collide


def test_vocabulary_collisions_with_and_without_discriminator():
    words = {"A": ["three", "one"], "B": ["three", "two"], "C": ["three", "one"]}
    assert build_vocabulary(words, [2, 3], "none").collisions() == {"strings": 2, "phocs": 2}
    assert build_vocabulary(words, [2, 3], "concat").collisions() == {"strings": 0, "phocs": 0}
    # With a modulus of 2 the hash digit can only be 0 or 1: "three" of three tasks
    # must share a digit with another task.
    assert build_vocabulary(words, [2, 3], "djb2", prime=2).collisions()["strings"] >= 1
    assert build_vocabulary(words, [2, 3], "djb2", prime=1000003).collisions()["strings"] == 0


# --- nearest-PHOC decoding -------------------------------------------------


def test_nearest_phoc_cosine():
    classes = torch.tensor([[1.0, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]])
    pred = torch.tensor([[0.9, 0.1, 0.8, 0.2], [0.6, 0.6, 0.1, 0.1], [0.1, 0.7, 0.2, 0.9]])
    assert nearest_phoc(pred, classes).tolist() == [0, 2, 1]
    # a prediction equally close to two classes goes to the lower index
    assert nearest_phoc(torch.tensor([[1.0, 0.5, 0.5, 0.0]]), classes).tolist() == [0]


def test_nearest_phoc_decodes_noisy_word_phocs():
    words = ["zero", "one", "two", "three"]
    alphabet = phoc_alphabet(words)
    classes = torch.from_numpy(phoc_matrix(words, alphabet, [2, 3, 4, 5]))
    noisy = (classes * 0.7 + 0.15)[[3, 0, 2]]
    assert nearest_phoc(noisy, classes).tolist() == [3, 0, 2]


# --- retrieval mAP ---------------------------------------------------------


def test_average_precision_hand_made():
    assert average_precision([1, 0, 1, 0]) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert average_precision([0, 0, 1]) == pytest.approx(1 / 3)
    assert average_precision([0, 0]) == 0.0


# Four samples: cosines x0.x1 = 0, x0.x2 = .8, x0.x3 = .6, x1.x2 = .6, x1.x3 = .8, x2.x3 = .96
EMB = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [0.6, 0.8]])


def test_qbe_map_drops_the_query():
    # A-queries rank their A partner last (AP 1/3 each); B-queries find their partner
    # first (AP 1). Keeping the query in its own ranking would give A 0.75 instead.
    result = qbe_map(EMB, ["A", "A", "B", "B"])
    assert result.ap.tolist() == pytest.approx([1 / 3, 1 / 3, 1, 1])
    assert result.map == pytest.approx(2 / 3)


def test_qbe_map_skips_labels_seen_once():
    result = qbe_map(EMB, ["A", "A", "B", "C"])
    assert result.n_queries == 2
    assert result.map == pytest.approx(1 / 3)


def test_qbs_map_hand_made():
    # Query "A" = (1, 1): x2, x3 tie (kept in index order) ahead of x0, x1 -> [0,0,1,1].
    # Query "B" = (1, 0): order x0, x2, x3, x1 -> [0,1,1,0].
    result = qbs_map(EMB, ["A", "A", "B", "B"], ["A", "B"], np.array([[1.0, 1.0], [1.0, 0.0]]))
    assert result.ap.tolist() == pytest.approx([(1 / 3 + 2 / 4) / 2, (1 / 2 + 2 / 3) / 2])
    assert result.map == pytest.approx(0.5)


# --- sensory layer ---------------------------------------------------------


def test_images_to_canvas_scales_to_height_and_pads():
    img = torch.full((2, 28, 28), 255, dtype=torch.uint8)
    out = images_to_canvas(img, [1, 32, 64])
    assert out.shape == (2, 1, 32, 64)
    assert torch.all(out[:, :, :, :32] == 255) and torch.all(out[:, :, :, 32:] == 0)
    # scaled to 16 rows of a 32-row canvas: the rest stays zero
    half = images_to_canvas(img, [3, 32, 64], scale_height=16)
    assert half.shape == (2, 3, 32, 64)
    # (antialiased resampling of a constant is constant up to float rounding)
    assert torch.allclose(half[:, :, :16, :16], torch.tensor(255.0))
    assert half[:, :, 16:].abs().sum() == 0 and half[:, :, :, 16:].abs().sum() == 0


def test_images_to_canvas_fits_wide_images_to_the_width():
    wide = torch.full((1, 10, 40), 100, dtype=torch.uint8)  # at 32 rows it would be 128 wide
    out = images_to_canvas(wide, [1, 32, 64])
    assert scaled_size(10, 40, 32, 64) == (16, 64)
    assert torch.allclose(out[0, 0, :16, :], torch.tensor(100.0))
    assert torch.all(out[0, 0, 16:, :] == 0)
    with pytest.raises(ValueError, match="2-channel images do not fit a 3-channel canvas"):
        images_to_canvas(torch.zeros(1, 2, 8, 8), [3, 32, 64])


def test_spectrogram_of_a_tone_peaks_at_its_bin_and_pads():
    rate, n_fft = 16000, 64
    t = torch.arange(rate // 10) / rate
    wave = torch.sin(2 * torch.pi * (8 * rate / n_fft) * t)[None]  # bin 8
    spec = spectrogram(wave, n_fft=n_fft, hop=32)
    assert spec.shape == (1, n_fft // 2 + 1, len(t) // 32 + 1)
    assert int(spec[0].mean(dim=1).argmax()) == 8
    canvas = pad_to_canvas(spec, [3, 40, 20])
    assert canvas.shape == (1, 3, 40, 20)
    assert torch.equal(canvas[0, 2, :33, :20], spec[0, :, :20])
    assert canvas[0, :, 33:].abs().sum() == 0


# --- loss, decoding and evaluation -------------------------------------------


def test_phoc_loss_is_bce_against_the_class_phoc():
    phocs = np.array([[1, 0, 1], [0, 1, 0]], dtype=np.float32)
    loss_fn = PhocLoss(phocs)
    # zero logits: every bit costs log 2
    loss, _ = loss_fn(torch.zeros(2, 3), {"y": torch.tensor([0, 1])})
    assert float(loss) == pytest.approx(np.log(2))
    # logit +2 on class 0's first bit (target 1): log(1 + e^-2); the rest log 2
    logits = torch.tensor([[2.0, 0, 0]])
    loss, _ = loss_fn(logits, {"y": torch.tensor([0])})
    assert float(loss) == pytest.approx((np.log1p(np.exp(-2)) + 2 * np.log(2)) / 3)


def two_task_vocab(method="none"):
    return build_vocabulary({"A": ["ab", "ba"], "B": ["ab", "ba"]}, [2], method)


def test_decoding_stays_in_the_task_and_ties_go_to_the_first_task():
    vocab = two_task_vocab("none")
    tasks = [Task("A", "synth", words="label_name"), Task("B", "synth", words="label_name")]
    evaluator = Evaluator(vocab, tasks)
    entries = torch.tensor([0, 1, 2, 3])  # A:ab, A:ba, B:ab, B:ba
    logits = torch.logit(torch.as_tensor(vocab.phocs[entries.numpy()]).clamp(0.01, 0.99))
    metrics = evaluator.metrics(logits, entries)
    assert metrics["A/accuracy"] == 100 and metrics["B/accuracy"] == 100
    # without a discriminator B's classes have A's PHOCs: the tie goes to A
    assert metrics["A/accuracy_all_tasks"] == 100 and metrics["B/accuracy_all_tasks"] == 0
    djb2_vocab = build_vocabulary({"A": ["ab", "ba"], "B": ["ab", "ba"]}, [2], "djb2", 1000003)
    evaluator = Evaluator(djb2_vocab, tasks)
    logits = torch.logit(torch.as_tensor(djb2_vocab.phocs).clamp(0.01, 0.99))
    assert evaluator.metrics(logits, entries)["B/accuracy_all_tasks"] == 100


def test_spotting_task_reports_qbe_and_qbs():
    vocab = build_vocabulary({"S": ["ab", "ba"]}, [2], "none")
    evaluator = Evaluator(vocab, [Task("S", "synth", words="label_name", kind="spot")])
    entries = torch.tensor([0, 0, 1, 1])
    logits = torch.logit(torch.as_tensor(vocab.phocs[entries.numpy()]).clamp(0.01, 0.99))
    metrics = evaluator.metrics(logits, entries)
    assert metrics == {"S/qbe_map": pytest.approx(100), "S/qbs_map": pytest.approx(100)}


def test_task_config_errors_name_the_task():
    with pytest.raises(ValueError, match="task x: kind='rank'"):
        Task("x", "synth", charset="latin_digits", kind="rank")
    with pytest.raises(ValueError, match="task x: words 'charset' needs a charset"):
        Task("x", "cifar100")
    with pytest.raises(ValueError, match="unknown charset"):
        Task("x", "synth", charset="greek")
    with pytest.raises(ValueError, match="task x: paper_row='MNIST'"):
        Task("x", "synth", charset="latin_digits", paper_row="MNIST")
    task = {"name": "x", "dataset": "synth", "charset": "latin_digits"}
    assert [t.name for t in parse_tasks([task, {**task, "name": "y"}])] == ["x", "y"]
    with pytest.raises(ValueError, match=r"must be unique, repeated: \['x'\]"):
        parse_tasks([task, task])


# --- report layout ---------------------------------------------------------


def test_report_table_layout_and_paper_columns():
    joint = [
        (0, {"a/accuracy": 90.0, "w/qbs_map": 80.0}),
        (1, {"a/accuracy": 94.0, "w/qbs_map": 84.0}),
    ]
    records = [
        {"mode": "joint", "discriminator": "djb2", "seed": s, "metrics": m} for s, m in joint
    ] + [
        {"mode": "single", "discriminator": "none", "seed": 0, "metrics": {"a/accuracy": 95.0}},
        {"mode": "joint", "discriminator": "none", "seed": 0, "metrics": {"a/accuracy": 85.0}},
    ]
    runs = long_results(records, "djb2")
    assert sorted(runs["run"].unique()) == ["joint", "joint_none", "single"]
    agg = aggregate(runs, ["run", "task", "metric"], ["value"])
    tasks = [
        Task("a", "cifar100", words="label_name", paper_row="CIFAR-100"),
        Task("w", "iam", words="label_name", kind="spot", paper_row="IAM"),
    ]
    table = report_table(agg, tasks, ["joint", "single", "joint_none"])
    first = table.iloc[0].to_dict()
    assert first["task"] == "a" and first["metric"] == "accuracy"
    assert first["joint"] == "92.0 ± 2.8"  # mean 92, sd sqrt(8)
    assert first["single"] == "95.0" and first["joint_none"] == "85.0"
    assert first["paper_joint"] == "71.0" and first["paper_single"] == "74.4"
    assert first["diff_joint"] == "+21.0" and first["diff_single"] == "+20.6"
    assert first["paper_task"] == "CIFAR-100: Image Classification"
    spot = table.iloc[1].to_dict()
    assert (spot["metric"], spot["joint"], spot["paper_joint"]) == ("qbs_map", "82.0 ± 2.8", "88.7")
    assert spot["single"] == "" and spot["diff_single"] == ""
    # Table 3 rows no task stands for follow, with the paper's values only
    rest = table.iloc[2:]
    assert set(rest["paper_task"].str.split(":").str[0]) == {"IFN", "dDRIVER", "SPCHD", "IMDB"}
    assert (rest["joint"] == "").all() and len(rest) == 5  # IFN has QbS and QbE


def test_collision_table_counts_each_discriminator():
    words = {"latin": ["one", "two", "three"], "arabic": ["one", "two", "three"]}
    tasks = [Task(name, "synth", words="label_name") for name in words]
    table = collision_table(tasks, words, [2, 3], prime=None)
    assert table["discriminator"].tolist() == ["none", "concat", "djb2", "djb2"]
    assert table["colliding_strings"].tolist()[:2] == [3, 0]
    assert table["prime"].tolist()[2:] == [7, 1000003]  # first prime above 6 classes; Fig. 5's


# --- one job on a tiny processed dataset --------------------------------------


def tiny_processed(tmp_path):
    """Latin and Arabic digits, 4 noise images per class; a split file in shuffled order."""
    classes = charsets.classes("latin_digits") + charsets.classes("arabic_digits")
    rows = [(c, k) for c in classes for k in range(4)]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (len(rows), 28, 28), dtype=np.uint8)
    meta = pd.DataFrame(
        {
            "label": [c.label for c, _ in rows],
            "label_name": [c.label_name for c, _ in rows],
            "script": [c.script for c, _ in rows],
            "writer": [str(k) for _, k in rows],
            "pen": "p",
            "source_split": "",
        }
    )
    save_processed(tmp_path / "processed", images, meta)
    split = pd.DataFrame(
        {
            "index": np.arange(len(rows)),
            "split": [("train", "train", "val", "test")[k] for _, k in rows],
        }
    ).sample(frac=1.0, random_state=1)
    split.to_csv(tmp_path / "split.csv", index=False)
    return images, split


def test_load_task_split_keeps_the_split_files_order_and_the_charset(tmp_path):
    images, split = tiny_processed(tmp_path)
    task = Task("arabic", "synth", charset="arabic_digits")
    part = load_task_split(task, tmp_path / "processed", tmp_path / "split.csv", ["test"])
    order = [i for i in split["index"] if split.set_index("index").loc[i, "split"] == "test"]
    order = [i for i in order if i >= 40]  # rows 40..79 are the Arabic digits
    assert np.array_equal(part.images, images[order])
    arabic = charsets.classes("arabic_digits")
    assert part.words == [arabic[(i - 40) // 4].word for i in order]


def test_task_split_read_per_batch_equals_the_split_in_memory(tmp_path):
    from hwbench.rows import origin_of

    images, _ = tiny_processed(tmp_path)
    task = Task("arabic", "synth", charset="arabic_digits")
    args = (task, tmp_path / "processed", tmp_path / "split.csv", ["train", "test"])
    resident = load_task_split(*args, resident_mb=None)
    on_disk = load_task_split(*args, resident_mb=0)
    assert isinstance(resident.images, torch.Tensor) and isinstance(on_disk.images, StoredRows)
    assert on_disk.words == resident.words and on_disk.images.shape == resident.images.shape
    assert np.array_equal(on_disk.images[torch.arange(len(resident.images))], resident.images)
    # 40 x 28 x 28 bytes: 0.03 MiB, in memory under a budget of 1 MiB
    assert isinstance(load_task_split(*args, resident_mb=1).images, torch.Tensor)
    # both are identified by the store's digest and the rows: the same fingerprint
    assert origin_of(resident.images) == origin_of(on_disk.images) is not None


def one_job_params(tmp_path, **changes):
    """A joint_djb2 job's params on :func:`tiny_processed`'s Latin and Arabic digits."""
    om = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["onemodel"]
    om.update(canvas=[1, 16, 32], train={**om["train"], "epochs": 1}, **changes)
    om["tasks"] = [
        {"name": "latin", "dataset": "synth", "charset": "latin_digits", "kind": "both"},
        {"name": "arabic", "dataset": "synth", "charset": "arabic_digits"},
    ]
    params = plan.train_params(om, "joint_djb2", 0)
    data = {"processed": str(tmp_path / "processed"), "split": str(tmp_path / "split.csv")}
    params["data"] = {"latin": data, "arabic": data}
    return params


def test_a_job_reading_its_images_per_batch_equals_one_holding_them(tmp_path):
    """resident_mb: 0 reads every batch's rows from images.npy: the same run, the same
    checkpoint fingerprint (so either resumes the other), the same results."""
    tiny_processed(tmp_path)
    records, infos = [], []
    for name, budget in (("memory", None), ("disk", 0)):
        record = job.run(
            one_job_params(tmp_path, resident_mb=budget), tmp_path / name / "eval.json"
        )
        records.append(record)
        infos.append(json.loads((tmp_path / name / "run.json").read_text()))
    assert records[1]["metrics"] == records[0]["metrics"]
    assert infos[1]["config"] == infos[0]["config"]
    a = torch.load(tmp_path / "memory" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "disk" / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_one_job_writes_the_engine_record_and_fingerprints_its_params(tmp_path):
    tiny_processed(tmp_path)
    params = one_job_params(tmp_path)
    eval_path = tmp_path / "run" / "eval.json"
    record = job.run(params, eval_path)
    assert json.loads(eval_path.read_text()) == record
    assert (record["run"], record["mode"], record["discriminator"]) == (
        "joint_djb2",
        "joint",
        "djb2",
    )
    assert record["tasks"] == ["latin", "arabic"] and record["seed"] == 0
    # no validation configured: the split's val rows are trained on (the paper's Table 2)
    assert record["n"] == {"train": 60, "test": 20}
    assert "val_loss" not in pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert record["vocabulary"]["prime"] == 23  # first prime above 20 classes
    assert sorted(record["metrics"]) == [
        "arabic/accuracy",
        "arabic/accuracy_all_tasks",
        "latin/accuracy",
        "latin/accuracy_all_tasks",
        "latin/qbe_map",
        "latin/qbs_map",
    ]
    assert record["fit"]["epochs_run"] == 1 and record["fit"]["stop_reason"] == "epochs"
    # the job's params are part of the checkpoint fingerprint: a checkpoint of other
    # labels, prime or canvas is not resumed (the engine's fingerprint tests); where
    # the images live (resident_mb) is not: it does not change the result
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert params["resident_mb"] == 2048
    del params["resident_mb"]
    assert info["config"]["run"] == json.loads(json.dumps(params, sort_keys=True))
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    # the stored input is row ids into the tasks' uint8 images (never the canvases);
    # the canvas transform, with its statistics, is part of the fingerprint
    assert info["config"]["data"]["train.x"][:2] == [[60], "torch.int64"]
    assert info["config"]["transform"].startswith("CanvasTransform(canvas=[1, 16, 32], mean=")
    assert "latin/train:30x28x28@None#" in info["config"]["transform"]


def test_validation_holds_the_val_rows_out_and_logs_them(tmp_path):
    assert set_splits(False) == {"train": ("train", "val"), "test": ("test",)}
    tiny_processed(tmp_path)
    om = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["onemodel"]
    om.update(canvas=[1, 16, 32], train={**om["train"], "epochs": 1}, validation=True)
    om["tasks"] = [{"name": "latin", "dataset": "synth", "charset": "latin_digits"}]
    params = plan.train_params(om, "single_latin", 0)
    params["data"] = {
        "latin": {"processed": str(tmp_path / "processed"), "split": str(tmp_path / "split.csv")}
    }
    record = job.run(params, tmp_path / "run" / "eval.json")
    assert record["n"] == {"train": 20, "val": 10, "test": 10}
    assert "val_loss" in pd.read_csv(tmp_path / "run" / "metrics.csv")
