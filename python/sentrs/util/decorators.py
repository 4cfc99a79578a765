"""Decorators that keep old call forms of the reference's public methods working."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["save_to_hub_args_decorator"]

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
