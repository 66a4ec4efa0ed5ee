import os

from snakemake.utils import min_version, validate

from hwbench import configcheck

min_version("9.19")

# On a compute node SLURM's preemption warning (--signal=USR1@120, docs/cluster.md)
# reaches only this snakemake process: pass it on to the training (hwbench/signals.py).
from hwbench.signals import install_relay

install_relay()


# The working folder's config.yaml when it has one (the checkout, or a test's folder),
# else the checkout's embedded default: `snakemake --directory <fresh folder>` works.
configfile:
    "config.yaml"
    if os.path.exists("config.yaml")
    else os.path.join(workflow.basedir, "config.yaml")


# hwbench.configcheck: one line per problem, naming the key path and the value, with a
# "did you mean" from the schema; Snakemake's validate then fills in the defaults, and
# the references between keys (datasets, charsets, tasks) are checked before any rule.
configcheck.check_schema(
    config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml"
)


validate(config, "workflow/schemas/config.schema.yaml")
configcheck.check_references(config)


report: "workflow/report/workflow.rst"


# The software of every job: with --software-deployment-method apptainer each job runs
# in this image (built from the Dockerfile, which installs requirements/lock-cuda.txt;
# docs/cluster.md); without that flag, in the current environment (.venv).
container: config["container"]


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/standin.smk"
include: "workflow/rules/prefetch.smk"
include: "workflow/rules/preflight.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/onemodel.smk"
include: "workflow/rules/multiscript.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/adaptation.smk"
include: "workflow/rules/lifelong.smk"
include: "workflow/rules/findings.smk"
include: "workflow/rules/verify.smk"


# Run by the snakemake process itself, never submitted to a cluster: the downloads
# (compute nodes are often offline; docs/cluster.md) and the report and figure jobs
# (seconds of work that would otherwise wait in the queue).
localrules:
    fetch_raw,
    fetch_weights,
    prefetch,
    preflight,
    synth_contact_sheet,
    multiscript_table4,
    transfer_report,
    lifelong_report,
    onemodel_report,
    adaptation_report,
    adaptation_base_table,
    findings,


rule all:
    default_target: True
    input:
        ALL_TARGETS,
