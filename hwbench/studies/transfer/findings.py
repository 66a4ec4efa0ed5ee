"""The transfer paper's findings (section IV), tested on this run's seeds.

Per-run values are :func:`report.runs_frame`'s summaries of each run's per-epoch
history (peak F1, F1 after epoch 1, final F1); each set's test size is the runs'
``metrics.n_test``. Verdicts: :mod:`hwbench.findings`. :func:`row_findings` gives
reports/transfer.csv its ``checked`` / ``agrees`` columns from the same findings, so
the two tables cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from hwbench.findings import Finding, Sample, equivalent, greater, less, sample
from hwbench.studies.transfer.report import PAPER, PAPER_SETS, runs_frame
from hwbench.studies.transfer.spec import MODE_TITLES

STUDY = "transfer"
PAPER_FILE = "transfer.md"
# The paper's own words for each claim (section IV), quoted verbatim.
FROZEN_WORST = {
    1: (
        "IV.A",
        "Frozen-weight transfer performs worse than both the *control* and *fine-tuned* networks.",
    ),
    2: ("IV.B", "Frozen-weight transfer again performs more poorly than the other two networks."),
    3: (
        "IV.C",
        "The *frozen* networks once again perform much worse than the *fine-tune* and "
        "*control* networks do.",
    ),
}
STARTS_BETTER = (
    "We note that the *fine-tuned* transfer has slightly better out-of-sample performance "
    "for the first two epochs of training as compared with the *control* networks"
)
SAME_THEREAFTER = {
    1: (
        "IV.A",
        "final_f1",
        "However, for more than 2 epochs of training, no improvement in performance is "
        "gained by using *fine-tuned transfer*.",
    ),
    2: (
        "IV.B",
        "peak_f1",
        "Both networks achieve peak mean F1-scores just above 0.82, indicating no "
        "significant performance gains are achieved by undertaking parameter transfer.",
    ),
}
SLIGHTLY_WORSE = (
    "In this experiment, the *fine-tuned transfer* performs slightly worse than the "
    "*control* networks do (see Fig. 5)."
)
CHARACTERS_WORSE = (
    "Overall, all three transfer types perform more poorly on *NIST Characters* than for "
    "the full *NIST* set."
)
FROZEN_SET1 = (
    "Despite this, *frozen* transfer for *MNIST* to *NIST Digits* achieves substantially "
    "better F1-scores than for the other *frozen* networks"
)
METRIC_NAMES = {"peak_f1": "peak F1", "final_f1": "final F1", "f1_epoch1": "F1 after epoch 1"}
MODES = ("control", "finetuned", "frozen")


def _source(section: str, quote: str) -> str:
    return f'{PAPER_FILE}, section {section}: "{quote}"'


def test_sizes(evals: Sequence[Mapping]) -> dict[str, int]:
    """Set -> its target test images (the smallest any run recorded)."""
    sizes: dict[str, int] = {}
    for e in evals:
        n = e.get("metrics", {}).get("n_test")
        if n:
            sizes[e["set"]] = min(int(n), sizes.get(e["set"], int(n)))
    return sizes


class _Runs:
    """The per-run summaries and test sizes, as samples."""

    def __init__(self, evals: Sequence[Mapping], sets: Mapping[str, Mapping]):
        self.frame = (
            runs_frame(evals, sets)
            if evals
            else pd.DataFrame(
                columns=["set", "paper_set", "mode", "seed", "peak_f1", "f1_epoch1", "final_f1"]
            )
        )
        self.sizes = test_sizes(evals)

    def __call__(self, set_name: str, mode: str, metric: str) -> Sample:
        rows = self.frame[(self.frame["set"] == set_name) & (self.frame["mode"] == mode)]
        s = sample(
            f"{set_name} {MODE_TITLES[mode]} {METRIC_NAMES[metric]}",
            rows.set_index("seed")[metric],
            3,
        )
        return Sample(s.name, s.values, s.digits, self.sizes.get(set_name))


def _paper_text(paper_set: int, modes: Sequence[str]) -> str:
    parts = []
    for mode in modes:
        f1, _, text = PAPER[(paper_set, mode)]
        number = f" (peak F1 {f1:.2f})" if f1 is not None else ""
        parts.append(f"{MODE_TITLES[mode]}: {text}{number}")
    return "; ".join(parts)


def sets_of(sets: Mapping[str, Mapping], paper_set: int) -> list[str]:
    return [name for name, spec in sets.items() if spec.get("paper_set") == paper_set]


def frozen_worst(runs: _Runs, name: str, paper_set: int) -> Finding:
    frozen = runs(name, "frozen", "peak_f1")
    return Finding(
        STUDY,
        f"Frozen-weight transfer is the worst of the three on set {paper_set} "
        f"({PAPER_SETS[paper_set]}): its peak F1 is below control and fine-tuned ({name}).",
        _source(*FROZEN_WORST[paper_set]),
        _paper_text(paper_set, ["frozen"]),
        tuple(less(frozen, runs(name, rival, "peak_f1")) for rival in ("control", "finetuned")),
    )


def starts_better(runs: _Runs, name: str) -> Finding:
    return Finding(
        STUDY,
        f"On set 1 fine-tuned transfer starts better than control: a higher F1 after the "
        f"first epoch ({name}).",
        _source("IV.A", STARTS_BETTER),
        _paper_text(1, ["finetuned"]),
        (greater(runs(name, "finetuned", "f1_epoch1"), runs(name, "control", "f1_epoch1")),),
    )


def same_thereafter(runs: _Runs, name: str, paper_set: int) -> Finding:
    section, metric, quote = SAME_THEREAFTER[paper_set]
    return Finding(
        STUDY,
        f"On set {paper_set} fine-tuned transfer brings no significant gain over control: "
        f"the same {METRIC_NAMES[metric]} within the margin ({name}).",
        _source(section, quote),
        _paper_text(paper_set, ["control", "finetuned"]),
        (equivalent(runs(name, "finetuned", metric), runs(name, "control", metric)),),
    )


def slightly_worse(runs: _Runs, name: str) -> Finding:
    return Finding(
        STUDY,
        f"On set 3 (digits -> letters) fine-tuned transfer is slightly worse than control: "
        f"a lower peak F1 ({name}).",
        _source("IV.C", SLIGHTLY_WORSE),
        _paper_text(3, ["control", "finetuned"]),
        (greater(runs(name, "control", "peak_f1"), runs(name, "finetuned", "peak_f1")),),
    )


def characters_worse(runs: _Runs, letters: str, full: str) -> Finding:
    return Finding(
        STUDY,
        f"All three transfer types do worse on the letters of set 3 than on the full set 2: "
        f"a lower peak F1 ({letters} vs {full}).",
        _source("IV.C", CHARACTERS_WORSE),
        "no number per mode: stated in the text",
        tuple(less(runs(letters, m, "peak_f1"), runs(full, m, "peak_f1")) for m in MODES),
    )


def frozen_set1(runs: _Runs, name: str, others: Sequence[str]) -> Finding:
    frozen = runs(name, "frozen", "peak_f1")
    return Finding(
        STUDY,
        f"Frozen transfer does far better on set 1 (source and target tasks overlap) than "
        f"on the other sets ({name}).",
        _source("IV.D", FROZEN_SET1),
        "frozen on set 1 'substantially better' than on sets 2 and 3; set 3 peak F1 about 0.58",
        tuple(greater(frozen, runs(other, "frozen", "peak_f1")) for other in others),
    )


def row_findings(
    evals: Sequence[Mapping], sets: Mapping[str, Mapping]
) -> dict[tuple[str, str], Finding]:
    """(set, mode) of reports/transfer.csv -> the finding its row checks."""
    runs = _Runs(evals, sets)
    out: dict[tuple[str, str], Finding] = {}
    for name, spec in sets.items():
        paper_set = spec.get("paper_set")
        if paper_set not in PAPER_SETS:
            continue
        out[(name, "frozen")] = frozen_worst(runs, name, paper_set)
        if paper_set == 1:
            out[(name, "finetuned")] = starts_better(runs, name)
            out[(name, "control")] = same_thereafter(runs, name, 1)
        elif paper_set == 2:
            out[(name, "control")] = out[(name, "finetuned")] = same_thereafter(runs, name, 2)
        else:
            out[(name, "control")] = out[(name, "finetuned")] = slightly_worse(runs, name)
    return out


def findings(evals: Sequence[Mapping], sets: Mapping[str, Mapping]) -> list[Finding]:
    """The claims of section IV from the runs' eval records and the config's sets
    (``paper_set`` says which of the paper's three sets a configured set stands for)."""
    runs = _Runs(evals, sets)
    out = [
        frozen_worst(runs, name, paper_set)
        for paper_set in PAPER_SETS
        for name in sets_of(sets, paper_set)
    ]
    out += [starts_better(runs, name) for name in sets_of(sets, 1)]
    out += [same_thereafter(runs, name, p) for p in (1, 2) for name in sets_of(sets, p)]
    out += [slightly_worse(runs, name) for name in sets_of(sets, 3)]
    out += [
        characters_worse(runs, letters, full)
        for letters in sets_of(sets, 3)
        for full in sets_of(sets, 2)
    ]
    others = [n for p in (2, 3) for n in sets_of(sets, p)]
    out += [frozen_set1(runs, name, others) for name in sets_of(sets, 1)]
    return out
