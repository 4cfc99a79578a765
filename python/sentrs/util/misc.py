"""Small helpers: class paths and names, logging and caching switches, a CSV append."""

from __future__ import annotations

import csv
import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sentrs._unavailable import unavailable_getattr
from sentrs.base.registry import fullname, import_from_string

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "append_to_last_row",
    "check_teacher_targets",
    "disable_datasets_caching",
    "disable_logging",
    "fullname",
    "import_from_string",
    "similarity_fct_name",
]

__getattr__ = unavailable_getattr(
    __name__,
    {
        "ORIGINAL_TRANSFORMER_MODELS": "the reference's list of model names without an organisation (sentrs "
        "matches name families, see sentrs.base.hub)",
        "import_module_class": "module classes from custom code",
    },
)

logger = logging.getLogger(__name__)


def similarity_fct_name(similarity_fct: Callable[..., Any]) -> str:
    """A readable name of a loss's scoring function, for configs and model cards.

    ``functools.partial`` shows its keywords (``cos_sim(scale=2.0)``), an object with ``get_config_dict`` its
    config, and a model's ``similarity``/``similarity_pairwise`` method the function its ``similarity_fn_name``
    selects.
    """
    if isinstance(similarity_fct, functools.partial):
        inner = similarity_fct.func
        name = getattr(inner, "__name__", type(inner).__name__)
        return _with_arguments(name, similarity_fct.keywords)
    name = getattr(similarity_fct, "__name__", type(similarity_fct).__name__)
    owner = getattr(similarity_fct, "__self__", None)
    fn_name = getattr(owner, "similarity_fn_name", None)
    if name in ("similarity", "similarity_pairwise") and fn_name is not None:
        from sentrs.util.similarity import SimilarityFunction

        if name == "similarity":
            return SimilarityFunction.to_similarity_fn(fn_name).__name__
        return SimilarityFunction.to_similarity_pairwise_fn(fn_name).__name__
    config = getattr(similarity_fct, "get_config_dict", None)
    if config is not None:
        return _with_arguments(name, config(), always=True)
    return str(name)


def check_teacher_targets(
    teacher_probabilities: Tensor, teacher_logits: Tensor, teacher_temperature: float, loss_name: str
) -> None:
    """Checks the teacher target of a distillation loss (the losses call it on their first batch only).

    NaN teacher scores fail: they would make the loss and every gradient NaN. A softmax target with exact zeros
    (the temperature is too low for the spread of the scores, so those candidates get no gradient) logs a warning
    with the temperature that avoids it. Infinite scores are taken as candidates masked out on purpose and pass.
    Reading the tensors synchronises an accelerator, hence once per loss.

    Args:
        teacher_probabilities: ``(batch_size, n)`` the softmaxed teacher target the loss uses.
        teacher_logits: ``(batch_size, n)`` the raw teacher scores.
        teacher_temperature: the temperature already applied to ``teacher_logits``.
        loss_name: the loss's class name, which opens the messages.

    Raises:
        ValueError: the teacher scores contain NaN.
    """
    scores = teacher_logits.detach().float()
    if scores.isnan().any():
        raise ValueError(
            f"{loss_name}: the teacher scores contain NaN, so the loss and every gradient would be "
            "NaN after the first backward. Check the column holding your teacher scores."
        )
    if scores.isinf().any():
        return
    zeros = int((teacher_probabilities == 0).sum())
    if zeros:
        spread = (scores.max(dim=-1).values - scores.min(dim=-1).values).max().item()
        logger.warning(
            f"{loss_name}: teacher_temperature={teacher_temperature} underflows {zeros} of "
            f"{teacher_probabilities.numel()} teacher scores to exactly zero, so those candidates carry no gradient. "
            f"The widest candidate row spans {spread:.1f}, and a float32 softmax underflows once a row's spread "
            f"divided by the temperature exceeds about 100. Raise teacher_temperature above {spread / 100:.3g}."
        )


def _with_arguments(name: str, arguments: dict[str, Any], always: bool = False) -> str:
    shown = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
    return f"{name}({shown})" if shown or always else name


@contextmanager
def disable_datasets_caching() -> Iterator[None]:
    """Turns off the ``datasets`` cache for the block (when it was on), and back on after it."""
    import datasets

    was_enabled = datasets.is_caching_enabled()
    if was_enabled:
        datasets.disable_caching()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_caching()


@contextmanager
def disable_logging(highest_level: int = logging.CRITICAL) -> Iterator[None]:
    """Drops every log record up to ``highest_level`` (all of them by default) during the block."""
    previous = logging.root.manager.disable
    logging.disable(highest_level)
    try:
        yield
    finally:
        logging.disable(previous)


def append_to_last_row(csv_path: str, additional_data: list[Any]) -> bool:
    """Extends the last data row of a CSV file (with a header row) by ``additional_data``, in place.

    Returns:
        True when the file had a data row to extend, False when it held the header only (it is left as is).
    """
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if len(rows) < 2:
        return False
    rows[-1].extend(additional_data)
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return True
