"""Opening the readers' text files (gzip when the name ends in ``.gz``, UTF-8 either way), and their CSV options."""

from __future__ import annotations

import gzip
from typing import IO, Literal

__all__ = ["CsvQuoting", "open_text"]

CsvQuoting = Literal[0, 1, 2, 3]
"""A ``csv`` quoting constant: ``QUOTE_MINIMAL``, ``QUOTE_ALL``, ``QUOTE_NONNUMERIC`` or ``QUOTE_NONE``."""


def open_text(path: str) -> IO[str]:
    """``path`` opened for reading text, through gzip when it ends in ``.gz``."""
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")
