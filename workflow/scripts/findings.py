"""Adapter for rule findings (workflow/rules/findings.smk): reports/findings.csv."""

from hwbench import findings
from hwbench import report as tables
from hwbench.logs import job_log
from hwbench.studies.adaptation import findings as adaptation
from hwbench.studies.lifelong import findings as lifelong
from hwbench.studies.multiscript import findings as multiscript
from hwbench.studies.onemodel import findings as onemodel
from hwbench.studies.transfer import findings as transfer

with job_log(snakemake.log[0]) as log:
    inp, p = snakemake.input, snakemake.params
    claims = [
        *multiscript.findings(findings.read_records(inp.multiscript)),
        *transfer.findings(findings.read_records(inp.transfer), p.transfer_sets),
        *lifelong.from_files(
            inp.lifelong,
            lifelong.test_size(
                inp.lifelong_meta,
                inp.lifelong_split,
                p.lifelong["writers"],
                p.lifelong["test_split"],
                p.lifelong["labels"],
            ),
        ),
        *onemodel.findings(findings.read_records(inp.onemodel), p.onemodel),
        *adaptation.from_files(inp.adaptation, p.adaptation_runs, p.adaptation_papers),
    ]
    frame = findings.scorecard(claims)
    prov = tables.provenance(
        config={
            "transfer_sets": p.transfer_sets,
            "lifelong": p.lifelong,
            "onemodel": p.onemodel,
            "adaptation_runs": p.adaptation_runs,
            "adaptation_papers": p.adaptation_papers,
        },
        repo=p.repo,
        data_note=p.data_note,
    )
    findings.write_scorecard(frame, snakemake.output.csv, prov)
    log.info("verdicts: %s\n%s", findings.verdict_counts(frame), frame.to_string())
