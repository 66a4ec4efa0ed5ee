"""Constants of the multiscript study shared by plan, job and report (torch-free).

The task grid: a label is a cell of a rows x columns table (Table 1 of the paper).
Digits: 3 scripts (rows: Latin, Arabic, Kannada) x 10 digits (columns), label =
row * 10 + column. Amharic: 11 consonants (rows) x 7 vowel orders (columns),
label = row * 7 + column. So ``row = label // n_cols`` and ``column = label % n_cols``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    """A family of runs sharing one label grid: the digits of three scripts, or Amharic."""

    name: str
    scripts: tuple[str, ...]  # the sources whose images make up the rows' data
    n_rows: int
    n_cols: int
    methods: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return self.n_rows * self.n_cols


DIGIT_SCRIPTS = ("latin", "arabic", "kannada")
# single-script models -> the one script each is trained and tested on
SINGLE_SCRIPT = {"lat": "latin", "arab": "arabic", "kan": "kannada"}
MULTI_TASK = ("base", "wloss", "uw", "new")

GROUPS = {
    "digits": Group("digits", DIGIT_SCRIPTS, 3, 10, (*SINGLE_SCRIPT, *MULTI_TASK)),
    "amharic": Group("amharic", ("amharic",), 11, 7, MULTI_TASK),
}

# Every model name of any group, in Table 4's row order.
MODELS = tuple(dict.fromkeys(m for g in GROUPS.values() for m in g.methods))


def check_method(group: str, method: str) -> Group:
    """The group spec, with a clear error for an unknown group or method."""
    if group not in GROUPS:
        raise ValueError(f"unknown multiscript group {group!r}; choose from {list(GROUPS)}")
    spec = GROUPS[group]
    if method not in spec.methods:
        raise ValueError(f"method {method!r} is not run for {group}; choose from {spec.methods}")
    return spec


def scripts_of(group: str, method: str) -> tuple[str, ...]:
    """The scripts whose images a run trains and is tested on."""
    spec = check_method(group, method)
    return (SINGLE_SCRIPT[method],) if method in SINGLE_SCRIPT else spec.scripts
