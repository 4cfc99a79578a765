"""``EmbeddingSimilarityEvaluator``: how well embedding similarities of sentence pairs correlate with gold scores."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from sentrs import ops
from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.base.similarity import SimilarityFunction

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["EmbeddingSimilarityEvaluator"]

logger = logging.getLogger(__name__)

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]


class EmbeddingSimilarityEvaluator(BaseEvaluator):
    """Pearson and Spearman correlation between the model's similarity of each sentence pair and the gold score.

    For each similarity function in ``similarity_fn_names`` (default: the model's ``similarity_fn_name``) the
    metrics are ``pearson_<fn>`` and ``spearman_<fn>``, plus ``pearson_max`` / ``spearman_max`` over several
    functions; every key is prefixed with ``name + "_"`` when ``name`` is set. The primary metric is
    ``spearman_<main_similarity>``, else ``spearman_max`` (several functions) or ``spearman_<fn>``.

    Args:
        sentences1: the first sentence of each pair.
        sentences2: the second sentence of each pair.
        scores: the gold similarity of each pair.
        batch_size: encoding batch size.
        main_similarity: the function whose Spearman correlation is the primary metric (``"cosine"``, ``"dot"``,
            ``"euclidean"``, ``"manhattan"`` or a :class:`SimilarityFunction`).
        similarity_fn_names: the functions to score with; None uses ``[main_similarity]`` if set, else the
            model's ``similarity_fn_name`` at the first call.
        name: prefix of the metric keys and part of the CSV file name.
        show_progress_bar: show a progress bar while encoding.
        write_csv: append the metrics to ``similarity_evaluation[_<name>][_<precision>]_results.csv`` in
            ``output_path`` on each call.
        precision: quantise the (normalised) embeddings before scoring; packed binary embeddings are unpacked
            to one float per bit.
        truncate_dim: truncate embeddings to this many dimensions; None keeps the model's setting.

    Raises:
        ValueError: the three lists differ in length, or a similarity function name is unknown.
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        batch_size: int = 16,
        main_similarity: str | SimilarityFunction | None = None,
        similarity_fn_names: list[Literal["cosine", "euclidean", "manhattan", "dot"]] | None = None,
        name: str = "",
        show_progress_bar: bool | None = False,
        write_csv: bool = True,
        precision: Precision | None = None,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        if len(sentences1) != len(sentences2) or len(sentences1) != len(scores):
            raise ValueError(
                "sentences1, sentences2 and scores must have the same length, "
                f"got {len(sentences1)}, {len(sentences2)} and {len(scores)}"
            )
        self.sentences1 = sentences1
        self.sentences2 = sentences2
        self.scores = scores
        self.write_csv = write_csv
        self.precision = precision
        self.truncate_dim = truncate_dim
        self.main_similarity = SimilarityFunction(main_similarity) if main_similarity else None
        self.similarity_fn_names: list[str] = list(similarity_fn_names or [])
        if not self.similarity_fn_names and self.main_similarity is not None:
            self.similarity_fn_names = [self.main_similarity.value]
        if unknown := sorted(set(self.similarity_fn_names) - set(ops.SIMILARITY_FN_NAMES)):
            expected = list(ops.SIMILARITY_FN_NAMES)
            raise ValueError(f"similarity_fn_names got unexpected names {unknown}, expected names in {expected}")
        self.name = name
        self.batch_size = batch_size
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        self.show_progress_bar = show_progress_bar
        self.csv_file = (
            "similarity_evaluation"
            + (f"_{name}" if name else "")
            + (f"_{precision}" if precision else "")
            + "_results.csv"
        )
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.similarity_fn_names)

    def _append_csv_headers(self, similarity_fn_names: list[str]) -> None:
        self.csv_headers.extend(f"{fn}_{metric}" for fn in similarity_fn_names for metric in ("pearson", "spearman"))

    @classmethod
    def from_input_examples(cls, examples: Sequence[Any], **kwargs: Any) -> EmbeddingSimilarityEvaluator:
        """Builds the evaluator from objects with ``texts`` (two sentences) and ``label`` (the gold score)."""
        return cls(
            [example.texts[0] for example in examples],
            [example.texts[1] for example in examples],
            [example.label for example in examples],
            **kwargs,
        )

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encodes both sides, scores each pair and returns the correlations (see the class docstring)."""
        logger.info(
            "EmbeddingSimilarityEvaluator: Evaluating the model on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps, self.truncate_dim),
        )
        embeddings1, embeddings2 = self._pair_embeddings(model)
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self._append_csv_headers(self.similarity_fn_names)

        labels = np.asarray(self.scores, dtype=np.float64)
        metrics: dict[str, Any] = {}
        for fn_name in self.similarity_fn_names:
            predicted = self._pairwise_scores(embeddings1, embeddings2, fn_name).astype(np.float64)
            pearson, spearman = pearson_correlation(labels, predicted), spearman_correlation(labels, predicted)
            metrics[f"pearson_{fn_name}"] = pearson
            metrics[f"spearman_{fn_name}"] = spearman
            logger.info("%s-Similarity:\tPearson: %.4f\tSpearman: %.4f", fn_name.capitalize(), pearson, spearman)

        if output_path is not None and self.write_csv:
            row = [metrics[f"{metric}_{fn}"] for fn in self.similarity_fn_names for metric in ("pearson", "spearman")]
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *row])

        if len(self.similarity_fn_names) > 1:
            metrics["pearson_max"] = max(metrics[f"pearson_{fn}"] for fn in self.similarity_fn_names)
            metrics["spearman_max"] = max(metrics[f"spearman_{fn}"] for fn in self.similarity_fn_names)

        if self.main_similarity is not None:
            self.primary_metric = f"spearman_{self.main_similarity.value}"
        elif len(self.similarity_fn_names) > 1:
            self.primary_metric = "spearman_max"
        else:
            self.primary_metric = f"spearman_{self.similarity_fn_names[0]}"
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _pair_embeddings(self, model: SentenceTransformer) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Both sides' embeddings as float32, binary precisions unpacked to one value per bit."""
        if self.precision in ("int8", "uint8"):
            # One calibration for both sides, so a sentence gets the same quantised embedding on either side.
            both = self.embed_inputs(model, [*self.sentences1, *self.sentences2])
            first, second = both[: len(self.sentences1)], both[len(self.sentences1) :]
        else:
            first = self.embed_inputs(model, self.sentences1)
            second = self.embed_inputs(model, self.sentences2)
        if self.precision == "binary":
            first, second = first.astype(np.int16) + 128, second.astype(np.int16) + 128
        if self.precision in ("binary", "ubinary"):
            first = np.unpackbits(first.astype(np.uint8), axis=1)
            second = np.unpackbits(second.astype(np.uint8), axis=1)
        return first.astype(np.float32), second.astype(np.float32)

    def _pairwise_scores(self, embeddings1: Any, embeddings2: Any, similarity_fn_name: str) -> np.ndarray:
        """``(n,)`` float32 similarity of each pair of rows (the sparse evaluators score their own rows)."""
        return ops.similarity_pairwise(embeddings1, embeddings2, similarity_fn_name)

    def embed_inputs(self, model: SentenceTransformer, sentences: str | Sequence[str], **kwargs: Any) -> np.ndarray:
        """``model.encode`` with this evaluator's batch size, precision and truncation, as numpy."""
        return model.encode(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            precision=self.precision,
            normalize_embeddings=bool(self.precision),
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    @property
    def description(self) -> str:
        return "Semantic Similarity"

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` and ``precision``, where set."""
        return {key: getattr(self, key) for key in ("truncate_dim", "precision") if getattr(self, key) is not None}


def pearson_correlation(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    """Pearson's r of two ``(n,)`` arrays (float64); NaN when either is constant.

    Raises:
        ValueError: fewer than two values.
    """
    if len(x) < 2:
        raise ValueError(f"correlation needs at least 2 pairs, got {len(x)}")
    dx, dy = x - x.mean(), y - y.mean()
    norm_x, norm_y = float(np.linalg.norm(dx)), float(np.linalg.norm(dy))
    if norm_x == 0.0 or norm_y == 0.0:
        return float("nan")
    return float(np.clip(np.dot(dx / norm_x, dy / norm_y), -1.0, 1.0))


def spearman_correlation(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    """Spearman's rho of two ``(n,)`` arrays: Pearson's r of their ranks, ties sharing their average rank."""
    return pearson_correlation(_average_ranks(x), _average_ranks(y))


def _average_ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """1-based ranks, each run of equal values given the mean of its ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    run_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks
