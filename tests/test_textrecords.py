"""Decode and parse errors in a user's text copy name the file and line, with the record
(issue 25, item 3): the shared helper, and the MADBase CSV mirror's reader.

The MADBase CSV layout (no header, 784 column-major pixel columns; one label a row) is
the one tests/_datasets_support.py's madbase_csv_zip writes (see its source notes); the
pixels are generated.
"""

from __future__ import annotations

import pytest

from hwbench.datasets.madbase import MadbaseFormatError, read_madbase_csv
from hwbench.datasets.textrecords import (
    locate_decode_error,
    locate_parse_error,
    numbered_lines,
    record_error,
)
from tests._datasets_support import madbase_csv_zip, zip_bytes


def test_numbered_lines_decode_per_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"a01-000u-00\r\na01-000u-01\n\xffbad\n")
    lines = numbered_lines(path, error=LookupError, hint="use the original")
    assert next(lines) == (1, "a01-000u-00") and next(lines) == (2, "a01-000u-01")
    with pytest.raises(LookupError) as err:
        next(lines)
    assert f"{path}:3: byte ff at column 1 is not valid utf-8; use the original" in str(err.value)
    assert "b'\\xffbad'" in str(err.value)


def test_record_error_cuts_a_long_record():
    exc = record_error("f.csv", 7, "x" * 500, "too long", ValueError)
    assert str(exc).startswith("f.csv:7: too long: 'xxx") and str(exc).endswith("...")
    assert len(str(exc)) < 160


def test_locators():
    lines = [b"1,2", b"3,\xe94", b"5,6,7"]
    exc = locate_decode_error(lines, "f.csv", "utf-8", ValueError)
    assert str(exc).startswith("f.csv:2: byte e9 at column 3 is not valid utf-8")
    message = "Error tokenizing data. C error: Expected 2 fields in line 3, saw 3"
    exc = locate_parse_error(lines, "f.csv", message, ValueError)
    assert str(exc) == f"f.csv:3: {message}: b'5,6,7'"
    assert str(locate_parse_error(lines, "f.csv", "no line here", ValueError)) == (
        "f.csv: no line here"
    )


def madbase_members(edit):
    """The CSV mirror's members, the train images' bytes passed through ``edit``."""
    import io
    import zipfile

    archive, _ = madbase_csv_zip(n_train=5, n_test=3)
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    name = next(n for n in members if "csvTrainImages" in n)
    members[name] = edit(members[name])
    return zip_bytes(members)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (  # a non-UTF-8 byte on the third image's line
            lambda data: b"\n".join(
                line + (b"\xe9" if k == 2 else b"") for k, line in enumerate(data.split(b"\n"))
            ),
            r"train images:3: byte e9 at column \d+ is not valid utf-8",
        ),
        (  # a cell that is no number on line 4
            lambda data: b"\n".join(
                line.replace(b",", b",x", 1) if k == 3 else line
                for k, line in enumerate(data.split(b"\n"))
            ),
            r"train images:4: non-numeric or empty cells: b'\d+,x",
        ),
        (  # one cell too many on line 2
            lambda data: b"\n".join(
                line + b",0" if k == 1 else line for k, line in enumerate(data.split(b"\n"))
            ),
            r"train images:2: not a numeric CSV \(Error tokenizing data.*line 2",
        ),
    ],
    ids=["decode", "cell", "fields"],
)
def test_madbase_csv_errors_name_the_line(tmp_path, edit, expected):
    archive = tmp_path / "madbase_csv.zip"
    archive.write_bytes(madbase_members(edit))
    with pytest.raises(MadbaseFormatError, match=expected):
        read_madbase_csv(archive)
