# A rehearsal's data (config data.standin; docs/rehearsal.md): each registered dataset
# replaced by a generated stand-in at the stage where its real reader leaves it, with
# the real image shape, class count, label names, source splits and writer ids:
# data/processed/<ds>/ for the "arrays" datasets, data/raw/<ds>/manifest.csv + PNGs
# for the "images" ones (then rule preprocess, as for the real data). Nothing is
# downloaded. Helpers: hwbench/datasets/rules.py, generator: hwbench/datasets/standin.py.
STANDIN_ARRAY_DATASETS = _dsrules.standin_datasets(config, "arrays")
STANDIN_IMAGE_DATASETS = _dsrules.standin_datasets(config, "images")
STANDIN_CODE = hw(
    "datasets/standin.py",
    "datasets/registry.py",
    "datasets/common.py",
    "datasets/vocab.py",
    "datasets/speech.py",
    "datasets/imdb.py",
    "charsets.py",
    "store.py",
    "logs.py",
)

_dsrules.check_standin_workdir(config)


rule standin_arrays:
    input:
        script=script_path("standin.py"),
        code=STANDIN_CODE,
    output:
        images="data/processed/{dataset}/images.npy",
        digest="data/processed/{dataset}/digest.json",
        meta="data/processed/{dataset}/meta.csv",
    log:
        "logs/standin/{dataset}.log",
    benchmark:
        "benchmarks/jobs/standin/{dataset}.tsv"
    wildcard_constraints:
        dataset="|".join(STANDIN_ARRAY_DATASETS) or "(?!)",
    # what the real rule it stands in for declares
    threads: config["resources"]["real_arrays"]["threads"]
    resources:
        mem_mb=config["resources"]["real_arrays"]["mem_mb"],
        runtime=config["resources"]["real_arrays"]["runtime"],
    params:
        options=lambda w: _dsrules.reader_options(config, w.dataset),
        standin=_dsrules.standin(config),
    script:
        "../scripts/standin.py"


rule standin_manifest:
    input:
        script=script_path("standin.py"),
        code=STANDIN_CODE,
    output:
        manifest="data/raw/{dataset}/manifest.csv",
        images=directory("data/raw/{dataset}/standin"),
    log:
        "logs/standin/{dataset}.log",
    benchmark:
        "benchmarks/jobs/standin/{dataset}.tsv"
    wildcard_constraints:
        dataset="|".join(STANDIN_IMAGE_DATASETS) or "(?!)",
    # what the real rule it stands in for declares
    threads: config["resources"]["real_manifest"]["threads"]
    resources:
        mem_mb=config["resources"]["real_manifest"]["mem_mb"],
        runtime=config["resources"]["real_manifest"]["runtime"],
    params:
        options=lambda w: _dsrules.reader_options(config, w.dataset),
        standin=_dsrules.standin(config),
    script:
        "../scripts/standin.py"
