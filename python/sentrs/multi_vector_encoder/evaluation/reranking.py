"""``MultiVectorRerankingEvaluator``: how well a late-interaction model ranks each query's positive documents above
its negatives (MAP, MRR@k, NDCG@k)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from sentrs.base.evaluation.ranking import scores_as_numpy
from sentrs.base.maxsim import maxsim
from sentrs.sentence_transformer.evaluation.reranking import RerankingEvaluator

if TYPE_CHECKING:
    from torch import Tensor

    from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = ["MultiVectorRerankingEvaluator"]


class MultiVectorRerankingEvaluator(RerankingEvaluator):
    """Scores each query's positives and negatives with the model's multi-vector similarity and reports the mean
    ``map``, ``mrr@<at_k>`` and ``ndcg@<at_k>``; a drop-in for the reference's ``MultiVectorRerankingEvaluator``.

    Queries are encoded with ``encode_query`` and documents with ``encode_document`` (one ``(tokens, dim)`` tensor
    each); without ``similarity_fct`` each call scores with the model's :meth:`similarity` (MaxSim or MeanMaxSim on
    the Rust kernel). Samples, metrics (ties as in scikit-learn), keys, CSV file
    (``RerankingEvaluator[_<name>]_results_@<at_k>.csv``) and primary metric (``ndcg@<at_k>``) are those of
    :class:`~sentrs.sentence_transformer.evaluation.RerankingEvaluator`.

    Args:
        samples: ``{"query": str, "positive": [str, ...], "negative": [str, ...]}`` per query (a single str is one
            document); a dict of such samples uses its values. Samples without positives or negatives are dropped.
        at_k: the cut-off of MRR and NDCG.
        name: prefix of the metric keys and part of the CSV file name.
        write_csv: append the metrics to the CSV file in ``output_path``.
        similarity_fct: ``f(query (tokens, dim), documents [(tokens_i, dim), ...]) -> (n,)`` or ``(1, n)`` scores;
            None uses the evaluated model's similarity.
        batch_size: encoding batch size.
        show_progress_bar: show a progress bar while encoding.
        use_batched_encoding: encode all queries and all documents at once (else sample by sample).

    Raises:
        ValueError: ``at_k`` is below 1, or a sample lacks ``query``, ``positive`` or ``negative``.
    """

    def __init__(
        self,
        samples: list[dict[str, Any]] | dict[Any, dict[str, Any]],
        *,
        at_k: int = 10,
        name: str = "",
        write_csv: bool = True,
        similarity_fct: Callable[[Any, list[Tensor]], Tensor] | None = None,
        batch_size: int = 16,
        show_progress_bar: bool = False,
        use_batched_encoding: bool = True,
    ) -> None:
        self._user_similarity_fct = similarity_fct
        super().__init__(
            samples=samples,
            at_k=at_k,
            name=name,
            write_csv=write_csv,
            # The parent's annotation is the single-vector one; these take token matrices.
            similarity_fct=cast("Callable[[Tensor, Tensor], Tensor]", similarity_fct or maxsim),
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            use_batched_encoding=use_batched_encoding,
        )

    def __call__(  # type: ignore[override]
        self, model: MultiVectorEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Scores every sample with ``similarity_fct`` or, without one, the model's similarity, and returns the mean
        metrics (see the class docstring)."""
        if self._user_similarity_fct is None:

            def one_to_many(query: Any, documents: list[Tensor]) -> Tensor:
                return model.similarity(query if isinstance(query, list) else [query], documents)

            self.similarity_fct = cast("Callable[[Tensor, Tensor], Tensor]", one_to_many)
        return super().__call__(model, output_path, epoch, steps)  # type: ignore[arg-type]

    def _scores(self, query: Any, documents: Any) -> np.ndarray:
        """The query's ``(n,)`` scores against its documents, as float64 (values of the function's dtype)."""
        values = np.asarray(scores_as_numpy(self.similarity_fct(query, documents)))
        if values.ndim > 1:
            values = values[0]
        return values.astype(np.float64)

    def embed_inputs(  # type: ignore[override]
        self,
        model: MultiVectorEncoder,
        sentences: Any,
        encode_fn_name: Literal["query", "document"] | None = None,
        show_progress_bar: bool | None = None,
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
            sentences, batch_size=self.batch_size, show_progress_bar=show_progress_bar, **kwargs
        )
        return embeddings
