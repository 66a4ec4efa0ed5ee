"""Config errors a user can act on: short, naming the key path and the value.

The Snakefile calls :func:`check_schema` before Snakemake's own ``validate`` (which
fills in the defaults) and :func:`check_references` after it, so both run before any
rule file plans a job. jsonschema's own message for a typo prints the whole schema
(hundreds of lines); here each problem is one line, ``<key path> = <value>: <what is
wrong>``, with a "did you mean" from the schema for an unknown key, and at most
:data:`MAX_PROBLEMS` of them.

Cross-key references the schema cannot express are checked here too: every dataset a
study or a per-dataset mapping names must be one some rule builds, and a charset a
study selects from a synthetic dataset must be one it renders. Task and set names
are checked by the studies' plans (called from :func:`check_references`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path

import yaml
from jsonschema import ValidationError
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

MAX_PROBLEMS = 8
MAX_VALUE_CHARS = 60
MAX_NAMES = 12


class ConfigError(ValueError):
    """A config value the workflow cannot run with; the message names each key path."""


# --- schema ---------------------------------------------------------------------------


@cache
def _validator(schema_path: str):
    """A validator of the schema at ``schema_path``; its ``$ref``s to sibling files
    (``resources.schema.yaml``) resolve in the schema's folder."""
    path = Path(schema_path)
    folder = path.parent

    def retrieve(uri: str) -> Resource:
        doc = yaml.safe_load((folder / uri).read_text(encoding="utf-8"))
        return Resource.from_contents(doc, default_specification=DRAFT202012)

    schema = yaml.safe_load(path.read_text(encoding="utf-8"))
    cls = validator_for(schema)
    return cls(schema, registry=Registry(retrieve=retrieve))


def key_path(parts) -> str:
    """``['onemodel', 'tasks', 2, 'dataset']`` -> ``onemodel.tasks[2].dataset``."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the config's top level)"


def short(value) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def _names(names) -> str:
    names = list(names)
    more = f", ... ({len(names) - MAX_NAMES} more)" if len(names) > MAX_NAMES else ""
    return ", ".join(map(str, names[:MAX_NAMES])) + more


def did_you_mean(key: str, known) -> str:
    """ "did you mean X?" for the closest known key, else the known keys."""
    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return f"known keys: {_names(known)}" if known else "this mapping takes no keys"


def _describe(error: ValidationError) -> list[str]:
    """One line per problem of a jsonschema error."""
    where = list(error.absolute_path)
    kind, schema, value = error.validator, error.schema, error.instance
    if kind == "additionalProperties" and isinstance(value, Mapping):
        known = list(schema.get("properties", {}))
        patterns = schema.get("patternProperties", {})
        extra = [
            k for k in value if k not in known and not any(re.search(p, str(k)) for p in patterns)
        ]
        return [
            f"{key_path([*where, k])} = {short(value[k])}: unknown key; {did_you_mean(k, known)}"
            for k in extra
        ]
    prefix = f"{key_path(where)} = {short(value)}"
    if kind == "required":
        missing = re.match(r"'(.*)' is a required property", error.message)
        name = missing.group(1) if missing else error.message
        return [f"{key_path([*where, name])}: missing; this key is required"]
    if kind == "enum":
        return [f"{prefix}: must be one of {_names(schema['enum'])}"]
    if kind == "type":
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        return [f"{prefix}: must be of type {' or '.join(types)}"]
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return [f"{prefix}: {message}"]


def schema_problems(config: Mapping, schema_path) -> list[str]:
    """Every schema violation of ``config``, one line each, in key order."""
    errors = _validator(str(schema_path)).iter_errors(config)
    return sorted({line for error in errors for line in _describe(error)})


def fail(problems: list[str], what: str) -> None:
    """Raise a :class:`ConfigError` listing at most MAX_PROBLEMS of ``problems``."""
    if not problems:
        return
    shown = problems[:MAX_PROBLEMS]
    more = len(problems) - len(shown)
    lines = [f"{what} ({len(problems)} problem{'s' * (len(problems) > 1)}):"]
    lines += [f"  config {line}" for line in shown]
    if more:
        lines.append(f"  ... and {more} more")
    lines.append(
        "Fix these keys (config.yaml, --configfile or --config); docs/config.md lists every key."
    )
    raise ConfigError("\n".join(lines))


def check_schema(config: Mapping, schema_path) -> None:
    """ConfigError when ``config`` breaks the schema, each problem with its key path."""
    fail(schema_problems(config, schema_path), "the config does not match the schema")


# --- references between keys -------------------------------------------------------------


def buildable_datasets(config: Mapping) -> set[str]:
    """Names some rule can build into data/processed/<name> (hwbench.datasets.rules)."""
    from hwbench.datasets.rules import buildable_datasets as buildable

    return set(buildable(config))


def dataset_references(config: Mapping) -> Iterator[tuple[list, str]]:
    """(key path, dataset name) of every place the config names a processed dataset."""
    # config `datasets` itself: hwbench.datasets.rules.check_dataset_names (download.smk)
    for script, source in ((config.get("multiscript") or {}).get("sources") or {}).items():
        yield ["multiscript", "sources", script, "dataset"], source.get("dataset")
    for task, spec in ((config.get("transfer") or {}).get("tasks") or {}).items():
        yield ["transfer", "tasks", task, "dataset"], spec.get("dataset")
    for i, spec in enumerate((config.get("onemodel") or {}).get("tasks") or []):
        yield ["onemodel", "tasks", i, "dataset"], spec.get("dataset")
    ad = config.get("adaptation") or {}
    for i, name in enumerate(ad.get("datasets") or []):
        yield ["adaptation", "datasets", i], name
    for mapping in ("charsets", "paper", "train_per_dataset"):
        for name in ad.get(mapping) or {}:
            yield ["adaptation", mapping, name], name
    if (config.get("lifelong") or {}).get("dataset") is not None:
        yield ["lifelong", "dataset"], config["lifelong"]["dataset"]
    for name in (config.get("splits") or {}).get("schemes") or {}:
        if name != "default":
            yield ["splits", "schemes", name], name


def charset_references(config: Mapping) -> Iterator[tuple[list, str, str]]:
    """(key path, dataset, charset) of every charset a planned job selects from a dataset
    (a source of a script no configured group uses, or a task no set uses, selects none)."""
    from hwbench.studies.multiscript.spec import GROUPS

    ms = config.get("multiscript") or {}
    used = {s for g in ms.get("groups") or [] if g in GROUPS for s in GROUPS[g].scripts}
    for script, source in (ms.get("sources") or {}).items():
        if script in used:
            path = ["multiscript", "sources", script, "charset"]
            yield path, source.get("dataset"), source.get("charset")
    tr = config.get("transfer") or {}
    in_sets = {
        spec.get(role) for spec in (tr.get("sets") or {}).values() for role in ("source", "target")
    }
    for task, spec in (tr.get("tasks") or {}).items():
        for j, charset in enumerate(spec.get("charsets") or [] if task in in_sets else []):
            yield ["transfer", "tasks", task, "charsets", j], spec.get("dataset"), charset
    for i, spec in enumerate((config.get("onemodel") or {}).get("tasks") or []):
        if spec.get("charset"):
            yield ["onemodel", "tasks", i, "charset"], spec.get("dataset"), spec["charset"]
    for name, charsets in ((config.get("adaptation") or {}).get("charsets") or {}).items():
        for j, charset in enumerate(charsets or []):
            yield ["adaptation", "charsets", name, j], name, charset


def reference_problems(config: Mapping) -> list[str]:
    """Datasets no rule builds, and charsets a synthetic dataset does not render."""
    known = buildable_datasets(config)
    problems = []
    for path, name in dataset_references(config):
        if name not in known:
            hint = did_you_mean(name, sorted(known)).replace("known keys", "datasets")
            problems.append(
                f"{key_path(path)} = {short(name)}: no rule builds this dataset; {hint}"
            )
    synth = {n: p for n, p in (config.get("synth") or {}).items() if isinstance(p, Mapping)}
    for path, dataset, charset in charset_references(config):
        scripts = (synth.get(dataset) or {}).get("scripts")
        if scripts is not None and charset not in scripts:
            problems.append(
                f"{key_path(path)} = {short(charset)}: synth.{dataset} renders no {charset} "
                f"(its scripts: {_names(scripts)})"
            )
    return problems


def check_references(config: Mapping) -> None:
    """ConfigError naming each key whose dataset or charset does not exist; then the
    studies' own checks of their task, set and order names."""
    fail(reference_problems(config), "the config names what does not exist")
    from hwbench.studies.lifelong import plan as lifelong
    from hwbench.studies.multiscript import plan as multiscript
    from hwbench.studies.onemodel import plan as onemodel
    from hwbench.studies.transfer import plan as transfer

    checks = [
        (multiscript.check_config, "multiscript"),
        (transfer.check_config, "transfer"),
        (lifelong.check_config, "lifelong"),
        (onemodel.checked, "onemodel"),
    ]
    for check, section in checks:
        try:
            check(config[section])
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(str(err)) from None


def check(config: Mapping, schema_path) -> None:
    """Both checks (without Snakemake's defaults: for tests and tools)."""
    check_schema(config, schema_path)
    check_references(config)
