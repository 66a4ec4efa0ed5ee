# Helpers shared by every rule file.
#
# Code as input: each rule lists its adapter script and the hwbench modules it
# imports as named inputs. Snakemake compares small inputs by checksum, so an
# edit reruns exactly the affected jobs and a mere touch reruns nothing
# (profiles/default drops the mtime-based "code" trigger).
import os

# GPUs a training job requests (`resources: gpu=GPUS_PER_JOB`); 0 on CPU-only clusters.
GPUS_PER_JOB = config.get("gpus_per_job", 1)

# Targets of `rule all`; each rule file appends its headline outputs.
ALL_TARGETS = []

# Raw image datasets (data/raw/<name>/manifest.csv) that rule preprocess turns into
# data/processed/<name>/. Data rule files included before preprocess.smk extend it;
# the synthetic datasets of config["synth"] are added by preprocess.smk itself;
# config image_datasets names folders a user put there (e.g. the lifelong paper's).
IMAGE_DATASETS = list(config.get("image_datasets", []))


def repo_path(path):
    """A path inside the hwbench checkout, usable from any --directory.

    Relative when the working directory is the checkout (short, readable logs),
    absolute otherwise (tests run the real Snakefile in a temporary folder).
    """
    full = os.path.join(workflow.basedir, path)
    rel = os.path.relpath(full)
    return full if rel.startswith("..") else rel


def hw(*modules):
    """Paths of hwbench modules (relative to hwbench/) a rule depends on."""
    return [repo_path(f"hwbench/{m}") for m in modules]


def script_path(name):
    """Path of an adapter script, for listing it as a named input."""
    return repo_path(f"workflow/scripts/{name}")


def code(module):
    """Code inputs of the jobs that run ``hwbench.<module>``, i.e. that module's file
    and every hwbench module it imports, directly or not (hwbench/codedeps.py).

    Training jobs name their study's ``job`` module, report jobs its ``report``
    module, so a figure edit reruns only reports and an engine edit every job.
    """
    from hwbench.codedeps import import_closure

    return [repo_path(p) for p in import_closure(workflow.basedir, f"hwbench.{module}")]


def table_outputs(name, study, caption):
    """The outputs of a report table: csv, md, json (provenance) and its HTML page,
    shown in ``snakemake --report`` under ``study`` with ``caption`` (an .rst path
    relative to workflow/rules/)."""
    return {
        "csv": f"reports/{name}.csv",
        "html": report(f"reports/{name}.html", caption=caption, category=study),
        "md": f"reports/{name}.md",
        "json": f"reports/{name}.json",
    }
