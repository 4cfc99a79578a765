"""Decorators that keep old call forms of the reference's public methods working."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["deprecated_kwargs", "save_to_hub_args_decorator"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def save_to_hub_args_decorator(func: F) -> F:
    """For ``save_to_hub(self, repo_id, organization=None, token=None, ...)``: accepts the old ``repo_name=``
    keyword (as ``repo_id``, with a warning) and the old positional order, which had no ``token`` third."""

    warned = False

    @functools.wraps(func)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal warned
        repo_name = kwargs.pop("repo_name", None)
        if repo_name and "repo_id" not in kwargs:
            if not warned:
                logger.warning("save_to_hub(repo_name=...) is deprecated, use repo_id=...")
                warned = True
            kwargs["repo_id"] = repo_name
        if len(args) >= 2:
            args = (*args[:2], None, *args[2:])
        return func(self, *args, **kwargs)

    return cast(F, wrapper)


def deprecated_kwargs(**renames: str) -> Callable[[F], F]:
    """Accepts old keyword names: ``@deprecated_kwargs(old="new")`` passes ``old=`` on as ``new=``, with a warning
    (logged once per old name). When both are given, ``new=`` wins and ``old=`` is dropped."""

    def decorator(func: F) -> F:
        warned: set[str] = set()

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old not in kwargs:
                    continue
                if old not in warned:
                    warned.add(old)
                    logger.warning(
                        "The `%s` argument was renamed and is now deprecated. Please use `%s` instead.", old, new
                    )
                value = kwargs.pop(old)
                kwargs.setdefault(new, value)
            return func(*args, **kwargs)

        return cast(F, wrapper)

    return decorator
