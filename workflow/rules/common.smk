# Helpers shared by every rule file.
#
# Code as input: each rule lists its adapter script and the hwbench modules it
# imports as named inputs. Snakemake compares small inputs by checksum, so an
# edit reruns exactly the affected jobs and a mere touch reruns nothing
# (profiles/default drops the mtime-based "code" trigger).

# Targets of `rule all`; each rule file appends its headline outputs.
ALL_TARGETS = []


def hw(*modules):
    """Paths of hwbench modules (relative to hwbench/) a rule depends on."""
    return [f"hwbench/{m}" for m in modules]


def script_path(name):
    """Path of an adapter script, for listing it as a named input."""
    return f"workflow/scripts/{name}"
