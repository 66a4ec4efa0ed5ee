"""Adapter: rule adaptation_report (workflow/rules/adaptation.smk)."""

import json
from pathlib import Path

import pandas as pd

from hwbench import report
from hwbench.logs import job_log
from hwbench.store import write_csv, write_text
from hwbench.studies import adaptation as ad

smk = snakemake  # noqa: F821 (injected by Snakemake)

with job_log(smk.log[0]) as log:
    p = smk.params
    runs = [dict(zip(("dataset", "knn_weights"), r, strict=True)) for r in p.runs]
    scores = pd.concat(
        [pd.read_csv(f).assign(**r) for f, r in zip(smk.input.scores, runs, strict=True)],
        ignore_index=True,
    )
    agg, table = ad.adaptation_table(scores, p.papers)
    diag = report.aggregate(scores, ad.TABLE_KEYS, ad.DIAG_METRICS, seed_col="resample")
    diag_table = report.format_table(diag, ad.TABLE_KEYS, ad.DIAG_METRICS, digits=2)
    evals = zip(p.datasets, smk.input.evals, strict=True)
    base = pd.DataFrame([{"dataset": d, **json.loads(Path(f).read_text())} for d, f in evals])
    quality = pd.concat([pd.read_csv(f) for f in smk.input.quality], ignore_index=True)
    prov = report.provenance(
        config={"adaptation": p.config, "splits": p.splits},
        dataset_files=smk.input.data,
        benchmark_files=smk.input.benchmarks,
    )
    prov["base_cnn"] = base.to_dict(orient="records")
    write_csv(smk.output.diagnostics, diag_table)
    write_text(
        smk.output.details,
        "# Writing styles: KNN on the centroids (section 3.2)\n\n"
        + report.to_markdown(quality)
        + "\n# Base CNN\n\n"
        + report.to_markdown(base.drop(columns=["model"], errors="ignore"))
        + "\n# Diagnostics (percent of test images, mean ± sd over resamples)\n\n"
        + report.to_markdown(diag_table),
    )
    write_csv(smk.output.styles, quality)
    ad.writer_figure(
        [pd.read_csv(f).assign(**r) for f, r in zip(smk.input.predictions, runs, strict=True)],
        smk.output.figure,
        p.knn_ks,
    )
    report.write_report(table, smk.output.table, prov)
    log.info("\n%s", report.to_markdown(table))
