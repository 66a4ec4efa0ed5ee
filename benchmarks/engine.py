"""Training throughput of the engine against its limit and a conventional DataLoader loop.

Every arm does the same unit of work: a fresh Adam optimizer and N optimizer steps
(forward, cross-entropy, backward, step) over the same N x batch-size images, with the
same model architecture and initial weights:

- limit: the N batches already on the device as contiguous slices; nothing but the
  model step. The engine does this plus a shuffle, a gather, an accuracy and a loss sum
  per batch, so it cannot beat it: engine/limit above 1.05 is a measurement error
  (the machine's load changed under one arm), printed as such and not saved.
- engine: the public :func:`hwbench.engine.fit` for one epoch over exactly N batches
  (its per-call setup, optimizer included, is inside the clock).
- dataloader: a torchvision-style loop: a Dataset of uint8 arrays with per-sample
  ``ToTensor`` + ``Normalize`` and a shuffling ``DataLoader`` (persistent workers).
  Measured with 0 workers and with one per core; the better of the two is kept.

Every arm is timed alike: one untimed warm-up unit each, then ``--repeats`` rounds
in which the arms run one after another (their order rotated each round), each unit
timed by ``time.perf_counter`` (on CUDA: CUDA events after a synchronize; with
``--clock cpu``: CPU seconds of the process and its workers), under the same torch
thread count. Prints per arm the median images/s and its spread (min-max
and inter-quartile range); a ratio is the median of the per-round (paired) ratios.
Target: engine/limit >= 0.9. Appends the medians to reports/bench.csv.

    python benchmarks/engine.py                                   # CPU, base_cnn at 28 px
    python benchmarks/engine.py --device cuda --preset resnet18-224
    python benchmarks/engine.py --device cuda --preset resnet152-300x600
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwbench.data import to_model_input  # noqa: E402
from hwbench.engine import TrainConfig, autocast, fit, pick_device, seed_everything  # noqa: E402
from hwbench.models import build_model  # noqa: E402
from hwbench.report import append_bench_rows  # noqa: E402

BENCH_CSV = Path(__file__).resolve().parents[1] / "reports" / "bench.csv"
TARGET = 0.9  # engine/limit the engine should reach
ERROR_ABOVE = 1.05  # engine/limit above this is a measurement error, not a result
NORMALIZE = (0.1307, 0.3081)  # hwbench.data's "mnist" statistics, for every channel

# model, input side(s), channels, stem, batch size, steps on the CPU, steps on CUDA
PRESETS = {
    "small_cnn-28": ("small_cnn", "28", 1, "cifar", 64, 64, 200),
    "base_cnn-28": ("base_cnn", "28", 1, "cifar", 64, 16, 200),
    "resnet18-28": ("resnet18", "28", 1, "cifar", 128, 4, 100),
    "resnet18-224": ("resnet18", "224", 3, "imagenet", 64, 2, 50),
    "resnet152-300x600": ("resnet152", "300x600", 3, "imagenet", 16, 1, 20),
}


@dataclass(frozen=True)
class Setup:
    model: str
    height: int
    width: int
    channels: int
    stem: str
    batch_size: int
    steps: int
    device: torch.device
    amp: bool
    channels_last: bool
    lr: float = 1e-3

    @property
    def images(self) -> int:
        return self.batch_size * self.steps

    @property
    def use_cl(self) -> bool:
        # the engine's rule: channels_last only on CUDA
        return self.device.type == "cuda" and self.channels_last


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


# --- arms: each factory does the set-up and returns one unit of work -------------------


def new_model(s: Setup) -> torch.nn.Module:
    """The same initial weights for every arm."""
    seed_everything(0)
    size = (s.height, s.width)
    model = build_model(s.model, 10, in_channels=s.channels, stem=s.stem, input_size=size)
    model.to(s.device)
    if s.use_cl:
        model.to(memory_format=torch.channels_last)
    return model.train()


def device_data(s: Setup, images: np.ndarray, labels: np.ndarray) -> dict[str, torch.Tensor]:
    x = to_model_input(torch.from_numpy(images), s.device, channels=s.channels, normalize="mnist")
    if s.use_cl:  # as fit would make it, so fit copies nothing
        x = x.contiguous(memory_format=torch.channels_last)
    return {"x": x, "y": torch.from_numpy(labels).to(s.device)}


def step(s: Setup, model, opt, x: torch.Tensor, y: torch.Tensor) -> None:
    """One optimizer step with the engine's default loss (cross-entropy, float32)."""
    with autocast(s.device, s.amp):
        loss = F.cross_entropy(model(x).float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def limit_arm(s: Setup, images, labels) -> Callable[[], None]:
    model = new_model(s)
    data = device_data(s, images, labels)
    batches = [
        (data["x"][i : i + s.batch_size], data["y"][i : i + s.batch_size])
        for i in range(0, s.images, s.batch_size)
    ]

    def run():
        opt = torch.optim.Adam(model.parameters(), lr=s.lr)
        for x, y in batches:
            step(s, model, opt, x, y)

    return run


def engine_arm(s: Setup, images, labels) -> Callable[[], None]:
    model = new_model(s)
    data = device_data(s, images, labels)
    cfg = TrainConfig(
        epochs=1,
        batch_size=s.batch_size,
        lr=s.lr,
        seed=0,
        amp=s.amp,
        channels_last=s.channels_last,
    )

    def run():
        fit(model, data, cfg, run_dir=None, progress=False, device=s.device)

    return run


class ArrayDataset(torch.utils.data.Dataset):
    """uint8 H x W images, transformed one sample at a time (the torchvision way)."""

    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), int(self.labels[i])


class RepeatChannels:
    """Grey 1 x H x W -> C x H x W (a class, not a lambda: workers may need to pickle it)."""

    def __init__(self, channels: int):
        self.channels = channels

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return t.repeat(self.channels, 1, 1) if self.channels > 1 else t


def dataloader_arm(s: Setup, images, labels, workers: int) -> Callable[[], None]:
    from torchvision import transforms

    transform = transforms.Compose(
        [transforms.ToTensor(), RepeatChannels(s.channels), transforms.Normalize(*NORMALIZE)]
    )
    loader = torch.utils.data.DataLoader(
        ArrayDataset(images, labels, transform),
        batch_size=s.batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=s.device.type == "cuda",
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    model = new_model(s)

    def run():
        opt = torch.optim.Adam(model.parameters(), lr=s.lr)
        for x, y in loader:
            x = x.to(s.device, non_blocking=True)
            if s.use_cl:
                x = x.contiguous(memory_format=torch.channels_last)
            step(s, model, opt, x, y.to(s.device, non_blocking=True))

    return run


# --- measurement ----------------------------------------------------------------------


def measure(arms: dict[str, Callable[[], None]], repeats: int, device, clock: str):
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


def parse_size(text: str) -> tuple[int, int]:
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) == 2 and min(parts) > 0:
        return parts[0], parts[1]
    raise argparse.ArgumentTypeError(f"--size {text!r}: use a side (28) or HxW (300x600)")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Presets: " + ", ".join(PRESETS) + ". Options given override the preset's.",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--preset", choices=PRESETS, default="base_cnn-28")
    parser.add_argument("--model", help="a hwbench.models name (default: the preset's)")
    parser.add_argument("--size", help="input side, or HxW (default: the preset's)")
    parser.add_argument("--channels", type=int, choices=(1, 3))
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--steps", type=int, help="optimizer steps per timed unit")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds (>= 5)")
    parser.add_argument(
        "--workers",
        default="0,cores",
        help="DataLoader worker counts to try, comma-separated ('cores' = one per core)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads, the same for every arm (default: 1 on the CPU, where more "
        "threads than free cores make OpenMP spin-wait, as on a shared machine; one per "
        "core with CUDA)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: time.perf_counter (CUDA events on a GPU); cpu: CPU seconds of this "
        "process and its DataLoader workers (CPU only), less sensitive to other jobs",
    )
    parser.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    parser.add_argument("--no-save", action="store_true", help="don't append to reports/bench.csv")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error(f"--repeats {args.repeats}: at least 5, for a median and a spread")
    if args.clock == "cpu" and args.device != "cpu":
        parser.error("--clock cpu measures CPU work: use it with --device cpu")
    return args


def make_setup(args, device: torch.device) -> Setup:
    model, size, channels, stem, batch, cpu_steps, cuda_steps = PRESETS[args.preset]
    height, width = parse_size(args.size or size)
    return Setup(
        model=args.model or model,
        height=height,
        width=width,
        channels=args.channels or channels,
        stem=stem,
        batch_size=args.batch_size or batch,
        steps=args.steps or (cuda_steps if device.type == "cuda" else cpu_steps),
        device=device,
        amp=not args.no_amp,
        channels_last=True,
    )


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main(argv=None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    torch.set_num_threads(args.threads or (cores() if device.type == "cuda" else 1))
    s = make_setup(args, device)
    worker_counts = sorted({cores() if w == "cores" else int(w) for w in args.workers.split(",")})
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (s.images, s.height, s.width), dtype=np.uint8)
    labels = rng.integers(0, 10, s.images).astype(np.int64)
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu {platform.machine()}, {cores()} cores"
    )
    print(
        f"{s.model} {s.channels}x{s.height}x{s.width}, batch {s.batch_size}, "
        f"{s.steps} steps per unit, {args.repeats} rounds; {where}, "
        f"{torch.get_num_threads()} torch threads; {args.clock} clock; torch {torch.__version__}"
    )
    load_before = os.getloadavg()
    arms = {"limit": limit_arm(s, images, labels), "engine": engine_arm(s, images, labels)}
    for w in worker_counts:
        arms[f"dataloader_{w}w"] = dataloader_arm(s, images, labels, w)
    seconds = measure(arms, args.repeats, device, args.clock)
    load_after = os.getloadavg()

    print(f"\nimages/s per arm, median [min-max] (IQR), {s.images} images per unit:")
    rate = {}
    for name, secs in seconds.items():
        med, lo, hi, q1, q3 = spread([s.images / t for t in secs])
        rate[name] = (med, lo, hi)
        print(f"  {name:16s} {med:9.0f} [{lo:.0f}-{hi:.0f}] (IQR {q1:.0f}-{q3:.0f})")
    loaders = [n for n in seconds if n.startswith("dataloader")]
    best_loader = max(loaders, key=lambda n: rate[n][0])
    over_limit = paired_ratio(seconds["engine"], seconds["limit"])
    over_loader = paired_ratio(seconds["engine"], seconds[best_loader])
    r_limit, lo_l, hi_l, _, _ = spread(over_limit)
    ci_lo, ci_hi = median_ci(over_limit)
    r_loader, lo_d, hi_d, _, _ = spread(over_loader)
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    print(f"\n{load}")
    print(f"best DataLoader: {best_loader}")
    print(f"engine / {best_loader}: {r_loader:.3f} [{lo_d:.3f}-{hi_d:.3f}] (median of pairs)")
    if r_limit > ERROR_ABOVE:
        print(
            f"MEASUREMENT ERROR: engine / limit {r_limit:.3f} [{lo_l:.3f}-{hi_l:.3f}] > "
            f"{ERROR_ABOVE}. The engine does the limit's work and more, so it cannot be faster: "
            "the machine's load changed between the arms. Not a result; nothing saved. "
            "Rerun on a quiet machine."
        )
        return 1
    verdict = "meets" if r_limit >= TARGET else "MISSES"
    print(
        f"engine / limit: {r_limit:.3f} [{lo_l:.3f}-{hi_l:.3f}] (median of pairs; "
        f"{verdict} the target >= {TARGET}); 95% CI of the median {ci_lo:.3f}-{ci_hi:.3f}"
    )
    if ci_hi - ci_lo > 0.1:
        print(
            "  imprecise: the CI is wider than 0.1, so the machine's load swamps the "
            "difference between the arms; rerun when it is quieter or with more --repeats"
        )
    if not args.no_save:
        note = (
            f"{s.model} {s.channels}x{s.height}x{s.width} batch {s.batch_size}, "
            f"{s.steps} steps per unit on {where}, "
            f"{torch.get_num_threads()} threads, {args.clock} clock; {load}; "
            f"torch {torch.__version__}"
        )
        rounds = f"median of {args.repeats} rounds, range"
        prefix = device.type if args.clock == "wall" else f"{device.type}_cpuclock"
        rows = [
            (f"{name}_images_per_s", med, "images/s", "", f"{rounds} {lo:.0f}-{hi:.0f}")
            for name, (med, lo, hi) in rate.items()
        ]
        rows += [
            (
                "engine_over_limit",
                r_limit,
                "ratio",
                f">= {TARGET}",
                f"{rounds} {lo_l:.3f}-{hi_l:.3f}, 95% CI of the median {ci_lo:.3f}-{ci_hi:.3f}",
            ),
            (
                f"engine_over_{best_loader}",
                r_loader,
                "ratio",
                "",
                f"{rounds} {lo_d:.3f}-{hi_d:.3f}",
            ),
        ]
        append_bench_rows(
            BENCH_CSV,
            [
                dict(benchmark="engine", metric=f"{prefix}_{m}", value=round(v, 4), unit=u)
                | dict(kind="measured", target=t, note=f"{spread_note}; {note}")
                for m, v, u, t, spread_note in rows
            ],
        )
        print(f"appended to {BENCH_CSV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
