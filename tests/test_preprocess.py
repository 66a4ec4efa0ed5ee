"""EMNIST-style preprocessing: geometry, antialiasing, polarity, files and errors."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hwbench import preprocess as pp
from hwbench.store import load_processed, recorded_digest


def paper(side: int = 128) -> np.ndarray:
    return np.full((side, side), 255, np.uint8)


def rectangle(x: int, y: int, w: int, h: int, side: int = 128) -> np.ndarray:
    """Black-on-white: a filled black w x h rectangle at (x, y)."""
    img = paper(side)
    img[y : y + h, x : x + w] = 0
    return img


def glyph() -> np.ndarray:
    """A black-on-white scribble with strokes of several directions."""
    img = paper()
    cv2.polylines(img, [np.array([[30, 100], [60, 20], [95, 95], [40, 70]], np.int32)], False, 0, 7)
    return img


def ink_box(out: np.ndarray, level: int = 127) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) inclusive of the pixels brighter than ``level``."""
    rows, cols = np.flatnonzero((out > level).any(1)), np.flatnonzero((out > level).any(0))
    return rows[0], rows[-1], cols[0], cols[-1]


def centre_of_mass(out: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(out.shape)
    total = out.sum(dtype=np.float64)
    return (ys * out).sum() / total, (xs * out).sum() / total


# --------------------------------------------------------------------------- geometry


def test_rectangle_is_centred_with_its_aspect_ratio_kept():
    out = pp.emnist_style(pp.to_ink(rectangle(10, 70, 60, 30)))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert out.max() == 255  # EMNIST intensity rescaling
    cy, cx = centre_of_mass(out)
    assert abs(cy - 13.5) < 0.3 and abs(cx - 13.5) < 0.3
    top, bottom, left, right = ink_box(out)
    # 60 x 30 rectangle (+1 px margin) fills the 24 px inner square's width
    assert left <= 3 and right >= 24
    assert (right - left + 1) / (bottom - top + 1) == pytest.approx(2.0, rel=0.15)
    # the empty 2 px EMNIST border
    assert not out[:2].any() and not out[-2:].any()
    assert not out[:, :2].any() and not out[:, -2:].any()


def test_position_in_the_raw_image_does_not_matter():
    a = pp.emnist_style(pp.to_ink(rectangle(5, 5, 40, 22)))
    b = pp.emnist_style(pp.to_ink(rectangle(80, 100, 40, 22)))
    np.testing.assert_array_equal(a, b)


def test_tall_bar_stays_tall():
    out = pp.emnist_style(pp.to_ink(rectangle(60, 10, 8, 100)))
    top, bottom, left, right = ink_box(out)
    height, width = bottom - top + 1, right - left + 1
    assert height >= 22 and width <= 4 and height > 4 * width
    cy, cx = centre_of_mass(out)
    assert abs(cx - 13.5) < 0.3 and abs(cy - 13.5) < 0.3


def test_border_parameter_is_in_output_pixels():
    ink = pp.to_ink(glyph())
    for border in (0, 2, 4):
        out = pp.emnist_style(ink, border=border)
        top, bottom, left, right = ink_box(out, level=0)
        assert min(top, left) >= border and max(bottom, right) <= 27 - border
    with pytest.raises(ValueError, match="border"):
        pp.emnist_style(ink, border=14)


def test_rescale_false_keeps_intensities_below_white():
    ink = pp.to_ink(rectangle(60, 10, 2, 100))  # a thin line blurs and thins to grey
    stretched = pp.emnist_style(ink)
    kept = pp.emnist_style(ink, rescale=False)
    assert stretched.max() == 255 and 0 < kept.max() < 200


def test_matches_reference_composition_of_opencv_blur_and_pillow_resize():
    """The fused operator equals the steps done one by one with the libraries."""
    ink = pp.to_ink(glyph())
    x, y, w, h = cv2.boundingRect((ink > pp.INK_THRESHOLD).astype(np.uint8))
    crop = ink[y - 1 : y + h + 1, x - 1 : x + w + 1].astype(np.float32)
    crop = cv2.GaussianBlur(crop, (0, 0), 1.0, borderType=cv2.BORDER_CONSTANT)
    side = max(crop.shape)
    square = np.zeros((side, side), np.float32)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    square[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    small = np.asarray(Image.fromarray(square).resize((24, 24), Image.Resampling.BICUBIC))
    small = np.maximum(small, 0)
    expected = np.zeros((28, 28), np.uint8)
    expected[2:26, 2:26] = np.clip(small * (255 / small.max()) + 0.5, 0, 255)
    got = pp.emnist_style(ink)
    assert np.abs(got.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("shape", [(130, 130, 24, 24), (90, 40, 24, 11), (12, 17, 24, 30)])
def test_resize_antialiased_equals_pillow_bicubic(shape):
    h_in, w_in, h_out, w_out = shape
    img = np.random.default_rng(0).random((h_in, w_in)).astype(np.float32) * 255
    expected = np.asarray(Image.fromarray(img).resize((w_out, h_out), Image.Resampling.BICUBIC))
    np.testing.assert_allclose(pp.resize_antialiased(img, h_out, w_out), expected, atol=1e-3)


def test_antialiasing_turns_fine_stripes_grey_where_plain_bicubic_aliases():
    ink = np.zeros((128, 128), np.uint8)
    ink[:, ::2] = 255  # 1 px white/black columns over the whole image
    ours = pp.emnist_style(ink, sigma=0, border=0, rescale=False)[2:-2, 2:-2]
    assert abs(float(ours.mean()) - 127.5) < 6 and ours.std() < 3
    # the same square (the crop plus its zero margin) shrunk without antialiasing
    square = np.pad(ink, 1).astype(np.float32)
    for method in (cv2.INTER_CUBIC, cv2.INTER_NEAREST):
        aliased = cv2.resize(square, (28, 28), interpolation=method)[2:-2, 2:-2]
        assert aliased.std() > 40


# --------------------------------------------------------------------------- polarity and types


def test_polarity_is_detected_both_ways():
    black_on_white = glyph()
    expected = pp.emnist_style(pp.to_ink(black_on_white))
    np.testing.assert_array_equal(pp.emnist_style(pp.to_ink(255 - black_on_white)), expected)
    ink = pp.to_ink(black_on_white)
    assert ink[0, 0] == 0 and ink.max() == 255  # white ink on black
    # an explicit flag wins over detection
    np.testing.assert_array_equal(pp.to_ink(black_on_white, invert=False), black_on_white)


def test_image_types_give_the_same_result():
    gray = glyph()
    expected = pp.emnist_style(pp.to_ink(gray))
    rgba = np.dstack([np.zeros_like(gray)] * 3 + [255 - gray])  # black ink, transparent paper
    variants = {
        "rgb": np.dstack([gray] * 3),
        "rgba": rgba,
        "bool": gray > 127,
        "uint16": gray.astype(np.uint16) * 257,
        "float01": gray.astype(np.float32) / 255,
        "grey paper": np.where(gray > 127, 200, 0).astype(np.uint8),
    }
    for name, img in variants.items():
        got = pp.emnist_style(pp.to_ink(img))
        assert np.abs(got.astype(int) - expected).max() <= 1, name


def test_blank_image_gives_zeros():
    for blank in (paper(), np.zeros((64, 64), np.uint8), np.full((40, 40), 90, np.uint8)):
        out = pp.emnist_style(pp.to_ink(blank))
        assert out.shape == (28, 28) and not out.any()


# --------------------------------------------------------------------------- files


def write_images(folder: Path, n: int) -> list[str]:
    """``n`` PNGs of shifted rectangles/scribbles in several encodings."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = np.roll(glyph(), (i % 7) * 3, axis=1) if i % 2 else rectangle(10 + i % 50, 20, 30, 50)
        kind = i % 4
        path = folder / f"{i:04d}.{'bmp' if kind == 3 else 'png'}"
        if kind == 1:
            cv2.imwrite(str(path), img, [cv2.IMWRITE_PNG_BILEVEL, 1])  # 1-bit, like NIST
        elif kind == 2:
            cv2.imwrite(str(path), np.dstack([img] * 3))  # RGB
        else:
            cv2.imwrite(str(path), img)
        paths.append(str(path))
    return paths


def truncate(path: str) -> None:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


def expected_of(paths: list[str]) -> np.ndarray:
    return np.stack(
        [pp.emnist_style(pp.to_ink(cv2.imread(p, cv2.IMREAD_UNCHANGED))) for p in paths]
    )


def test_preprocess_files_in_parallel_matches_per_image(tmp_path):
    paths = write_images(tmp_path / "img", 70)  # several chunks of 16
    images, failed = pp.preprocess_files(paths, workers=2, progress=False)
    assert failed == [] and images.shape == (70, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, expected_of(paths))
    serial, _ = pp.preprocess_files(paths, workers=1, progress=False)
    np.testing.assert_array_equal(images, serial)


def test_no_files_gives_an_empty_stack():
    images, failed = pp.preprocess_files([], workers=2, progress=False)
    assert images.shape == (0, 28, 28) and failed == []
    assert pp.preprocess_arrays([], workers=2, progress=False).shape == (0, 28, 28)


def test_corrupt_file_stops_with_its_name(tmp_path):
    paths = write_images(tmp_path / "img", 40)
    truncate(paths[33])
    with pytest.raises(pp.PreprocessError, match=r"0033\.png: cannot be decoded.*on_error: skip"):
        pp.preprocess_files(paths, workers=2, progress=False)
    missing = str(tmp_path / "img" / "nope.png")
    with pytest.raises(pp.PreprocessError, match=r"nope\.png: file not found"):
        pp.preprocess_files([missing], workers=1, progress=False)


def test_skip_mode_drops_and_names_bad_files(tmp_path, caplog):
    paths = write_images(tmp_path / "img", 40)
    truncate(paths[5])
    Path(paths[21]).write_bytes(b"not an image at all")
    cv2.imwrite(paths[30], paper())  # blank: degenerate (issue 25), skipped like the others
    with caplog.at_level(logging.WARNING, logger="hwbench"):
        images, failed = pp.preprocess_files(paths, on_error="skip", workers=2, progress=False)
    assert failed == [paths[5], paths[21], paths[30]]
    good = [p for i, p in enumerate(paths) if i not in (5, 21, 30)]
    np.testing.assert_array_equal(images, expected_of(good))
    assert "skipped 3 unreadable or degenerate image(s)" in caplog.text
    assert paths[21] in caplog.text and f"{paths[30]}: degenerate: no ink" in caplog.text


def test_preprocess_arrays_matches_per_image():
    arrays = [np.roll(glyph(), k * 5, axis=0) for k in range(40)]
    out = pp.preprocess_arrays(arrays, workers=2, progress=False)
    expected = np.stack([pp.emnist_style(pp.to_ink(a)) for a in arrays])
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(pp.preprocess_arrays(np.stack(arrays), workers=1), expected)


def write_manifest(root: Path, n: int) -> pd.DataFrame:
    paths = write_images(root / "images", n)
    frame = pd.DataFrame(
        {
            "file": [str(Path(p).relative_to(root)) for p in paths],
            "label": [i % 3 for i in range(n)],
            "label_name": [str(i % 3) for i in range(n)],
            "script": "latin",
            "writer": [f"w{i % 4:02d}" for i in range(n)],
            "pen": "",
            "source_split": "",
        }
    )
    frame.to_csv(root / "manifest.csv", index=False)
    return frame


def test_preprocess_manifest_writes_store_format_and_drops_skipped_rows(tmp_path):
    raw = tmp_path / "raw"
    frame = write_manifest(raw, 12)
    truncate(str(raw / frame["file"][4]))
    with pytest.raises(pp.PreprocessError, match="0004.png"):
        pp.preprocess_manifest(raw / "manifest.csv", tmp_path / "out", workers=1, progress=False)
    summary = pp.preprocess_manifest(
        raw / "manifest.csv", tmp_path / "out", on_error="skip", workers=1, progress=False
    )
    assert summary["images"] == 11 and summary["skipped"] == [str(raw / frame["file"][4])]
    done = load_processed(tmp_path / "out")
    assert done.images.shape == (11, 28, 28)
    kept = frame.drop(index=4).reset_index(drop=True)
    assert list(done.meta["label"]) == list(kept["label"])
    assert list(done.meta["writer"]) == list(kept["writer"])
    assert "file" not in done.meta.columns
    paths = [str(raw / f) for f in kept["file"]]
    np.testing.assert_array_equal(done.images, expected_of(paths))


@pytest.mark.parametrize("bad", [None, 37], ids=["all-read", "one-skipped"])
def test_manifest_digest_is_the_hash_of_the_written_file(tmp_path, bad):
    """Hashed while the memory-mapped rows are written (several chunks, two
    workers), or while the compacted file is written when a row was skipped."""
    raw = tmp_path / "raw"
    frame = write_manifest(raw, 70)
    if bad is not None:
        truncate(str(raw / frame["file"][bad]))
    pp.preprocess_manifest(
        raw / "manifest.csv", tmp_path / "out", on_error="skip", workers=2, progress=False
    )
    images = tmp_path / "out" / "images.npy"
    record = recorded_digest(tmp_path / "out")
    assert record["digest"] == hashlib.blake2b(images.read_bytes(), digest_size=16).hexdigest()
    assert record["shape"] == [70 if bad is None else 69, 28, 28]
    assert record["bytes"] == images.stat().st_size


def test_manifest_without_a_column_is_refused(tmp_path):
    frame = write_manifest(tmp_path, 3)
    frame.drop(columns="writer").to_csv(tmp_path / "manifest.csv", index=False)
    with pytest.raises(ValueError, match=r"manifest.csv: missing columns \['writer'\]"):
        pp.preprocess_manifest(tmp_path / "manifest.csv", tmp_path / "out", workers=1)


# --------------------------------------------------------------------------- native size


def test_native_size_keeps_every_pixel_of_the_ink(tmp_path):
    """No crop, blur, centring, resize or rescale: the raw image, white on black."""
    raw = tmp_path / "raw"
    frame = write_manifest(raw, 24)  # bilevel, grey and RGB PNGs and BMPs, 128 x 128
    summary = pp.preprocess_manifest(
        raw / "manifest.csv", tmp_path / "out", native=True, workers=2, progress=False
    )
    assert summary == {"images": 24, "skipped": []}
    done = load_processed(tmp_path / "out", mmap=True)
    assert done.images.shape == (24, 128, 128) and done.images.dtype == np.uint8
    for i, name in enumerate(frame["file"]):
        decoded = cv2.imread(str(raw / name), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(done.images[i], 255 - decoded)  # black paper, white ink
    assert set(np.unique(done.images)) == {0, 255}  # binary stays binary: nothing blurred
    emnist = pp.preprocess_manifest(raw / "manifest.csv", tmp_path / "e", workers=1, progress=False)
    assert emnist["images"] == 24
    pd.testing.assert_frame_equal(done.meta, load_processed(tmp_path / "e").meta)


def test_native_size_needs_one_size_and_skips_the_others(tmp_path, caplog):
    raw = tmp_path / "raw"
    frame = write_manifest(raw, 40)
    odd = raw / frame["file"][17]
    cv2.imwrite(str(odd), rectangle(5, 5, 20, 20, side=64))
    with pytest.raises(
        pp.PreprocessError, match=r"0017\.png: ValueError: 64 x 64 pixels.*128 x 128"
    ):
        pp.preprocess_manifest(raw / "manifest.csv", tmp_path / "out", native=True, workers=1)
    assert not (tmp_path / "out" / "images.npy").exists()  # nothing half-written
    truncate(str(raw / frame["file"][4]))
    with caplog.at_level(logging.WARNING, logger="hwbench"):
        summary = pp.preprocess_manifest(
            raw / "manifest.csv", tmp_path / "out", native=True, on_error="skip", workers=2
        )
    assert summary["skipped"] == [str(raw / frame["file"][i]) for i in (4, 17)]
    done = load_processed(tmp_path / "out")
    kept = [i for i in range(40) if i not in (4, 17)]
    assert done.images.shape == (38, 128, 128)
    assert done.meta["writer"].tolist() == frame["writer"][kept].tolist()
    expected = [pp.to_ink(cv2.imread(str(raw / frame["file"][i]), -1)) for i in kept]
    np.testing.assert_array_equal(done.images, np.stack(expected))
    assert list(tmp_path.joinpath("out").glob(".images*")) == []  # no temporaries left


def test_native_size_files_match_to_ink():
    with pytest.raises(pp.PreprocessError, match="native size is unknown"):
        pp.preprocess_files([], native=True)
    assert pp.native_ink(paper(8), (8, 8)).max() == 0
    with pytest.raises(ValueError, match="8 x 8 pixels.*one size"):
        pp.native_ink(paper(8), (16, 16))
