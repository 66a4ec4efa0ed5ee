# Real datasets: verified downloads -> data/processed/<ds> (28x28 sets) or
# data/raw/<ds>/manifest.csv (larger images, processed by the preprocess rule).
#
# fetch_raw writes a verification record per file; the raw file beside it is
# not a rule output, so a rerun re-verifies it but never deletes it. The
# download settings and local_copy path are read from the config inside the
# job, not passed as params: they do not change the bytes (the checksum in the
# record does), so editing them reruns nothing. Helpers: hwbench/datasets/rules.py.
import re

from hwbench.datasets import registry as _datasets
from hwbench.datasets import rules as _dsrules

# In a rehearsal (config data.standin.enabled) standin.smk builds every registered
# dataset instead, and these rules match none.
REAL_ARRAY_DATASETS = _dsrules.real_datasets(config, "arrays")
REAL_IMAGE_DATASETS = _dsrules.real_datasets(config, "images")
# The preprocess rule's {dataset} wildcard is constrained to IMAGE_DATASETS
# (defined in common.smk; created here if this file is read first).
if "IMAGE_DATASETS" not in globals():
    IMAGE_DATASETS = []
IMAGE_DATASETS.extend(d for d in _datasets.IMAGE_DATASETS if d not in IMAGE_DATASETS)

ALL_TARGETS.extend(
    f"data/processed/{d}/images.npy"
    for d in config["datasets"]
    if d in _datasets.REGISTRY
)

# A name no rule can build would end in a MissingInputException that does not
# say which config key is wrong: name it here instead.
_dsrules.check_dataset_names(config)


rule fetch_raw:
    output:
        record="data/raw/{dataset}/verified/{file}.json",
    log:
        "logs/fetch_raw/{dataset}/{file}.log",
    benchmark:
        "benchmarks/jobs/fetch_raw/{dataset}/{file}.tsv"
    wildcard_constraints:
        dataset="|".join(_dsrules.fetched_datasets()),
        file="|".join(re.escape(f) for f in _dsrules.all_file_names()),
    script:
        "../scripts/fetch_raw.py"


rule real_arrays:
    input:
        records=lambda w: _dsrules.record_targets(config, w.dataset),
        script=script_path("real_arrays.py"),
        code=lambda w: hw(*_dsrules.reader_code(w.dataset)),
    output:
        images="data/processed/{dataset}/images.npy",
        digest="data/processed/{dataset}/digest.json",
        meta="data/processed/{dataset}/meta.csv",
    log:
        "logs/real_arrays/{dataset}.log",
    benchmark:
        "benchmarks/jobs/real_arrays/{dataset}.tsv"
    wildcard_constraints:
        dataset="|".join(REAL_ARRAY_DATASETS) or "(?!)",
    threads: config["resources"]["real_arrays"]["threads"]
    resources:
        mem_mb=config["resources"]["real_arrays"]["mem_mb"],
        runtime=config["resources"]["real_arrays"]["runtime"],
    params:
        options=lambda w: _dsrules.reader_options(config, w.dataset),
    script:
        "../scripts/real_arrays.py"


rule real_manifest:
    input:
        records=lambda w: _dsrules.record_targets(config, w.dataset),
        script=script_path("real_manifest.py"),
        code=lambda w: hw(*_dsrules.reader_code(w.dataset)),
    output:
        manifest="data/raw/{dataset}/manifest.csv",
    log:
        "logs/real_manifest/{dataset}.log",
    benchmark:
        "benchmarks/jobs/real_manifest/{dataset}.tsv"
    wildcard_constraints:
        dataset="|".join(REAL_IMAGE_DATASETS) or "(?!)",
    threads: config["resources"]["real_manifest"]["threads"]
    resources:
        mem_mb=config["resources"]["real_manifest"]["mem_mb"],
        runtime=config["resources"]["real_manifest"]["runtime"],
    params:
        options=lambda w: _dsrules.reader_options(config, w.dataset),
    script:
        "../scripts/real_manifest.py"
