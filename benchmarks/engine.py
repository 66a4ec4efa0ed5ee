"""Training throughput of the engine against its limit and a conventional DataLoader loop.

Every arm does the same unit of work: a fresh optimizer and N optimizer steps over the
same N x batch-size stored uint8 images, each batch turned into model input by the
same per-batch transform inside the clock (as the studies train), with the same model
architecture and initial weights (benchmarks/arms.py):

- limit: the N uint8 batches already on the device as contiguous slices; per step the
  transform and the model step, nothing else. The engine does this plus a shuffle, a
  gather, an accuracy and a loss sum per batch, so it cannot beat it: engine/limit
  above 1.05 is a measurement error (the machine's load changed under one arm),
  printed as such and not saved.
- engine: the public :func:`hwbench.engine.fit` for one epoch over exactly N batches
  of the uint8 data, with the transform (its per-call setup, optimizer included, is
  inside the clock).
- dataloader: a shuffling ``DataLoader`` over the uint8 samples (persistent workers),
  each batch copied to the device and transformed there. Measured with 0 workers and
  with one per core; the better of the two is kept.

Every arm is timed alike: one untimed warm-up unit each, then ``--repeats`` rounds
in which the arms run one after another (their order rotated each round), each unit
timed by ``time.perf_counter`` (on CUDA: CUDA events after a synchronize; with
``--clock cpu``: CPU seconds of the process and its workers), under the same torch
thread count. Prints per arm the median images/s and its spread (min-max
and inter-quartile range); a ratio is the median of the per-round (paired) ratios.
Target: engine/limit >= 0.9. Appends the medians to reports/bench.csv.

    python benchmarks/engine.py                                   # CPU, base_cnn at 28 px
    python benchmarks/engine.py --preset multiscript              # Table 4's paper step
    python benchmarks/engine.py --device cuda --preset onemodel   # ResNet-152, canvas
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import arms  # noqa: E402
from cost import merged_config  # noqa: E402

from hwbench.engine import pick_device  # noqa: E402
from hwbench.report import append_bench_rows  # noqa: E402

BENCH_CSV = Path(__file__).resolve().parents[1] / "reports" / "bench.csv"
TARGET = 0.9  # engine/limit the engine should reach
ERROR_ABOVE = 1.05  # engine/limit above this is a measurement error, not a result

# model, input side(s), channels, stem, batch size, steps on the CPU, steps on CUDA
PRESETS = {
    "small_cnn-28": ("small_cnn", "28", 1, "cifar", 64, 64, 200),
    "base_cnn-28": ("base_cnn", "28", 1, "cifar", 64, 16, 200),
    "resnet18-28": ("resnet18", "28", 1, "cifar", 128, 4, 100),
    "resnet18-224": ("resnet18", "224", 3, "imagenet", 64, 2, 50),
    "resnet152-300x600": ("resnet152", "300x600", 3, "imagenet", 16, 1, 20),
}
# The studies' own steps, as config/paper.yaml configures them (benchmarks/arms.py):
# steps on the CPU, steps on CUDA.
STUDY_PRESETS = {"multiscript": (4, 200), "transfer": (1, 50), "onemodel": (1, 20)}


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
        epilog="Presets: " + ", ".join([*PRESETS, *STUDY_PRESETS]) + ". Options given "
        "override a generic preset's; a study preset takes only --batch-size and --steps.",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--preset", choices=[*PRESETS, *STUDY_PRESETS], default="base_cnn-28")
    parser.add_argument("--model", help="a hwbench.models name (default: the preset's)")
    parser.add_argument("--size", help="input side, or HxW (default: the preset's)")
    parser.add_argument("--channels", type=int, choices=(1, 3))
    parser.add_argument("--compile", action="store_true", help="every arm's model compiled")
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
    parser.add_argument("--quiet", action="store_true", help="no line per round")
    parser.add_argument("--no-save", action="store_true", help="don't append to reports/bench.csv")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error(f"--repeats {args.repeats}: at least 5, for a median and a spread")
    if args.clock == "cpu" and args.device != "cpu":
        parser.error("--clock cpu measures CPU work: use it with --device cpu")
    return args


def make_workload(args, device: torch.device, folder: str) -> arms.Workload:
    """The preset's workload, with the options given."""
    if args.preset in STUDY_PRESETS:
        cpu_steps, cuda_steps = STUDY_PRESETS[args.preset]
        steps = args.steps or (cuda_steps if device.type == "cuda" else cpu_steps)
        cfg, batch = merged_config(), args.batch_size
        if args.preset == "onemodel":
            w = arms.onemodel_workload(cfg, device, steps, folder, batch)
        else:
            build = getattr(arms, f"{args.preset}_workload")
            w = build(cfg, device, steps, batch)
    else:
        model, size, channels, stem, batch, cpu_steps, cuda_steps = PRESETS[args.preset]
        w = arms.generic_workload(
            args.model or model,
            parse_size(args.size or size),
            args.channels or channels,
            stem,
            args.batch_size or batch,
            args.steps or (cuda_steps if device.type == "cuda" else cpu_steps),
            device,
        )
    train = {**w.train, "amp": not args.no_amp}
    return arms.dataclasses.replace(w, train=train, compiled=args.compile)


def describe(w: arms.Workload) -> str:
    size = "x".join(
        map(
            str,
            w.model["input_size"]
            if isinstance(w.model["input_size"], tuple)
            else (w.model["input_size"],) * 2,
        )
    )
    return (
        f"{w.name}: {w.model['name']} {w.model['in_channels']}x{size}, uint8 input + "
        f"{w.transform!r} per batch, batch {w.batch_size}, {w.steps} steps per unit"
        + (", compiled" if w.compiled else "")
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    torch.set_num_threads(args.threads or (arms.cores() if device.type == "cuda" else 1))
    folder = tempfile.TemporaryDirectory(prefix="hwbench-engine-")
    w = make_workload(args, device, folder.name)
    worker_counts = sorted(
        {arms.cores() if n == "cores" else int(n) for n in args.workers.split(",")}
    )
    where = arms.device_name(device)
    print(
        f"{describe(w)}, {args.repeats} rounds; {where}, {torch.get_num_threads()} torch "
        f"threads; {args.clock} clock; torch {torch.__version__}"
    )
    result = arms.compare(w, worker_counts, args.repeats, args.clock, args.quiet)
    folder.cleanup()

    print(f"\nimages/s per arm, median [min-max] (IQR), {w.images} images per unit:")
    for name in result.seconds:
        med, lo, hi, q1, q3 = result.rate(name)
        print(f"  {name:16s} {med:9.1f} [{lo:.1f}-{hi:.1f}] (IQR {q1:.1f}-{q3:.1f})")
    best_loader = result.best_loader
    r_limit, lo_l, hi_l = result.ratio("engine", "limit")
    ci_lo, ci_hi = result.ratio_ci("engine", "limit")
    r_loader, lo_d, hi_d = result.ratio("engine", best_loader)
    print(f"\n{result.load}")
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
            f"{describe(w)} on {where}, {torch.get_num_threads()} threads, {args.clock} "
            f"clock; {result.load}; torch {torch.__version__}"
        )
        rounds = f"median of {args.repeats} rounds, range"
        rows = [
            (f"{name}_images_per_s", result.rate(name)[0], "images/s", "",
             f"{rounds} {result.rate(name)[1]:.1f}-{result.rate(name)[2]:.1f}")
            for name in result.seconds
        ]  # fmt: skip
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
        prefix = device.type if args.clock == "wall" else f"{device.type}_cpuclock"
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
