"""Adapter for rules transfer_source and transfer_train (workflow/rules/transfer.smk)."""

import json
from pathlib import Path

import torch

from hwbench.logs import job_log
from hwbench.store import write_json
from hwbench.studies import transfer

smk = snakemake  # noqa: F821 (injected by Snakemake)

with job_log(smk.log[0]) as log:
    torch.set_num_threads(smk.threads)
    seed = int(smk.wildcards.seed)
    run_dir = Path(smk.output.eval).parent
    processed = Path(smk.input.meta).parent
    split_csv = smk.input.get("split")
    if smk.rule == "transfer_source":
        p = smk.params
        out = transfer.source_job(processed, split_csv, p.task, p.model, p.train, seed, run_dir)
        out |= {"task": smk.wildcards.task, "role": "source"}
    else:
        job = smk.params.job
        mode = smk.wildcards.mode
        source_eval = None
        if mode != "control":
            source_eval = json.loads(Path(smk.input.source_eval).read_text(encoding="utf-8"))
        out = transfer.transfer_job(
            processed,
            split_csv,
            job["target"],
            mode,
            job["model"],
            job["train"],
            seed,
            run_dir,
            source_model=smk.input.get("source_model"),
            source_eval=source_eval,
            head_init=job.get("head_init", "shared"),
        )
        out |= {"set": smk.wildcards.set, "mode": mode}
    write_json(smk.output.eval, out)
    log.info("%s: %s", smk.output.eval, out["summary"])
