"""Exceptions raised by sentrs.

Each one subclasses the built-in exception a user of sentence-transformers would already catch, so
``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "InputTypeError",
    "ModuleTypeError",
    "NotYetAvailableError",
    "SentrsError",
    "TokenizerError",
    "UnsupportedFeatureError",
]


class SentrsError(Exception):
    """Base class of every sentrs-specific exception."""


class TokenizerError(SentrsError, ValueError):
    """A tokenizer file could not be read, or a text could not be tokenized."""


class ModuleTypeError(SentrsError, ValueError):
    """A ``modules.json`` entry names a module class that sentrs cannot build."""


class InputTypeError(SentrsError, ValueError, TypeError):
    """An input or argument of the wrong type, e.g. ``encode([1, 2])`` or ``batch_size=1.5``.

    The reference raises ``ValueError`` for inputs it cannot read and ``TypeError`` for options of the wrong type;
    this class is both, so code written against either (or against earlier sentrs) keeps catching it.
    """


class UnsupportedFeatureError(SentrsError, NotImplementedError):
    """An option of the reference API that sentrs does not support (yet); the message says which."""


for _cls in (SentrsError, TokenizerError, ModuleTypeError, InputTypeError, UnsupportedFeatureError):
    _cls.__module__ = "sentrs.exceptions"


from sentrs._unavailable import NotYetAvailableError  # noqa: E402 - defined beside its helper
