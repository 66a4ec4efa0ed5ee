"""The lifelong paper's findings (section 5.5, Table 1), tested on this run's seeds.

Per-run values come from :func:`report.collect_runs` (each eval.json's ACC, BWT,
FWT); verdicts: :mod:`hwbench.findings`.
"""

from __future__ import annotations

import pandas as pd

from hwbench.findings import Finding, Sample, greater, sample
from hwbench.studies.lifelong.report import METHOD_LABELS, PAPER_TABLE1
from hwbench.studies.lifelong.spec import MULTITASK, PAPER_ORDERS, SEQUENTIAL_METHODS

STUDY = "lifelong"
SOURCE = "lifelong.md, section 5.5.1, Table 1"
WANG_LAST = "Shen_Peng_Cheng_Wang"


def _acc(runs: pd.DataFrame, method: str, order: str | None = None) -> Sample:
    rows = runs[runs["method"] == method]
    if order is not None:
        rows = rows[rows["order"] == order]
    name = METHOD_LABELS[method] + (f" {order}" if order else "")
    return sample(f"{name} ACC", rows.set_index("seed")["acc"], 4)


def _paper_acc(method: str, order: str) -> str:
    row = PAPER_TABLE1[(PAPER_TABLE1["method"] == method) & (PAPER_TABLE1["order"] == order)]
    return f"{row['acc'].iloc[0]:.4f}" if len(row) else "-"


def sequential_orders(runs: pd.DataFrame) -> list[str]:
    """The task orders the sequential methods ran, in the order first met."""
    rows = runs[runs["method"].isin(SEQUENTIAL_METHODS)]
    return list(dict.fromkeys(rows["order"]))


def findings(runs: pd.DataFrame) -> list[Finding]:
    """The claims of section 5.5 from one row per run (method, order, seed, acc)."""
    if runs.empty:
        runs = pd.DataFrame(columns=["method", "order", "sequence", "seed", "acc"])
    orders = sequential_orders(runs) or list(PAPER_ORDERS)
    out = []
    for order in orders:
        out.append(
            Finding(
                STUDY,
                f"EWC raises the average accuracy (ACC) over the basic ResNet (order {order}).",
                "lifelong.md, sections 5.5.1 and 6, Table 1",
                f"ACC: EWC {_paper_acc('ewc', order)}, basic {_paper_acc('basic', order)}",
                (greater(_acc(runs, "ewc", order), _acc(runs, "basic", order)),),
            )
        )
    multitask = _acc(runs, MULTITASK)
    out.append(
        Finding(
            STUDY,
            "Multi-task learning on all writers at once scores a higher ACC than every "
            "sequential (lifelong) run.",
            SOURCE,
            "ACC: multi-task 0.9958; sequential 0.9389 to 0.9694",
            tuple(
                greater(multitask, _acc(runs, method, order))
                for method in SEQUENTIAL_METHODS
                for order in orders
            ),
        )
    )
    rivals = [o for o in orders if o in PAPER_ORDERS and o != WANG_LAST]
    wang_last = _acc(runs, "ewc", WANG_LAST)
    out.append(
        Finding(
            STUDY,
            "Training the scribbling writer Wang last (Shen-Peng-Cheng-Wang) gives EWC "
            "its best ACC of the task orders.",
            "lifelong.md, section 5.5.2, Table 1",
            "EWC ACC: "
            + ", ".join(f"{o} {_paper_acc('ewc', o)}" for o in [WANG_LAST, *PAPER_ORDERS[:3]]),
            tuple(greater(wang_last, _acc(runs, "ewc", o)) for o in rivals),
            note="Synthetic writers do not scribble: the embedded data cannot carry it.",
            extra=(wang_last,),  # shown even when no other order ran
        )
    )
    return out


def from_files(eval_paths) -> list[Finding]:
    """:func:`findings` of the runs' eval.json files."""
    from hwbench.studies.lifelong.report import collect_runs

    return findings(collect_runs(eval_paths))
