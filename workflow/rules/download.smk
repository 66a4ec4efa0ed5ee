# Real datasets: verified downloads -> data/processed/<ds> (28x28 sets) or
# data/raw/<ds>/manifest.csv (larger images, processed by the preprocess rule).
#
# fetch_raw writes a verification record per file; the raw file beside it is
# not a rule output, so a rerun re-verifies it but never deletes it. The
# download settings and local_copy path are read from the config inside the
# job, not passed as params: they do not change the bytes (the checksum in the
# record does), so editing them reruns nothing.
import re

from hwbench.datasets import registry as _datasets

REAL_ARRAY_DATASETS = list(_datasets.ARRAY_DATASETS)
REAL_IMAGE_DATASETS = list(_datasets.IMAGE_DATASETS)
# The preprocess rule's {dataset} wildcard is constrained to IMAGE_DATASETS.
IMAGE_DATASETS.extend(d for d in REAL_IMAGE_DATASETS if d not in IMAGE_DATASETS)

_FETCHED = sorted(n for n, s in _datasets.REGISTRY.items() if not s.manual)
_FILES = sorted({f.name for s in _datasets.REGISTRY.values() for f in s.files})
# Reader code per dataset (registry.py and download.py are left out on purpose:
# a new checksum pin must not rebuild every dataset).
_COMMON_CODE = ["datasets/__init__.py", "datasets/prepare.py", "datasets/common.py"]
_COMMON_CODE += ["datasets/vocab.py", "datasets/extract.py", "store.py", "logs.py"]
_READER_CODE = {
    "mnist": ["datasets/idx.py", "datasets/idx_datasets.py"],
    "kannada_mnist": ["datasets/idx.py", "datasets/idx_datasets.py"],
    "dig_mnist": ["datasets/idx.py", "datasets/idx_datasets.py"],
    "emnist": ["datasets/idx.py", "datasets/idx_datasets.py"],
    "madbase": ["datasets/madbase.py"],
    "nist": ["datasets/nist.py"],
    "deepwriting": ["datasets/deepwriting.py"],
    "amharic": ["datasets/manual.py"],
}


def data_options(dataset):
    """config data.<dataset> (schema defaults filled in)."""
    return dict(config.get("data", {}).get(dataset, {}))


def reader_options(wildcards):
    """The options that change what a reader produces (not where files come from)."""
    options = data_options(wildcards.dataset)
    if not _datasets.get(wildcards.dataset).manual:
        options.pop("local_copy", None)
    return options


def verified_records(wildcards):
    spec = _datasets.get(wildcards.dataset)
    variant = data_options(spec.name).get("variant")
    return [
        f"data/raw/{spec.name}/verified/{f.name}.json" for f in spec.files_for(variant)
    ]


def reader_code(wildcards):
    return hw(*_COMMON_CODE, *_READER_CODE[wildcards.dataset])


rule fetch_raw:
    output:
        record="data/raw/{dataset}/verified/{file}.json",
    log:
        "logs/fetch_raw/{dataset}/{file}.log",
    benchmark:
        "benchmarks/jobs/fetch_raw/{dataset}/{file}.tsv"
    wildcard_constraints:
        dataset="|".join(_FETCHED),
        file="|".join(re.escape(f) for f in _FILES),
    script:
        "../scripts/fetch_raw.py"


rule real_arrays:
    input:
        records=verified_records,
        script=script_path("real_arrays.py"),
        code=reader_code,
    output:
        images="data/processed/{dataset}/images.npy",
        meta="data/processed/{dataset}/meta.csv",
    log:
        "logs/real_arrays/{dataset}.log",
    benchmark:
        "benchmarks/jobs/real_arrays/{dataset}.tsv"
    wildcard_constraints:
        dataset="|".join(REAL_ARRAY_DATASETS),
    params:
        options=reader_options,
    script:
        "../scripts/real_arrays.py"


rule real_manifest:
    input:
        records=verified_records,
        script=script_path("real_manifest.py"),
        code=reader_code,
    output:
        manifest="data/raw/{dataset}/manifest.csv",
    log:
        "logs/real_manifest/{dataset}.log",
    benchmark:
        "benchmarks/jobs/real_manifest/{dataset}.tsv"
    wildcard_constraints:
        dataset="|".join(REAL_IMAGE_DATASETS),
    params:
        options=reader_options,
    script:
        "../scripts/real_manifest.py"


ALL_TARGETS.extend(
    f"data/processed/{d}/images.npy"
    for d in config["datasets"]
    if d in _datasets.REGISTRY
)
