"""``TripletEvaluator``: how often an anchor is more similar to its positive than to its negative."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from sentrs import ops
from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.base.similarity import SimilarityFunction

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["TripletEvaluator"]

logger = logging.getLogger(__name__)


class TripletEvaluator(BaseEvaluator):
    """Accuracy of ``similarity(anchor, positive) > similarity(anchor, negative) + margin`` over the triplets.

    Anchors are encoded with ``encode_query`` and positives / negatives with ``encode_document``, so a model's
    ``query`` / ``document`` prompts apply. For each similarity function in ``similarity_fn_names`` (default: the
    model's ``similarity_fn_name``) the metric is ``<fn>_accuracy``, plus ``max_accuracy`` over several functions;
    keys are prefixed with ``name + "_"`` when ``name`` is set. The primary metric is
    ``<main_similarity_function>_accuracy``, else ``max_accuracy`` (several functions) or ``<fn>_accuracy``.

    Args:
        anchors: the anchor of each triplet (e.g. a query).
        positives: the positive of each triplet.
        negatives: the negative of each triplet.
        main_similarity_function: the function whose accuracy is the primary metric.
        margin: how much more similar the positive must be: one number for every function, or a dict from
            function name (``"cosine"``, ``"dot"``, ``"manhattan"``, ``"euclidean"``) to margin (others 0).
        name: prefix of the metric keys and part of the CSV file name.
        batch_size: encoding batch size.
        show_progress_bar: show a progress bar while encoding.
        write_csv: append the accuracies to ``triplet_evaluation[_<name>]_results.csv`` in ``output_path``.
        truncate_dim: truncate embeddings to this many dimensions; None keeps the model's setting.
        similarity_fn_names: the functions to score with; None uses ``[main_similarity_function]`` if set, else
            the model's ``similarity_fn_name`` at the first call.
        main_distance_function: deprecated name of ``main_similarity_function``.

    Raises:
        ValueError: the three lists differ in length, a similarity function name or margin key is unknown, or
            ``margin`` is neither a number nor a dict.
    """

    #: The names ``similarity_fn_names`` and ``margin`` keys may use, in the reference's order (as shown in error
    #: messages); a subclass for another kind of embedding names its own similarities here.
    SIMILARITY_FN_NAMES: ClassVar[tuple[str, ...]] = ("cosine", "dot", "manhattan", "euclidean")

    def __init__(
        self,
        anchors: Sequence[str],
        positives: Sequence[str],
        negatives: Sequence[str],
        main_similarity_function: str | SimilarityFunction | None = None,
        margin: float | dict[str, float] | None = None,
        name: str = "",
        batch_size: int = 16,
        show_progress_bar: bool | None = False,
        write_csv: bool = True,
        truncate_dim: int | None = None,
        similarity_fn_names: list[Literal["cosine", "dot", "euclidean", "manhattan"]] | None = None,
        main_distance_function: str | SimilarityFunction | None = "deprecated",
    ) -> None:
        super().__init__()
        if len(anchors) != len(positives) or len(anchors) != len(negatives):
            raise ValueError(
                "anchors, positives and negatives must have the same length, "
                f"got {len(anchors)}, {len(positives)} and {len(negatives)}"
            )
        self.anchors = anchors
        self.positives = positives
        self.negatives = negatives
        self.name = name
        self.truncate_dim = truncate_dim
        if main_distance_function != "deprecated" and main_similarity_function is None:
            main_similarity_function = main_distance_function
            logger.warning(
                "The 'main_distance_function' parameter is deprecated. Please use 'main_similarity_function' "
                "instead. 'main_distance_function' will be removed in a future release."
            )
        self.main_similarity_function = (
            SimilarityFunction(main_similarity_function) if main_similarity_function else None
        )
        self.similarity_fn_names: list[str] = list(similarity_fn_names or [])
        if not self.similarity_fn_names and self.main_similarity_function is not None:
            self.similarity_fn_names = [self.main_similarity_function.value]
        expected = list(self.SIMILARITY_FN_NAMES)
        if unknown := sorted(set(self.similarity_fn_names) - set(expected)):
            raise ValueError(f"`similarity_fn_names` got unexpected names {unknown}, expected names in {expected}.")
        self.margin: dict[str, float] = self._margins(margin)
        self.batch_size = batch_size
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        self.show_progress_bar = show_progress_bar
        self.csv_file: str = "triplet_evaluation" + (f"_{name}" if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self.write_csv = write_csv
        self._append_csv_headers(self.similarity_fn_names)

    @classmethod
    def _margins(cls, margin: float | dict[str, float] | None) -> dict[str, float]:
        """One margin per name of ``SIMILARITY_FN_NAMES``, 0 where not given."""
        expected = list(cls.SIMILARITY_FN_NAMES)
        if margin is None:
            return dict.fromkeys(expected, 0)
        if isinstance(margin, (int, float)):
            return dict.fromkeys(expected, margin)
        if isinstance(margin, dict):
            if unknown := sorted(set(margin) - set(expected)):
                raise ValueError(f"`margin` got unexpected keys {unknown}, expected keys in {expected}.")
            return {**dict.fromkeys(expected, 0), **margin}
        raise ValueError(f"`margin` should be a float or a dictionary with keys in {expected}.")

    def _append_csv_headers(self, similarity_fn_names: list[str]) -> None:
        self.csv_headers.extend(f"accuracy_{fn}" for fn in similarity_fn_names)

    @classmethod
    def from_input_examples(cls, examples: Sequence[Any], **kwargs: Any) -> TripletEvaluator:
        """Builds the evaluator from objects whose ``texts`` are (anchor, positive, negative)."""
        return cls(
            [example.texts[0] for example in examples],
            [example.texts[1] for example in examples],
            [example.texts[2] for example in examples],
            **kwargs,
        )

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encodes the triplets, scores both pairs of each and returns the accuracies (see the class docstring)."""
        logger.info(
            "TripletEvaluator: Evaluating the model on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps, self.truncate_dim),
        )
        anchors = self.embed_inputs(model, self.anchors, encode_fn_name="query")
        positives = self.embed_inputs(model, self.positives, encode_fn_name="document")
        negatives = self.embed_inputs(model, self.negatives, encode_fn_name="document")
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self._append_csv_headers(self.similarity_fn_names)

        metrics: dict[str, float] = {}
        for fn_name in self.similarity_fn_names:
            positive_scores = self._pairwise_scores(anchors, positives, fn_name)
            negative_scores = self._pairwise_scores(anchors, negatives, fn_name)
            # float32 throughout, as the reference's tensors: the margin is added in float32 and the mean is
            # count / n rounded to float32.
            correct = positive_scores > negative_scores + np.float32(self.margin[fn_name])
            accuracy = float(np.float32(np.count_nonzero(correct)) / np.float32(len(correct)))
            metrics[f"{fn_name}_accuracy"] = accuracy
            logger.info("Accuracy %s Similarity:\t%.2f%%", fn_name.capitalize(), accuracy * 100)

        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *metrics.values()])

        if len(self.similarity_fn_names) > 1:
            metrics["max_accuracy"] = max(metrics.values())
        if self.main_similarity_function is not None:
            self.primary_metric = f"{self.main_similarity_function.value}_accuracy"
        elif len(self.similarity_fn_names) > 1:
            self.primary_metric = "max_accuracy"
        else:
            self.primary_metric = f"{self.similarity_fn_names[0]}_accuracy"
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _pairwise_scores(self, embeddings1: Any, embeddings2: Any, similarity_fn_name: str) -> np.ndarray:
        """``(n,)`` float32 similarity of each pair of rows (the sparse evaluators score their own rows)."""
        return ops.similarity_pairwise(embeddings1, embeddings2, similarity_fn_name)

    def embed_inputs(
        self,
        model: SentenceTransformer,
        sentences: str | Sequence[str],
        encode_fn_name: Literal["query", "document"] | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """``encode_query`` / ``encode_document`` / ``encode`` with this evaluator's batch size and truncation."""
        if encode_fn_name == "query":
            encode_fn = model.encode_query
        elif encode_fn_name == "document":
            encode_fn = model.encode_document
        else:
            encode_fn = model.encode
        return encode_fn(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """``margin`` when any is non-zero, and ``truncate_dim`` where set."""
        config: dict[str, Any] = {}
        if self.margin != dict.fromkeys(self.SIMILARITY_FN_NAMES, 0):
            config["margin"] = self.margin
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config
