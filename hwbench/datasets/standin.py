"""Generated stand-ins for the real datasets: the data of a rehearsal (config ``data.standin``).

A stand-in takes from the registry (hwbench/datasets/registry.py) what decides shapes
and code paths downstream: the image shape at the stage where the real reader leaves
its dataset (a raw manifest + PNGs for the "images" route, which the preprocess rule
then processes; ``images.npy`` + ``meta.csv`` for the "arrays" route), the class
count and label names, the source splits and the writer ids. Its pixels are
class-specific random strokes (colour blobs for CIFAR-100, tones for Speech Commands,
made-up words for IMDB): nothing learnt from them means anything, and every table built
from them says so (:data:`NOTE`).

Sizes: ``per_class`` images per class in each training source split (per writer
where the dataset has writers, ``writers`` of them per split), at most ``test_images``
in each held-out split (the registry's ``test_splits``), so a rehearsal's evaluation
passes stay short.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from hwbench.datasets import registry
from hwbench.datasets.common import write_manifest
from hwbench.store import META_COLUMNS, save_processed

log = logging.getLogger("hwbench.datasets")

# What every table, caption and provenance record built from stand-ins says.
NOTE = "stand-in data: not a result"
IMAGE_FOLDER = "standin"  # data/raw/<dataset>/standin/: the stand-in's PNGs
SPEECH_RATE = 16000  # Speech Commands clips: one second at 16 kHz
WORD_DATASETS = ("iam", "ifn_enit")  # word images at data.<name>.height x max_width


@dataclass(frozen=True)
class StandinParams:
    """config ``data.standin`` (the schema describes each key)."""

    enabled: bool = False
    per_class: int = 2
    writers: int = 2
    test_images: int = 20
    seed: int = 0

    def __post_init__(self):
        for key in ("per_class", "writers", "test_images"):
            if getattr(self, key) < 1:
                raise ValueError(f"config data.standin.{key} = {getattr(self, key)}: must be >= 1")

    @classmethod
    def from_config(cls, values: Mapping | None) -> StandinParams:
        return cls(**dict(values or {}))


def class_names(spec: registry.DatasetSpec, options: Mapping | None = None) -> list[str]:
    """label_name of each label index, as the real reader names them with ``options``."""
    if spec.name == "emnist":
        return list(registry.EMNIST_CLASSES[(options or {}).get("split", "byclass")])
    return list(spec.classes)


def used_labels(spec: registry.DatasetSpec, options: Mapping | None = None) -> list[int]:
    """Label indices the real reader can produce (EMNIST letters has no label 0;
    DeepWriting has its "space" class only with include_null)."""
    options = options or {}
    names = class_names(spec, options)
    labels = [i for i, name in enumerate(names) if name != ""]
    if spec.name == "deepwriting" and not options.get("include_null", False):
        labels = [i for i in labels if i != 0]
    return labels


def speech_shape(n_fft: int, hop: int) -> tuple[int, int]:
    """Spectrogram rows x frames of a one-second clip (torch.stft, center=True)."""
    return n_fft // 2 + 1, SPEECH_RATE // hop + 1


def image_shape(spec: registry.DatasetSpec, options: Mapping | None = None) -> tuple[int, ...]:
    """One image of ``spec`` at its route's stage, for the reader ``options``."""
    options = options or {}
    if spec.name == "speech_commands":
        return speech_shape(int(options.get("n_fft", 256)), int(options.get("hop", 128)))
    if spec.name == "imdb":
        return int(options.get("embed_dim", 32)), int(options.get("max_words", 600))
    if spec.name == "deepwriting":
        size = int(options.get("image_size", spec.image_shape[0]))
        return size, size
    if spec.name in WORD_DATASETS:  # height-normalised word images (hwbench.wordimages)
        height, width = spec.image_shape
        return int(options.get("height", height)), int(options.get("max_width", width))
    return tuple(spec.image_shape)


def has_writers(spec: registry.DatasetSpec, options: Mapping | None = None) -> bool:
    if spec.name == "madbase" and (options or {}).get("variant", "rar") == "csv":
        return False  # the CSV mirror has no writer ids
    return spec.writer_format is not None


def plan_rows(
    spec: registry.DatasetSpec, options: Mapping | None, params: StandinParams
) -> pd.DataFrame:
    """The stand-in's meta rows (META_COLUMNS), in the order of its images."""
    names = class_names(spec, options)
    labels = used_labels(spec, options)
    writers = has_writers(spec, options)
    rows, next_writer = [], 0
    for split in spec.source_splits:
        split_writers = []
        for _ in range(params.writers if writers else 1):
            if writers:
                split_writers.append(spec.writer_format.format(w=next_writer, split=split))
                next_writer += 1
            else:
                split_writers.append("")
        if split in spec.test_splits:
            # a short held-out split: classes spread over the whole label range (a study
            # testing on a subset, e.g. NIST's letters, still finds some), writers in turn
            n = params.test_images
            pairs = [
                (split_writers[i % len(split_writers)], labels[(i * len(labels)) // n])
                for i in range(n)
            ]
        else:
            pairs = [
                (writer, label)
                for writer in split_writers
                for label in labels
                for _ in range(params.per_class)
            ]
        rows += [(label, names[label], writer, split) for writer, label in pairs]
    meta = pd.DataFrame(rows, columns=["label", "label_name", "writer", "source_split"])
    if spec.script is not None:
        meta["script"] = spec.script
    else:
        from hwbench.datasets.vocab import script_of

        meta["script"] = [script_of(name) for name in meta["label_name"]]
    meta["pen"] = ""
    return meta[META_COLUMNS]


def _rng(params: StandinParams, dataset: str, *more: int) -> np.random.Generator:
    return np.random.default_rng([params.seed, zlib.crc32(dataset.encode()), *more])


def _strokes(rng: np.random.Generator, n_strokes: int = 3, points: int = 4) -> list[np.ndarray]:
    """Random polylines in the unit square (a class's shape)."""
    return [rng.uniform(0.15, 0.85, size=(points, 2)) for _ in range(n_strokes)]


def _draw(shape: tuple[int, int], strokes, rng, ink: int, paper: int, width: int) -> np.ndarray:
    """``strokes`` jittered by ``rng``, drawn in ``ink`` on ``paper``."""
    height, width_px = shape
    image = np.full(shape, paper, np.uint8)
    shift = rng.normal(0, 0.04, size=2)
    for stroke in strokes:
        pts = stroke + shift + rng.normal(0, 0.02, size=stroke.shape)
        pix = np.round(pts * [width_px - 1, height - 1]).astype(np.int32)
        cv2.polylines(image, [pix.reshape(-1, 1, 2)], False, int(ink), width, cv2.LINE_AA)
    return image


def _pen_width(shape: tuple[int, ...], options: Mapping | None) -> int:
    if options and "pen_width" in options:
        return int(options["pen_width"])
    return max(1, round(min(shape[:2]) / 14))


def draw_images(
    spec: registry.DatasetSpec,
    meta: pd.DataFrame,
    options: Mapping | None,
    params: StandinParams,
    ink_on_white: bool,
) -> np.ndarray:
    """uint8 images of ``meta``'s labels: each class its own strokes, each image jittered."""
    shape = image_shape(spec, options)
    colour = len(shape) == 3
    grey = shape[:2]
    prototypes = {int(c): _strokes(_rng(params, spec.name, 0, int(c))) for c in meta["label"]}
    width = _pen_width(shape, options)
    out = np.empty((len(meta), *shape), np.uint8)
    for i, label in enumerate(meta["label"].to_numpy()):
        rng = _rng(params, spec.name, 1, i)
        if colour:
            tint = _rng(params, spec.name, 2, int(label)).integers(0, 256, size=(2, 3))
            mask = _draw(grey, prototypes[label], rng, 255, 0, width) / 255.0
            noise = rng.normal(0, 12, size=shape)
            image = tint[0] * (1 - mask[..., None]) + tint[1] * mask[..., None] + noise
            out[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        elif ink_on_white:
            out[i] = _draw(grey, prototypes[label], rng, 0, 255, width)
        else:
            out[i] = _draw(grey, prototypes[label], rng, 255, 0, width)
    if spec.name == "nist":  # SD19's PNGs are binary
        out = np.where(out < 128, 0, 255).astype(np.uint8)
    return out


def speech_images(meta: pd.DataFrame, options: Mapping | None, params: StandinParams):
    """Spectrograms (the real reader's :func:`spectrogram_images`) of class tones + noise."""
    from hwbench.datasets.speech import spectrogram_images

    options = options or {}
    t = np.arange(SPEECH_RATE) / SPEECH_RATE
    waves = np.empty((len(meta), SPEECH_RATE), np.float32)
    for i, label in enumerate(meta["label"].to_numpy()):
        rng = _rng(params, "speech_commands", 1, i)
        tones = _rng(params, "speech_commands", 0, int(label)).uniform(100, 4000, size=2)
        wave = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3)) for f in tones) / 4
        waves[i] = wave + rng.normal(0, 0.02, size=SPEECH_RATE)
    waves = np.clip(waves, -1, 1)
    return spectrogram_images(waves, int(options.get("n_fft", 256)), int(options.get("hop", 128)))


def imdb_images(meta: pd.DataFrame, options: Mapping | None, params: StandinParams):
    """Word-embedding images (the real reader's :func:`review_image`) of made-up reviews:
    each class draws its words from its own made-up vocabulary."""
    from hwbench.datasets.imdb import review_image

    options = options or {}
    dim, max_words = int(options.get("embed_dim", 32)), int(options.get("max_words", 600))
    cache: dict = {}
    images = np.empty((len(meta), dim, max_words), np.uint8)
    for i, label in enumerate(meta["label"].to_numpy()):
        rng = _rng(params, "imdb", 1, i)
        n_words = int(rng.integers(max(1, max_words // 4), max_words + 1))
        words = [f"w{label}x{k}" for k in rng.integers(0, 50, size=n_words)]
        images[i] = review_image(words, dim, max_words, cache)
    return images


def standin_arrays(
    dataset: str, options: Mapping | None, params: StandinParams
) -> tuple[np.ndarray, pd.DataFrame]:
    """(images, meta) of an "arrays" dataset's stand-in, as its reader would return them."""
    spec = registry.get(dataset)
    if spec.route != "arrays":
        raise ValueError(f"{dataset}: route {spec.route!r}; use write_standin_manifest")
    meta = plan_rows(spec, options, params)
    if dataset == "speech_commands":
        images = speech_images(meta, options, params)
    elif dataset == "imdb":
        images = imdb_images(meta, options, params)
    else:  # 28 x 28 digits and letters (white on black, like MNIST) or CIFAR colour
        images = draw_images(spec, meta, options, params, ink_on_white=False)
    return images, meta


def build_standin_arrays(
    dataset: str, out_folder: str | os.PathLike, options: Mapping | None, params: StandinParams
):
    """Write data/processed/<dataset>/ (images.npy + meta.csv) from a stand-in."""
    images, meta = standin_arrays(dataset, options, params)
    save_processed(out_folder, images, meta)
    log.info(
        "%s: %d stand-in images %s to %s (%s)",
        dataset,
        len(images),
        images.shape[1:],
        out_folder,
        NOTE,
    )
    return images, meta


def write_standin_manifest(
    dataset: str, raw: str | os.PathLike, options: Mapping | None, params: StandinParams
) -> pd.DataFrame:
    """Write an "images" dataset's stand-in PNGs under ``raw/standin/`` and ``raw/manifest.csv``
    (black ink on white, at the real raw image size), for the preprocess rule."""
    spec = registry.get(dataset)
    if spec.route != "images":
        raise ValueError(f"{dataset}: route {spec.route!r}; use build_standin_arrays")
    raw = Path(raw)
    meta = plan_rows(spec, options, params)
    images = draw_images(spec, meta, options, params, ink_on_white=True)
    folder = raw / IMAGE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, image in enumerate(images):
        rel = Path(IMAGE_FOLDER) / f"{i:06d}.png"
        if not cv2.imwrite(str(raw / rel), image):
            raise OSError(f"{raw / rel}: could not write the stand-in image")
        files.append(rel.as_posix())
    frame = write_manifest(meta.assign(file=files), raw / "manifest.csv")
    log.info(
        "%s: %d stand-in images %s in %s (%s)", dataset, len(frame), images.shape[1:], folder, NOTE
    )
    return frame
