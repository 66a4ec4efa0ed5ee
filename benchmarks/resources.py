"""The paper preset's per-study job requests (``mem_mb``, ``runtime``) from measurements.

Reads two committed measurement files and rewrites each study's generated
``resources`` block in config/paper.yaml:

- ``--memory`` (benchmarks/measured/memory.json, written by
  ``python benchmarks/memory.py --write``): the peak RSS of the study's largest training
  job (the larger of N and 4N stand-in images). ``mem_mb`` = HEADROOM x (that peak +
  the paper-size uint8 store where the job holds it in memory) + CUDA_HOST_MB, rounded
  up to 500 MB.
- ``--steps`` (benchmarks/measured/steps-cuda.json, written by
  ``python benchmarks/cost.py --docs --device cuda``): seconds per optimizer step on a
  GPU. ``runtime`` (minutes) = HEADROOM x the largest job's steps (cost.py's
  :func:`job_fits`) x s/step + STARTUP_MIN, rounded up to 10 minutes. Without a GPU
  file the typed runtime stays, and the block says so: the paper preset trains on
  GPUs, and a CPU's per-step times would ask for weeks.

``threads`` is not measured and stays as typed. A study is generated only where every
rule that uses its ``resources`` is measured (STUDY_RULES).

    python benchmarks/resources.py           # print what would change
    python benchmarks/resources.py --write   # rewrite config/paper.yaml's blocks
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cost import TRAIN_IMAGES, job_fits, merged_config, steps_per_job  # noqa: E402

CONFIG = ROOT / "config" / "paper.yaml"
MEMORY = Path("benchmarks/measured/memory.json")
STEPS = Path("benchmarks/measured/steps-cuda.json")
HEADROOM = 1.5  # on both the measured peak and the projected run time
# Host memory a CUDA process maps on top of the CPU job's (driver, CUDA context,
# cuDNN/cuBLAS): an allowance, since no GPU measured it; rerun memory.py on a GPU node.
CUDA_HOST_MB = 3000
STARTUP_MIN = 10  # job start, data loading, evaluation passes: not in the step count

# The rules that use a study's ``resources`` and the measured job that bounds them:
# transfer_source trains the same model on a subset of transfer_train's data; the
# lifelong sequence and curriculum jobs the same model on parts of the multitask job's.
# Adaptation is left out: its features, styles and adapt rules share adaptation.resources
# and memory.py measures only adaptation_train.
STUDY_RULES = {
    "multiscript": ("multiscript_train",),
    "transfer": ("transfer_train",),
    "lifelong": ("lifelong_multitask",),
    "onemodel": ("onemodel_train",),
}
RUNTIME_RULES = {
    "multiscript": ("multiscript_train",),
    "transfer": ("transfer_source", "transfer_train"),
    "lifelong": ("lifelong_sequence", "lifelong_multitask", "lifelong_curriculum"),
    "onemodel": ("onemodel_train",),
}


@dataclass
class Request:
    study: str
    threads: int
    mem_mb: int
    runtime: int
    why: list[str]  # comment lines: how each value was computed


def round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def mem_mb(rule: dict) -> tuple[int, str]:
    """``mem_mb`` from one rule's memory.py record, and how it was computed."""
    held = rule["paper_store_mib"] if rule["paper_store"] == "held in memory" else 0.0
    peak = max(rule["peak_n_mib"], rule["peak_4n_mib"])
    value = round_up(HEADROOM * (peak + held) * 2**20 / 1e6 + CUDA_HOST_MB, 500)
    how = (
        f"{HEADROOM} x (peak {peak:,.0f} MiB, the larger of {rule['images_n']:,} and "
        f"{rule['images_4n']:,} stand-in images, + {held:,.0f} MiB paper store held in "
        f"memory) + {CUDA_HOST_MB} MB CUDA host allowance"
    )
    return value, how


def runtime_min(rule: str, seconds_per_step: dict[str, float], cfg: dict) -> tuple[int, str]:
    """``runtime`` of the largest job of ``rule`` from its GPU per-step times."""
    fits = job_fits(rule, cfg, TRAIN_IMAGES[rule][0])
    seconds = sum(
        epochs * math.ceil(images / batch) * seconds_per_step[str(batch)]
        for images, epochs, batch in fits
    )
    value = round_up(HEADROOM * seconds / 60 + STARTUP_MIN, 10)
    how = f"{rule}: {HEADROOM} x {steps_per_job(fits):,} steps x s/step + {STARTUP_MIN} min"
    return value, how


def requests(
    memory: dict, steps: dict | None, current: dict, cfg: dict, paths: tuple[Path, Path | None]
) -> list[Request]:
    """The generated request of each study in STUDY_RULES (``paths``: the two inputs')."""
    out = []
    for study, rules in STUDY_RULES.items():
        missing = [r for r in rules if r not in memory["rules"]]
        if missing:
            raise SystemExit(f"{paths[0]}: no peak for {missing}; run memory.py --write first")
        mems = [mem_mb(memory["rules"][r]) for r in rules]
        value, how = max(mems)
        why = [
            f"mem_mb: {how}; {paths[0]} (commit {memory['commit']}, {memory['machine']}, "
            f"load {memory['load']})"
        ]
        runtime = current[study]["runtime"]
        if steps is None:
            why.append(f"runtime: typed, not generated: no GPU per-step times ({STEPS})")
        else:
            runs = [runtime_min(r, steps["rules"][r], cfg) for r in RUNTIME_RULES[study]]
            runtime, how = max(runs)
            why.append(
                f"runtime: {how}; {paths[1]} (commit {steps['commit']}, {steps['measured_on']})"
            )
        out.append(Request(study, current[study]["threads"], value, runtime, why))
    return out


def block(request: Request, command: str) -> str:
    """The generated lines of one study's section (two-space indent)."""
    name = f"{request.study}-resources"
    lines = [f"  # {name}:start ({command}): generated, do not edit"]
    lines += [f"  # {line}" for line in request.why]
    lines.append(
        f"  resources: {{threads: {request.threads}, mem_mb: {request.mem_mb}, "
        f"runtime: {request.runtime}}}"
    )
    lines.append(f"  # {name}:end")
    return "\n".join(lines)


def rewrite(text: str, reqs: list[Request], command: str) -> str:
    """config/paper.yaml's text with each study's resources block (or its typed
    ``resources:`` line, the first time) replaced by the generated one."""
    for request in reqs:
        name = f"{request.study}-resources"
        generated = re.compile(rf"  # {name}:start .*?  # {name}:end", re.S)
        if generated.search(text):
            text = generated.sub(lambda _, r=request: block(r, command), text)
            continue
        section = re.search(rf"^{request.study}:\n(?:(?:  .*)?\n)*?  resources: .*$", text, re.M)
        if section is None:
            raise SystemExit(f"{CONFIG}: no {request.study}.resources line to generate")
        line_start = text.rindex("\n", 0, section.end()) + 1
        text = text[:line_start] + block(request, command) + text[section.end() :]
    return text


def command_line(memory: Path, steps: Path | None) -> str:
    words = ["python benchmarks/resources.py", f"--memory {memory}"]
    words += [f"--steps {steps}"] if steps else []
    return " ".join([*words, "--write"])


def compute(memory_path: Path = MEMORY, steps_path: Path | None = None) -> tuple[str, str]:
    """(the current config/paper.yaml text, the text the command would write)."""
    memory = json.loads((ROOT / memory_path).read_text())
    if steps_path is None and (ROOT / STEPS).exists():
        steps_path = STEPS
    steps = json.loads((ROOT / steps_path).read_text()) if steps_path else None
    text = CONFIG.read_text(encoding="utf-8")
    paper = yaml.safe_load(text)
    current = {study: paper[study]["resources"] for study in STUDY_RULES}
    reqs = requests(memory, steps, current, merged_config(), (memory_path, steps_path))
    return text, rewrite(text, reqs, command_line(memory_path, steps_path))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory", type=Path, default=MEMORY, help="memory.py's peaks")
    parser.add_argument("--steps", type=Path, help=f"GPU per-step times (default {STEPS})")
    parser.add_argument("--write", action="store_true", help=f"rewrite {CONFIG.name}")
    args = parser.parse_args(argv)
    before, after = compute(args.memory, args.steps)
    old, new = yaml.safe_load(before), yaml.safe_load(after)
    for study in STUDY_RULES:
        print(f"{study}.resources: {old[study]['resources']} -> {new[study]['resources']}")
    if args.write:
        CONFIG.write_text(after, encoding="utf-8")
        print(f"wrote {CONFIG.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
