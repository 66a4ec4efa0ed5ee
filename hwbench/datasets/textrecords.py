"""Text records of a user's dataset copy, with every decode or parse error as ``file:line``.

A reader of a user's copy (IAM's ``words.txt``, a CSV mirror, IFN/ENIT's ``.tru``
files) must say which file and which line a bad byte or a malformed record is on,
and show the record: ``UnicodeDecodeError ... position 355`` names neither, and a
100 GB copy cannot be searched by hand. :func:`numbered_lines` decodes one line at
a time; :func:`record_error` formats a parse error; :func:`locate_decode_error`
and :func:`locate_parse_error` turn a whole-file library error (pandas) into one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

SHOWN = 120  # characters of a record an error shows


def shown(record: str | bytes) -> str:
    """``record`` as an error shows it: repr'd (bytes stay visible), cut at SHOWN."""
    text = repr(record)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def record_error(
    where: str | os.PathLike,
    number: int,
    record: str | bytes,
    problem: str,
    error: type[Exception] = ValueError,
) -> Exception:
    """``error("<where>:<number>: <problem>: <record>")``, to raise."""
    return error(f"{where}:{number}: {problem}: {shown(record)}")


def decode_line(
    raw: bytes,
    where: str | os.PathLike,
    number: int,
    encoding: str,
    error: type[Exception],
    hint: str = "",
) -> str:
    """One line's bytes decoded, or ``error`` naming the file, line, column and byte."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.end]
        problem = f"byte {bad.hex(' ')} at column {exc.start + 1} is not valid {encoding}" + (
            f"; {hint}" if hint else ""
        )
        raise record_error(where, number, raw, problem, error) from exc


def numbered_lines(
    path: str | os.PathLike,
    encoding: str = "utf-8",
    error: type[Exception] = ValueError,
    hint: str = "",
) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line without its end) of a text file, streamed.

    A line that does not decode raises ``error`` naming ``path:line``, the byte and
    the record (``hint``: what the user should do about it).
    """
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, 1):
            line = decode_line(raw.rstrip(b"\r\n"), path, number, encoding, error, hint)
            yield number, line


def locate_decode_error(
    lines: Iterable[bytes],
    where: str | os.PathLike,
    encoding: str,
    error: type[Exception],
    hint: str = "",
) -> Exception:
    """The ``file:line`` error of the first line of ``lines`` that does not decode, for a
    library that reported a decode error somewhere in the file (a whole-file error when
    every line decodes alone: a multi-byte character split across lines)."""
    for number, raw in enumerate(lines, 1):
        try:
            decode_line(raw.rstrip(b"\r\n"), where, number, encoding, error, hint)
        except error as exc:
            return exc
    return error(f"{where}: not valid {encoding}" + (f"; {hint}" if hint else ""))


_LINE_OF = re.compile(r"\bline (\d+)\b")


def locate_parse_error(
    lines: list[bytes],
    where: str | os.PathLike,
    message: str,
    error: type[Exception],
    offset: int = 0,
) -> Exception:
    """``error`` for a parser message that names a line (pandas: "... in line 5, saw 786"),
    with that line's record; the message alone when it names none. ``offset``: lines
    before the ones the parser counted (a header it skipped)."""
    found = _LINE_OF.search(message)
    if found:
        number = int(found.group(1)) + offset
        if 1 <= number <= len(lines):
            return record_error(where, number, lines[number - 1].rstrip(b"\r\n"), message, error)
    return error(f"{where}: {message}")
