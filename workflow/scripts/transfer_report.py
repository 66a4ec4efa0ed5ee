"""Adapter for rule transfer_report (workflow/rules/transfer.smk)."""

import json
import os
from pathlib import Path

from hwbench import report
from hwbench.logs import job_log
from hwbench.studies import transfer

smk = snakemake  # noqa: F821 (injected by Snakemake)

with job_log(smk.log[0]) as log:
    evals = [json.loads(Path(p).read_text(encoding="utf-8")) for p in smk.input.evals]
    sets = smk.params.sets
    table, _ = transfer.transfer_table(evals, sets)
    prov = report.provenance(
        config=smk.params.config,
        dataset_files=smk.input.data,
        benchmark_files=[p for p in smk.params.benchmarks if os.path.exists(p)],
        job_devices={p: e["device"] for p, e in zip(smk.input.evals, evals, strict=True)},
    )
    report.write_report(table, smk.output.csv, prov)
    titles = transfer.set_titles(sets)
    transfer.plot_f1_curves(evals, titles, smk.output.f1)
    transfer.plot_frozen(evals, titles, smk.output.frozen)
    pcs = transfer.per_class_set(sets, smk.params.per_class_set)
    transfer.plot_per_class(evals, pcs, titles[pcs], smk.output.per_class)
    log.info("wrote %s\n%s", smk.output.csv, report.to_markdown(table))
