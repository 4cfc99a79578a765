"""``SequentialEvaluator``: several evaluators run one after another, their metrics merged into one dict."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sentrs.base.evaluation.evaluator import BaseEvaluator

__all__ = ["SequentialEvaluator"]


def _last_score(scores: list[float]) -> float:
    return scores[-1]


class SequentialEvaluator(BaseEvaluator):
    """Runs each evaluator in turn with the same arguments and returns all their metrics, plus
    ``sequential_score`` (the primary metric): ``main_score_function`` applied to the list of each evaluator's
    primary score (the value of its :attr:`primary_metric`, else its first metric, else the single float it
    returned).

    A sub-evaluator that returns a float instead of a dict contributes the metric ``evaluator_<index>``. Metrics
    with the same key from two evaluators keep the later one's value.

    Args:
        evaluators: the evaluators, run in this order.
        main_score_function: maps the list of primary scores to ``sequential_score``; default: the last one.
            With no evaluators, ``sequential_score`` is 0.0.
    """

    def __init__(
        self, evaluators: Iterable[BaseEvaluator], main_score_function: Callable[[list[float]], float] = _last_score
    ) -> None:
        super().__init__()
        self.evaluators: list[BaseEvaluator] = list(evaluators)
        self.main_score_function = main_score_function

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Runs every evaluator on ``model`` and merges their metrics (see the class docstring)."""
        merged: dict[str, Any] = {}
        primary_scores: list[float] = []
        for index, evaluator in enumerate(self.evaluators):
            result = evaluator(model, output_path, epoch, steps)
            if isinstance(result, dict):
                primary = getattr(evaluator, "primary_metric", None)
                primary_scores.append(result[primary] if primary is not None else next(iter(result.values())))
                merged.update(result)
            else:
                primary_scores.append(result)
                merged[f"evaluator_{index}"] = result
        self.primary_metric = "sequential_score"
        merged["sequential_score"] = self.main_score_function(primary_scores) if primary_scores else 0.0
        return merged
