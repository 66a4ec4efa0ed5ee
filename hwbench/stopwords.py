"""Stop-word lists for word-spotting queries (torch-free).

The IAM word-spotting protocol the OneModel paper follows ("To cope with the IAM
previous works [17], we remove the stop words from the query", Sec. 3.3.3) does
not query stop words: they stay in the retrieval set, but are never a query.
Lists ship as text files in ``hwbench/wordlists/`` (one word a line, each with
its source in its header); a task names one by its file stem.
"""

from __future__ import annotations

import functools
from pathlib import Path

WORDLISTS = Path(__file__).with_name("wordlists")


def available() -> list[str]:
    """Names of the shipped lists (``nltk_english``...)."""
    return sorted(p.stem for p in WORDLISTS.glob("*.txt"))


def check_name(name: str, where: str) -> None:
    """ValueError naming ``where`` when ``name`` is not a shipped list."""
    if name not in available():
        raise ValueError(f"{where}: no stop-word list {name!r}; shipped lists: {available()}")


@functools.cache
def load(name: str) -> frozenset[str]:
    """The words of list ``name`` (lower case)."""
    check_name(name, "stop words")
    lines = (WORDLISTS / f"{name}.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))


def is_query(word: str, stop_words: frozenset[str] | None) -> bool:
    """Whether ``word`` may be a query: not a stop word (compared in lower case)."""
    return not stop_words or word.lower() not in stop_words
