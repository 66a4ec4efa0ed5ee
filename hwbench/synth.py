"""The embedded synthetic multi-script handwriting dataset.

Renders handwriting-like characters from the bundled fonts (``hwbench/fonts/``) into a
NIST-like raw dataset: black-on-white 8-bit grayscale PNGs plus a ``manifest.csv``.

* Each writer has a persistent style drawn once from the seed: which font serves each
  charset, slant (shear), rotation, stroke width, size, aspect ratio, position offset
  and the strength and smoothness of an elastic distortion. Every image varies a
  little around its writer's style, so writer identity stays learnable.
* Each image has a pen (the lifelong paper's seven) that changes stroke width, edge
  softness, ink darkness, texture and noise.
* Generation is deterministic: every image draws from its own random stream keyed by
  (seed, writer, label, pen, repetition), so the same parameters give byte-identical
  PNGs and manifest whatever the number of processes, and enabling another charset or
  adding writers leaves the existing images unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from hwbench import charsets as cs
from hwbench.store import atomic_path, write_csv

PENS = ("pencil", "gel_pen", "paintbrush", "pigment", "pen", "watercolor_brush", "crayon")
PEN_DESIGNS = ("random", "crossed")
MANIFEST_COLUMNS = ["file", "label", "label_name", "script", "writer", "pen", "source_split"]
MANIFEST_FILE = "manifest.csv"
IMAGES_DIR = "images"
FONT_DIR = Path(__file__).resolve().parent / "fonts"

# Glyph sources per charset (files in FONT_DIR; hwbench/fonts/README.md says where each
# comes from). Latin letters leave out the fonts whose lowercase repeats the capitals.
FONT_SOURCES: dict[str, tuple[str, ...]] = {
    "latin_digits": (
        "latin-01.otf",
        "latin-02.otf",
        "latin-03.otf",
        "latin-04.ttf",
        "latin-05.ttf",
        "latin-06.ttf",
        "latin-07.ttf",
        "latin-08.otf",
        "latin-09.otf",
        "latin-10.otf",
        "latin-11.otf",
        "latin-12.otf",
        "kannada-01.ttf",
    ),
    "arabic_digits": tuple(f"arabic-{i:02d}.ttf" for i in range(1, 9)),
    "kannada_digits": tuple(f"kannada-{i:02d}.ttf" for i in range(1, 5)),
    "latin_letters": (
        "latin-01.otf",
        "latin-02.otf",
        "latin-03.otf",
        "latin-04.ttf",
        "latin-05.ttf",
        "latin-06.ttf",
        "latin-12.otf",
    ),
    "amharic": tuple(f"ethiopic-{i:02d}.ttf" for i in range(1, 9)),
}

# Size exponent: 0 keeps each font's relative glyph sizes (an Arabic zero stays a small
# dot), 0.5 pulls Latin lowercase letters halfway towards the capitals' height.
_SIZE_GAMMA = {"latin_letters": 0.5}
_MARGIN = 4 / 128  # empty border kept around the glyph, as a fraction of the side


@dataclass(frozen=True)
class Pen:
    """How a pen type changes the stroke (widths in pixels of a 128-pixel image)."""

    width: float  # added to the writer's stroke width
    darkness: float  # ink darkness, 1 = black
    edge: float  # edge softness in pixels (anti-aliasing, bleeding)
    grain: float  # per-pixel texture (paper tooth)
    blotch: float  # low-frequency ink density variation (skips, pooling)
    rough: float  # ragged outline
    wobble: float  # width variation along the stroke (pressure)
    gaps: float = 0.0  # share of paper grain the pen skips entirely
    pool: float = 0.0  # darker rim where wet ink pools at the edge


PEN_STYLES: dict[str, Pen] = {
    "pencil": Pen(
        width=-0.4, darkness=0.6, edge=1.2, grain=0.45, blotch=0.1, rough=0.4, wobble=0.2
    ),
    "gel_pen": Pen(
        width=0.0, darkness=0.97, edge=1.0, grain=0.0, blotch=0.03, rough=0.0, wobble=0.2
    ),
    "paintbrush": Pen(
        width=1.8, darkness=0.93, edge=1.3, grain=0.05, blotch=0.1, rough=0.5, wobble=1.4
    ),
    "pigment": Pen(width=0.8, darkness=1.0, edge=0.9, grain=0.0, blotch=0.0, rough=0.0, wobble=0.1),
    "pen": Pen(width=-0.2, darkness=0.85, edge=1.0, grain=0.12, blotch=0.15, rough=0.1, wobble=0.2),
    "watercolor_brush": Pen(
        width=1.4, darkness=0.5, edge=3.0, grain=0.05, blotch=0.35, rough=0.4, wobble=1.0, pool=0.6
    ),
    "crayon": Pen(
        width=1.0, darkness=0.8, edge=1.0, grain=0.35, blotch=0.1, rough=1.2, wobble=0.4, gaps=0.3
    ),
}


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class SynthParams:
    """Generator parameters: one entry of the config's ``synth`` mapping."""

    seed: int = 0
    writers: int = 24
    samples_per_class: int = 3
    scripts: tuple[str, ...] = cs.CHARSET_NAMES
    pens: tuple[str, ...] = PENS
    pen_design: str = "random"
    image_size: int = 128

    def __post_init__(self):
        object.__setattr__(self, "scripts", tuple(self.scripts))
        object.__setattr__(self, "pens", tuple(self.pens))
        self.validate()

    def validate(self, where: str = "synth") -> None:
        def bad(key, value, what):
            raise ValueError(f"{where}.{key} = {value!r}: {what}")

        for key in ("seed", "writers", "samples_per_class", "image_size"):
            if not isinstance(getattr(self, key), int | np.integer):
                bad(key, getattr(self, key), "must be an integer")
        if self.writers < 1:
            bad("writers", self.writers, "needs at least 1 writer")
        if self.samples_per_class < 1:
            bad("samples_per_class", self.samples_per_class, "must be at least 1")
        if self.image_size < 32:
            bad("image_size", self.image_size, "must be at least 32 pixels")
        if not self.scripts or len(set(self.scripts)) != len(self.scripts):
            bad("scripts", list(self.scripts), f"list distinct charsets of {list(cs.CHARSETS)}")
        unknown = [s for s in self.scripts if s not in cs.CHARSETS]
        if unknown:
            bad("scripts", unknown, f"unknown charset(s); choose from {list(cs.CHARSETS)}")
        if not self.pens or len(set(self.pens)) != len(self.pens):
            bad("pens", list(self.pens), f"list distinct pens of {list(PENS)}")
        unknown = [p for p in self.pens if p not in PENS]
        if unknown:
            bad("pens", unknown, f"unknown pen(s); choose from {list(PENS)}")
        if self.pen_design not in PEN_DESIGNS:
            bad("pen_design", self.pen_design, f"choose one of {list(PEN_DESIGNS)}")

    @classmethod
    def from_config(cls, cfg: Mapping, where: str = "synth") -> SynthParams:
        """Build from a config mapping, naming unknown keys instead of ignoring them."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
        try:
            return cls(**dict(cfg))
        except ValueError as err:
            raise ValueError(str(err).replace("synth.", f"{where}.", 1)) from None

    def labels(self) -> list[int]:
        """Global label ids of the enabled charsets, in label order."""
        enabled = set(self.scripts)
        return [c.label for c in cs.ALL_CLASSES if c.charset in enabled]

    def num_images(self) -> int:
        per_writer_class = self.samples_per_class * (
            len(self.pens) if self.pen_design == "crossed" else 1
        )
        return self.writers * len(self.labels()) * per_writer_class


# --------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class WriterStyle:
    """A writer's persistent hand, drawn once from the seed."""

    fonts: dict[str, str]  # charset -> font file
    shear: float  # slant: x shifts by -shear * y (y grows downwards)
    rotation: float  # degrees, counter-clockwise
    stroke: float  # added stroke half-width, pixels of a 128-pixel image
    size: float  # height of the charset's tallest glyph, fraction of the side
    aspect: float  # width / height stretch
    offset: tuple[float, float]  # position of the glyph centre, fraction of the side
    elastic: float  # elastic displacement amplitude, pixels of a 128-pixel image
    elastic_cells: int  # coarse grid of the displacement field: fewer = smoother


def writer_name(index: int) -> str:
    return f"w{index:03d}"


def writer_style(seed: int, writer: int) -> WriterStyle:
    """The style of writer number ``writer``; the same for every charset subset."""
    rng = np.random.default_rng([seed, 0, writer])
    # Draw for every charset (in the fixed order) so styles do not depend on the config.
    fonts = {c: FONT_SOURCES[c][rng.integers(len(FONT_SOURCES[c]))] for c in cs.CHARSET_NAMES}
    return WriterStyle(
        fonts=fonts,
        shear=float(rng.uniform(-0.45, 0.45)),
        rotation=float(rng.uniform(-12, 12)),
        stroke=float(rng.uniform(-0.8, 1.8)),
        size=float(rng.uniform(0.5, 0.82)),
        aspect=float(np.exp(rng.uniform(-0.3, 0.3))),
        offset=(float(rng.uniform(-0.1, 0.1)), float(rng.uniform(-0.1, 0.1))),
        elastic=float(rng.uniform(0.5, 3.5)),
        elastic_cells=int(rng.integers(3, 7)),
    )


# --------------------------------------------------------------------------- glyphs


@dataclass(frozen=True)
class Glyph:
    mask: np.ndarray  # float32 0..1, the glyph at the source scale with a small border
    center: tuple[float, float]  # ink bounding-box centre (x, y) in mask pixels
    box: np.ndarray  # 4 x 2 ink bounding-box corners in mask pixels
    height: float  # ink height in mask pixels
    half_width: float  # typical stroke half-width in mask pixels


@cache
def _font(file: str, size: int) -> ImageFont.FreeTypeFont:
    path = FONT_DIR / file
    if not path.exists():
        raise FileNotFoundError(f"bundled font {path} is missing: reinstall hwbench")
    # The basic layout engine is enough for isolated characters and avoids raqm.
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)


@cache
def _source_size(file: str, charset: str, image_size: int) -> int:
    """Font size at which the charset's tallest glyph is ``image_size`` pixels high."""
    font = _font(file, 200)
    tallest = max(font.getbbox(ch)[3] - font.getbbox(ch)[1] for ch in cs.CHARSETS[charset])
    return max(8, round(200 * image_size / tallest))


@cache
def _glyph(file: str, char: str, size: int) -> Glyph:
    font = _font(file, size)
    x0, y0, x1, y1 = font.getbbox(char)
    pad = 4
    canvas = Image.new("L", (x1 - x0 + 2 * pad, y1 - y0 + 2 * pad), 0)
    ImageDraw.Draw(canvas).text((pad - x0, pad - y0), char, font=font, fill=255)
    mask = np.asarray(canvas, dtype=np.float32) / 255.0
    ys, xs = np.nonzero(mask > 0.5)
    if len(xs) == 0:
        raise ValueError(f"font {file} renders {char!r} (U+{ord(char):04X}) empty")
    left, right, top, bottom = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    box = np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float32)
    inside = (mask > 0.5).astype(np.uint8)
    dist = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    ridge = (dist > 0) & (dist >= cv2.dilate(dist, np.ones((3, 3), np.uint8)))
    half = float(np.median(dist[ridge])) if ridge.any() else 1.0
    return Glyph(
        mask=mask,
        center=((left + right) / 2, (top + bottom) / 2),
        box=box,
        height=float(bottom - top),
        half_width=half,
    )


@cache
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs, ys


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random field (unit-ish std) from a coarse grid upsampled bicubically."""
    coarse = rng.normal(size=(cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


# --------------------------------------------------------------------------- rendering


def _affine(glyph: Glyph, scale: float, style: WriterStyle, rng, size: int) -> np.ndarray:
    """2 x 3 matrix from glyph-mask pixels to output pixels, fitted inside the image."""
    shear = style.shear + rng.normal(0, 0.04)
    angle = np.deg2rad(style.rotation + rng.normal(0, 2.0))
    aspect = style.aspect * np.exp(rng.normal(0, 0.03))
    sx, sy = scale * np.sqrt(aspect), scale / np.sqrt(aspect)
    cos, sin = np.cos(angle), np.sin(angle)
    # y grows downwards, so a counter-clockwise rotation is [[c, s], [-s, c]].
    linear = np.array([[cos, sin], [-sin, cos]]) @ np.array([[1, -shear], [0, 1]])
    linear = linear @ np.diag([sx, sy])
    corners = (glyph.box - np.array(glyph.center)) @ linear.T
    span = corners.max(0) - corners.min(0)
    room = size * (1 - 2 * _MARGIN)
    if span.max() > room:  # a large, slanted glyph: shrink it to fit
        linear *= room / span.max()
        corners *= room / span.max()
    jitter = rng.normal(0, 0.015, size=2)
    center = size / 2 + size * (np.array(style.offset) + jitter)
    low = size * _MARGIN - corners.min(0)
    high = size * (1 - _MARGIN) - corners.max(0)
    center = np.clip(center, low, np.maximum(low, high))
    translation = center - linear @ np.array(glyph.center)
    return np.hstack([linear, translation[:, None]]).astype(np.float64)


def render(
    params: SynthParams, writer: int, label: int, rep: int, pen: str | None = None
) -> tuple[np.ndarray, str]:
    """One image (uint8, black ink on white) and its pen.

    ``pen`` is required with the crossed design; with the random design it is drawn
    from the image's own random stream and must be left ``None``.
    """
    cls = cs.by_label(label)
    size = params.image_size
    unit = size / 128  # style widths are given for 128-pixel images
    if params.pen_design == "crossed":
        if pen not in params.pens:
            raise ValueError(f"crossed design needs a pen from {list(params.pens)}, got {pen!r}")
        rng = np.random.default_rng([params.seed, 1, writer, label, PENS.index(pen), rep])
    else:
        rng = np.random.default_rng([params.seed, 1, writer, label, len(PENS), rep])
        pen = params.pens[rng.integers(len(params.pens))]
    style = writer_style(params.seed, writer)
    kit = PEN_STYLES[pen]

    font = style.fonts[cls.charset]
    src_size = _source_size(font, cls.charset, size)
    glyph = _glyph(font, cls.label_name, src_size)
    # Source glyphs are rendered so the charset's tallest glyph is `size` pixels high.
    scale = style.size * np.exp(rng.normal(0, 0.04))
    gamma = _SIZE_GAMMA.get(cls.charset, 0.0)
    if gamma:
        scale *= min((size / glyph.height) ** gamma, 1.6)
    matrix = _affine(glyph, scale, style, rng, size)
    src_scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))

    # Elastic distortion: the output samples the glyph through a smooth displacement.
    xs, ys = _grid(size)
    amp = style.elastic * unit * np.exp(rng.normal(0, 0.15))
    qx = xs + amp * _smooth_noise(rng, size, style.elastic_cells)
    qy = ys + amp * _smooth_noise(rng, size, style.elastic_cells)
    inv = cv2.invertAffineTransform(matrix)
    map_x = (inv[0, 0] * qx + inv[0, 1] * qy + inv[0, 2]).astype(np.float32)
    map_y = (inv[1, 0] * qx + inv[1, 1] * qy + inv[1, 2]).astype(np.float32)
    warped = cv2.remap(glyph.mask, map_x, map_y, cv2.INTER_LINEAR, borderValue=0.0)

    # Signed distance to the outline (positive outside) lets the stroke grow or thin
    # continuously, which is what a broader or finer pen does.
    threshold = min(0.5, 0.5 * float(warped.max()))
    inside = (warped > threshold).astype(np.uint8)
    signed = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5) - cv2.distanceTransform(
        inside, cv2.DIST_L2, 5
    )
    width = (style.stroke + kit.width + rng.normal(0, 0.2)) * unit
    width = width + kit.wobble * unit * _smooth_noise(rng, size, 4)
    # Never thin a stroke below about a pixel: the glyph must not break up.
    width = np.maximum(width, 0.9 - glyph.half_width * src_scale)
    if kit.rough:
        rough = cv2.GaussianBlur(rng.normal(size=(size, size)).astype(np.float32), (0, 0), 0.8)
        signed = signed + kit.rough * unit * 1.8 * rough
    edge = kit.edge * max(unit, 1.0)
    cover = np.clip(0.5 + (width - signed) / edge, 0.0, 1.0)

    ink = kit.darkness * np.exp(rng.normal(0, 0.06))
    density = 1.0 + kit.blotch * _smooth_noise(rng, size, 5)
    if kit.grain:
        tooth = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 0.6)
        tooth = (tooth - tooth.mean()) / (tooth.std() + 1e-6)
        density = density * (1.0 + kit.grain * 0.5 * tooth)
        if kit.gaps:
            density = np.where(tooth > np.quantile(tooth, 1 - kit.gaps), 0.15, density)
    if kit.pool:
        depth = np.clip(width - signed, 0, None)  # distance inside the stroke
        density = density * (1.0 + kit.pool * np.exp(-depth / (1.5 * unit)))
    # Texture modulates the ink but never turns a light medium into black ink.
    darkness = np.clip(cover * ink * np.clip(density, 0.0, 1.4), 0.0, 1.0)
    image = np.rint(255.0 * (1.0 - darkness)).astype(np.uint8)
    return image, pen


# --------------------------------------------------------------------------- datasets


def plan(params: SynthParams) -> pd.DataFrame:
    """Every image to render: writer index, label and repetition (and pen when crossed)."""
    rows = []
    crossed = params.pen_design == "crossed"
    for writer in range(params.writers):
        for label in params.labels():
            for pen in params.pens if crossed else (None,):
                for rep in range(params.samples_per_class):
                    rows.append((writer, label, pen, rep))
    return pd.DataFrame(rows, columns=["writer_index", "label", "pen", "rep"])


def _image_name(writer: int, label: int, rep: int, pen: str) -> str:
    """Path of an image inside the images folder."""
    return f"{writer_name(writer)}/{label:03d}_{rep}_{pen}.png"


def _file_name(writer: int, label: int, rep: int, pen: str) -> str:
    """Path of an image relative to the manifest's folder."""
    return f"{IMAGES_DIR}/{_image_name(writer, label, rep, pen)}"


_WORKER_PARAMS: SynthParams | None = None


def _init_worker(params: SynthParams) -> None:
    global _WORKER_PARAMS
    _WORKER_PARAMS = params
    cv2.setNumThreads(1)  # one process per core already uses every core


def _render_chunk(args: tuple[str, list[tuple[int, int, str | None, int]]]) -> list[str]:
    """Render and write a chunk of images into the images folder ``root``; return their pens."""
    root, tasks = args
    params = _WORKER_PARAMS
    pens = []
    for writer, label, pen, rep in tasks:
        image, pen = render(params, writer, label, rep, pen)
        path = Path(root) / _image_name(writer, label, rep, pen)
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(".png", image)
        if not ok:
            raise OSError(f"could not encode {path} as PNG")
        path.write_bytes(data.tobytes())
        pens.append(pen)
    return pens


def _chunks(tasks: list, size: int) -> Iterable[list]:
    for start in range(0, len(tasks), size):
        yield tasks[start : start + size]


def generate(
    params: SynthParams,
    out_dir: str | os.PathLike,
    processes: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Write ``out_dir/images/...`` and ``out_dir/manifest.csv``; return the manifest.

    Images are rendered into a temporary folder that is renamed into place when all
    are written, and the manifest is written last, so an interrupted run never leaves
    a dataset that looks complete.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = plan(params)
    tasks = [
        (int(w), int(lab), None if p is None else str(p), int(r))
        for w, lab, p, r in todo.itertuples(index=False)
    ]
    tmp = out_dir / f".{IMAGES_DIR}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    chunk = 64
    processes = processes or os.cpu_count() or 1
    processes = max(1, min(processes, -(-len(tasks) // chunk)))
    jobs = [(str(tmp), part) for part in _chunks(tasks, chunk)]
    pens: list[str] = []
    bar = tqdm(total=len(tasks), desc=f"synth {out_dir.name}", unit="img", disable=not progress)
    if processes == 1:
        _init_worker(params)
        for job in jobs:
            pens += _render_chunk(job)
            bar.update(len(job[1]))
    else:
        # fork: the children must not re-run the caller's __main__ (a Snakemake script).
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        ctx = multiprocessing.get_context(method)
        with ctx.Pool(processes, initializer=_init_worker, initargs=(params,)) as pool:
            for job, done in zip(jobs, pool.imap(_render_chunk, jobs), strict=True):
                pens += done
                bar.update(len(job[1]))
    bar.close()
    final = out_dir / IMAGES_DIR
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)

    manifest = manifest_frame(todo.assign(pen=pens))
    write_csv(out_dir / MANIFEST_FILE, manifest)
    return manifest


def manifest_frame(todo: pd.DataFrame) -> pd.DataFrame:
    """Manifest rows (MANIFEST_COLUMNS) for a plan whose pens are known."""
    classes = [cs.by_label(lab) for lab in todo["label"]]
    return pd.DataFrame(
        {
            "file": [
                _file_name(w, lab, r, p)
                for w, lab, r, p in zip(
                    todo["writer_index"], todo["label"], todo["rep"], todo["pen"], strict=True
                )
            ],
            "label": todo["label"].astype(int).to_numpy(),
            "label_name": [c.label_name for c in classes],
            "script": [c.script for c in classes],
            "writer": [writer_name(w) for w in todo["writer_index"]],
            "pen": todo["pen"].to_numpy(),
            "source_split": "",
        }
    )


def read_manifest(folder: str | os.PathLike) -> pd.DataFrame:
    """Read ``folder/manifest.csv`` with string labels and writers kept as text."""
    path = Path(folder) / MANIFEST_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: generate it first (rule synth)")
    frame = pd.read_csv(
        path,
        keep_default_na=False,
        dtype={"label_name": str, "writer": str, "pen": str, "source_split": str},
        encoding="utf-8",
    )
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected {MANIFEST_COLUMNS}")
    return frame


def load_image(folder: str | os.PathLike, file: str) -> np.ndarray:
    path = Path(folder) / file
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise OSError(f"{path}: not a readable image")
    return image


# --------------------------------------------------------------------------- contact sheet


def _pick(frame: pd.DataFrame, count: int, rng: np.random.Generator) -> pd.DataFrame:
    if len(frame) <= count:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), count, replace=False))]


def contact_sheet(
    folder: str | os.PathLike,
    out_png: str | os.PathLike,
    writers: int = 8,
    per_script: int = 4,
    per_pen: int = 16,
    tile: int = 64,
) -> Path:
    """Grid of samples: script x writer (same characters across writers), then pens.

    The top block has one row per writer (the first ``writers``) and, for each script
    in the dataset, ``per_script`` columns showing the same characters for every
    writer. The bottom block has one row per pen with ``per_pen`` samples.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    rng = np.random.default_rng(0)
    scripts = list(dict.fromkeys(manifest["script"]))
    shown_writers = list(dict.fromkeys(manifest["writer"]))[:writers]
    pens = [p for p in PENS if p in set(manifest["pen"])]
    gap, head, left = 6, 22, 140
    cols = max(len(scripts) * per_script + len(scripts) - 1, per_pen)
    width = left + cols * (tile + 2)
    height = head + len(shown_writers) * (tile + 2) + gap + head + len(pens) * (tile + 2)
    sheet = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(sheet)
    text = ImageFont.load_default(size=14)

    def paste(file: str, col: int, y: int) -> None:
        image = Image.fromarray(load_image(folder, file)).resize((tile, tile), Image.BILINEAR)
        sheet.paste(image, (left + col * (tile + 2), y))

    # Same characters for every writer in a script's columns: spread over its classes.
    for s, script in enumerate(scripts):
        col0 = s * (per_script + 1)
        draw.text((left + col0 * (tile + 2), 3), script, fill=0, font=text)
        labels = sorted(set(manifest.loc[manifest["script"] == script, "label"]))
        picks = [labels[i] for i in np.linspace(0, len(labels) - 1, per_script).round().astype(int)]
        for r, writer in enumerate(shown_writers):
            rows = manifest[(manifest["writer"] == writer) & (manifest["script"] == script)]
            for c, label in enumerate(picks):
                hit = rows[rows["label"] == label]
                if len(hit):
                    paste(hit["file"].iloc[0], col0 + c, head + r * (tile + 2))
    for r, writer in enumerate(shown_writers):
        draw.text((4, head + r * (tile + 2) + tile // 2 - 7), writer, fill=0, font=text)

    top = head + len(shown_writers) * (tile + 2) + gap
    draw.text((4, top + 3), "pens (mixed writers and classes)", fill=0, font=text)
    for r, pen in enumerate(pens):
        y = top + head + r * (tile + 2)
        draw.text((4, y + tile // 2 - 7), pen, fill=0, font=text)
        for c, file in enumerate(_pick(manifest[manifest["pen"] == pen], per_pen, rng)["file"]):
            paste(file, c, y)
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        sheet.save(tmp, format="PNG")
    return out_png


def generator_params(config_section: Mapping, name: str) -> SynthParams:
    """Parameters of dataset ``name`` from the config's ``synth`` mapping."""
    if name not in config_section:
        raise KeyError(f"synth dataset {name!r} is not in config synth: {sorted(config_section)}")
    return SynthParams.from_config(config_section[name], where=f"synth.{name}")


def summarize(manifest: pd.DataFrame, keys: Sequence[str] = ("script", "pen")) -> str:
    """Counts per key, for the job log."""
    return "\n".join(
        f"{key}: " + ", ".join(f"{k}={v}" for k, v in manifest[key].value_counts().items())
        for key in keys
    )
