"""The transfer paper's findings (section IV), tested on this run's seeds.

Per-run values are :func:`report.runs_frame`'s summaries of each run's per-epoch
history (peak F1, F1 after epoch 1); verdicts: :mod:`hwbench.findings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from hwbench.findings import Finding, Sample, greater, less, sample
from hwbench.studies.transfer.report import PAPER, PAPER_SETS, runs_frame
from hwbench.studies.transfer.spec import MODE_TITLES

STUDY = "transfer"
SECTION = {1: "IV.A", 2: "IV.B", 3: "IV.C"}


def _values(runs: pd.DataFrame, set_name: str, mode: str, metric: str) -> Sample:
    rows = runs[(runs["set"] == set_name) & (runs["mode"] == mode)]
    return sample(f"{set_name} {MODE_TITLES[mode]} {metric}", rows.set_index("seed")[metric], 3)


def _paper_text(paper_set: int, modes: Sequence[str]) -> str:
    parts = []
    for mode in modes:
        f1, _, text = PAPER[(paper_set, mode)]
        number = f" (peak F1 {f1:.2f})" if f1 is not None else ""
        parts.append(f"{MODE_TITLES[mode]}: {text}{number}")
    return "; ".join(parts)


def _sets_of(sets: Mapping[str, Mapping], paper_set: int) -> list[str]:
    return [name for name, spec in sets.items() if spec.get("paper_set") == paper_set]


def findings(evals: Sequence[Mapping], sets: Mapping[str, Mapping]) -> list[Finding]:
    """The claims of section IV from the runs' eval records and the config's sets
    (``paper_set`` says which of the paper's three sets a configured set stands for)."""
    runs = (
        runs_frame(evals, sets)
        if evals
        else pd.DataFrame(columns=["set", "paper_set", "mode", "seed", "peak_f1", "f1_epoch1"])
    )
    out = []
    for paper_set in PAPER_SETS:
        for name in _sets_of(sets, paper_set):
            frozen = _values(runs, name, "frozen", "peak_f1")
            out.append(
                Finding(
                    STUDY,
                    f"Frozen-weight transfer is the worst of the three on set {paper_set} "
                    f"({PAPER_SETS[paper_set]}): its peak F1 is below control and fine-tuned.",
                    f"transfer.md, section {SECTION[paper_set]} and IV.D",
                    _paper_text(paper_set, ["frozen"]),
                    tuple(
                        less(frozen, _values(runs, name, rival, "peak_f1"))
                        for rival in ("control", "finetuned")
                    ),
                )
            )
    for name in _sets_of(sets, 1):
        out.append(
            Finding(
                STUDY,
                "On set 1 fine-tuned transfer starts better than control: a higher F1 "
                "after the first epoch.",
                "transfer.md, section IV.A, Fig. 2",
                _paper_text(1, ["finetuned"]),
                (
                    greater(
                        _values(runs, name, "finetuned", "f1_epoch1"),
                        _values(runs, name, "control", "f1_epoch1"),
                    ),
                ),
            )
        )
    for name in _sets_of(sets, 3):
        out.append(
            Finding(
                STUDY,
                "On set 3 (digits -> letters) fine-tuned transfer is slightly worse than "
                "control: a lower peak F1.",
                "transfer.md, section IV.C, Fig. 5",
                _paper_text(3, ["control", "finetuned"]),
                (
                    greater(
                        _values(runs, name, "control", "peak_f1"),
                        _values(runs, name, "finetuned", "peak_f1"),
                    ),
                ),
            )
        )
    others = [n for p in (2, 3) for n in _sets_of(sets, p)]
    for name in _sets_of(sets, 1):
        frozen = _values(runs, name, "frozen", "peak_f1")
        out.append(
            Finding(
                STUDY,
                "Frozen transfer does far better on set 1 (source and target tasks "
                "overlap) than on the other sets.",
                "transfer.md, section IV.D, Fig. 6",
                "frozen on set 1 'substantially better' than on sets 2 and 3; "
                "set 3 peak F1 about 0.58",
                tuple(
                    greater(frozen, _values(runs, other, "frozen", "peak_f1")) for other in others
                ),
            )
        )
    return out
