"""What a OneModel task is, shared by the plan, the job and the report (torch-free).

A *task* is a config entry: the processed dataset it reads, optionally a charset
that selects its classes, how its class words are made, whether it is evaluated
by classification accuracy or by word-spotting mAP, and whether the discriminator
applies to it. A *run* is ``joint_<discriminator>`` (one model on every task) or
``single_<task>`` (one task, plain words: a single-task model has nothing to
discriminate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hwbench import charsets, stopwords

KINDS = ("classify", "spot", "both")
WORD_SOURCES = ("charset", "label_name")
# Rows of the paper's Table 3 a task may stand for (report.PAPER_TABLE3 holds the numbers).
PAPER_ROWS = ("IFN", "IAM", "CIFAR-100", "dDRIVER", "SPCHD", "IMDB")
# Task keys a training job reads (query_stop_words: its evaluation); paper_row only
# changes the report, and hash only the joint runs (a single-task run has nothing to
# discriminate).
TRAIN_KEYS = (
    "name",
    "dataset",
    "charset",
    "words",
    "kind",
    "hash",
    "scale_height",
    "query_stop_words",
)

JOINT, SINGLE = "joint", "single"


@dataclass(frozen=True)
class Task:
    """One task of the study, as configured (see docs/onemodel.md)."""

    name: str
    dataset: str
    charset: str | None = None  # select these classes (hwbench.charsets); None: all rows
    words: str = "charset"  # "charset": charsets.word(label_name); "label_name": as is
    kind: str = "classify"  # "classify" -> accuracy; "spot" -> QbE / QbS mAP; "both"
    hash: bool = True  # the discriminator applies (the paper leaves handwriting plain)
    scale_height: int | None = None  # rows an image is scaled to on the canvas
    paper_row: str | None = None  # the row of the paper's Table 3 it stands for
    # spot: words of this list (hwbench/wordlists/) are never queries (IAM's protocol)
    query_stop_words: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name}: kind={self.kind!r}; use one of {list(KINDS)}")
        if self.words not in WORD_SOURCES:
            raise ValueError(
                f"task {self.name}: words={self.words!r}; use one of {list(WORD_SOURCES)}"
            )
        if self.words == "charset" and self.charset is None:
            raise ValueError(f"task {self.name}: words 'charset' needs a charset")
        if self.charset is not None:
            charsets.check_charsets([self.charset])
        if self.query_stop_words is not None:
            stopwords.check_name(self.query_stop_words, f"task {self.name}: query_stop_words")
        if self.paper_row is not None and self.paper_row not in PAPER_ROWS:
            raise ValueError(
                f"task {self.name}: paper_row={self.paper_row!r}; use one of {list(PAPER_ROWS)}"
            )

    @classmethod
    def from_config(cls, spec: Mapping) -> Task:
        return cls(**dict(spec))

    def class_words(self) -> list[str] | None:
        """The task's full class list when known up front (charset tasks), else None."""
        if self.charset is None:
            return None
        return [c.word for c in charsets.classes(self.charset)]


def parse_tasks(spec: Sequence[Mapping]) -> list[Task]:
    """Config ``tasks`` (a list of task mappings with a ``name``), in config order."""
    if not spec:
        raise ValueError("onemodel.tasks is empty: configure at least one task")
    tasks = [Task.from_config(values) for values in spec]
    names = [t.name for t in tasks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"onemodel.tasks: task names must be unique, repeated: {repeated}")
    return tasks


def run_mode(run: str) -> tuple[str, str]:
    """``(mode, discriminator or task)`` of a run name: ``joint_djb2`` -> ("joint", "djb2")."""
    mode, _, rest = run.partition("_")
    if mode not in (JOINT, SINGLE) or not rest:
        raise ValueError(f"run {run!r}: use joint_<discriminator> or single_<task>")
    return mode, rest
