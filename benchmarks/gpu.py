"""One prepared GPU check: the studies' paper steps, engine vs limit vs DataLoader, eager
and compiled, and a steady run under CUDA's sync debug mode; at most 8 minutes.

On the card it names, for three steps as config/paper.yaml configures them
(benchmarks/arms.py: uint8 input, the study's per-batch transform inside the clock):

- multiscript: Table 4's ResNet-18 on 28 x 28 digits, 3 channels, batch 32;
- transfer: ResNet-18 on NIST's 128 x 128 scans, batch 128;
- onemodel: ResNet-152 on the 3 x 300 x 600 canvas, word images read from disk through
  :class:`hwbench.rows.StoredRows` by the study's CanvasTransform, batch 10;

it times the engine (:func:`hwbench.engine.fit`), the model-step limit and a DataLoader
loop, interleaved round by round (benchmarks/engine.py's method), eager and compiled
(``torch.compile``); then runs 200 steady engine steps of the multiscript step under
``torch.cuda.set_sync_debug_mode("error")``, so any host sync in a step raises. Target:
engine >= 0.95 x the limit at the multiscript step, and no sync.

It writes docs/performance.md's GPU block and appends rows to reports/bench.csv. A
section that would not finish within ``--minutes`` is skipped with the reason printed.

    python benchmarks/gpu.py                       # on one GPU
    python benchmarks/gpu.py --device cpu --quick  # every code path on the CPU, small
                                                   # sizes, nothing written (CI)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import arms  # noqa: E402
from cost import merged_config  # noqa: E402

from hwbench.engine import pick_device  # noqa: E402
from hwbench.report import append_bench_rows  # noqa: E402

BENCH_CSV = ROOT / "reports" / "bench.csv"
DOC = ROOT / "docs" / "performance.md"
BLOCK = "gpu"
TARGET = 0.95  # engine / limit at the multiscript paper step
ERROR_ABOVE = 1.05  # engine / limit above this is a measurement error (engine.py's rule)
SYNC_STEPS = 200
SYNC_WARMUP = 10

# Per workload: steps per timed unit on a GPU, and (steps, batch, canvas shrink) with --quick.
FULL_STEPS = {"multiscript": 200, "transfer": 50, "onemodel": 20}
QUICK = {"multiscript": (1, 8, 1), "transfer": (1, 4, 1), "onemodel": (1, 2, 5)}
# Minutes a section needs at least (compiling ResNet-152 takes minutes): skipped when
# fewer remain.
NEEDS_MINUTES = {"eager": 0.7, "compiled": 1.5, "compiled onemodel": 3.0}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default), cpu or auto")
    parser.add_argument("--quick", action="store_true", help="small sizes; writes nothing")
    parser.add_argument("--repeats", type=int, help="interleaved rounds (default 5; quick 2)")
    parser.add_argument("--minutes", type=float, default=8.0, help="time budget")
    parser.add_argument("--no-save", action="store_true", help="write neither docs nor csv")
    return parser.parse_args(argv)


def workloads(device, quick: bool, folder: str) -> list[arms.Workload]:
    cfg = merged_config()
    out = []
    for name in ("multiscript", "transfer", "onemodel"):
        steps, batch, shrink = QUICK[name] if quick else (FULL_STEPS[name], None, 1)
        if name == "onemodel":
            out.append(arms.onemodel_workload(cfg, device, steps, folder, batch, shrink))
        else:
            out.append(getattr(arms, f"{name}_workload")(cfg, device, steps, batch))
    return out


def compiled_backend(device: torch.device, quick: bool) -> str | None:
    """Inductor on a GPU. On the CPU --quick traces with the "eager" backend: the same
    compile path without minutes of C++ code generation; its timings mean nothing."""
    return "eager" if quick and device.type == "cpu" else None


def run_compare(
    w: arms.Workload, workers: list[int], repeats: int, compiled: bool, backend: str | None
) -> dict:
    """One comparison's summary: images/s per arm and the engine's ratios."""
    w = dataclasses.replace(w, compiled=compiled, backend=backend)
    if compiled:  # the DataLoader arm only differs from the limit by its loop: eager only
        units = {"limit": arms.limit_arm(w), "engine": arms.engine_arm(w)}
        load = os.getloadavg()[0]
        seconds = arms.measure(units, repeats, w.device)
        result = arms.Comparison(w, seconds, load, os.getloadavg()[0])
    else:
        result = arms.compare(w, workers, repeats)
    summary = {
        "workload": w.name,
        "mode": "compiled" if compiled else "eager",
        "images_per_unit": w.images,
        "rates": {arm: result.rate(arm) for arm in result.seconds},
        "engine_over_limit": result.ratio("engine", "limit"),
        "ci": result.ratio_ci("engine", "limit"),
        "load": result.load,
    }
    if not compiled:
        summary["best_loader"] = result.best_loader
        summary["engine_over_loader"] = result.ratio("engine", result.best_loader)
    return summary


def sync_check(device: torch.device) -> dict:
    """200 steady engine steps of the multiscript step under
    ``set_sync_debug_mode("error")``: the step at which a host sync raised, or none."""
    if device.type != "cuda":
        reason = "skipped: torch.cuda.set_sync_debug_mode needs a CUDA device"
        print(f"sync check: {reason}")
        return {"result": reason}
    w = arms.multiscript_workload(merged_config(), device, SYNC_WARMUP + SYNC_STEPS + 1)
    checks: list[arms.SyncCheck] = []

    def hook(transform):
        checks.append(arms.SyncCheck(transform, SYNC_WARMUP, SYNC_STEPS))
        return checks[-1]

    run = arms.engine_arm(w, hook=hook)
    try:
        run()
        result = f"no host sync in {SYNC_STEPS} steady steps"
    except RuntimeError as err:
        step = checks[-1].calls - SYNC_WARMUP if checks else "?"
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        result = f"host sync in steady step {step}: {first}"
    finally:
        torch.cuda.set_sync_debug_mode("default")
    print(f"sync check ({w.name}): {result}")
    return {"result": result}


def ratio_text(r: tuple[float, float, float]) -> str:
    return f"{r[0]:.3f} [{r[1]:.3f}-{r[2]:.3f}]"


def suspect(summary: dict) -> str:
    """The engine does the limit's work and more: above ERROR_ABOVE the load changed."""
    if summary["engine_over_limit"][0] > ERROR_ABOVE:
        return f" (> {ERROR_ABOVE}: a measurement error, the load changed under one arm)"
    return ""


def report(summaries: list[dict], sync: dict, where: str, skipped: list[str]) -> str:
    """The docs block's body: one row per workload and mode, then the sync check."""
    lines = [
        f"Measured on {where}. Images/s are medians of the rounds [min-max]; "
        "a ratio is the median of the per-round ratios [min-max].",
        "",
        "| step | mode | limit img/s | engine img/s | best DataLoader img/s "
        "| engine / limit | engine / DataLoader |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:

        def rate(arm, s=s):
            return "{:.0f} [{:.0f}-{:.0f}]".format(*s["rates"][arm][:3])

        loader = f"{rate(s['best_loader'])} ({s['best_loader']})" if "best_loader" in s else ""
        over_loader = ratio_text(s["engine_over_loader"]) if "engine_over_loader" in s else ""
        lines.append(
            f"| {s['workload']} | {s['mode']} | {rate('limit')} | {rate('engine')} | {loader} "
            f"| {ratio_text(s['engine_over_limit'])}{suspect(s)} | {over_loader} |"
        )
    lines += ["", f"Sync check: {sync['result']}."]
    lines += [f"Skipped: {why}." for why in skipped]
    return "\n".join(lines) + "\n"


def write_doc(text: str, command: str) -> None:
    """Replace docs/performance.md's GPU block (the rest is prose)."""
    arms.write_doc_block(DOC, BLOCK, text, command)


def bench_rows(summaries: list[dict], sync: dict, where: str) -> list[dict]:
    rows = []
    for s in summaries:
        note = f"{s['workload']} {s['mode']}, {s['images_per_unit']} images per unit; {where}"
        note += f"; {s['load']}"
        prefix = f"{s['workload']}_{s['mode']}"
        for arm, (med, lo, hi, _, _) in s["rates"].items():
            rows.append(
                dict(metric=f"{prefix}_{arm}_images_per_s", value=round(med, 2), unit="images/s")
                | dict(note=f"range {lo:.1f}-{hi:.1f}; {note}", target="")
            )
        med, lo, hi = s["engine_over_limit"]
        target = f">= {TARGET}" if s["workload"] == "multiscript" else ""
        rows.append(
            dict(metric=f"{prefix}_engine_over_limit", value=round(med, 4), unit="ratio")
            | dict(note=f"range {lo:.3f}-{hi:.3f}; {note}", target=target)
        )
    rows.append(
        dict(metric="sync_check", value=SYNC_STEPS, unit="steps", target="no sync")
        | dict(note=f"{sync['result']}; {where}")
    )
    return [dict(benchmark="gpu", kind="measured") | r for r in rows]


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    device = pick_device(args.device)
    repeats = args.repeats or (2 if args.quick else 5)
    where = f"{arms.machine(device)}; torch {torch.__version__}; commit {arms.commit()}"
    print(f"device: {arms.device_name(device)}\n{where}", flush=True)
    if device.type == "cuda":
        torch.set_num_threads(arms.cores())
    workers = sorted({0, min(arms.cores(), 8)})
    backend = compiled_backend(device, args.quick)
    if backend:
        print(f"compiled arms: torch.compile backend {backend!r} (--quick on the CPU)")
    summaries, skipped = [], []
    left = lambda: args.minutes - (time.monotonic() - start) / 60  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="hwbench-gpu-") as folder:
        loads = workloads(device, args.quick, folder)
        sync = {"result": "not run"}
        plan = [(w, False) for w in loads] + [(w, True) for w in loads]
        for i, (w, compiled) in enumerate(plan):
            mode = "compiled" if compiled else "eager"
            needs = NEEDS_MINUTES.get(f"{mode} {w.name}", NEEDS_MINUTES[mode])
            if args.quick and device.type == "cpu" and compiled and w is not loads[0]:
                skipped.append(f"{w.name} {mode}: --quick on the CPU compiles the first step only")
                print(f"{w.name} {mode}: skipped ({skipped[-1]})")
                continue
            if left() < needs:
                skipped.append(f"{w.name} {mode}: {left():.1f} of {args.minutes} minutes left")
                print(f"{w.name} {mode}: skipped ({skipped[-1]})")
                continue
            print(f"\n{w.name} {mode}: batch {w.batch_size}, {w.steps} steps per unit", flush=True)
            summaries.append(run_compare(w, workers, repeats, compiled, backend))
            s = summaries[-1]
            print(f"  engine / limit {ratio_text(s['engine_over_limit'])}, {s['load']}")
            if i == 0:  # right after the first eager comparison: the sync check
                sync = sync_check(device)
    first = next((s for s in summaries if s["workload"] == "multiscript"), None)
    if first and device.type == "cuda":
        verdict = "meets" if first["engine_over_limit"][0] >= TARGET else "MISSES"
        print(f"\nmultiscript engine / limit: {verdict} the target >= {TARGET}")
    text = report(summaries, sync, where, skipped)
    print("\n" + text)
    print(f"{(time.monotonic() - start) / 60:.1f} minutes")
    if args.quick or args.no_save:
        print("nothing written (--quick or --no-save)")
        return 0
    append_bench_rows(BENCH_CSV, bench_rows(summaries, sync, where))
    if device.type == "cuda":
        write_doc(text, "python benchmarks/gpu.py")
        print(f"wrote {DOC.relative_to(ROOT)} and appended to {BENCH_CSV.relative_to(ROOT)}")
    else:
        print(f"appended to {BENCH_CSV.relative_to(ROOT)}; the docs block is for a GPU run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
