"""``LabelAccuracyEvaluator``: classification accuracy of a ``SoftmaxLoss`` head on labelled sentence pairs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from sentrs.base.evaluation._results import append_csv_row
from sentrs.base.evaluation.evaluator import BaseEvaluator

if TYPE_CHECKING:
    from torch import Tensor
    from torch.utils.data import DataLoader

    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["LabelAccuracyEvaluator"]

logger = logging.getLogger(__name__)


class LabelAccuracyEvaluator(BaseEvaluator):
    """The share of examples whose label is the arg-max of ``softmax_model``'s logits (e.g. a trained
    :class:`~sentrs.sentence_transformer.losses.SoftmaxLoss`); the metric and primary metric is ``accuracy``
    (prefixed with ``name + "_"`` when ``name`` is set).

    The dataloader yields batches of examples with ``texts`` (one text per input column) and ``label`` (a class
    index), such as sentence-transformers' ``InputExample``. At each call its ``collate_fn`` is set to the model's
    ``smart_batching_collate`` when the model has one, else to an equivalent that preprocesses each column with
    ``model.preprocess``.

    Args:
        dataloader: the labelled examples, in batches.
        name: prefix of the metric key and part of the CSV file name.
        softmax_model: called as ``softmax_model(features, labels=None)`` and returning ``(embeddings, logits)``.
        write_csv: append the accuracy to ``accuracy_evaluation[_<name>]_results.csv`` in ``output_path``.
    """

    def __init__(
        self, dataloader: DataLoader[Any], name: str = "", softmax_model: Any = None, write_csv: bool = True
    ) -> None:
        super().__init__()
        self.dataloader = dataloader
        self.name = name
        self.softmax_model = softmax_model
        self.write_csv = write_csv
        self.csv_file = "accuracy_evaluation" + (f"_{name}" if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps", "accuracy"]
        self.primary_metric = "accuracy"

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Classifies every example and returns ``{"accuracy": correct / total}``.

        Raises:
            ValueError: no ``softmax_model`` was given, or the dataloader yields no examples.
        """
        import torch

        from sentrs.base.tensors import batch_to_device

        if self.softmax_model is None:
            raise ValueError(
                "LabelAccuracyEvaluator needs softmax_model: the classifier (e.g. a trained SoftmaxLoss) whose "
                "predictions are scored"
            )
        if hasattr(model, "eval"):
            model.eval()
        if epoch == -1:
            progress = ":"
        else:
            progress = f" after epoch {epoch}:" if steps == -1 else f" in epoch {epoch} after {steps} steps:"
        logger.info("Evaluation on the %s dataset%s", self.name, progress)

        collate: Callable[[Sequence[Any]], tuple[list[dict[str, Any]], Tensor]] | None = getattr(
            model, "smart_batching_collate", None
        )
        if collate is None:

            def collate(batch: Sequence[Any]) -> tuple[list[dict[str, Any]], Tensor]:
                return collate_examples(model, batch)

        self.dataloader.collate_fn = collate
        total = correct = 0
        for features, label_ids in self.dataloader:
            features = [batch_to_device(column, model.device) for column in features]
            label_ids = label_ids.to(model.device)
            with torch.no_grad():
                _, prediction = self.softmax_model(features, labels=None)
            total += prediction.size(0)
            correct += int(torch.argmax(prediction, dim=1).eq(label_ids).sum().item())
        if total == 0:
            raise ValueError("the dataloader yielded no examples to classify")
        accuracy = correct / total
        logger.info("Accuracy: %.4f (%d/%d)\n", accuracy, correct, total)

        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, accuracy])

        metrics = self.prefix_name_to_metrics({"accuracy": accuracy}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics


def collate_examples(model: Any, batch: Sequence[Any]) -> tuple[list[dict[str, Any]], Tensor]:
    """One features dict per input column (``model.preprocess`` of the column's texts) and the ``(n,)`` labels of
    a batch of examples with ``texts`` and ``label``.

    Raises:
        TypeError: an example lacks ``texts`` or ``label``.
    """
    import numpy as np
    import torch

    for example in batch:
        if not hasattr(example, "texts") or not hasattr(example, "label"):
            raise TypeError(
                "LabelAccuracyEvaluator's dataloader must yield examples with `texts` and `label` (such as "
                f"InputExample), got {type(example).__name__}"
            )
    columns = zip(*(example.texts for example in batch), strict=True)
    features = [model.preprocess(list(column)) for column in columns]
    labels = [example.label for example in batch]
    if labels and isinstance(labels[0], np.ndarray):
        return features, torch.from_numpy(np.stack(labels))
    return features, torch.tensor(labels)
