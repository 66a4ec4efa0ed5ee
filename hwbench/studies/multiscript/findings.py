"""The multiscript paper's findings (Table 4, section 4 and 5), tested on this run's seeds.

Per-seed values come from :func:`report.table4_values` of the runs' eval.json
records, never from the rounded table. Verdicts: :mod:`hwbench.findings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from hwbench.findings import Finding, Sample, greater, less, sample
from hwbench.studies.multiscript.report import PAPER_TABLE4, RANGE_PER_SEED, table4_values

STUDY = "multiscript"
SOURCE = "multiscript-mtl.md, section 4, Table 4"
# The single-script models and the script each is trained and tested on (Table 4 names).
SINGLE = {"Lat": "Latin", "Arab": "Arabic", "Kan": "Kannada"}


def _values(values: pd.DataFrame, model: str, column: str) -> Sample:
    rows = values[values["model"] == model]
    per_seed = rows.set_index("seed")[column] if column in rows else None
    return sample(f"{model} {column}", per_seed)


def _paper(model: str, column: str) -> str:
    value = PAPER_TABLE4.get(model, {}).get(column)
    return "-" if value is None else f"{value:.2f}"


def _paper_cells(column: str, models: Sequence[str]) -> str:
    return ", ".join(f"{m} {_paper(m, column)}" for m in models)


def findings(evals: Sequence[Mapping]) -> list[Finding]:
    """The claims of Table 4 from the runs' eval records (``group``, ``method``,
    ``seed``, ``metrics.accuracy``)."""
    values = table4_values(list(evals)) if evals else pd.DataFrame(columns=["model", "seed"])
    out = []
    for model, script in SINGLE.items():
        out.append(
            Finding(
                STUDY,
                f"The single-script model {model} beats Base (one model on all three "
                f"scripts) on {script} digits.",
                SOURCE,
                f"{script}: {_paper_cells(script, [model, 'Base'])}",
                (greater(_values(values, model, script), _values(values, "Base", script)),),
            )
        )
    for rival, where in (("Base", "section 5 (beats the baseline)"), ("Wloss", "section 4")):
        out.append(
            Finding(
                STUDY,
                f"New's average accuracy over the three digit scripts is above {rival}'s.",
                f"multiscript-mtl.md, {where}, Table 4",
                f"Average: {_paper_cells('Average', ['New', rival])}",
                (greater(_values(values, "New", "Average"), _values(values, rival, "Average")),),
            )
        )
    new_range = _values(values, "New", RANGE_PER_SEED)
    out.append(
        Finding(
            STUDY,
            "New has the smallest Range (max - min over the three digit scripts).",
            "multiscript-mtl.md, section 4 (the minimum range), Table 4",
            f"Range: {_paper_cells('Range', ['New', 'Wloss', 'Base'])}",
            tuple(
                less(new_range, _values(values, rival, RANGE_PER_SEED))
                for rival in ("Wloss", "Base")
            ),
            note="Tested on each seed's own range (the paper's Range, of the means, "
            "has no spread over seeds).",
        )
    )
    new_amharic = _values(values, "New", "Amharic")
    out.append(
        Finding(
            STUDY,
            "New is the most accurate model on Amharic characters.",
            SOURCE,
            f"Amharic: {_paper_cells('Amharic', ['New', 'Wloss', 'Base'])}",
            tuple(
                greater(new_amharic, _values(values, rival, "Amharic"))
                for rival in ("Wloss", "Base")
            ),
        )
    )
    return out
