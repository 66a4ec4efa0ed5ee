"""The adaptation paper's findings (section 4.5, Table 3), tested on this run's resamples.

Per-resample values are the loop jobs' scores.csv (:func:`loop.resample_scores`):
base and adapted accuracy, the upper bound and the writer counts of the same
resample, so each comparison is paired. The resamples of the application writers'
split stand for seeds; they share one base CNN, so the SE leaves out the spread
of CNN training. Verdicts: :mod:`hwbench.findings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from hwbench.findings import Finding, Sample, paired_greater, sample
from hwbench.studies.adaptation.report import PAPER, TABLE_KEYS

STUDY = "adaptation"
PAPER_FILE = "adaptation.md"
IMPROVES = (
    "In the performed evaluation, the improvement method gives an increase in the precision "
    "of the base classifier of 2.36%."
)
UPPER_LIMIT = "Previous represents the upper limit for the improvement method quality."
WRITERS = (
    "There are 24 authors on whose the base classifier performs better than the presented "
    "improvement method, on 9 authors they have the same performance, while as many as on "
    "167 of them a new improvement method has better performance than the base CNN."
)
NOTE = "Resamples of the adaptation/test split stand for seeds (one base CNN)."
PAPER_NAMES = {"nist": "NIST", "deepwriting": "DeepWriting"}


def _values(scores: pd.DataFrame, metric: str, label: str, digits: int = 2) -> Sample:
    """Per resample: an accuracy in percent on the resample's test images (the fewest
    of any resample), or a count of writers out of the application writers."""
    per_resample = scores.set_index("resample")[metric] if metric in scores else None
    s = sample(label, per_resample, digits)
    if metric.startswith("writers_"):
        writers = int(scores["writers"].min()) if "writers" in scores and len(scores) else None
        return Sample(s.name, s.values, s.digits, writers, float(writers or 1))
    images = int(scores["test_images"].min()) if "test_images" in scores and len(scores) else None
    return Sample(s.name, s.values, s.digits, images, 100.0)


def _paper(papers: Mapping[str, str | None], dataset: str, text) -> str:
    """The paper's numbers for the dataset's paper row, or both rows when it has none."""
    rows = [papers[dataset]] if papers.get(dataset) else list(PAPER)
    return "; ".join(f"{PAPER_NAMES[p]}: {text(PAPER[p])}" for p in rows)


def _source(quote: str) -> str:
    return f'{PAPER_FILE}, section 4.5: "{quote}"'


def findings(
    scores: pd.DataFrame, runs: Sequence[Sequence[str]], papers: Mapping[str, str | None]
) -> list[Finding]:
    """The claims per (dataset, KNN weighting) run from the per-resample scores
    (``scores``: the scores.csv rows with ``dataset`` and ``knn_weights`` columns);
    ``papers``: dataset -> the paper's row (nist, deepwriting) or None."""
    out = []
    for dataset, weights in runs:
        mine = scores[(scores[TABLE_KEYS[0]] == dataset) & (scores[TABLE_KEYS[1]] == weights)]
        name = f"{dataset}, {weights} KNN"
        base = _values(mine, "base_acc", "base CNN accuracy")
        adapted = _values(mine, "improved_acc", "adapted accuracy")
        out.append(
            Finding(
                STUDY,
                f"Adaptation with {weights}-weighted KNNs improves on the base CNN ({name}).",
                _source(IMPROVES),
                _paper(
                    papers, dataset, lambda p: f"{p['base_acc']:.2f} -> {p['improved_acc']:.2f}"
                ),
                (paired_greater(adapted, base),),
                note=NOTE,
            )
        )
        out.append(
            Finding(
                STUDY,
                f"Adapted accuracy stays under the upper bound, where the base CNN or a "
                f"KNN is right ({name}).",
                _source(UPPER_LIMIT),
                _paper(
                    papers, dataset, lambda p: f"{p['improved_acc']:.2f} < {p['upper_bound']:.2f}"
                ),
                (paired_greater(_values(mine, "upper_bound", "upper bound"), adapted),),
                note=NOTE,
                by_construction="the adapted label is the CNN's or a KNN's, right only where "
                "the bound counts a hit",
            )
        )
        out.append(
            Finding(
                STUDY,
                f"Adaptation helps more writers than it harms ({name}).",
                _source(WRITERS),
                _paper(
                    papers,
                    dataset,
                    lambda p: (
                        f"{p['writers_improved']} improved, {p['writers_tied']} tied, "
                        f"{p['writers_worse']} worse"
                    ),
                ),
                (
                    paired_greater(
                        _values(mine, "writers_improved", "writers improved", 1),
                        _values(mine, "writers_worse", "writers worse", 1),
                    ),
                ),
                note=NOTE,
            )
        )
    return out


def from_files(
    score_files: Sequence[str], runs: Sequence[Sequence[str]], papers: Mapping[str, str | None]
) -> list[Finding]:
    """:func:`findings` of the loop jobs' scores.csv files (one per run, in ``runs``' order)."""
    frames = [
        pd.read_csv(f).assign(**dict(zip(TABLE_KEYS, run, strict=True)))
        for f, run in zip(score_files, runs, strict=True)
    ]
    scores = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=[*TABLE_KEYS, "resample"])
    )
    return findings(scores, runs, papers)
