"""Adapter for rules synth and synth_contact_sheet (workflow/rules/data.smk)."""

from pathlib import Path

from hwbench import synth
from hwbench.logs import job_log

smk = snakemake  # noqa: F821 (injected by Snakemake)

with job_log(smk.log[0]) as log:
    name = smk.wildcards.name
    if smk.rule == "synth_contact_sheet":
        synth.contact_sheet(Path(smk.input.manifest).parent, smk.output[0])
        log.info("contact sheet of %s written to %s", name, smk.output[0])
    else:
        params = synth.SynthParams.from_config(smk.params.generator, where=f"synth.{name}")
        log.info("generating %s: %s (%d images)", name, params, params.num_images())
        manifest = synth.generate(params, Path(smk.output.manifest).parent, smk.threads)
        log.info("wrote %d images\n%s", len(manifest), synth.summarize(manifest))
