"""The shared charsets and the embedded synthetic handwriting generator."""

from __future__ import annotations

import copy
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from hwbench import charsets as cs
from hwbench import synth

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(seed=3, writers=3, samples_per_class=2, scripts=["latin_digits", "arabic_digits"])


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    synth.generate(synth.SynthParams(**TINY), out, processes=1, progress=False)
    return out


# --------------------------------------------------------------------------- charsets


def test_charset_ids_and_code_points():
    assert cs.NUM_CLASSES == 159
    assert [c.label for c in cs.ALL_CLASSES] == list(range(159))
    first = {name: cs.classes(name)[0] for name in cs.CHARSET_NAMES}
    assert [first[n].label for n in cs.CHARSET_NAMES] == [0, 10, 20, 30, 82]
    assert first["arabic_digits"].label_name == "\u0660"
    assert first["kannada_digits"].label_name == "\u0ce6"
    assert cs.by_label(19).label_name == "\u0669" and cs.by_label(29).label_name == "\u0cef"
    assert cs.by_label(30).label_name == "A" and cs.by_label(56).label_name == "a"
    assert cs.by_label(81).label_name == "z"
    amharic = cs.classes("amharic")
    assert len(amharic) == 77
    assert amharic[0].label == 82 and amharic[0].label_name == "\u1208"  # ለ
    assert amharic[7].label_name == "\u1230"  # row 1 starts with ሰ
    bases = [ord(amharic[7 * r].label_name) for r in range(11)]
    assert bases == [0x1208, 0x1230, 0x1238, 0x1260, 0x1278, 0x12A0, 0x12A8, 0x12B8, 0x12F0] + [
        0x1330,
        0x1338,
    ]
    for k, c in enumerate(amharic):
        assert ord(c.label_name) == bases[k // 7] + k % 7
        assert (c.row, c.column) == (k // 7, k % 7)
    assert cs.by_label(158).label_name == "\u133e"
    assert {c.script for c in cs.ALL_CLASSES} == {"latin", "arabic", "kannada", "ethiopic"}


def test_words_are_ascii_and_consistent():
    assert cs.word("3") == cs.word("\u0663") == cs.word("\u0ce9") == "three"
    assert cs.word("\u0660") == "zero" and cs.word("\u0cef") == "nine"
    assert cs.word("Q") == "Q" and cs.word("q") == "q"
    assert [cs.word(chr(0x1208 + k)) for k in range(7)] == [
        "le",
        "lu",
        "li",
        "la",
        "lee",
        "lih",
        "lo",
    ]
    assert cs.word("\u12a0") == "e" and cs.word("\u1338") == "tse"
    amharic_words = [c.word for c in cs.classes("amharic")]
    assert len(set(amharic_words)) == 77
    assert all(w.isascii() and w.isalpha() for w in (c.word for c in cs.ALL_CLASSES))
    with pytest.raises(ValueError, match="not in any charset"):
        cs.word("\u00e9")


def test_charset_mask_and_local_index():
    meta = pd.DataFrame({"label": [0, 9, 10, 30, 81, 82, 158]})
    assert cs.charset_mask(meta, "latin_digits").tolist() == [1, 1, 0, 0, 0, 0, 0]
    assert cs.charset_mask(meta, "amharic").tolist() == [0, 0, 0, 0, 0, 1, 1]
    assert cs.charset_mask(meta, "latin_letters").dtype == bool
    assert cs.local_index([82, 158], "amharic").tolist() == [0, 76]
    with pytest.raises(ValueError, match="outside amharic"):
        cs.local_index([10], "amharic")
    with pytest.raises(ValueError, match="unknown charset"):
        cs.classes("greek")


# --------------------------------------------------------------------------- generator


def test_same_seed_gives_identical_bytes_whatever_the_processes(tiny, tmp_path):
    synth.generate(synth.SynthParams(**TINY), tmp_path, processes=2, progress=False)
    assert files_of(tmp_path) == files_of(tiny)


def test_other_seed_gives_other_images(tiny, tmp_path):
    synth.generate(synth.SynthParams(**{**TINY, "seed": 4}), tmp_path, processes=1, progress=False)
    a, b = files_of(tiny), files_of(tmp_path)
    common = sorted(set(a) & set(b) - {"manifest.csv"})
    assert common, "the two runs share no file names"
    differing = sum(a[f] != b[f] for f in common)
    assert differing == len(common)


def test_manifest_columns_values_and_counts(tiny):
    manifest = synth.read_manifest(tiny)
    assert list(manifest.columns) == synth.MANIFEST_COLUMNS
    assert len(manifest) == 3 * 20 * 2 == synth.SynthParams(**TINY).num_images()
    assert (manifest["source_split"] == "").all()
    assert sorted(manifest["writer"].unique()) == ["w000", "w001", "w002"]
    assert set(manifest["label"]) == set(range(20))
    counts = manifest.groupby(["writer", "label"]).size()
    assert (counts == 2).all() and len(counts) == 60
    assert set(manifest["pen"]) <= set(synth.PENS) and manifest["pen"].nunique() >= 4
    for row in manifest.itertuples():
        c = cs.by_label(row.label)
        assert (row.label_name, row.script) == (c.label_name, c.script)
        assert (tiny / row.file).is_file() and row.file.startswith("images/")
    assert manifest["file"].is_unique
    # The folder holds exactly the listed images.
    on_disk = {str(p.relative_to(tiny)) for p in (tiny / "images").rglob("*.png")}
    assert on_disk == set(manifest["file"])


def test_images_are_black_on_white_uint8_of_the_configured_size(tiny, tmp_path):
    manifest = synth.read_manifest(tiny)
    for file in manifest["file"]:
        image = cv2.imread(str(tiny / file), cv2.IMREAD_UNCHANGED)
        assert image.dtype == np.uint8 and image.shape == (128, 128)
        border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
        assert (border == 255).all(), file  # white paper, glyph kept off the edge
        ink = image < 200
        assert image.min() < 160 and 0.005 < ink.mean() < 0.6, file
    params = synth.SynthParams(**{**TINY, "image_size": 48, "writers": 1})
    small = synth.generate(params, tmp_path, processes=1, progress=False)
    image = cv2.imread(str(tmp_path / small["file"][0]), cv2.IMREAD_UNCHANGED)
    assert image.shape == (48, 48) and image.dtype == np.uint8


def test_crossed_design_counts(tmp_path):
    pens = ["pencil", "crayon", "gel_pen"]
    params = synth.SynthParams(
        seed=0, writers=2, samples_per_class=2, scripts=["kannada_digits"], pens=pens,
        pen_design="crossed",
    )  # fmt: skip
    manifest = synth.generate(params, tmp_path, processes=1, progress=False)
    assert len(manifest) == 2 * 3 * 10 * 2 == params.num_images()
    counts = manifest.groupby(["writer", "pen", "label"]).size()
    assert len(counts) == 2 * 3 * 10 and (counts == 2).all()
    assert set(manifest["pen"]) == set(pens)
    assert set(manifest["label"]) == set(range(20, 30))


def test_pens_change_the_strokes():
    params = synth.SynthParams(seed=0, writers=1, samples_per_class=1, pen_design="crossed")
    ink = {pen: 255.0 - synth.render(params, 0, 3, 0, pen)[0].astype(float) for pen in synth.PENS}
    # Broad pens lay down more ink than fine ones; light media stay lighter.
    assert ink["paintbrush"].sum() > ink["gel_pen"].sum()

    def stroke_tone(pen):
        return np.median(ink[pen][ink[pen] > 25])

    assert stroke_tone("pencil") < 0.8 * stroke_tone("pigment")
    assert stroke_tone("watercolor_brush") < 0.8 * stroke_tone("gel_pen")
    assert len({round(v.sum()) for v in ink.values()}) == len(synth.PENS)


def test_enabling_another_charset_keeps_existing_images():
    small = synth.SynthParams(**TINY)
    large = synth.SynthParams(**{**TINY, "scripts": ["amharic", "latin_digits", "arabic_digits"]})
    for label in (0, 15):
        a, pen_a = synth.render(small, 1, label, 1)
        b, pen_b = synth.render(large, 1, label, 1)
        assert pen_a == pen_b and np.array_equal(a, b)


def test_writer_identity_is_learnable():
    """Nearest centroid on 16x16 pixels of one class tells writers apart."""
    params = synth.SynthParams(seed=11, writers=8, samples_per_class=6, scripts=cs.CHARSET_NAMES)
    for label in (3, 13, 100):  # a Latin digit, an Arabic digit, an Amharic syllable
        x, y, rep = [], [], []
        for writer in range(params.writers):
            for r in range(params.samples_per_class):
                image, _ = synth.render(params, writer, label, r)
                small = cv2.resize(255 - image, (16, 16), interpolation=cv2.INTER_AREA)
                x.append(small.ravel() / 255.0)
                y.append(writer)
                rep.append(r)
        x, y, rep = np.array(x), np.array(y), np.array(rep)
        train, test = rep < 4, rep >= 4
        centroids = np.stack([x[train & (y == w)].mean(0) for w in range(params.writers)])
        distances = ((x[test][:, None] - centroids[None]) ** 2).sum(-1)
        accuracy = (distances.argmin(1) == y[test]).mean()
        assert accuracy >= 0.5, f"label {label}: writer accuracy {accuracy} (chance 0.125)"


def test_bad_parameters_name_the_key():
    with pytest.raises(ValueError, match=r"synth\.lab: unknown key\(s\) \['colour'\]"):
        synth.SynthParams.from_config({**TINY, "colour": 1}, where="synth.lab")
    with pytest.raises(ValueError, match=r"synth\.lab\.pens .*unknown pen"):
        synth.SynthParams.from_config({**TINY, "pens": ["quill"]}, where="synth.lab")
    with pytest.raises(ValueError, match="pen_design"):
        synth.SynthParams(**{**TINY, "pen_design": "latin_square"})
    with pytest.raises(ValueError, match="scripts"):
        synth.SynthParams(**{**TINY, "scripts": ["klingon"]})
    with pytest.raises(ValueError, match="crossed design needs a pen"):
        synth.render(synth.SynthParams(**{**TINY, "pen_design": "crossed"}), 0, 0, 0)


def test_every_font_renders_every_character_of_its_charsets():
    for charset, fonts in synth.FONT_SOURCES.items():
        size = synth._source_size(fonts[0], charset, 128)
        for font in fonts:
            for char in cs.CHARSETS[charset]:
                glyph = synth._glyph(font, char, synth._source_size(font, charset, 128))
                assert glyph.height > 3, (font, char)
        assert size > 8
    total = sum(p.stat().st_size for p in synth.FONT_DIR.rglob("*") if p.is_file())
    assert total < 2_000_000


def test_contact_sheet(tiny, tmp_path):
    out = synth.contact_sheet(tiny, tmp_path / "sheet.png", writers=3, per_script=3, per_pen=5)
    sheet = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert sheet.ndim == 2 and sheet.shape[0] > 3 * 64 and sheet.shape[1] > 6 * 64
    assert (sheet < 128).mean() > 0.01  # glyphs were pasted, not an empty canvas


# --------------------------------------------------------------------------- config


def _validate(config: dict) -> None:
    from snakemake.utils import validate

    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))


def test_config_synth_section_validates_and_fills_defaults():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    _validate(config)
    params = synth.generator_params(config["synth"], "synth")
    # the default stays quick to generate: its 22,896 images (24 writers x 6 x 159
    # classes) took 18 s in the synth job of a default run on 2 cores
    assert params.num_images() < 25_000
    extra = copy.deepcopy(config)
    extra["synth"]["synth_lifelong"] = dict(
        seed=1, writers=4, samples_per_class=3, scripts=["latin_digits"], pen_design="crossed"
    )
    _validate(extra)
    lifelong = synth.generator_params(extra["synth"], "synth_lifelong")
    assert lifelong.num_images() == 4 * 7 * 10 * 3


def test_schema_defaults_match_the_generator_defaults():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "synth.schema.yaml").read_text())
    properties = schema["$defs"]["generator"]["properties"]
    defaults = {k: v["default"] for k, v in properties.items() if "default" in v}
    assert set(defaults) == {"pens", "pen_design", "image_size"}
    params = synth.SynthParams(**TINY)  # keys left out of a config entry
    assert {k: getattr(params, k) for k in defaults} == {
        "pens": tuple(defaults["pens"]),
        "pen_design": defaults["pen_design"],
        "image_size": defaults["image_size"],
    }


@pytest.mark.parametrize(
    "name, entry",
    [
        ("bad/name", TINY),
        ("synth", {**TINY, "pens": ["quill"]}),
        ("synth", {**TINY, "colour": 1}),
        ("synth", {k: v for k, v in TINY.items() if k != "writers"}),
    ],
)
def test_config_schema_rejects_bad_synth_entries(name, entry):
    from snakemake.exceptions import WorkflowError

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["synth"] = {name: entry}
    with pytest.raises(WorkflowError):
        _validate(config)
