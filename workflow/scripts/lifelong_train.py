"""Adapter for the lifelong training rules (workflow/rules/lifelong.smk).

lifelong_curriculum: single-task models -> the curriculum order (order.json);
lifelong_sequence: one (method, order, seed) run -> eval.json, R.csv, curves.csv;
lifelong_multitask: joint training on all writers -> eval.json, curves.csv.
"""

import json
from pathlib import Path

import torch

from hwbench.logs import job_log
from hwbench.studies.lifelong import job, spec

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    cfg = snakemake.params.cfg
    inputs, rule = snakemake.input, snakemake.rule
    device = job.pick_run_device(cfg)
    processed = Path(inputs.images).parent
    raw = inputs.get("raw")
    if rule == "lifelong_curriculum":
        parts = job.curriculum_parts(cfg)
        tasks = job.load_tasks(processed, inputs.split, cfg, raw, parts)
        out_dir = Path(snakemake.output.order).parent
        result = job.run_curriculum(tasks, cfg, out_dir, device)
        log.info("curriculum order: %s", "_".join(result["order"]))
    else:
        tasks = job.load_tasks(processed, inputs.split, cfg, raw)
        run_dir = Path(snakemake.output.eval).parent
        wildcards = snakemake.wildcards
        seed = int(wildcards.seed)
        if rule == "lifelong_multitask":
            result = job.run_multitask(tasks, cfg, seed, run_dir, device)
        else:
            curriculum = None
            if wildcards.order == spec.CURRICULUM:
                curriculum = json.loads(Path(inputs.order).read_text())["order"]
            order = spec.resolve_order(wildcards.order, cfg["writers"], curriculum)
            result = job.run_sequence(
                tasks, order, wildcards.method, cfg, seed, run_dir, device, wildcards.order
            )
        log.info("%s", result["metrics"])
