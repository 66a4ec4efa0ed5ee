"""Peak memory of each study's largest paper-preset training job, at N and 4N images.

The job runs as in the rehearsal (config/paper.yaml + config/rehearsal.yaml: the paper's
models, input shapes, canvases and batch sizes on generated stand-ins, capped steps), in
a scratch working folder. Its inputs are built first (``--omit-from`` the training
rule); then the training job alone runs as a subprocess (Snakemake and the job's script
process), and its peak resident memory is the kernel's high-water mark for that process
tree (``os.wait4``'s ``ru_maxrss``: the largest process). That is done with the stand-in
training sets at N and at 4N images (``data.standin.per_class``, or the lifelong
generator's ``samples_per_class``). With inputs kept as uint8 and transformed per batch,
4N must cost about what N costs: growth = peak(4N) / peak(N) <= 1.25.

The check has power only where the defect it looks for would show: a float copy of the
training set (the model input, C x H x W float32 per image) at 4N must push the growth
over 1.25. After measuring N, the script raises N until that holds (up to
``--max-per-class``); where it cannot, it prints "no power" and stores no growth row.

It prints a line per study, then ``max growth``, and the input memory the job would hold
at the paper's full training-set size (the uint8 store: images x bytes per stored image),
and where it is kept: in memory, or on disk with each batch's rows read (a study's
``resident_mb``: OneModel's paper-size task sets).
Rows go to reports/bench.csv.

    python benchmarks/memory.py                      # every study, N = 8 per class
    python benchmarks/memory.py --studies onemodel --per-class 4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cost import LARGEST_JOB_IMAGES, merged_config, shapes  # noqa: E402

from hwbench.report import append_bench_rows  # noqa: E402

BENCH_CSV = ROOT / "reports" / "bench.csv"
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
CONFIGS = ("config/paper.yaml", "config/rehearsal.yaml")
GROWTH_TARGET = 1.25
PEAK_TARGET_MIB = 8 * 1024
MEASURED = ROOT / "benchmarks" / "measured" / "memory.json"


@dataclass(frozen=True)
class Job:
    """A study's largest training job: its output, rule and how to scale its data."""

    study: str
    target: str
    rule: str
    scale: str  # "standin": data.standin.per_class; "lifelong": the generator's count


JOBS = {
    "multiscript": Job(
        "multiscript",
        "results/multiscript/digits/new/seed0/eval.json",
        "multiscript_train",
        "standin",
    ),  # fmt: skip
    "transfer": Job(
        "transfer",
        "results/transfer/sets/digits_letters/finetuned/seed0/eval.json",
        "transfer_train",
        "standin",
    ),  # fmt: skip
    "lifelong": Job(
        "lifelong", "results/lifelong/multitask/s0/eval.json", "lifelong_multitask", "lifelong"
    ),
    "onemodel": Job(
        "onemodel", "results/onemodel/joint_djb2/seed0/eval.json", "onemodel_train", "standin"
    ),
    "adaptation": Job(
        "adaptation", "results/adaptation/nist/base/eval.json", "adaptation_train", "standin"
    ),
}


def scale_config(job: Job, per_class: int) -> dict:
    """The config layer that sets the job's training-set size."""
    if job.scale == "lifelong":
        return {"synth": {"synth_lifelong": {"samples_per_class": per_class}}}
    return {"data": {"standin": {"per_class": per_class}}}


def _snakemake(work: Path, *args: str) -> list[str]:
    configs = [str(work / c) for c in (*CONFIGS, "config/scale.yaml")]
    return [
        SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work), "--cores", "2",
        "--configfile", *configs, *args,
    ]  # fmt: skip


def _run(cmd: list[str], work: Path, what: str) -> int:
    """Run ``cmd``; return the peak RSS (KiB) of its largest process, from os.wait4."""
    with open(work / "memory.log", "a") as log:
        proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = (work / "memory.log").read_text()[-3000:]
        raise SystemExit(f"{what} failed ({' '.join(cmd)}):\n{tail}")
    return usage.ru_maxrss


def measure(job: Job, per_class: int, keep: Path | None) -> dict:
    """Peak RSS (MiB) of the job's training at ``per_class``, with the stand-in sizes."""
    work = Path(tempfile.mkdtemp(prefix=f"hwbench-memory-{job.study}-"))
    try:
        shutil.copy2(ROOT / "config.yaml", work / "config.yaml")
        (work / "config").mkdir()
        for name in CONFIGS:
            shutil.copy2(ROOT / name, work / name)
        (work / "config/scale.yaml").write_text(yaml.safe_dump(scale_config(job, per_class)))
        _run(_snakemake(work, "--omit-from", job.rule, "--", job.target), work, "inputs")
        start = time.perf_counter()
        peak_kib = _run(_snakemake(work, "--", job.target), work, f"{job.rule} job")
        return {
            "peak_mib": peak_kib / 1024,
            "wall_s": time.perf_counter() - start,
            "images": _processed_images(work),
            "bytes_per_image": _bytes_per_image(work),
        }
    finally:
        if keep is not None:
            shutil.copytree(work, keep / f"{job.study}-{per_class}", dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


def _stores(work: Path) -> list[np.ndarray]:
    return [np.load(p, mmap_mode="r") for p in sorted(work.glob("data/processed/*/images.npy"))]


def _processed_images(work: Path) -> int:
    """Images in the processed datasets the job read (its inputs were all that was built)."""
    return sum(len(store) for store in _stores(work))


def _bytes_per_image(work: Path) -> float:
    """Mean bytes of one stored image over the job's processed datasets."""
    stores = _stores(work)
    total = sum(store.nbytes for store in stores)
    return total / max(1, sum(len(store) for store in stores))


def paper_residency(study: str, paper_mib: float) -> str:
    """Where a paper-preset job keeps its uint8 store: in memory, or on disk read per
    batch when the study has a ``resident_mb`` budget (config.yaml under paper.yaml)."""
    sections = [yaml.safe_load((ROOT / name).read_text()).get(study) or {} for name in (
        "config.yaml", "config/paper.yaml")]  # fmt: skip
    budget = next((s["resident_mb"] for s in reversed(sections) if "resident_mb" in s), None)
    if budget is not None and paper_mib > budget:
        return f"read from disk per batch: over {study}.resident_mb {budget} MiB"
    return "held in memory"


def float_input_bytes(rule: str) -> int:
    """Bytes of one image as float32 model input (C x H x W) at the paper's shape."""
    shape = next(s for s in shapes(merged_config()) if s.rule == rule)
    return 4 * math.prod(shape.input)


def has_power(peak_mib: float, images: int, copy_bytes: int) -> bool:
    """Would a float copy of the training set fail the growth check? Such a copy adds
    ``copy_bytes`` per image: 3N images' worth more at 4N than at N."""
    extra_mib = 3 * images * copy_bytes / 2**20
    return (peak_mib + extra_mib) / peak_mib > GROWTH_TARGET


def per_class_for_power(per_class: int, images: int, peak_mib: float, copy_bytes: int) -> int:
    """The smallest N (per class) at which :func:`has_power` holds, with a 25% margin,
    assuming images grow in proportion to N and the peak stays (the claim under test)."""
    needed = (GROWTH_TARGET - 1) * peak_mib * 2**20 / (3 * copy_bytes) * 1.25
    return max(per_class, math.ceil(per_class * needed / max(images, 1)))


def measure_pair(job: Job, per_class: int, max_per_class: int, keep) -> tuple[dict, dict, bool]:
    """Peaks at N and 4N, N raised (up to ``max_per_class``) until the check has power."""
    copy_bytes = float_input_bytes(job.rule)
    small = measure(job, per_class, keep)
    powered = has_power(small["peak_mib"], small["images"], copy_bytes)
    if not powered:
        wanted = per_class_for_power(per_class, small["images"], small["peak_mib"], copy_bytes)
        if wanted <= max_per_class:
            per_class = wanted
            small = measure(job, per_class, keep)
            powered = has_power(small["peak_mib"], small["images"], copy_bytes)
        else:
            print(
                f"{job.study}: no power: N would need {wanted} per class (> --max-per-class "
                f"{max_per_class}) for a float copy of 4N to show; no growth row stored"
            )
    small["per_class"] = per_class
    large = measure(job, 4 * per_class, keep)
    large["per_class"] = 4 * per_class
    return small, large, powered


def write_measured(path: Path, peaks: dict, load: float, command: str) -> None:
    """The peaks, with where and how they were measured: benchmarks/resources.py reads them."""
    import torch
    from arms import commit, machine

    from hwbench.store import write_json

    old = json.loads(path.read_text()) if path.exists() else {}
    record = {
        "command": command,
        "commit": commit(),
        "machine": machine(torch.device("cpu")),
        "load": round(load, 2),
        "rules": {**old.get("rules", {}), **peaks},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", nargs="+", choices=list(JOBS), default=list(JOBS))
    parser.add_argument("--per-class", type=int, default=8, help="N: stand-in images per class")
    parser.add_argument(
        "--max-per-class",
        type=int,
        default=800,
        help="the largest N (per class) tried to give the growth check power",
    )
    parser.add_argument(
        "--write",
        type=Path,
        nargs="?",
        const=MEASURED,
        help=f"also record the peaks in this JSON (default {MEASURED.relative_to(ROOT)}; "
        "benchmarks/resources.py reads it)",
    )
    parser.add_argument("--keep", type=Path, help="copy each scratch folder here (debugging)")
    parser.add_argument("--no-save", action="store_true", help="don't append to bench.csv")
    args = parser.parse_args(argv)
    rows, growths, peaks, measured = [], [], [], {}
    load = os.getloadavg()[0]
    for study in args.studies:
        job = JOBS[study]
        small, large, powered = measure_pair(job, args.per_class, args.max_per_class, args.keep)
        growth = large["peak_mib"] / small["peak_mib"]
        if powered:
            growths.append(growth)
        peaks += [small["peak_mib"], large["peak_mib"]]
        paper_images = LARGEST_JOB_IMAGES[job.rule]
        paper_mib = paper_images * large["bytes_per_image"] / 2**20
        where = paper_residency(study, paper_mib)
        print(
            f"{study}: N={small['images']} {small['peak_mib']:.0f} MiB, "
            f"4N {large['peak_mib']:.0f} MiB, growth {growth:.3f}"
            f"{'' if powered else ' (no power: not a check)'}"
            f"  ({job.rule}; {large['images']} images at 4N; input store at the paper's "
            f"{paper_images:,} images: {paper_mib:,.0f} MiB uint8, {where})"
        )
        note = f"{job.rule}, rehearsal shapes, load {load:.2f}"
        for metric, value, unit, kind, target in (
            ("peak N", small["peak_mib"], "MiB", "measured", f"< {PEAK_TARGET_MIB}"),
            ("peak 4N", large["peak_mib"], "MiB", "measured", f"< {PEAK_TARGET_MIB}"),
            ("growth 4N/N", growth, "x", "measured", f"<= {GROWTH_TARGET}"),
            ("input store, paper size", paper_mib, "MiB", "projected", ""),
        ):
            if metric.startswith("growth") and not powered:
                continue
            extra = f"; {where}" if metric.startswith("input store") else ""
            rows.append(
                dict(benchmark=f"memory {study}", metric=metric, value=round(value, 3), unit=unit)
                | dict(kind=kind, target=target, note=f"{note}; N={small['images']} images{extra}")
            )
        measured[job.rule] = {
            "peak_n_mib": round(small["peak_mib"], 1),
            "peak_4n_mib": round(large["peak_mib"], 1),
            "images_n": small["images"],
            "images_4n": large["images"],
            "growth_checked": powered,
            "paper_store_mib": round(paper_mib, 1),
            "paper_store": where,
        }
        if args.write:  # after each study: a later failure keeps what was measured
            words = argv if argv is not None else sys.argv[1:]
            command = " ".join(["python benchmarks/memory.py", *words])
            write_measured(args.write, measured, load, command)
    worst = max(growths, default=None)
    met = (worst or 0) <= GROWTH_TARGET and max(peaks) < PEAK_TARGET_MIB
    verdict = "meets" if met else "MISSES"
    growth_text = f"max growth {worst:.3f}" if worst is not None else "no growth check had power"
    print(
        f"{growth_text} ({verdict} <= {GROWTH_TARGET} and every peak < 8 GiB; "
        f"largest peak {max(peaks):.0f} MiB; load average {load:.2f} at the start)"
    )
    if not args.no_save:
        append_bench_rows(BENCH_CSV, rows)
    if args.write:
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
