"""Labels as words for the OneModel study: the sensory discriminator and the vocabulary.

Every class of every task is a word ("three", "A", "le", "apple", "yes"). Tasks may
share words: the digit three of the Latin, Arabic and Kannada scripts is "three"
in all three. The sensory discriminator gamma turns (word, task) into the label
string the output layer learns (eqs. 6-10 of the paper):

- ``none``:   word
- ``concat``: word || task                         (eq. 8: "sky" + "speech")
- ``djb2``:   word || str(DJB2(word || task) mod p) (eq. 10)

DJB2 is Bernstein's hash, h = 5381, h = 33 h + ord(c) per character, on Python's
unbounded integers. That is what reproduces the hash codes of the paper's Fig. 5
(e.g. DJB2("payspeech") mod 1000003 = 99881); the authors' repository script masks
to 32 bits, which does not, and the 19-digit code printed in eq. 11 matches neither.
p defaults to the first prime above the vocabulary size (the number of (task, word)
classes), as the paper suggests; a configured prime overrides it.

The PHOC alphabet is the union of the symbols of all label strings, so the hash
digits are in it whenever a hashed string is.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hwbench.studies.onemodel.phoc import check_levels, phoc_alphabet, phoc_matrix

DISCRIMINATORS = ("none", "concat", "djb2")


def djb2(text: str) -> int:
    """Bernstein's DJB2 hash of ``text`` (5381, times 33 plus the code point), unbounded."""
    h = 5381
    for char in text:
        h = h * 33 + ord(char)
    return h


def is_prime(n: int) -> bool:
    """Trial division; the numbers here are vocabulary sizes or configured primes."""
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    k = 3
    while k * k <= n:
        if n % k == 0:
            return False
        k += 2
    return True


def next_prime(n: int) -> int:
    """The first prime strictly greater than ``n``."""
    k = max(int(n) + 1, 2)
    while not is_prime(k):
        k += 1
    return k


def discriminate(word: str, task: str, method: str, prime: int | None = None) -> str:
    """The label string gamma(word, task) for discriminator ``method``."""
    if method == "none":
        return word
    if method == "concat":
        return word + task
    if method == "djb2":
        if prime is None:
            raise ValueError("the djb2 discriminator needs a prime modulus")
        return word + str(djb2(word + task) % prime)
    raise ValueError(f"unknown discriminator {method!r}; choose from {list(DISCRIMINATORS)}")


def count_collisions(task_keys: Mapping[str, Iterable]) -> int:
    """How many distinct keys (label strings, PHOC bytes...) belong to two or more tasks.

    ``task_keys`` maps a task to the keys of its classes; a key repeated inside one
    task counts once for that task.
    """
    owners: dict = defaultdict(set)
    for task, keys in task_keys.items():
        for key in keys:
            owners[key].add(task)
    return sum(1 for tasks in owners.values() if len(tasks) > 1)


@dataclass
class Vocabulary:
    """All (task, word) classes of a model, their label strings and PHOCs.

    Entries are ordered task by task (in the given task order), words in each
    task's order; ``phocs`` has one row per entry.
    """

    tasks: list[str]
    tasks_of: list[str]  # entry -> task
    words: list[str]  # entry -> word
    strings: list[str]  # entry -> label string (after the discriminator)
    alphabet: str
    levels: list[int]
    discriminator: str
    prime: int | None
    phocs: np.ndarray  # float32, entries x phoc size
    _index: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        pairs = zip(self.tasks_of, self.words, strict=True)
        self._index = {pair: k for k, pair in enumerate(pairs)}

    def __len__(self) -> int:
        return len(self.words)

    @property
    def phoc_size(self) -> int:
        return self.phocs.shape[1]

    def entries(self, task: str) -> np.ndarray:
        """Entry indices of ``task``'s classes."""
        if task not in self.tasks:
            raise KeyError(f"task {task!r} is not in this vocabulary ({self.tasks})")
        return np.flatnonzero(np.asarray(self.tasks_of) == task)

    def index(self, task: str, words: Sequence[str]) -> np.ndarray:
        """Entry index of each word of ``task``; an unknown word is a clear error."""
        try:
            return np.asarray([self._index[(task, w)] for w in words], dtype=np.int64)
        except KeyError as err:
            raise KeyError(
                f"word {err.args[0][1]!r} is not a class of task {task!r}; "
                f"its words are {self.words_of(task)[:20]}..."
            ) from None

    def words_of(self, task: str) -> list[str]:
        return [self.words[k] for k in self.entries(task)]

    def strings_of(self, task: str) -> list[str]:
        return [self.strings[k] for k in self.entries(task)]

    def collisions(self) -> dict[str, int]:
        """Cross-task collisions of the label strings and of their PHOC vectors."""
        by_task_str = {t: self.strings_of(t) for t in self.tasks}
        by_task_phoc = {t: [self.phocs[k].tobytes() for k in self.entries(t)] for t in self.tasks}
        return {"strings": count_collisions(by_task_str), "phocs": count_collisions(by_task_phoc)}


def build_vocabulary(
    task_words: Mapping[str, Sequence[str]],
    levels: Sequence[int],
    discriminator: str = "djb2",
    prime: int | None = None,
    unhashed: Iterable[str] = (),
) -> Vocabulary:
    """The vocabulary of a model trained on ``task_words`` (task -> its class words).

    ``unhashed`` names tasks whose words stay plain whatever the discriminator (the
    paper does not hash its handwriting word-spotting tasks). ``prime`` None means
    the first prime above the number of classes (only used by ``djb2``).
    """
    if discriminator not in DISCRIMINATORS:
        raise ValueError(
            f"unknown discriminator {discriminator!r}; choose from {list(DISCRIMINATORS)}"
        )
    unhashed = set(unhashed)
    unknown = unhashed - set(task_words)
    if unknown:
        raise ValueError(f"unhashed tasks {sorted(unknown)} are not among {list(task_words)}")
    tasks, words = [], []
    for task, task_list in task_words.items():
        unique = list(dict.fromkeys(task_list))  # keep order, drop repeats
        if not unique:
            raise ValueError(f"task {task!r} has no class words")
        tasks += [task] * len(unique)
        words += unique
    if discriminator == "djb2" and prime is None:
        prime = next_prime(len(words))
    if discriminator == "djb2" and not is_prime(int(prime)):
        raise ValueError(f"configured prime {prime} is not prime")
    strings = [
        w if t in unhashed else discriminate(w, t, discriminator, prime)
        for t, w in zip(tasks, words, strict=True)
    ]
    levels = check_levels(levels)
    alphabet = phoc_alphabet(strings)
    return Vocabulary(
        tasks=list(task_words),
        tasks_of=tasks,
        words=words,
        strings=strings,
        alphabet=alphabet,
        levels=levels,
        discriminator=discriminator,
        prime=prime if discriminator == "djb2" else None,
        phocs=phoc_matrix(strings, alphabet, levels),
    )
