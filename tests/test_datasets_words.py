"""IAM and IFN/ENIT readers on fixtures generated in their real formats, height
normalisation of word images, and IAM's stop-word queries."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from hwbench import stopwords
from hwbench.datasets import registry
from hwbench.datasets.prepare import build_arrays
from hwbench.datasets.words import WordDatasetError, read_iam, read_ifn_enit
from hwbench.geometry import scaled_size
from hwbench.preprocess import PreprocessError
from hwbench.store import load_processed
from hwbench.wordimages import normalize_word

SMALL = {"height": 16, "max_width": 64, "workers": 1}


def word_image(width: int, height: int, margin: int = 5) -> np.ndarray:
    """Black ink box ``width`` x ``height`` on white paper with a ``margin`` all round."""
    img = np.full((height + 2 * margin, width + 2 * margin), 255, np.uint8)
    img[margin : margin + height, margin : margin + width] = 0
    return img


# --- IAM fixture: words.txt, forms.txt, word PNGs, the writer-independent partition ---

# (word id, segmentation, transcription, ink width, ink height)
IAM_WORDS = [
    ("a01-000u-00-00", "ok", "A", 20, 20),
    ("a01-000u-00-01", "ok", "MOVE", 60, 20),
    ("a01-000u-00-02", "err", "to", 30, 15),
    ("a01-000u-01-00", "ok", "stop", 40, 20),
    ("b02-010-00-00", "ok", "move", 50, 25),
    ("b02-010-00-01", "ok", "the", 30, 20),
    ("c03-020x-00-00", "ok", "Gaitskell", 400, 20),
    ("c03-020x-00-01", "ok", "the", 30, 20),
    ("d04-030-00-00", "ok", "outside", 40, 20),  # its line is in no partition list
]
IAM_PARTITION = {
    "trainset.txt": ["a01-000u-00"],
    "validationset1.txt": ["a01-000u-01"],
    "validationset2.txt": ["b02-010-00"],
    "testset.txt": ["c03-020x-00"],
}
IAM_WRITERS = {"a01-000u": "000", "b02-010": "017", "c03-020x": "101", "d04-030": "555"}


def make_iam(root: Path, partition_dir: str = "largeWriterIndependentTextLineRecognitionTask"):
    (root / "ascii").mkdir(parents=True)
    lines = [
        "#--- words.txt ---#",
        "# format: a01-000u-00-00 ok 154 1 408 768 27 51 AT A",
        "#",
    ]
    for item, status, text, w, h in IAM_WORDS:
        lines.append(f"{item} {status} 154 1 408 768 {w} {h} NN {text}")
        form = "-".join(item.split("-")[:2])
        folder = root / "words" / item.split("-")[0] / form
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{item}.png"), word_image(w, h))
    (root / "ascii/words.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    forms = ["# form writer ..."] + [f"{f} {w} 2 prt 7 5 52 36" for f, w in IAM_WRITERS.items()]
    (root / "ascii/forms.txt").write_text("\n".join(forms) + "\n", encoding="utf-8")
    (root / partition_dir).mkdir(parents=True, exist_ok=True)
    for name, ids in IAM_PARTITION.items():
        (root / partition_dir / name).write_text("\n".join(ids) + "\n", encoding="utf-8")
    return root


def test_iam_reader_labels_writers_partition(tmp_path):
    root = make_iam(tmp_path / "iam")
    images, meta = read_iam({}, tmp_path / "unused", {"local_copy": str(root), **SMALL})
    kept = [w for w in IAM_WORDS if not w[0].startswith("d04")]
    assert meta["item"].tolist() == [w[0] for w in kept]
    words = [w[2].lower() for w in kept]
    assert meta["label_name"].tolist() == words
    names = sorted(set(words))
    assert meta["label"].tolist() == [names.index(w) for w in words]
    assert meta["writer"].tolist() == ["000", "000", "000", "000", "017", "017", "101", "101"]
    assert meta["source_split"].tolist() == ["train"] * 3 + ["val"] * 3 + ["test"] * 2
    assert set(meta["script"]) == {"latin"}
    assert images.shape == (len(kept), 16, 64) and images.dtype == np.uint8
    # each ink box (plus its 2 px crop margin) is scaled to 16 rows, aspect kept
    for img, (_, _, _, w, h) in zip(images, kept, strict=True):
        cols = np.flatnonzero(img.any(axis=0))
        expected_h, expected_w = scaled_size(h + 4, w + 4, 16, 64)
        # the ink ends where its right edge (2 px of paper before the crop's end) lands
        assert cols.max() + 1 == pytest.approx((w + 2) * expected_w / (w + 4), abs=1)
        assert not img[:, expected_w:].any()
        assert np.flatnonzero(img.any(axis=1)).max() + 1 <= expected_h
        assert set(np.unique(img)) <= {0, 255}  # binarised


def test_iam_options_case_and_err(tmp_path):
    root = make_iam(tmp_path / "iam", partition_dir="task")
    opts = {"local_copy": str(root), "lowercase": False, "drop_err": True, **SMALL}
    _, meta = read_iam({}, tmp_path, opts)
    assert "to" not in meta["label_name"].tolist()  # the err word
    assert "MOVE" in meta["label_name"].tolist() and "move" in meta["label_name"].tolist()


def test_iam_through_build_arrays(tmp_path):
    """The rule's entry point: a manual dataset read from data/raw/iam without records."""
    make_iam(tmp_path / "raw" / "iam")
    out = tmp_path / "processed"
    build_arrays("iam", [], out, SMALL, raw_root=tmp_path / "raw")
    data = load_processed(out)
    assert data.images.shape == (8, 16, 64)
    assert data.meta["source_split"].value_counts().to_dict() == {"train": 3, "val": 3, "test": 2}


def test_iam_missing_copy_names_the_config_key(tmp_path):
    with pytest.raises(
        WordDatasetError,
        match=r"data\.iam\.local_copy.*registration|registration.*data\.iam\.local_copy",
    ):
        read_iam({}, tmp_path / "raw" / "iam", {})


def test_iam_missing_partition_says_what_to_unpack(tmp_path):
    root = make_iam(tmp_path / "iam")
    (root / "largeWriterIndependentTextLineRecognitionTask" / "testset.txt").unlink()
    with pytest.raises(WordDatasetError, match="largeWriterIndependentTextLineRecognitionTask.zip"):
        read_iam({}, tmp_path, {"local_copy": str(root), **SMALL})


def test_iam_malformed_record_names_file_and_line(tmp_path):
    root = make_iam(tmp_path / "iam")
    words = root / "ascii/words.txt"
    words.write_text(words.read_text() + "a01-000u-00-09 maybe 154\n", encoding="utf-8")
    with pytest.raises(WordDatasetError, match=r"words\.txt:13: .*not a words\.txt record"):
        read_iam({}, tmp_path, {"local_copy": str(root), **SMALL})


def test_iam_corrupt_image_stops_or_is_skipped(tmp_path):
    root = make_iam(tmp_path / "iam")
    whole, whole_meta = read_iam({}, tmp_path, {"local_copy": str(root), **SMALL})
    bad = root / "words/b02/b02-010/b02-010-00-01.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(PreprocessError, match=r"b02-010-00-01\.png.*data\.iam\.on_error: skip"):
        read_iam({}, tmp_path, {"local_copy": str(root), **SMALL})
    (root / "words/c03/c03-020x/c03-020x-00-01.png").unlink()  # and one missing
    images, meta = read_iam({}, tmp_path, {"local_copy": str(root), "on_error": "skip", **SMALL})
    assert "b02-010-00-01" not in meta["item"].tolist()
    assert "c03-020x-00-01" not in meta["item"].tolist()
    assert len(images) == len(meta) == 6
    kept = whole_meta["item"].isin(meta["item"]).to_numpy()
    np.testing.assert_array_equal(images, whole[kept])  # rows moved up, still aligned


# --- IFN/ENIT fixture: set_x/tru/*.tru (Windows-1256) and set_x/tif/*.tif ---

TOWNS = ["تونس", "صفاقس", "سوسة", "قابس"]


def tru_text(word: str, zip_code: str) -> str:
    # the IFN/ENIT ground-truth layout: "KEY: value" lines, the word in LBL's AW1 field
    return "\r\n".join(
        [
            "COM: IFN/ENIT ground truth",
            "X_Y: 120 60",
            f"ZIP: {zip_code}",
            f"LBL: AW1:{word};AW2:{zip_code};",
            "",
        ]
    )


def make_ifn(root: Path, sets=("a", "e"), per_set: int = 4):
    items = []
    for s in sets:
        (root / f"set_{s}" / "tru").mkdir(parents=True)
        (root / f"set_{s}" / "tif").mkdir(parents=True)
        for k in range(per_set):
            writer = f"{s}e{k // 2:02d}"
            name = f"{writer}_{k:03d}"
            word = TOWNS[k % len(TOWNS)]
            (root / f"set_{s}/tru/{name}.tru").write_bytes(
                tru_text(word, f"{1000 + k}").encode("cp1256")
            )
            bilevel = Image.fromarray(word_image(30 + 10 * k, 20)).convert("1")
            bilevel.save(root / f"set_{s}/tif/{name}.tif")
            items.append((f"set_{s}/{name}", word, writer, s))
    return items


def test_ifn_enit_reader_words_writers_random_split(tmp_path):
    items = make_ifn(tmp_path / "ifn")
    opts = {"local_copy": str(tmp_path / "ifn"), "sets": ["a", "e"], **SMALL}
    images, meta = read_ifn_enit({}, tmp_path, opts)
    assert meta["item"].tolist() == [i[0] for i in items]
    assert meta["label_name"].tolist() == [i[1] for i in items]
    assert meta["writer"].tolist() == [i[2] for i in items]
    assert set(meta["script"]) == {"arabic"}
    assert images.shape == (8, 16, 64) and images.any(axis=(1, 2)).all()
    assert (meta["source_split"] == "test").sum() == 2  # 25% of 8
    again = read_ifn_enit({}, tmp_path, opts)[1]
    assert again["source_split"].tolist() == meta["source_split"].tolist()  # seeded
    other = read_ifn_enit({}, tmp_path, {**opts, "seed": 5})[1]
    assert (other["source_split"] == "test").sum() == 2


def test_ifn_enit_test_sets(tmp_path):
    make_ifn(tmp_path / "ifn")
    opts = {"local_copy": str(tmp_path / "ifn"), "sets": ["a", "e"], "test_sets": ["e"], **SMALL}
    _, meta = read_ifn_enit({}, tmp_path, opts)
    is_e = meta["item"].str.startswith("set_e/")
    assert (meta.loc[is_e, "source_split"] == "test").all()
    assert (meta.loc[~is_e, "source_split"] == "train").all()


def test_ifn_enit_missing_set_image_and_label(tmp_path):
    make_ifn(tmp_path / "ifn")
    opts = {"local_copy": str(tmp_path / "ifn"), **SMALL}
    with pytest.raises(WordDatasetError, match=r"set_b/.*data\.ifn_enit\.sets"):
        read_ifn_enit({}, tmp_path, opts)  # default sets a-e; only a and e exist
    opts["sets"] = ["a", "e"]
    (tmp_path / "ifn/set_a/tif/ae00_000.tif").unlink()
    with pytest.raises(WordDatasetError, match=r"no image.*data\.ifn_enit\.on_error"):
        read_ifn_enit({}, tmp_path, opts)
    _, meta = read_ifn_enit({}, tmp_path, {**opts, "on_error": "skip"})
    assert "set_a/ae00_000" not in meta["item"].tolist() and len(meta) == 7
    (tmp_path / "ifn/set_e/tru/ee01_003.tru").write_bytes("ZIP: 1003\r\n".encode("cp1256"))
    with pytest.raises(WordDatasetError, match=r"ee01_003\.tru: no 'LBL: AW1"):
        read_ifn_enit({}, tmp_path, opts)


def test_word_datasets_are_registered_as_manual_arrays():
    for name in ("iam", "ifn_enit"):
        spec = registry.get(name)
        assert spec.manual and spec.route == "arrays" and not spec.files


# --- height normalisation ---------------------------------------------------------------


def test_normalize_word_keeps_aspect_and_pads():
    def band(width):  # ink across the whole width, one row of paper above and below
        img = np.full((22, width), 255, np.uint8)
        img[1:21] = 0
        return img

    out = normalize_word(band(100), height=11, max_width=80, crop=False)
    assert out.shape == (11, 80)
    assert np.flatnonzero(out.any(axis=0)).max() + 1 == 50  # 100 x 22 -> 50 x 11
    assert not out[:, 50:].any()
    wide = normalize_word(band(400), height=11, max_width=80, crop=False)
    assert np.flatnonzero(wide.any(axis=0)).max() + 1 == 80  # shrunk to fit the width:
    assert np.flatnonzero(wide.any(axis=1)).max() + 1 <= 4  # 400 x 22 -> 80 x 4
    assert scaled_size(22, 400, 11, 80) == (4, 80) and scaled_size(22, 100, 11, 80) == (11, 50)


def test_normalize_word_grey_without_binarize():
    img = np.full((20, 40), 200, np.uint8)
    img[5:15, 5:35] = 60  # grey ink on grey paper
    out = normalize_word(img, height=20, max_width=40, binarize=False, crop=False)
    assert out.max() == 140 and out.min() == 0  # inverted, paper subtracted


# --- stop words -----------------------------------------------------------------------


def test_nltk_stop_word_list():
    words = stopwords.load("nltk_english")
    assert len(words) == 179 and {"the", "a", "of", "wouldn't"} <= words
    assert stopwords.is_query("Gaitskell", words) and not stopwords.is_query("The", words)
    with pytest.raises(ValueError, match="no stop-word list 'klingon'"):
        stopwords.load("klingon")


def test_stop_words_are_never_queries_but_stay_ranked():
    import torch

    from hwbench.retrieval import qbe_map, qbs_map
    from hwbench.studies.onemodel.job import Evaluator
    from hwbench.studies.onemodel.labels import build_vocabulary
    from hwbench.studies.onemodel.spec import Task

    vocab = build_vocabulary({"iam": ["the", "move", "stop"]}, [2, 3], "none")
    entries = torch.tensor([0, 0, 1, 1, 2, 2, 0])
    logits = torch.randn(len(entries), vocab.phoc_size, generator=torch.Generator().manual_seed(0))
    probs = torch.sigmoid(logits)
    strings = [vocab.words[k] for k in entries.tolist()]
    plain = Task("iam", "iam", words="label_name", kind="spot")
    protocol = Task("iam", "iam", words="label_name", kind="spot", query_stop_words="nltk_english")
    got = Evaluator(vocab, [protocol]).metrics(logits, entries)
    qbe = qbe_map(probs, strings, [w != "the" for w in strings])
    qbs = qbs_map(probs, strings, ["move", "stop"], vocab.phocs[[1, 2]])
    assert qbe.n_queries == 4 and qbs.n_queries == 2
    assert got == {
        "iam/qbe_map": pytest.approx(100 * qbe.map),
        "iam/qbs_map": pytest.approx(100 * qbs.map),
    }
    everything = Evaluator(vocab, [plain]).metrics(logits, entries)
    assert everything["iam/qbs_map"] == pytest.approx(
        100 * qbs_map(probs, strings, ["the", "move", "stop"], vocab.phocs[[0, 1, 2]]).map
    )
    assert everything["iam/qbe_map"] == pytest.approx(100 * qbe_map(probs, strings).map)
    with pytest.raises(ValueError, match="task iam: query_stop_words: no stop-word list"):
        Task("iam", "iam", words="label_name", kind="spot", query_stop_words="klingon")


def test_fig5_hashing_separates_the_tasks(tmp_path):
    from hwbench.report import save_figure
    from hwbench.studies.onemodel.report import fig5_figure, fig5_points

    points = fig5_points([2, 3])
    n = 3 * (179 + 3)
    assert points["method"].value_counts().to_dict() == {"none": n, "djb2": n}
    plain, hashed = points[points.method == "none"], points[points.method == "djb2"]
    assert plain["collides"].all() and not hashed["collides"].any()
    # plain: the three tasks' "pay" are one point; hashed: three distinct labels and points
    pay = plain[plain.word == "pay"]
    assert pay[["pc1", "pc2"]].nunique().tolist() == [1, 1]
    pay = hashed[hashed.word == "pay"].set_index("task")
    assert pay.loc["speech", "label"] == "pay99881"  # the paper's DJB2(payspeech) mod 1000003
    assert len(pay[["pc1", "pc2"]].drop_duplicates()) == 3
    save_figure(fig5_figure(points), tmp_path / "fig5.png")
    assert (tmp_path / "fig5.png").stat().st_size > 0
