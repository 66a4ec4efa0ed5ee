"""Job logging: every Snakemake job writes a log, with tqdm progress in it."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def job_log(path: str | os.PathLike | None, level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Send logging, stdout and stderr (where tqdm writes) to ``path`` for the block.

    With ``path`` None everything stays on the console, which is what a library
    user calling hwbench directly wants.
    """
    logger = logging.getLogger("hwbench")
    logger.setLevel(level)
    if path is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        try:
            yield logger
        finally:
            logger.removeHandler(handler)
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield logger
        except BaseException:
            logger.exception("job failed")
            raise
        finally:
            logger.removeHandler(handler)
