"""Names the lifelong plan, job and report share (torch-free): methods, task orders.

A task order is written ``Name_Name_...`` (task names of ``lifelong.writers``), or
``curriculum``: easiest task first, computed from the data by one job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PAPER_WRITERS = ("Wang", "Shen", "Peng", "Cheng")
PAPER_ORDERS = (
    "Wang_Shen_Peng_Cheng",
    "Shen_Wang_Peng_Cheng",
    "Shen_Peng_Wang_Cheng",
    "Shen_Peng_Cheng_Wang",
)
CURRICULUM = "curriculum"
MULTITASK_ORDER = "Whole Dataset"  # the paper's "task order" of the multi-task row
SEQUENTIAL_METHODS = ("basic", "ewc")
MULTITASK = "multitask"
METHODS = (*SEQUENTIAL_METHODS, MULTITASK)
METRICS = ("acc", "bwt", "fwt")
# An order's spelling: task names (letters, digits) joined by '_'.
ORDER_PATTERN = r"[A-Za-z0-9]+(_[A-Za-z0-9]+)*"


def parse_order(order: str, writers: Mapping[str, str]) -> list[str]:
    """Task names of an order written ``Name_Name_...`` (each a key of ``writers``).

    Every task must appear exactly once, so R is square below row 0.
    """
    names = order.split("_")
    unknown = [n for n in names if n not in writers]
    if unknown:
        raise ValueError(
            f"lifelong.orders: {order!r} names {unknown}, not in lifelong.writers "
            f"{sorted(writers)}; write orders as those names joined by '_' or use "
            f"{CURRICULUM!r}"
        )
    if sorted(names) != sorted(writers):
        raise ValueError(
            f"lifelong.orders: {order!r} must name every task of lifelong.writers "
            f"{sorted(writers)} exactly once"
        )
    return names


def curriculum_order(scores: Mapping[str, Mapping[str, float]]) -> list[str]:
    """Easiest task first: highest held-out accuracy, then lowest held-out loss.

    ``scores`` maps a task name to ``{"acc": ..., "loss": ...}`` of a model
    trained on that task alone. Ties left after both fall back to the name, so
    the order is a pure function of the scores.
    """
    return sorted(scores, key=lambda name: (-scores[name]["acc"], scores[name]["loss"], name))


def resolve_order(order: str, writers: Mapping[str, str], curriculum: Sequence[str] | None):
    """Task names of ``order``; ``"curriculum"`` takes the computed ``curriculum``."""
    if order == CURRICULUM:
        if curriculum is None:
            raise ValueError("the curriculum order needs results/lifelong/curriculum/order.json")
        return parse_order("_".join(curriculum), writers)
    return parse_order(order, writers)
