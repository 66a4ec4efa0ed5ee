"""The multiscript paper's findings (Table 4, sections 4 and 5), tested on this run's seeds.

Per-seed values come from :func:`report.table4_values` of the runs' eval.json
records, never from the rounded table; each script's test size from the records'
``metrics.n_test``. Verdicts: :mod:`hwbench.findings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from hwbench.findings import Finding, Sample, greater, less, sample
from hwbench.studies.multiscript.report import (
    DIGIT_SCRIPTS,
    PAPER_TABLE4,
    RANGE_PER_SEED,
    SCRIPT_COLUMN,
    table4_values,
)

STUDY = "multiscript"
PAPER = "multiscript-mtl.md"
TABLE4 = f'{PAPER}, Table 4, "Accuracy score of the models on test sets"'
# The single-script models, the script each is trained and tested on (Table 4 names) and
# the paper's own description of the model (its list of models).
SINGLE = {
    "Lat": ("Latin", "Single task model trained on the Latin digits"),
    "Arab": ("Arabic", "Single task model trained on the Arabic digits"),
    "Kan": ("Kannada", "Single task model trained on the Kannada digits"),
}
BASE = "Single task model trained on all the three scripts"
BEST = "Whereas the proposed multi-task approach performed best"
OUTPERFORMED = (
    "This finding has outperformed the baseline and the conventional multi-task learning models"
)
MTL = "The results from Table 4 show the advantages gained from multi task learning."
RANGE = "we see the minimum range between the scores of the proposed model"


def test_sizes(evals: Sequence[Mapping]) -> dict[str, int]:
    """Table 4 column -> test images of its script (the smallest any run recorded)."""
    sizes: dict[str, int] = {}
    for rec in evals:
        for script, n in rec["metrics"].get("n_test", {}).items():
            col = SCRIPT_COLUMN[script]
            sizes[col] = min(int(n), sizes.get(col, int(n)))
    digits = [sizes.get(SCRIPT_COLUMN[s]) for s in DIGIT_SCRIPTS]
    if all(digits):
        sizes["Average"] = sum(digits)  # the mean of three scripts' accuracies
        sizes[RANGE_PER_SEED] = min(digits)
    return sizes


def _values(values: pd.DataFrame, sizes: Mapping[str, int], model: str, column: str) -> Sample:
    rows = values[values["model"] == model]
    per_seed = rows.set_index("seed")[column] if column in rows else None
    s = sample(f"{model} {column}", per_seed)
    # accuracies in percent; the range is a difference of two of them
    return Sample(s.name, s.values, s.digits, sizes.get(column), 100.0, column != RANGE_PER_SEED)


def _paper(model: str, column: str) -> str:
    value = PAPER_TABLE4.get(model, {}).get(column)
    return "-" if value is None else f"{value:.2f}"


def _paper_cells(column: str, models: Sequence[str]) -> str:
    return ", ".join(f"{m} {_paper(m, column)}" for m in models)


def findings(evals: Sequence[Mapping]) -> list[Finding]:
    """The claims of Table 4 from the runs' eval records (``group``, ``method``,
    ``seed``, ``metrics.accuracy``, ``metrics.n_test``)."""
    values = table4_values(list(evals)) if evals else pd.DataFrame(columns=["model", "seed"])
    sizes = test_sizes(evals)

    def v(model: str, column: str) -> Sample:
        return _values(values, sizes, model, column)

    out = []
    for model, (script, words) in SINGLE.items():
        out.append(
            Finding(
                STUDY,
                f"The single-script model {model} beats Base (one model on all three "
                f"scripts) on {script} digits.",
                f'{TABLE4}: {model}, "{words}", against Base, "{BASE}"',
                f"{script}: {_paper_cells(script, [model, 'Base'])}",
                (greater(v(model, script), v("Base", script)),),
            )
        )
    out.append(
        Finding(
            STUDY,
            "The conventional multi-task model Wloss has a higher average accuracy over "
            "the three digit scripts than Base.",
            f'{PAPER}, section 4: "{MTL}"',
            f"Average: {_paper_cells('Average', ['Wloss', 'Base'])}",
            (greater(v("Wloss", "Average"), v("Base", "Average")),),
        )
    )
    for rival, quote in (("Base", OUTPERFORMED), ("Wloss", OUTPERFORMED)):
        out.append(
            Finding(
                STUDY,
                f"New's average accuracy over the three digit scripts is above {rival}'s.",
                f'{PAPER}, abstract and section 5: "{quote}"',
                f"Average: {_paper_cells('Average', ['New', rival])}",
                (greater(v("New", "Average"), v(rival, "Average")),),
            )
        )
    new_range = v("New", RANGE_PER_SEED)
    out.append(
        Finding(
            STUDY,
            "New has the smallest Range (max - min over the three digit scripts).",
            f'{PAPER}, section 4: "{RANGE}"',
            f"Range: {_paper_cells('Range', ['New', 'Wloss', 'Base'])}",
            tuple(less(new_range, v(rival, RANGE_PER_SEED)) for rival in ("Wloss", "Base")),
            note="Tested on each seed's own range (the paper's Range, of the means, "
            "has no spread over seeds).",
        )
    )
    new_amharic = v("New", "Amharic")
    out.append(
        Finding(
            STUDY,
            "New is the most accurate model on Amharic characters.",
            f'{PAPER}, section 4: "{BEST}"; {TABLE4}',
            f"Amharic: {_paper_cells('Amharic', ['New', 'Wloss', 'Base'])}",
            tuple(greater(new_amharic, v(rival, "Amharic")) for rival in ("Wloss", "Base")),
        )
    )
    return out
