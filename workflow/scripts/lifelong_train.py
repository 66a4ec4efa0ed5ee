"""Adapter for the lifelong training rules (workflow/rules/lifelong.smk).

lifelong_curriculum: single-task models -> the curriculum order (order.json);
lifelong_sequence: one (method, order, seed) run -> eval.json, R.csv, curves.csv;
lifelong_multitask: joint training on all writers -> eval.json, curves.csv.
"""

import json
from pathlib import Path

import torch

from hwbench.logs import job_log
from hwbench.studies import lifelong as ll

smk = snakemake  # noqa: F821 (injected by Snakemake)

with job_log(smk.log[0]) as log:
    torch.set_num_threads(smk.threads)
    cfg = smk.params.cfg
    device = ll.pick_run_device(cfg)
    raw = smk.input.get("raw")
    processed = Path(smk.input.images).parent
    if smk.rule == "lifelong_curriculum":
        parts = ll.curriculum_parts(cfg)
        tasks = ll.load_tasks(processed, smk.input.split, cfg, device, raw, parts)
        result = ll.run_curriculum(tasks, cfg, Path(smk.output.order).parent, device)
        log.info("curriculum order: %s", "_".join(result["order"]))
    else:
        tasks = ll.load_tasks(processed, smk.input.split, cfg, device, raw)
        run_dir = Path(smk.output.eval).parent
        seed = int(smk.wildcards.seed)
        if smk.rule == "lifelong_multitask":
            result = ll.run_multitask(tasks, cfg, seed, run_dir, device)
        else:
            order_name = smk.wildcards.order
            curriculum = None
            if order_name == ll.CURRICULUM:
                curriculum = json.loads(Path(smk.input.order).read_text())["order"]
            order = ll.resolve_order(order_name, cfg["writers"], curriculum)
            result = ll.run_sequence(
                tasks, order, smk.wildcards.method, cfg, seed, run_dir, device, order_name
            )
        log.info("%s", {k: v for k, v in result.items() if k in ("acc", "bwt", "fwt")})
