"""What the paper preset costs: measured per-step time and FLOPs, projected to every job.

For each training rule of the paper preset (config.yaml + config/paper.yaml), this
builds the rule's model at its paper input shape and batch size, and on this machine's
device:

- measures seconds per optimizer step as the study trains: uint8 stored input, the
  study's per-batch transform, the engine's autocast and memory format (channels_last
  on CUDA), cross-entropy, backward, the study's optimizer (benchmarks/arms.py's
  model step; median of ``--steps`` timed steps after one untimed warm-up step);
- counts FLOPs per step with ``torch.utils.flop_counter.FlopCounterMode`` over one
  forward and backward pass (kind ``counted``: not a timing).

The number of jobs per rule comes from a dry run of the paper DAG (planned in an empty
folder, as benchmarks/dryrun.py does). Each job's training-set size is the paper's
(TRAIN_IMAGES below, with its source); the fits of one job (a lifelong sequence trains
one fit per task, the curriculum one per task on its training split only, the
adaptation base CNN one per batch-size series) and their epochs and batch sizes come
from the config (:func:`job_fits`). From these it projects, and marks as projected:

- device-hours of the whole preset on the measuring device (steps x seconds per step);
- a GPU-hours floor on a named GPU: FLOPs / (the GPU's dense bf16 peak x an assumed
  utilisation). Small models at 28 px are bound by kernel launches, not FLOPs, so
  their real GPU time is higher than this floor.

Evaluation passes, EWC's Fisher, feature extraction and the adaptation loop are not
counted: they are a small share of the training steps at these sizes. A rule whose jobs
differ in size is projected at its largest job, and every rule at its maximum epochs:
those rows, and the total, are upper bounds and say so.

    python benchmarks/cost.py                 # CPU; rows to reports/bench.csv
    python benchmarks/cost.py --docs          # also rewrite docs/performance.md's table
    python benchmarks/cost.py --device cuda   # measured per-step times on the GPU
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import arms  # noqa: E402

from hwbench.engine import pick_device  # noqa: E402
from hwbench.report import append_bench_rows  # noqa: E402

BENCH_CSV = ROOT / "reports" / "bench.csv"
DOC = ROOT / "docs" / "performance.md"
BLOCK = "paper-cost"
STEP_TIMES = ROOT / "benchmarks" / "measured" / "steps-cpu.json"  # steps-<device>.json
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

# The GPU of the floor: H100 SXM, dense bf16 tensor-core peak (NVIDIA's datasheet),
# and the share of it a well-fed ResNet reaches (an assumption, stated in the table).
GPU_NAME = "H100 SXM"
GPU_PEAK_FLOPS = 989e12
GPU_UTILISATION = 0.4

# Images one job of each rule trains on per epoch (the largest job of the rule), from
# the papers; "~" where the paper gives no count and it follows from the dataset.
# Lifelong's 721 are the training images of all four tasks (one task: a quarter).
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
# Rules whose jobs all train on the same images; the others are projected at their
# largest job (OneModel: at the mean of its jobs, see TRAIN_IMAGES), an upper bound.
SAME_SIZE_JOBS = {"lifelong_sequence", "lifelong_multitask", "lifelong_curriculum"}
MEAN_SIZE_JOBS = {"onemodel_train"}


@dataclass
class Shape:
    """One training rule's job as the paper preset runs it."""

    rule: str
    model: dict  # build_model keywords
    input: tuple[int, int, int]  # channels, height, width
    batch: int
    epochs: int  # epochs of the job's first fit (all of them: see fits)
    classes: int
    # the job's fits: (images, epochs, batch size) each, from job_fits
    fits: list[tuple[float, int, int]] = field(default_factory=list)
    stops_early: bool = False  # early stopping configured: epochs are a maximum

    @property
    def batches(self) -> list[int]:
        """Batch sizes the job trains at (several for a batch schedule)."""
        return sorted({b for _, _, b in self.fits} or {self.batch})


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


def _series(train: dict) -> list[tuple[int, int]]:
    """(epochs, batch size) of each series of a training section: its batch schedule,
    or one series of ``epochs`` at ``batch_size``."""
    schedule = train.get("batch_schedule") or []
    if schedule:
        return [(int(e), int(b)) for e, b in schedule]
    return [(int(train.get("epochs", 10)), int(train.get("batch_size", 32)))]


def job_fits(rule: str, cfg: dict, images: float) -> list[tuple[float, int, int]]:
    """The fits one job of ``rule`` runs, (images, epochs, batch size) each, for a job
    whose training data are ``images`` (see TRAIN_IMAGES), from the merged config."""
    if rule.startswith("lifelong"):
        ll = cfg["lifelong"]
        tasks, batch = len(ll["writers"]), int(ll["train"]["batch_size"])
        if rule == "lifelong_multitask":
            return [(images, int(ll["multitask"]["epochs"]), batch)]
        if rule == "lifelong_sequence":  # one fit per task, on that task's images
            return [(images / tasks, int(ll["train"]["epochs"]), batch)] * tasks
        # the curriculum: one model per task, on its curriculum.train_splits only
        cur = ll["curriculum"]
        share = 1.0
        if "val" in ll["train_splits"] and "val" not in cur["train_splits"]:
            share = 1.0 - float(cfg["splits"]["val_fraction"])  # val: a share of train
        return [(images / tasks * share, int(cur["epochs"]), batch)] * tasks
    if rule == "adaptation_train":  # the largest dataset's settings (TRAIN_IMAGES: NIST)
        from hwbench.studies.adaptation.plan import train_settings

        train = train_settings(cfg["adaptation"], cfg["adaptation"]["datasets"][0])
        return [(images, e, b) for e, b in _series(train)]
    study = {"multiscript_train": "multiscript", "onemodel_train": "onemodel"}.get(rule)
    study = study or "transfer"
    return [(images, e, b) for e, b in _series(cfg[study]["train"])]


def steps_per_job(fits: list[tuple[float, int, int]]) -> int:
    """Optimizer steps of one job: per fit, epochs x batches per epoch (the last partial)."""
    return sum(epochs * math.ceil(images / batch) for images, epochs, batch in fits)


def _stops_early(train: dict) -> bool:
    return train.get("patience") is not None or train.get("stop_eps") is not None


def shapes(cfg: dict) -> list[Shape]:
    """The paper shape of each training rule, read from the merged config."""
    out = []

    def add(rule, model, shape, train, classes, per_dataset=()):
        fits = job_fits(rule, cfg, TRAIN_IMAGES[rule][0])
        first_epochs, first_batch = fits[0][1], fits[0][2]
        early = _stops_early(train) or any(_stops_early(t) for t in per_dataset)
        out.append(Shape(rule, model, shape, first_batch, first_epochs, classes, fits, early))

    ms = cfg["multiscript"]
    model, shape = _model(ms["model"])
    add("multiscript_train", model, shape, ms["train"], 30)  # digits: 3 scripts x 10
    tr = cfg["transfer"]
    model, shape = _model(tr["model"])
    for rule in ("transfer_source", "transfer_train"):
        add(rule, model, shape, tr["train"], 62)
    ll = cfg["lifelong"]
    model, shape = _model(ll["model"])
    for rule in ("lifelong_sequence", "lifelong_multitask", "lifelong_curriculum"):
        add(rule, model, shape, ll["train"], 10)
    om = cfg["onemodel"]
    channels, height, width = om["canvas"]
    model = {"name": om["model"]["name"], "in_channels": channels, "input_size": (height, width)}
    model["stem"] = om["model"].get("stem", "imagenet")
    add("onemodel_train", model, (channels, height, width), om["train"], 604)
    ad = cfg["adaptation"]
    model, shape = _model(ad["model"])
    per_dataset = (ad.get("train_per_dataset") or {}).values()
    add("adaptation_train", model, shape, ad["train"], 62, per_dataset)
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


def workload(shape: Shape, cfg: dict, device, batch: int, folder) -> arms.Workload:
    """The rule's training step as its study runs it (benchmarks/arms.py), one batch."""
    if shape.rule == "onemodel_train":
        return arms.onemodel_workload(cfg, device, 1, folder, batch)
    study = shape.rule.split("_", 1)[0]
    return getattr(arms, f"{study}_workload")(cfg, device, 1, batch)


def measure(shape: Shape, cfg: dict, device, steps: int) -> dict[int, tuple[float, float]]:
    """Per batch size of the job: (median seconds per step, counted FLOPs per step)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="hwbench-cost-") as folder:
        for batch in shape.batches:
            w = workload(shape, cfg, device, batch, folder)
            out[batch] = (arms.steady_step_seconds(w, steps), arms.counted_flops(w))
    return out


def bound(shape: Shape) -> str:
    """Whether the rule's projection is exact (given the paper's sizes) or an upper bound."""
    why = []
    if shape.rule not in SAME_SIZE_JOBS | MEAN_SIZE_JOBS:
        why.append("largest job")
    if shape.stops_early:
        why.append("max epochs")
    if why:
        return f"upper bound ({', '.join(why)})"
    return "mean job" if shape.rule in MEAN_SIZE_JOBS else "as configured"


def project(shape: Shape, jobs: int, per_batch: dict[int, tuple[float, float]]) -> dict:
    """Steps, device-hours and the GPU floor of every job of the rule."""
    images, source = TRAIN_IMAGES[shape.rule]
    seconds = flops = 0.0
    for fit_images, epochs, batch in shape.fits:
        fit_steps = jobs * epochs * math.ceil(fit_images / batch)
        seconds += fit_steps * per_batch[batch][0]
        flops += fit_steps * per_batch[batch][1]
    return {
        "images": images,
        "source": source,
        "steps": jobs * steps_per_job(shape.fits),
        "device_hours": seconds / 3600,
        "gpu_floor_hours": flops / (GPU_PEAK_FLOPS * GPU_UTILISATION) / 3600,
        "bound": bound(shape),
    }


def fits_text(shape: Shape) -> str:
    """A job's fits, e.g. ``10`` (one fit), ``4 x 10`` (one per task), ``20+10+5``."""
    epochs = [e for _, e, _ in shape.fits]
    if len(epochs) == 1:
        return str(epochs[0])
    if len(set(epochs)) == 1 and len({i for i, _, _ in shape.fits}) == 1:
        return f"{len(epochs)} x {epochs[0]}"
    return "+".join(map(str, epochs))


def markdown(rows: list[dict], device: str) -> str:
    """The docs table: measured columns, counted ones, then projected ones (marked)."""
    head = (
        "| rule | jobs | model, input, batch | epochs per job | images/job | steps, all jobs "
        "| s/step (measured) | GFLOP/step (counted) | device-hours (projected) "
        f"| {GPU_NAME} hours, floor (projected) | bound |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    body = ""
    for r in rows:
        shape, per_batch = r["shape"], r["per_batch"]
        batches = "/".join(map(str, shape.batches))
        what = f"{shape.model['name']}, {'x'.join(map(str, shape.input))}, {batches}"
        secs = " / ".join(f"{per_batch[b][0]:.3f}" for b in shape.batches)
        gflop = " / ".join(f"{per_batch[b][1] / 1e9:.1f}" for b in shape.batches)
        body += (
            f"| {shape.rule} | {r['jobs']} | {what} | {fits_text(shape)} | {r['images']:,} "
            f"| {r['steps']:,} | {secs} | {gflop} "
            f"| {r['device_hours']:,.0f} | {r['gpu_floor_hours']:,.2f} | {r['bound']} |\n"
        )
    total = sum(r["device_hours"] for r in rows), sum(r["gpu_floor_hours"] for r in rows)
    bounds = sum(r["bound"].startswith("upper") for r in rows)
    body += (
        f"| all | | | | | | | | {total[0]:,.0f} | {total[1]:,.2f} "
        f"| upper bound (sum of {bounds} upper bounds) |\n"
    )
    notes = "\n".join(f"- {r['shape'].rule}: {r['source']}" for r in rows)
    return (
        f"Measured on {device}. Device-hours = jobs x epochs x steps per epoch x s/step, per "
        "fit of a job (a lifelong sequence or the curriculum trains one fit per task, the "
        "curriculum on the training split only; the adaptation base CNN one per batch "
        f"size of its schedule); the floor = FLOPs / ({GPU_UTILISATION:.0%} of {GPU_NAME}'s "
        f"{GPU_PEAK_FLOPS / 1e12:.0f} TFLOP/s dense bf16). Both are projections, not "
        "measurements; an upper bound projects every job at the rule's largest and at "
        "its maximum epochs. A GPU step of a small model costs a few milliseconds "
        "whatever its FLOPs: multiply the steps column by your card's measured s/step "
        f"for a better figure.\n\n{head}{body}\nImages per job:\n{notes}\n"
    )


def write_doc(text: str, command: str) -> None:
    """Replace the generated block of docs/performance.md (the rest is prose)."""
    arms.write_doc_block(DOC, BLOCK, text, command)


def write_step_times(path: Path, rows: list[dict], described: str, command: str) -> None:
    """Per-step seconds of each rule and batch, with where they were measured:
    benchmarks/resources.py reads them."""
    from hwbench.store import write_json

    record = {
        "command": command,
        "commit": described.rsplit("commit ", 1)[-1],  # before this run wrote anything
        "measured_on": described,
        "rules": {
            r["shape"].rule: {str(b): round(v[0], 4) for b, v in r["per_batch"].items()}
            for r in rows
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per shape")
    parser.add_argument(
        "--docs",
        action="store_true",
        help="rewrite docs/performance.md's block and benchmarks/measured/steps-<device>.json",
    )
    parser.add_argument("--no-save", action="store_true", help="don't append to bench.csv")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    load = os.getloadavg()[0]
    described = (
        f"{arms.machine(device)}, {torch.get_num_threads()} torch threads, load {load:.2f}, "
        f"commit {arms.commit()}"
    )
    jobs = jobs_per_rule(ROOT / "config" / "paper.yaml")
    cfg = merged_config()
    rows, bench = [], []
    for shape in shapes(cfg):
        if shape.rule not in jobs:
            print(f"{shape.rule}: no job in the paper DAG, skipped")
            continue
        per_batch = measure(shape, cfg, device, args.steps)
        row = {"shape": shape, "jobs": jobs[shape.rule], "per_batch": per_batch}
        row |= project(shape, jobs[shape.rule], per_batch)
        rows.append(row)
        first = per_batch[shape.batches[0]]
        print(
            f"{shape.rule}: {row['jobs']} jobs, {first[0]:.3f} s/step, {first[1] / 1e9:.1f} "
            f"GFLOP/step (batch {shape.batches[0]}); projected {row['device_hours']:,.0f} "
            f"{device.type}-hours, {GPU_NAME} floor {row['gpu_floor_hours']:,.1f} h "
            f"({row['bound']})"
        )
        note = f"{shape.rule}, {described}"
        floor_note = f"{note}; FLOPs at {GPU_UTILISATION:.0%} of the bf16 peak; {row['bound']}"
        for batch, (seconds, flops) in per_batch.items():
            for metric, value, unit, kind in (
                (f"s/step batch {batch}", round(seconds, 4), "s", "measured"),
                (f"flops/step batch {batch}", flops, "FLOP", "counted"),
            ):
                bench.append(
                    dict(benchmark="paper_cost", metric=f"{shape.rule} {metric}", value=value)
                    | dict(unit=unit, kind=kind, note=note)
                )
        for metric, value, unit, why in (
            ("device-hours", round(row["device_hours"], 1), "h", f"{note}; {row['bound']}"),
            (f"{GPU_NAME} floor", round(row["gpu_floor_hours"], 2), "h", floor_note),
        ):
            bench.append(
                dict(benchmark="paper_cost", metric=f"{shape.rule} {metric}", value=value)
                | dict(unit=unit, kind="projected", note=why)
            )
    if not args.no_save:
        append_bench_rows(BENCH_CSV, bench)
    if args.docs:
        command = "python benchmarks/cost.py --docs"
        if args.device != "cpu":
            command = f"python benchmarks/cost.py --docs --device {args.device}"
        write_doc(markdown(rows, described), command)
        steps_file = STEP_TIMES.with_name(f"steps-{device.type}.json")
        write_step_times(steps_file, rows, described, command)
        print(f"wrote {DOC.relative_to(ROOT)} and {STEP_TIMES.parent.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
