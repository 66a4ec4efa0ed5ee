"""The lifelong paper's findings (section 5.5, Table 1), tested on this run's seeds.

Per-run values come from :func:`report.collect_runs` (each eval.json's ACC, BWT,
FWT); verdicts: :mod:`hwbench.findings`. Only the paper's four task orders carry its
claims; a curriculum order or another order is no claim of the paper (the multi-task
upper bound is tested against every sequential run).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from hwbench.findings import Finding, Sample, greater, no_better, sample
from hwbench.studies.lifelong.report import METHOD_LABELS, PAPER_TABLE1
from hwbench.studies.lifelong.spec import MULTITASK, PAPER_ORDERS, SEQUENTIAL_METHODS

STUDY = "lifelong"
PAPER = "lifelong.md"
WANG_LAST = "Shen_Peng_Cheng_Wang"
EWC_ACC = "it's obvious that using EWC indeed improves the average accuracy for all the tasks"
EWC_ONLY = (
    "But for backward transfer and forward transfer, EWC methods only outperforms the "
    "basic one in the Shen-Peng-Cheng-Wang task order"
)
UPPER_BOUND = (
    "the results of multi-task learning are often used as the upper bound of life-long learning"
)
WANG_BEST = (
    "The experimental results on the four sequences in Table 1 show that the best results "
    'are obtained by putting writer "Wang" at the end of the training.'
)
METRIC_NAMES = {"acc": "ACC", "bwt": "BWT", "fwt": "FWT"}


def _values(
    runs: pd.DataFrame, method: str, order: str | None, metric: str, n_test: int | None
) -> Sample:
    rows = runs[runs["method"] == method]
    if order is not None:
        rows = rows[rows["order"] == order]
    name = METHOD_LABELS[method] + (f" {order}" if order else "")
    s = sample(f"{name} {METRIC_NAMES[metric]}", rows.set_index("seed")[metric], 4)
    # ACC: the mean accuracy over all tasks' test sets; BWT, FWT: differences of accuracies
    return Sample(s.name, s.values, s.digits, n_test, 1.0, metric == "acc")


def _paper(method: str, order: str, metric: str = "acc") -> str:
    row = PAPER_TABLE1[(PAPER_TABLE1["method"] == method) & (PAPER_TABLE1["order"] == order)]
    return f"{row[metric].iloc[0]:.4f}" if len(row) else "-"


def sequential_orders(runs: pd.DataFrame) -> list[str]:
    """The task orders the sequential methods ran, in the order first met."""
    rows = runs[runs["method"].isin(SEQUENTIAL_METHODS)]
    return list(dict.fromkeys(rows["order"]))


def _source(section: str, quote: str) -> str:
    return f'{PAPER}, section {section}: "{quote}"'


def findings(runs: pd.DataFrame, n_test: int | None = None) -> list[Finding]:
    """The claims of section 5.5 from one row per run (method, order, seed, acc, bwt,
    fwt); ``n_test``: the test images of all tasks together (None: unknown)."""
    if runs.empty:
        runs = pd.DataFrame(columns=["method", "order", "sequence", "seed", "acc", "bwt", "fwt"])
    ran = sequential_orders(runs)
    paper_orders = [o for o in PAPER_ORDERS if o in ran] or list(PAPER_ORDERS)

    def v(method: str, order: str | None, metric: str = "acc") -> Sample:
        return _values(runs, method, order, metric, n_test)

    out = []
    for order in paper_orders:
        out.append(
            Finding(
                STUDY,
                f"EWC raises the average accuracy (ACC) over the basic ResNet (order {order}).",
                _source("5.5.1", EWC_ACC),
                f"ACC: EWC {_paper('ewc', order)}, basic {_paper('basic', order)}",
                (greater(v("ewc", order), v("basic", order)),),
            )
        )
    for order in paper_orders:
        paper = ", ".join(
            f"{METRIC_NAMES[m]}: EWC {_paper('ewc', order, m)}, basic {_paper('basic', order, m)}"
            for m in ("bwt", "fwt")
        )
        if order == WANG_LAST:
            claim = f"EWC outperforms the basic ResNet in BWT and FWT in the order {order}."
            tests = tuple(greater(v("ewc", order, m), v("basic", order, m)) for m in ("bwt", "fwt"))
        else:
            claim = f"EWC does not outperform the basic ResNet in BWT or FWT in the order {order}."
            tests = tuple(
                no_better(v("ewc", order, m), v("basic", order, m)) for m in ("bwt", "fwt")
            )
        out.append(Finding(STUDY, claim, _source("5.5.1", EWC_ONLY), paper, tests))
    multitask = v(MULTITASK, None)
    out.append(
        Finding(
            STUDY,
            "Multi-task learning on all writers at once scores a higher ACC than every "
            "sequential (lifelong) run.",
            _source("2.2", UPPER_BOUND),
            "ACC: multi-task 0.9958; sequential 0.9389 to 0.9694",
            tuple(
                greater(multitask, v(method, order))
                for method in SEQUENTIAL_METHODS
                for order in (ran or PAPER_ORDERS)
            ),
        )
    )
    rivals = [o for o in paper_orders if o != WANG_LAST]
    wang_last = v("ewc", WANG_LAST)
    out.append(
        Finding(
            STUDY,
            "Training the scribbling writer Wang last (Shen-Peng-Cheng-Wang) gives EWC "
            "its best ACC of the task orders.",
            _source("5.5.2", WANG_BEST),
            "EWC ACC: "
            + ", ".join(f"{o} {_paper('ewc', o)}" for o in [WANG_LAST, *PAPER_ORDERS[:3]]),
            tuple(greater(wang_last, v("ewc", o)) for o in rivals),
            note="Synthetic writers do not scribble: the embedded data cannot carry it.",
            extra=(wang_last,),  # shown even when no other order ran
        )
    )
    return out


def test_size(
    meta_csv: str,
    split_csv: str,
    writers: Mapping[str, str],
    test_split: str,
    labels: Sequence[int] | None = None,
) -> int:
    """The test images of all tasks together: rows of ``test_split`` by the configured
    writers (and of ``labels``, when set), as the jobs select them (meta.csv's
    ``writer`` and ``label``; the split file's ``index`` and ``split``)."""
    from hwbench.store import read_split

    meta = pd.read_csv(meta_csv, dtype={"writer": str}, keep_default_na=False)
    split = read_split(split_csv)
    rows = meta.iloc[split.loc[split["split"] == test_split, "index"].to_numpy()]
    keep = rows["writer"].astype(str).isin([str(w) for w in writers.values()])
    if labels is not None:
        keep &= rows["label"].astype(int).isin([int(v) for v in labels])
    return int(keep.sum())


def from_files(eval_paths, n_test: int | None = None) -> list[Finding]:
    """:func:`findings` of the runs' eval.json files."""
    from hwbench.studies.lifelong.report import collect_runs

    return findings(collect_runs(eval_paths), n_test)
