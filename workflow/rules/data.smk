# Raw data: the embedded synthetic handwriting datasets (docs/synth.md).
#
# config["synth"] maps a dataset name to generator parameters; every name gets
# data/raw/<name>/manifest.csv + images/ and a contact sheet for eyeballing.

import glob

SYNTH_DATASETS = list(config["synth"])
# The bundled fonts are inputs too: a changed glyph source regenerates the data.
SYNTH_FONTS = sorted(glob.glob(os.path.join(repo_path("hwbench/fonts"), "*.[ot]tf")))
SYNTH_NAME = "|".join(SYNTH_DATASETS)

if "synth" in SYNTH_DATASETS:
    ALL_TARGETS.append("reports/synth_contact_sheet.png")


rule synth:
    input:
        script=script_path("synth.py"),
        code=hw("synth.py", "charsets.py", "store.py", "logs.py"),
        fonts=SYNTH_FONTS,
    output:
        manifest="data/raw/{name}/manifest.csv",
        images=directory("data/raw/{name}/images"),
    log:
        "logs/synth/{name}.log",
    benchmark:
        "benchmarks/jobs/synth/{name}.tsv"
    wildcard_constraints:
        name=SYNTH_NAME,
    threads: config["resources"]["synth"]["threads"]
    resources:
        mem_mb=config["resources"]["synth"]["mem_mb"],
        runtime=config["resources"]["synth"]["runtime"],
    params:
        generator=lambda wildcards: config["synth"][wildcards.name],
    script:
        "../scripts/synth.py"


rule synth_contact_sheet:
    input:
        manifest="data/raw/{name}/manifest.csv",
        images="data/raw/{name}/images",
        script=script_path("synth.py"),
        code=hw("synth.py", "charsets.py", "store.py", "logs.py"),
    output:
        report(
            "reports/{name}_contact_sheet.png",
            caption="../report/data/contact_sheet.rst",
            category="data",
        ),
    log:
        "logs/synth_contact_sheet/{name}.log",
    benchmark:
        "benchmarks/jobs/synth_contact_sheet/{name}.tsv"
    wildcard_constraints:
        name=SYNTH_NAME,
    script:
        "../scripts/synth.py"
