"""What the paper preset costs: measured per-step time and FLOPs, projected to every job.

For each training rule of the paper preset (config.yaml + config/paper.yaml), this
builds the rule's model at its paper input shape and batch size, and measures on this
machine's device:

- seconds per optimizer step (forward, loss, backward, Adam step; median of
  ``--steps`` timed steps after one untimed warm-up step);
- FLOPs per step, counted by ``torch.utils.flop_counter.FlopCounterMode`` over one
  forward and backward pass.

The number of jobs per rule comes from a dry run of the paper DAG (planned in an empty
folder, as benchmarks/dryrun.py does). Each job's training-set size is the paper's
(TRAIN_IMAGES below, with its source); epochs and batch sizes come from the config.
From these it projects, and marks as projected:

- device-hours of the whole preset on the measuring device (steps x seconds per step);
- a GPU-hours floor on a named GPU: FLOPs / (the GPU's dense bf16 peak x an assumed
  utilisation). Small models at 28 px are bound by kernel launches, not FLOPs, so
  their real GPU time is higher than this floor.

Evaluation passes, EWC's Fisher, feature extraction and the adaptation loop are not
counted: they are a small share of the training steps at these sizes.

    python benchmarks/cost.py                 # CPU; rows to reports/bench.csv
    python benchmarks/cost.py --docs          # also rewrite docs/performance.md's table
    python benchmarks/cost.py --device cuda   # measured per-step times on the GPU
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwbench.engine import pick_device  # noqa: E402
from hwbench.models import build_model  # noqa: E402
from hwbench.report import append_bench_rows  # noqa: E402

BENCH_CSV = ROOT / "reports" / "bench.csv"
DOC = ROOT / "docs" / "performance.md"
BLOCK = "paper-cost"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

# The GPU of the floor: H100 SXM, dense bf16 tensor-core peak (NVIDIA's datasheet),
# and the share of it a well-fed ResNet reaches (an assumption, stated in the table).
GPU_NAME = "H100 SXM"
GPU_PEAK_FLOPS = 989e12
GPU_UTILISATION = 0.4

# Images one job of each rule trains on per epoch (the largest job of the rule), from
# the papers; "~" where the paper gives no count and it follows from the dataset.
TRAIN_IMAGES = {
    "multiscript_train": (151_200, "3 scripts x 60,000 x 0.84 (multiscript paper, sec. 4)"),
    "transfer_source": (345_000, "~ NIST SD19 digits outside hsf_4"),
    "transfer_train": (731_000, "~ NIST SD19 digits + letters outside hsf_4"),
    "lifelong_sequence": (721, "721 training images over 4 tasks (lifelong paper, sec. 3)"),
    "lifelong_multitask": (721, "721 training images (lifelong paper, sec. 3)"),
    "lifelong_curriculum": (721, "721 training images (lifelong paper, sec. 3)"),
    # Table 2 without dDRIVER: 215,618 samples. The two joint runs see them all, the five
    # single-task runs see them once between them: 3 x 215,618 / 7 jobs per job.
    "onemodel_train": (92_408, "mean of 7 jobs: 3 x 215,618 (OneModel Table 2, no dDRIVER) / 7"),
    "adaptation_train": (585_000, "~ NIST SD19 writers outside the application set"),
}

# The largest single job of each rule (benchmarks/memory.py's input-store projection).
LARGEST_JOB_IMAGES = {rule: images for rule, (images, _) in TRAIN_IMAGES.items()}
LARGEST_JOB_IMAGES["onemodel_train"] = 215_618  # a joint run: every task of Table 2


@dataclass
class Shape:
    """One training rule's job as the paper preset runs it."""

    rule: str
    model: dict  # build_model keywords
    input: tuple[int, int, int]  # channels, height, width
    batch: int
    epochs: int
    classes: int


def merged_config() -> dict:
    """config.yaml with config/paper.yaml on top (Snakemake's merge: nested dicts)."""

    def merge(base: dict, top: dict) -> dict:
        out = dict(base)
        for key, value in top.items():
            both = isinstance(value, dict) and isinstance(out.get(key), dict)
            out[key] = merge(out[key], value) if both else value
        return out

    read = lambda p: yaml.safe_load((ROOT / p).read_text())  # noqa: E731
    return merge(read("config.yaml"), read("config/paper.yaml"))


def _model(cfg: dict, default_size: int = 28) -> tuple[dict, tuple[int, int, int]]:
    """build_model keywords (no pretrained download) and the input shape of a model section."""
    side = cfg.get("input_size") or default_size
    channels = cfg.get("in_channels", 1)
    keywords = {"name": cfg["name"], "in_channels": channels, "input_size": side}
    if cfg["name"].startswith("resnet"):
        keywords["stem"] = cfg.get("stem", "cifar")
    return keywords, (channels, side, side)


def _max_epochs(train: dict) -> int:
    schedule = train.get("batch_schedule") or []
    return sum(int(e) for e, _ in schedule) or int(train.get("epochs", 1))


def _batch(train: dict) -> int:
    schedule = train.get("batch_schedule") or []
    return int(schedule[0][1]) if schedule else int(train.get("batch_size", 64))


def shapes(cfg: dict) -> list[Shape]:
    """The paper shape of each training rule, read from the merged config."""
    out = []
    ms = cfg["multiscript"]
    model, shape = _model(ms["model"])
    out.append(Shape("multiscript_train", model, shape, ms["train"]["batch_size"], 100, 30))
    tr = cfg["transfer"]
    model, shape = _model(tr["model"])
    for rule in ("transfer_source", "transfer_train"):
        out.append(Shape(rule, model, shape, tr["train"]["batch_size"], tr["train"]["epochs"], 62))
    ll = cfg["lifelong"]
    model, shape = _model(ll["model"])
    tasks = len(ll["writers"])
    per_task = ll["train"]["epochs"]
    for rule, epochs in (
        ("lifelong_sequence", per_task),  # each image trained in its own task's epochs
        ("lifelong_multitask", ll["multitask"]["epochs"]),
        ("lifelong_curriculum", ll["curriculum"]["epochs"] * tasks),
    ):
        out.append(Shape(rule, model, shape, ll["train"]["batch_size"], epochs, 10))
    om = cfg["onemodel"]
    channels, height, width = om["canvas"]
    model = {"name": om["model"]["name"], "in_channels": channels, "input_size": (height, width)}
    model["stem"] = om["model"].get("stem", "imagenet")
    out.append(
        Shape(
            "onemodel_train",
            model,
            (channels, height, width),
            om["train"]["batch_size"],
            om["train"]["epochs"],
            604,
        )  # fmt: skip
    )
    ad = cfg["adaptation"]
    model, shape = _model(ad["model"])
    out.append(
        Shape("adaptation_train", model, shape, _batch(ad["train"]), _max_epochs(ad["train"]), 62)
    )
    return out


def jobs_per_rule(configfile: Path) -> dict[str, int]:
    """Jobs of each rule in a dry run of the whole paper DAG (an empty working folder)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copy2(ROOT / "config.yaml", work / "config.yaml")
        (work / "config").mkdir()
        paper = shutil.copy2(configfile, work / "config" / configfile.name)
        cmd = [SNAKEMAKE, "-n", "-s", str(ROOT / "Snakefile"), "--directory", str(work)]
        proc = subprocess.run(
            [*cmd, "--configfile", str(paper)], capture_output=True, text=True, cwd=work
        )
    if proc.returncode != 0:
        raise SystemExit(f"the paper dry run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    stats = proc.stdout.split("Job stats:", 1)[-1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


def _step(model, x, y, optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    out = model(x)
    out = out["main"] if isinstance(out, dict) else out
    F.cross_entropy(out, y).backward()
    optimizer.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(shape: Shape, device: torch.device, steps: int) -> tuple[float, float]:
    """(median seconds per step, FLOPs per step) of one shape on ``device``."""
    torch.manual_seed(0)
    model = build_model(num_classes=shape.classes, **shape.model).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(shape.batch, *shape.input, device=device)
    y = torch.randint(0, shape.classes, (shape.batch,), device=device)
    with FlopCounterMode(display=False) as counter:
        out = model(x)
        out = out["main"] if isinstance(out, dict) else out
        F.cross_entropy(out, y).backward()
    flops = counter.get_total_flops()
    _step(model, x, y, optimizer)  # warm-up (allocations, cudnn choice)
    times = []
    for _ in range(steps):
        _sync(device)
        start = time.perf_counter()
        _step(model, x, y, optimizer)
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), float(flops)


def project(shape: Shape, jobs: int, seconds: float, flops: float) -> dict:
    """Steps, device-hours and the GPU floor of every job of the rule."""
    images, source = TRAIN_IMAGES[shape.rule]
    steps = jobs * shape.epochs * math.ceil(images / shape.batch)
    gpu_hours = steps * flops / (GPU_PEAK_FLOPS * GPU_UTILISATION) / 3600
    return {
        "images": images,
        "source": source,
        "steps": steps,
        "device_hours": steps * seconds / 3600,
        "gpu_floor_hours": gpu_hours,
    }


def markdown(rows: list[dict], device: str) -> str:
    """The docs table: measured columns, then projected ones (marked)."""
    head = (
        "| rule | jobs | model, input, batch | epochs | images/job | steps, all jobs "
        "| s/step (measured) | GFLOP/step (counted) | device-hours (projected) "
        f"| {GPU_NAME} hours, floor (projected) |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = ""
    for r in rows:
        shape = r["shape"]
        what = f"{shape.model['name']}, {'x'.join(map(str, shape.input))}, {shape.batch}"
        body += (
            f"| {shape.rule} | {r['jobs']} | {what} | {shape.epochs} | {r['images']:,} "
            f"| {r['steps']:,} | {r['seconds']:.3f} | {r['flops'] / 1e9:.1f} "
            f"| {r['device_hours']:,.0f} | {r['gpu_floor_hours']:,.2f} |\n"
        )
    total = sum(r["device_hours"] for r in rows), sum(r["gpu_floor_hours"] for r in rows)
    body += f"| all | | | | | | | | {total[0]:,.0f} | {total[1]:,.2f} |\n"
    notes = "\n".join(f"- {r['shape'].rule}: {r['source']}" for r in rows)
    return (
        f"Measured on {device}. Device-hours = jobs x epochs x steps per epoch x s/step; the "
        f"floor = FLOPs / ({GPU_UTILISATION:.0%} of {GPU_NAME}'s {GPU_PEAK_FLOPS / 1e12:.0f} "
        "TFLOP/s dense bf16). Both are projections, not measurements. A GPU step of a small "
        "model costs a few milliseconds whatever its FLOPs: multiply the steps column by "
        "your card's measured s/step for a better figure.\n\n"
        f"{head}{body}\nImages per job:\n{notes}\n"
    )


def write_doc(text: str, command: str) -> None:
    """Replace the generated block of docs/performance.md (the rest is prose)."""
    page = DOC.read_text(encoding="utf-8")
    block = f"<!-- {BLOCK}:start ({command}) -->\n{text}<!-- {BLOCK}:end -->"
    pattern = re.compile(rf"<!-- {BLOCK}:start\b.*?<!-- {BLOCK}:end -->", re.S)
    if not pattern.search(page):
        raise SystemExit(f"{DOC}: no <!-- {BLOCK}:start --> block to replace")
    DOC.write_text(pattern.sub(lambda _: block, page), encoding="utf-8")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per shape")
    parser.add_argument("--docs", action="store_true", help="rewrite docs/performance.md")
    parser.add_argument("--no-save", action="store_true", help="don't append to bench.csv")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
    load = os.getloadavg()[0]
    described = f"{device.type} ({name}, {torch.get_num_threads()} torch threads, load {load:.2f})"
    jobs = jobs_per_rule(ROOT / "config" / "paper.yaml")
    rows, bench = [], []
    for shape in shapes(merged_config()):
        if shape.rule not in jobs:
            print(f"{shape.rule}: no job in the paper DAG, skipped")
            continue
        seconds, flops = measure(shape, device, args.steps)
        row = {"shape": shape, "jobs": jobs[shape.rule], "seconds": seconds, "flops": flops}
        row |= project(shape, jobs[shape.rule], seconds, flops)
        rows.append(row)
        print(
            f"{shape.rule}: {row['jobs']} jobs, {seconds:.3f} s/step, {flops / 1e9:.1f} GFLOP/step;"
            f" projected {row['device_hours']:,.0f} {device.type}-hours, "
            f"{GPU_NAME} floor {row['gpu_floor_hours']:,.1f} h"
        )
        note = f"{shape.rule}, {described}"
        floor_note = f"{note}; FLOPs at {GPU_UTILISATION:.0%} of the bf16 peak"
        for metric, value, unit, kind, why in (
            ("s/step", round(seconds, 4), "s", "measured", note),
            ("flops/step", flops, "FLOP", "measured", note),
            ("device-hours", round(row["device_hours"], 1), "h", "projected", note),
            (f"{GPU_NAME} floor", round(row["gpu_floor_hours"], 2), "h", "projected", floor_note),
        ):
            bench.append(
                dict(benchmark="paper_cost", metric=f"{shape.rule} {metric}", value=value)
                | dict(unit=unit, kind=kind, note=why)
            )
    if not args.no_save:
        append_bench_rows(BENCH_CSV, bench)
    if args.docs:
        command = "python benchmarks/cost.py --docs"
        if args.device != "cpu":
            command = f"python benchmarks/cost.py --docs --device {args.device}"
        write_doc(markdown(rows, described), command)
        print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
