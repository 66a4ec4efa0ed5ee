"""One training workload timed three ways, shared by benchmarks/engine.py, gpu.py and cost.py.

A :class:`Workload` is what a study trains on: uint8 stored input (images, or row ids
whose images a transform reads from disk, as OneModel's), labels, and the per-batch
transform that turns a batch into model input on the device. Every arm gets the same
uint8 data and runs the transform inside its clock, as the studies train:

- limit: the batches already on the device as contiguous slices; per step only the
  transform and the model step (forward under the engine's autocast, cross-entropy,
  backward, optimizer step). The engine does this plus a shuffle, a gather, an
  accuracy and a loss sum per batch, so it cannot beat it.
- engine: the public :func:`hwbench.engine.fit` for one epoch over exactly the
  workload's batches (its per-call setup, optimizer included, inside the clock).
- dataloader: a conventional loop: a Dataset of uint8 samples, a shuffling
  ``DataLoader`` (persistent workers, pinned memory on CUDA), each batch copied to the
  device and transformed there.

Each arm factory does its set-up and returns one unit of work (a callable);
:func:`measure` times the units interleaved, round by round.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from hwbench.engine import TrainConfig, autocast, fit, seed_everything
from hwbench.models import build_model


@dataclass(frozen=True)
class Workload:
    """A study's training step on its stored input; see the module docstring."""

    name: str
    model: dict  # build_model keywords but num_classes
    classes: int
    x: torch.Tensor  # what the engine gets as data["x"]: uint8 images or row ids
    y: torch.Tensor
    transform: Callable[[torch.Tensor], torch.Tensor]  # a batch of x (on device) -> input
    batch_size: int
    steps: int  # optimizer steps per timed unit
    device: torch.device
    # for the DataLoader arm: per-sample uint8 data and its batch transform (default x's)
    samples: object = None
    sample_transform: Callable | None = None
    train: dict = field(default_factory=dict)  # TrainConfig keys (optimizer, lr, amp, ...)
    compiled: bool = False  # torch.compile the model (see compile_model)
    backend: str | None = None  # torch.compile's backend (None: its default, inductor)

    @property
    def images(self) -> int:
        return self.batch_size * self.steps

    def config(self, **overrides) -> TrainConfig:
        """The engine's config of this workload: one epoch over its batches."""
        one_epoch = {"epochs": 1, "batch_size": self.batch_size, "batch_schedule": []}
        keys = {**self.train, **one_epoch, "seed": 0, **overrides}
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        return TrainConfig(**{k: v for k, v in keys.items() if k in known})

    @property
    def use_channels_last(self) -> bool:
        # the engine's rule: channels_last on CUDA when the config asks for it
        return self.device.type == "cuda" and self.config().channels_last


# --- clock ----------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time of this process (every thread) and its live children (DataLoader workers)."""
    import psutil  # a dependency of snakemake

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(child.cpu_times()[:2])
    return total


def timed(device: torch.device, fn: Callable[[], None], clock: str = "wall") -> float:
    """Seconds ``fn()`` takes; on CUDA between two events, after all queued work is done.

    ``clock="cpu"`` (CPU only) counts CPU seconds instead of wall seconds: on a machine
    shared with other jobs it measures the work done rather than the time waited.
    """
    if clock == "cpu":
        start = cpu_seconds()
        fn()
        return cpu_seconds() - start
    if device.type != "cuda":
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    torch.cuda.synchronize(device)
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    fn()
    end.record()
    end.synchronize()
    return begin.elapsed_time(end) / 1000.0


def measure(arms: dict[str, Callable[[], None]], repeats: int, device, clock: str = "wall"):
    """Seconds per unit of each arm, per round: one warm-up unit each, then interleaved."""
    names = list(arms)
    for name in names:
        timed(device, arms[name], clock)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        # rotate the order so no arm always runs first (or right after the same one)
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds[name].append(timed(device, arms[name], clock))
        line = ", ".join(f"{n} {1e3 * v[-1]:.0f} ms" for n, v in seconds.items())
        print(f"  round {r + 1}/{repeats}: {line}", flush=True)
    return seconds


def spread(values: list[float]) -> tuple[float, float, float, float, float]:
    """median, min, max, 25th and 75th percentile."""
    q1, q3 = np.percentile(values, [25, 75])
    return statistics.median(values), min(values), max(values), float(q1), float(q3)


def median_ci(values: list[float], level: float = 0.95, draws: int = 2000) -> tuple[float, float]:
    """Bootstrap confidence interval of the median: how precisely a busy machine let us
    measure it (its width, not the median, says whether runs can agree)."""
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(values, size=(draws, len(values))), axis=1)
    lo, hi = np.percentile(medians, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def paired_ratio(numerator_s: list[float], denominator_s: list[float]) -> list[float]:
    """Per round: throughput of the first arm over the second's (= their seconds inverted)."""
    return [d / n for n, d in zip(numerator_s, denominator_s, strict=True)]


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu {platform.machine()}, {cores()} cores"


def machine(device: torch.device) -> str:
    """The device and the host's CPU model, for a generated block's provenance."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):  # noqa: SIM115
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{device_name(device)} ({cpu}, {cores()} cores)"


def commit() -> str:
    """The checkout's commit, ``+dirty`` when tracked files differ from it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = lambda *a: subprocess.run(a, capture_output=True, text=True, cwd=root).stdout.strip()  # noqa: E731
    head = run("git", "rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if run("git", "status", "--porcelain", "--untracked-files=no") else "")


# --- the model step -------------------------------------------------------------------


def write_doc_block(doc, name: str, text: str, command: str) -> None:
    """Replace the generated block ``name`` of the page ``doc`` with ``text``, its marker
    naming ``command`` (the rest of the page is prose)."""
    page = doc.read_text(encoding="utf-8")
    block = f"<!-- {name}:start ({command}) -->\n{text}<!-- {name}:end -->"
    pattern = re.compile(rf"<!-- {name}:start\b.*?<!-- {name}:end -->", re.S)
    if not pattern.search(page):
        raise SystemExit(f"{doc}: no <!-- {name}:start --> block to replace")
    doc.write_text(pattern.sub(lambda _: block, page), encoding="utf-8")


def compile_model(model: torch.nn.Module, backend: str | None = None) -> torch.nn.Module:
    """The compiled arm's model. TrainConfig has no ``compile`` key yet (issue #28 item
    6, another change): until it has, the benchmark compiles the model itself, here."""
    return torch.compile(model) if backend is None else torch.compile(model, backend=backend)


def engine_compiles() -> bool:
    """Whether the engine takes ``train.compile`` itself."""
    return "compile" in {f.name for f in dataclasses.fields(TrainConfig)}


def new_model(w: Workload) -> torch.nn.Module:
    """The same initial weights for every arm, laid out as the engine lays them out."""
    seed_everything(0)
    model = build_model(num_classes=w.classes, **w.model).to(w.device)
    if w.use_channels_last:
        model.to(memory_format=torch.channels_last)
    return model.train()


def optimizer(w: Workload, params) -> torch.optim.Optimizer:
    """The workload's optimizer at its best on the device (fused on CUDA): the limit."""
    cfg = w.config()
    fused = {"fused": True} if w.device.type == "cuda" else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    return torch.optim.SGD(
        params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, **fused
    )


def model_input(w: Workload, batch: torch.Tensor, transform: Callable) -> torch.Tensor:
    """A stored batch (on the device) as the model takes it: transformed, and in the
    engine's memory format."""
    with torch.no_grad():
        x = transform(batch)
    if w.use_channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def model_step(w: Workload, model, opt, x: torch.Tensor, y: torch.Tensor) -> None:
    """One optimizer step with the engine's autocast and default loss (float32 CE)."""
    with autocast(w.device, w.config().amp):
        loss = F.cross_entropy(model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


# --- arms: each factory does the set-up and returns one unit of work -------------------


def limit_arm(w: Workload) -> Callable[[], None]:
    model = new_model(w)
    model = compile_model(model, w.backend) if w.compiled else model
    x, y = w.x[: w.images].to(w.device), w.y[: w.images].to(w.device)
    batches = [
        (x[i : i + w.batch_size], y[i : i + w.batch_size]) for i in range(0, w.images, w.batch_size)
    ]

    def run():
        opt = optimizer(w, model.parameters())
        for xb, yb in batches:
            model_step(w, model, opt, model_input(w, xb, w.transform), yb)

    return run


def engine_arm(w: Workload, hook: Callable | None = None) -> Callable[[], None]:
    """``hook`` wraps the transform (e.g. :class:`SyncCheck`); None: the workload's."""
    model = new_model(w)
    overrides = {}
    if w.compiled and engine_compiles() and w.backend is None:
        overrides["compile"] = "default"
    elif w.compiled:
        model = compile_model(model, w.backend)
    data = {"x": w.x[: w.images], "y": w.y[: w.images]}

    def run():
        transform = hook(w.transform) if hook else w.transform
        cfg = w.config(**overrides)
        fit(model, data, cfg, run_dir=None, progress=False, device=w.device, transform=transform)

    return run


class Samples(torch.utils.data.Dataset):
    """uint8 samples and labels, one at a time (the torchvision way)."""

    def __init__(self, samples, labels):
        self.samples, self.labels = samples, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.samples[i], self.labels[i]


def dataloader_arm(w: Workload, workers: int) -> Callable[[], None]:
    samples = w.x if w.samples is None else w.samples
    transform = w.sample_transform or w.transform
    loader = torch.utils.data.DataLoader(
        Samples(samples, w.y[: w.images]),
        batch_size=w.batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=w.device.type == "cuda",
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    model = new_model(w)
    model = compile_model(model, w.backend) if w.compiled else model

    def run():
        opt = optimizer(w, model.parameters())
        for xb, yb in loader:
            xb = xb.to(w.device, non_blocking=True)
            x = model_input(w, xb, transform)
            model_step(w, model, opt, x, yb.to(w.device, non_blocking=True))

    return run


class SyncCheck:
    """Wraps a transform: after ``warmup`` calls (steps), turns on
    ``torch.cuda.set_sync_debug_mode("error")`` for the next ``steps`` steps, so any host
    sync in a steady step raises; turns it off again before the step after them."""

    def __init__(self, transform: Callable, warmup: int, steps: int):
        self.transform, self.warmup, self.steps, self.calls = transform, warmup, steps, 0

    def __repr__(self) -> str:
        return f"SyncCheck({self.transform!r})"

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.warmup + 1:
            torch.cuda.set_sync_debug_mode("error")
        elif self.calls == self.warmup + self.steps + 1:
            torch.cuda.set_sync_debug_mode("default")
        return self.transform(batch)


# --- the studies' workloads, from the paper preset -------------------------------------


def _model_keywords(model_cfg: dict, input_size) -> dict:
    """build_model keywords of a model config section (never downloads weights)."""
    keywords = {"name": model_cfg["name"], "in_channels": model_cfg.get("in_channels", 1)}
    keywords["input_size"] = input_size
    if model_cfg["name"].startswith("resnet"):
        keywords["stem"] = model_cfg.get("stem", "cifar")
    return keywords


def _labels(n: int, classes: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(1).integers(0, classes, n)).long()


def _images(n: int, *shape: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8))


# Early stopping watches an evaluation set, which the timed unit (one epoch) has not.
EARLY_STOPPING_KEYS = ("monitor", "mode", "patience", "min_delta", "stop_eps")


def _train_keys(train: dict) -> dict:
    """The study's training keys the engine arm takes: no early stopping, activation
    checkpointing off (the limit arm never recomputes; on CUDA the paper preset has it
    off anyway)."""
    keys = {k: v for k, v in train.items() if k not in EARLY_STOPPING_KEYS}
    return {**keys, "activation_checkpointing": "never", "max_steps": None}


def _image_workload(
    name: str,
    model: dict,
    classes: int,
    shape: tuple,
    transform,
    batch: int,
    steps: int,
    device,
    train: dict,
) -> Workload:
    """A workload on ``batch * steps`` random uint8 images of ``shape`` with random labels
    (the studies' image-classification steps share this form)."""
    n = batch * steps
    return Workload(
        name=name,
        model=model,
        classes=classes,
        x=_images(n, *shape),
        y=_labels(n, classes),
        transform=transform,
        batch_size=batch,
        steps=steps,
        device=torch.device(device),
        train=train,
    )


def multiscript_workload(cfg: dict, device, steps: int, batch: int | None = None) -> Workload:
    """Table 4's step: the digits group (3 scripts x 10 classes), 28 x 28 uint8 images,
    the configured model and per-batch transform (paper: ResNet-18, 3 channels,
    ImageNet normalisation, batch 32)."""
    from hwbench.data import batch_transform

    ms = cfg["multiscript"]
    batch = batch or ms["train"]["batch_size"]
    side = ms["model"].get("input_size") or 28
    return _image_workload(
        name="multiscript",
        model=_model_keywords(ms["model"], side),
        classes=30,
        shape=(28, 28),
        transform=batch_transform(ms["model"]),
        batch=batch,
        steps=steps,
        device=device,
        train=_train_keys(ms["train"]),
    )


def transfer_workload(cfg: dict, device, steps: int, batch: int | None = None) -> Workload:
    """Transfer's 128 px step: NIST's own 128 x 128 scans (nist128), 62 classes, the
    configured model and transform (paper: ResNet-18, 1 channel, batch 128)."""
    from hwbench.data import batch_transform

    tr = cfg["transfer"]
    batch = batch or tr["train"]["batch_size"]
    side = tr["model"].get("input_size") or 128
    return _image_workload(
        name="transfer",
        model=_model_keywords(tr["model"], side),
        classes=62,
        shape=(side, side),
        transform=batch_transform(tr["model"]),
        batch=batch,
        steps=steps,
        device=device,
        train=_train_keys(tr["train"]),
    )


class CanvasSamples:
    """The DataLoader arm's OneModel samples: stored rows read one at a time."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.rows[np.array([i])][0]


class ToCanvas:
    """The DataLoader arm's OneModel batch transform: uint8 rows -> standardised canvases
    (the same functions the study's CanvasTransform applies after reading the rows)."""

    def __init__(self, canvas, scale_height: int, mean: float, std: float):
        self.canvas, self.scale_height, self.mean, self.std = canvas, scale_height, mean, std

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        from hwbench.studies.onemodel.sensory import images_to_canvas, standardize

        canvases = images_to_canvas(images, self.canvas, self.scale_height).div_(255.0)
        return standardize(canvases, self.mean, self.std)


def onemodel_workload(
    cfg: dict, device, steps: int, folder, batch: int | None = None, shrink: int = 1
) -> Workload:
    """OneModel's step: word images (IAM's stored 120 x 600, scale height 120) read from
    disk through :class:`hwbench.rows.StoredRows` by the study's CanvasTransform onto
    the configured canvas (paper: 3 x 300 x 600, ResNet-152, batch 10). ``shrink``
    divides the canvas and the images (a quick CPU run of the same code path)."""
    from pathlib import Path

    from hwbench.rows import StoredRows
    from hwbench.studies.onemodel.sensory import CanvasTransform, ImageBlock

    om = cfg["onemodel"]
    batch = batch or om["train"]["batch_size"]
    channels, height, width = om["canvas"]
    canvas = (channels, height // shrink, width // shrink)
    scale_height, n = 120 // shrink, batch * steps
    path = Path(folder) / "onemodel_rows.npy"
    np.save(path, _images(n, 120 // shrink, 600 // shrink).numpy())
    rows = StoredRows(path)
    transform = CanvasTransform(canvas, [ImageBlock("iam/train", rows, scale_height)])
    transform.mean, transform.std = 0.5, 0.25  # fixed: the statistics pass is not the step
    model_cfg = {**om["model"], "in_channels": channels}
    return Workload(
        name="onemodel",
        model=_model_keywords(model_cfg, canvas[1:]),
        classes=604,  # the output width cost.py's OneModel shape has
        x=torch.arange(n),
        y=_labels(n, 604),
        transform=transform,
        batch_size=batch,
        steps=steps,
        device=torch.device(device),
        samples=CanvasSamples(rows),
        sample_transform=ToCanvas(canvas, scale_height, transform.mean, transform.std),
        train=_train_keys(om["train"]),
    )


def lifelong_workload(cfg: dict, device, steps: int, batch: int | None = None) -> Workload:
    """The lifelong step: raw images read at ``input.resize`` (paper: 256), centre-cropped
    per batch to the model's side (224), 10 digits (paper: ResNet-18, batch 8)."""
    from hwbench.data import batch_transform

    ll = cfg["lifelong"]
    batch = batch or ll["train"]["batch_size"]
    side = ll["model"].get("input_size") or 28
    stored = ll["input"].get("resize") or side
    return _image_workload(
        name="lifelong",
        model=_model_keywords(ll["model"], side),
        classes=10,
        shape=(stored, stored),
        transform=batch_transform(ll["model"], size=stored, crop=side if side < stored else None),
        batch=batch,
        steps=steps,
        device=device,
        train=_train_keys(ll["train"]),
    )


def adaptation_workload(cfg: dict, device, steps: int, batch: int | None = None) -> Workload:
    """The adaptation study's base CNN step on 28 x 28 images, NIST's 62 classes, at the
    first batch size of its schedule unless ``batch`` is given."""
    from hwbench.data import batch_transform

    ad = cfg["adaptation"]
    schedule = ad["train"].get("batch_schedule") or []
    batch = batch or (schedule[0][1] if schedule else ad["train"].get("batch_size", 64))
    side = ad["model"].get("input_size") or 28
    train = {k: v for k, v in ad["train"].items() if k != "batch_schedule"}
    return _image_workload(
        name="adaptation",
        model=_model_keywords(ad["model"], side),
        classes=62,
        shape=(side, side),
        transform=batch_transform(ad["model"]),
        batch=batch,
        steps=steps,
        device=device,
        train=_train_keys(train),
    )


def steady_step_seconds(w: Workload, steps: int) -> float:
    """Median seconds of one steady optimizer step of ``w`` (transform and model step,
    on data already on the device; one untimed warm-up step), as the limit arm runs it."""
    model = new_model(w)
    model = compile_model(model, w.backend) if w.compiled else model
    opt = optimizer(w, model.parameters())
    x, y = w.x[: w.batch_size].to(w.device), w.y[: w.batch_size].to(w.device)

    def one_step():
        model_step(w, model, opt, model_input(w, x, w.transform), y)

    one_step()
    return statistics.median(timed(w.device, one_step) for _ in range(steps))


def counted_flops(w: Workload) -> float:
    """FLOPs of one forward and backward pass on a batch, counted by
    ``torch.utils.flop_counter`` (what the model's operators do, not a timing)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = new_model(w)
    x = model_input(w, w.x[: w.batch_size].to(w.device), w.transform)
    y = w.y[: w.batch_size].to(w.device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x).float(), y).backward()
    return float(counter.get_total_flops())


def generic_workload(
    model: str, size: tuple[int, int], channels: int, stem: str, batch: int, steps: int, device
) -> Workload:
    """A model on uint8 grey images of ``size``, repeated to ``channels`` and normalised
    with MNIST's statistics per batch (engine.py's presets)."""
    from hwbench.data import BatchTransform

    keywords = {"name": model, "in_channels": channels, "input_size": size}
    if model.startswith("resnet"):
        keywords["stem"] = stem
    return _image_workload(
        name=model,
        model=keywords,
        classes=10,
        shape=tuple(size),
        transform=BatchTransform(channels=channels, normalize="mnist"),
        batch=batch,
        steps=steps,
        device=device,
        train={"optimizer": "adam", "lr": 1e-3},
    )


# --- one comparison: engine vs limit vs DataLoader -------------------------------------


@dataclass
class Comparison:
    """Seconds per unit of each arm, per round, and what follows from them."""

    workload: Workload
    seconds: dict[str, list[float]]
    load_before: float
    load_after: float

    def rate(self, arm: str) -> tuple[float, float, float, float, float]:
        """Images/s of ``arm``: median, min, max, 25th and 75th percentile."""
        return spread([self.workload.images / t for t in self.seconds[arm]])

    @property
    def best_loader(self) -> str:
        loaders = [n for n in self.seconds if n.startswith("dataloader")]
        return max(loaders, key=lambda n: self.rate(n)[0])

    def ratio(self, numerator: str, denominator: str) -> tuple[float, float, float]:
        """Median of the per-round ratios of throughput, min, max."""
        med, lo, hi, _, _ = spread(paired_ratio(self.seconds[numerator], self.seconds[denominator]))
        return med, lo, hi

    def ratio_ci(self, numerator: str, denominator: str) -> tuple[float, float]:
        return median_ci(paired_ratio(self.seconds[numerator], self.seconds[denominator]))

    @property
    def load(self) -> str:
        return f"load average {self.load_before:.2f} before, {self.load_after:.2f} after"


def compare(
    w: Workload, workers: list[int], repeats: int, clock: str = "wall", quiet: bool = False
) -> Comparison:
    """Time the limit, the engine and a DataLoader loop per worker count on ``w``."""
    load_before = os.getloadavg()[0]
    units = {"limit": limit_arm(w), "engine": engine_arm(w)}
    for n in workers:
        units[f"dataloader_{n}w"] = dataloader_arm(w, n)
    if quiet:
        with contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115
            seconds = measure(units, repeats, w.device, clock)
    else:
        seconds = measure(units, repeats, w.device, clock)
    return Comparison(w, seconds, load_before, os.getloadavg()[0])
