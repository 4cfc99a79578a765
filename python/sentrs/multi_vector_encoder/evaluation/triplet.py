"""``MultiVectorTripletEvaluator``: how often an anchor's MaxSim with its positive beats that with its negative."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from sentrs.base.evaluation.ranking import scores_as_numpy
from sentrs.base.similarity import SimilarityFunction
from sentrs.multi_vector_encoder.evaluation.information_retrieval import (
    reject_truncate_dim,
    resolve_similarity_function,
)
from sentrs.multi_vector_encoder.model import MultiVectorEncoder
from sentrs.sentence_transformer.evaluation.triplet import TripletEvaluator

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["MultiVectorTripletEvaluator"]


class MultiVectorTripletEvaluator(TripletEvaluator):
    """Accuracy of ``MaxSim(anchor, positive) > MaxSim(anchor, negative) + margin`` over the triplets; a drop-in for
    the reference's ``MultiVectorTripletEvaluator``.

    Anchors are encoded with ``encode_query`` and positives / negatives with ``encode_document``; pairs are scored on
    the Rust MaxSim kernel. For each name in ``similarity_fn_names`` (``maxsim``, ``meanmaxsim``; default: the
    model's ``similarity_fn_name``) the metric is ``<fn>_accuracy``, plus ``max_accuracy`` over several; keys,
    CSV file (``triplet_evaluation[_<name>]_results.csv``) and primary metric are those of
    :class:`~sentrs.sentence_transformer.evaluation.TripletEvaluator`.

    MaxSim sums one maximum per query token, so its scores grow with the anchor's length, while MeanMaxSim divides
    by the token count and stays in cosine's range: the two want different margins (a dict keyed by name).

    Args:
        anchors: the anchor of each triplet (e.g. a query).
        positives: the positive of each triplet.
        negatives: the negative of each triplet.
        main_similarity_function: the function whose accuracy is the primary metric.
        margin: one number for both similarities, or a dict from ``"maxsim"`` / ``"meanmaxsim"`` to margin
            (others 0).
        name: prefix of the metric keys and part of the CSV file name.
        batch_size: encoding batch size.
        show_progress_bar: show a progress bar while encoding (None: when logging at INFO or DEBUG).
        write_csv: append the accuracies to the CSV file in ``output_path``.
        truncate_dim: must stay None (token embeddings have no Matryoshka truncation).
        similarity_fn_names: the similarities to score with; None uses ``[main_similarity_function]`` if set, else
            the model's ``similarity_fn_name`` at the first call.
        main_distance_function: deprecated name of ``main_similarity_function``.

    Raises:
        ValueError: ``truncate_dim`` is set, the three lists differ in length, a similarity name or margin key is
            unknown, or ``margin`` is neither a number nor a dict.
    """

    SIMILARITY_FN_NAMES: ClassVar[tuple[str, ...]] = MultiVectorEncoder.SUPPORTED_SIMILARITY_FN_NAMES

    def __init__(
        self,
        anchors: Sequence[Any],
        positives: Sequence[Any],
        negatives: Sequence[Any],
        main_similarity_function: str | SimilarityFunction | None = None,
        margin: float | dict[str, float] | None = None,
        name: str = "",
        batch_size: int = 16,
        show_progress_bar: bool | None = False,
        write_csv: bool = True,
        truncate_dim: int | None = None,
        similarity_fn_names: list[Literal["maxsim", "meanmaxsim"]] | None = None,
        main_distance_function: str | SimilarityFunction | None = "deprecated",
    ) -> None:
        reject_truncate_dim(truncate_dim)
        super().__init__(
            anchors,
            positives,
            negatives,
            # Resolved here for its error message, which lists the valid names.
            main_similarity_function=resolve_similarity_function(main_similarity_function, "main_similarity_function"),
            margin=margin,
            name=name,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            write_csv=write_csv,
            # The parent's annotation lists the dense names; it checks the names against SIMILARITY_FN_NAMES.
            similarity_fn_names=similarity_fn_names,  # type: ignore[arg-type]
            main_distance_function=main_distance_function,
        )

    def _pairwise_scores(self, embeddings1: Any, embeddings2: Any, similarity_fn_name: str) -> np.ndarray:
        """``(n,)`` float32 MaxSim (or MeanMaxSim) of each anchor with its partner, on the Rust kernel."""
        pairwise = SimilarityFunction.to_similarity_pairwise_fn(similarity_fn_name)
        return np.asarray(scores_as_numpy(pairwise(embeddings1, embeddings2)), np.float32)

    def embed_inputs(  # type: ignore[override]
        self,
        model: MultiVectorEncoder,
        sentences: Any,
        encode_fn_name: Literal["query", "document"] | None = None,
        **kwargs: Any,
    ) -> list[Tensor]:
        """``encode_query`` / ``encode_document`` / ``encode`` with this evaluator's batch size: one
        ``(tokens_i, dim)`` tensor per input."""
        kwargs.pop("truncate_dim", None)
        if encode_fn_name == "query":
            encode_fn = model.encode_query
        elif encode_fn_name == "document":
            encode_fn = model.encode_document
        else:
            encode_fn = model.encode
        embeddings: list[Tensor] = encode_fn(
            sentences, batch_size=self.batch_size, show_progress_bar=self.show_progress_bar, **kwargs
        )
        return embeddings
