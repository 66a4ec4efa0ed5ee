# EMNIST-style preprocessing of raw image datasets (docs/preprocess.md).
#
# data/raw/<dataset>/manifest.csv (+ its images) -> data/processed/<dataset>/.
# Only image datasets match: the synthetic ones (config["synth"] maps their names
# to generator parameters) and those the data rule files add to IMAGE_DATASETS
# before this file is included. Datasets whose readers write
# data/processed/<dataset>/ directly (MNIST-like IDX) are not listed, so no two
# rules can make the same file. The keys of config preprocess.native_size are
# processed variants of a raw image dataset at its own size (ink only, e.g. NIST
# at 128 px): data/raw/<raw>/manifest.csv -> data/processed/<variant>/.
import re

from hwbench.datasets import rules as _pprules

_pprules.check_native_datasets(config, IMAGE_DATASETS)
PREPROCESS_DATASETS = sorted(
    set(IMAGE_DATASETS)
    | {name for name, p in config.get("synth", {}).items() if isinstance(p, dict)}
    | set(_pprules.native_datasets(config))
)


rule preprocess:
    input:
        manifest=lambda w: f"data/raw/{_pprules.raw_dataset(config, w.dataset)}/manifest.csv",
        script=script_path("preprocess.py"),
        code=hw("preprocess.py", "store.py", "logs.py"),
    output:
        images="data/processed/{dataset}/images.npy",
        digest="data/processed/{dataset}/digest.json",
        meta="data/processed/{dataset}/meta.csv",
    log:
        "logs/preprocess/{dataset}.log",
    benchmark:
        "benchmarks/jobs/preprocess/{dataset}.tsv"
    wildcard_constraints:
        # "(?!)" matches nothing: no image dataset configured
        dataset="|".join(re.escape(n) for n in PREPROCESS_DATASETS) or "(?!)",
    threads: config["resources"]["preprocess"]["threads"]
    resources:
        mem_mb=config["resources"]["preprocess"]["mem_mb"],
        runtime=config["resources"]["preprocess"]["runtime"],
    params:
        # what decides the images; workers and on_error (read by the script from
        # the config) change no image, so changing them reruns nothing
        preprocess=lambda w: _pprules.preprocess_params(config, w.dataset),
    script:
        "../scripts/preprocess.py"
