"""Constants and checks of the transfer study shared by plan, job and report (torch-free)."""

from __future__ import annotations

from collections.abc import Mapping

MODES = ("control", "frozen", "finetuned")
MODE_TITLES = {"control": "control", "frozen": "frozen", "finetuned": "fine-tuned"}
TRANSFER_MODES = ("frozen", "finetuned")  # the modes that start from the source model
HEAD_INITS = ("shared", "fresh")
# Split schemes read from data/splits/<dataset>/<scheme>.csv; the other one,
# "source_split" (hwbench.data.SOURCE_SPLIT), reads the dataset's own partition column.
SPLIT_FILE_SCHEMES = ("stratified", "writer")
SOURCE_SPLIT = "source_split"  # == hwbench.data.SOURCE_SPLIT (tested; data imports torch)
CLASS_ACC = "class_acc_"  # per-class accuracy columns: test_class_acc_<character>


def check_split(split: Mapping, where: str) -> None:
    """A task's ``split`` names no split as both train and test."""
    overlap = sorted(set(split.get("train") or []) & set(split["test"]))
    if overlap:
        raise ValueError(
            f"{where}: splits {overlap} are both train and test; list each in one of them"
        )
