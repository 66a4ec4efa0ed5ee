from snakemake.utils import min_version, validate

min_version("9.19")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/onemodel.smk"
include: "workflow/rules/multiscript.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/adaptation.smk"
include: "workflow/rules/lifelong.smk"


rule all:
    default_target: True
    input:
        ALL_TARGETS,
