"""Helpers for workflow/rules/download.smk (plain functions of the config dict)."""

from __future__ import annotations

from hwbench.datasets import registry

# Reader code per dataset, relative to hwbench/. registry.py and download.py are
# left out on purpose: pinning a new checksum must not rebuild every dataset.
COMMON_CODE = (
    "datasets/__init__.py",
    "datasets/prepare.py",
    "datasets/common.py",
    "datasets/vocab.py",
    "datasets/extract.py",
    "datasets/textrecords.py",
    "charsets.py",
    "store.py",
    "logs.py",
)
READER_CODE = {
    "mnist": ("datasets/idx.py", "datasets/idx_datasets.py"),
    "kannada_mnist": ("datasets/idx.py", "datasets/idx_datasets.py"),
    "dig_mnist": ("datasets/idx.py", "datasets/idx_datasets.py"),
    "emnist": ("datasets/idx.py", "datasets/idx_datasets.py"),
    "madbase": ("datasets/madbase.py",),
    "nist": ("datasets/nist.py",),
    "deepwriting": ("datasets/deepwriting.py", "datasets/safe_pickle.py"),
    "amharic": ("datasets/manual.py",),
    "cifar100": ("datasets/cifar.py", "datasets/safe_pickle.py"),
    "speech_commands": ("datasets/speech.py",),
    "imdb": ("datasets/imdb.py",),
    "iam": ("datasets/words.py", "datasets/manual.py", "wordimages.py", "preprocess.py"),
    "ifn_enit": ("datasets/words.py", "datasets/manual.py", "wordimages.py", "preprocess.py"),
}


def data_options(config: dict, dataset: str) -> dict:
    """config data.<dataset> (schema defaults filled in by validation)."""
    return dict((config.get("data") or {}).get(dataset) or {})


def reader_options(config: dict, dataset: str) -> dict:
    """The options that change what a reader produces (not where files come from)."""
    options = data_options(config, dataset)
    if not registry.get(dataset).manual:
        options.pop("local_copy", None)
    return options


def record_targets(config: dict, dataset: str) -> list[str]:
    """Verification records the dataset's reader needs (one per fetched file)."""
    spec = registry.get(dataset)
    variant = data_options(config, dataset).get("variant")
    return [f"data/raw/{dataset}/verified/{f.name}.json" for f in spec.files_for(variant)]


def reader_code(dataset: str) -> list[str]:
    return [*COMMON_CODE, *READER_CODE[dataset]]


def fetched_datasets() -> list[str]:
    return sorted(n for n, s in registry.REGISTRY.items() if not s.manual)


def all_file_names() -> list[str]:
    return sorted({f.name for s in registry.REGISTRY.values() for f in s.files})


def native_datasets(config: dict) -> dict[str, str]:
    """config ``preprocess.native_size``: processed name -> the raw image dataset it is
    made from, ink only at the images' own size (docs/preprocess.md)."""
    return dict((config.get("preprocess") or {}).get("native_size") or {})


def raw_dataset(config: dict, dataset: str) -> str:
    """The data/raw/<name> folder a processed image dataset is made from."""
    return native_datasets(config).get(dataset, dataset)


def preprocess_params(config: dict, dataset: str) -> dict:
    """What decides a processed image dataset's images (the preprocess rule's params):
    the EMNIST-style settings, or native size. workers and on_error change no image."""
    if dataset in native_datasets(config):
        return {"native": True}
    return {k: config["preprocess"][k] for k in ("sigma", "border", "rescale")}


def check_native_datasets(config: dict, image_datasets) -> None:
    """ValueError naming ``preprocess.native_size`` when a name clashes with a dataset
    that has its own processed folder, or its raw dataset is no image dataset."""
    synth = [n for n, p in (config.get("synth") or {}).items() if isinstance(p, dict)]
    images = set(image_datasets) | set(synth)
    for name, raw in native_datasets(config).items():
        if name in registry.REGISTRY or name in images:
            raise ValueError(
                f"config preprocess.native_size.{name}: {name!r} is already a dataset; "
                "give the native-size variant its own name (e.g. nist128)"
            )
        if raw not in images:
            raise ValueError(
                f"config preprocess.native_size.{name} = {raw!r} is not a raw image dataset "
                f"(data/raw/<name>/manifest.csv); image datasets: {sorted(images)}"
            )


def check_dataset_names(config: dict) -> None:
    """ValueError naming config ``datasets`` when it lists a name no rule can build."""
    synth = [n for n, p in (config.get("synth") or {}).items() if isinstance(p, dict)]
    supplied = list(config.get("image_datasets") or [])
    native = list(native_datasets(config))
    known = set(registry.REGISTRY) | set(synth) | set(supplied) | set(native)
    unknown = [d for d in config.get("datasets") or [] if d not in known]
    if unknown:
        raise ValueError(
            f"config datasets: {unknown} cannot be built. Each name must be a registered "
            f"real dataset ({', '.join(sorted(registry.REGISTRY))}), a key of `synth` "
            f"({', '.join(synth) or 'none'}), a key of `preprocess.native_size` "
            f"({', '.join(native) or 'none'}), or a folder you supplied at data/raw/<name>/ "
            "and listed under `image_datasets`."
        )


def config_datasets(config: dict) -> list[str]:
    """Registered datasets the config reads: config ``datasets`` plus every
    ``dataset:`` / ``datasets:`` value of a study, and the raw dataset of each
    native-size variant (what `snakemake prefetch` fetches, what preflight checks)."""
    named = set(config.get("datasets", []))

    def walk(node, top=False):
        if isinstance(node, dict):
            for key, value in node.items():
                if not top and key == "dataset" and isinstance(value, str):
                    named.add(value)
                elif not top and key == "datasets" and isinstance(value, list):
                    named.update(v for v in value if isinstance(v, str))
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config, top=True)
    named |= {raw_dataset(config, n) for n in named}  # a native-size variant needs its raw data
    return sorted(named & set(registry.REGISTRY))


def prefetch_datasets(config: dict) -> list[str]:
    """Downloadable datasets the config reads (what `snakemake prefetch` fetches)."""
    return sorted(set(config_datasets(config)) & set(fetched_datasets()))


def standin(config: dict) -> dict:
    """config ``data.standin`` (schema defaults filled in by validation)."""
    return dict((config.get("data") or {}).get("standin") or {})


def standin_enabled(config: dict) -> bool:
    """True when the real datasets are replaced by generated stand-ins (a rehearsal)."""
    return bool(standin(config).get("enabled", False))


def data_note(config: dict) -> str | None:
    """What every table built under ``config`` must say about its data: the stand-in
    note in a rehearsal, else None. Report rules pass it on as a param."""
    if not standin_enabled(config):
        return None
    from hwbench.datasets.standin import NOTE

    return NOTE


def real_datasets(config: dict, route: str) -> list[str]:
    """Registered datasets of ``route`` the real readers build (none in a rehearsal)."""
    if standin_enabled(config):
        return []
    return [n for n, s in registry.REGISTRY.items() if s.route == route]


def standin_datasets(config: dict, route: str) -> list[str]:
    """Registered datasets of ``route`` built as stand-ins (all of them in a rehearsal)."""
    if not standin_enabled(config):
        return []
    return [n for n, s in registry.REGISTRY.items() if s.route == route]


def check_standin_workdir(config: dict, root: str = "data/raw") -> None:
    """A rehearsal writes its stand-ins, results and tables where the real run keeps its
    own: refuse to start in a folder that holds fetched real data."""
    if not standin_enabled(config):
        return
    from pathlib import Path

    fetched = sorted(
        p.parent.name for p in Path(root).glob("*/verified") if p.is_dir() and any(p.iterdir())
    )
    if fetched:
        raise ValueError(
            f"config data.standin.enabled is true (a rehearsal) but {root}/ holds real data "
            f"({', '.join(fetched)}): the rehearsal would replace its processed datasets, "
            "results and tables with stand-ins. Run it in a fresh clone or another folder "
            "(snakemake --directory <folder>), or drop config/rehearsal.yaml."
        )
