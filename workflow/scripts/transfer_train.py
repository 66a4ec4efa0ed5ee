"""Adapter for rules transfer_source and transfer_train (workflow/rules/transfer.smk)."""

import json
from pathlib import Path

import torch

from hwbench.logs import job_log
from hwbench.studies.transfer import job

with job_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    seed = int(snakemake.wildcards.seed)
    processed = Path(snakemake.input.meta).parent
    split_csv = snakemake.input.get("split")
    eval_path = snakemake.output.eval
    if snakemake.rule == "transfer_source":
        params = snakemake.params.job
        record = job.source_job(
            processed,
            split_csv,
            params["task"],
            params["model"],
            params["train"],
            seed,
            eval_path,
            resident_mb=params.get("resident_mb"),
            task=snakemake.wildcards.task,
            role="source",
        )
    else:
        params = snakemake.params.job
        mode = snakemake.wildcards.mode
        source_eval = None
        if mode != "control":
            text = Path(snakemake.input.source_eval).read_text(encoding="utf-8")
            source_eval = json.loads(text)
        record = job.transfer_job(
            processed,
            split_csv,
            params["target"],
            mode,
            params["model"],
            params["train"],
            seed,
            eval_path,
            source_model=snakemake.input.get("source_model"),
            source_eval=source_eval,
            head_init=params.get("head_init", "shared"),
            resident_mb=params.get("resident_mb"),
            set=snakemake.wildcards.set,
        )
    log.info("%s: final test F1 %.4f", eval_path, record["metrics"]["history"][-1]["test_f1"])
