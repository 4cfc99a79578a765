"""``BaseEvaluator``: what the trainer and the model card need from an evaluator.

An evaluator is called with a model and returns a dict of metrics (``{"sts_dev_spearman_cosine": 0.86, ...}``);
``primary_metric`` names the key used to pick the best checkpoint and ``greater_is_better`` says which way is
better. ``SentenceEvaluator`` is the reference's older name for the same class.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["BaseEvaluator", "SentenceEvaluator"]

_WORD_BOUNDARY = re.compile(r"([a-z])([A-Z])")


class BaseEvaluator:
    """Base class of every evaluator: subclasses implement :meth:`__call__`.

    Attributes:
        greater_is_better: whether a higher primary metric is better (for ``load_best_model_at_end``).
        primary_metric: the key of the returned dict that ranks models; None until the evaluator says.
    """

    def __init__(self) -> None:
        self.greater_is_better: bool = True
        self.primary_metric: str | None = None

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> float | dict[str, float]:
        """Evaluates ``model``.

        Args:
            model: the model to evaluate.
            output_path: folder for result files (CSV); None writes nothing.
            epoch: the training epoch, -1 for an evaluation outside training.
            steps: the step within the epoch, -1 for the end of the epoch.

        Returns:
            A dict of metrics, whose key :attr:`primary_metric` names the main one (or a single score).
        """
        raise NotImplementedError

    def prefix_name_to_metrics(self, metrics: dict[str, Any], name: str) -> dict[str, Any]:
        """``metrics`` with every key prefixed by ``name + "_"`` (when ``name`` is set) and values made ``float``
        where they convert; :attr:`primary_metric` gets the same prefix once."""
        if not name:
            return {key: _as_float(value) for key, value in metrics.items()}
        prefixed = {f"{name}_{key}": _as_float(value) for key, value in metrics.items()}
        primary = getattr(self, "primary_metric", None)
        if primary is not None and not primary.startswith(f"{name}_"):
            self.primary_metric = f"{name}_{primary}"
        return prefixed

    def store_metrics_in_model_card_data(
        self, model: Any, metrics: dict[str, Any], epoch: int = 0, step: int = 0
    ) -> None:
        """Hands ``metrics`` to the model's model-card data; does nothing when the model has none."""
        card_data = getattr(model, "model_card_data", None)
        if card_data is None:
            return
        card_data.set_evaluation_metrics(self, metrics, epoch, step)

    @property
    def description(self) -> str:
        """A readable name from the class name: ``BinaryClassificationEvaluator`` -> ``"Binary Classification"``
        (a leading ``CE`` reads ``CrossEncoder``)."""
        class_name = type(self).__name__
        if class_name.startswith("CE"):
            class_name = "CrossEncoder" + class_name[2:]
        class_name = class_name.partition("Evaluator")[0]
        return _WORD_BOUNDARY.sub(r"\1 \2", class_name)

    def get_config_dict(self) -> dict[str, Any]:
        """The evaluator's settings worth showing in a model card (none by default)."""
        return {}


def _as_float(value: Any) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


SentenceEvaluator = BaseEvaluator
"""The reference's older name of :class:`BaseEvaluator`."""
