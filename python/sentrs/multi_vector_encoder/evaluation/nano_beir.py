"""``MultiVectorNanoBEIREvaluator``: a :class:`MultiVectorInformationRetrievalEvaluator` on each NanoBEIR dataset,
aggregated. **Needs the Hugging Face Hub** for its data."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs.multi_vector_encoder.evaluation.information_retrieval import (
    MultiVectorInformationRetrievalEvaluator,
    check_chunk_elements,
    reject_truncate_dim,
    resolve_similarity_function,
)
from sentrs.sentence_transformer.evaluation.nano_beir import DatasetNameType, NanoBEIREvaluator

if TYPE_CHECKING:
    from torch import Tensor

    from sentrs.base.similarity import SimilarityFunction
    from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = ["MultiVectorNanoBEIREvaluator"]


class MultiVectorNanoBEIREvaluator(NanoBEIREvaluator):
    """:class:`~sentrs.sentence_transformer.evaluation.NanoBEIREvaluator` for late-interaction models: a
    :class:`MultiVectorInformationRetrievalEvaluator` per NanoBEIR dataset, their metrics and the aggregates
    (``NanoBEIR_<aggregate_key>_<fn>_<metric>@k``); a drop-in for the reference's ``MultiVectorNanoBEIREvaluator``.

    **Needs the Hugging Face Hub**: the datasets are read with ``datasets.load_dataset`` at construction; offline,
    only datasets already in the local ``datasets`` cache load, and otherwise construction raises a ``ValueError``
    that says so (use :class:`MultiVectorInformationRetrievalEvaluator` on local data instead).

    Args:
        dataset_names: short names of the datasets (case-insensitive); None: all 13.
        dataset_id: the Hub dataset with ``corpus``/``queries``/``qrels`` subsets (translations exist).
        mrr_at_k: the k of MRR@k.
        ndcg_at_k: the k of NDCG@k.
        accuracy_at_k: the k of accuracy@k.
        precision_recall_at_k: the k of precision@k and recall@k.
        map_at_k: the k of MAP@k.
        show_progress_bar: show progress bars.
        batch_size: encoding batch size.
        write_csv: write each dataset's CSV and the aggregate ``NanoBEIR_evaluation_<aggregate_key>_results.csv``.
        truncate_dim: must stay None (token embeddings have no Matryoshka truncation).
        score_functions: as for :class:`MultiVectorInformationRetrievalEvaluator` (None: the model's similarity).
        main_score_function: the function whose aggregate NDCG is the primary metric (e.g. ``"maxsim"``).
        aggregate_fn: reduces each metric's per-dataset values to one number.
        aggregate_key: names the aggregate (``NanoBEIR_<aggregate_key>``).
        query_prompts: one prompt for every dataset's queries, or dataset name -> prompt (every dataset needed).
        corpus_prompts: the same for the documents.
        write_predictions: write each dataset's ranked hits as JSON lines.
        corpus_chunk_size: documents encoded at a time, per dataset.
        chunk_elements: element budget of the padded torch MaxSim fallback, per dataset (see the IR evaluator).

    Raises:
        ValueError: ``truncate_dim`` is set, ``chunk_elements`` is invalid, unknown or no dataset names, missing
            prompts, ``datasets`` not installed, or a dataset that cannot be loaded (offline and not cached, not on
            the Hub, ...).
    """

    information_retrieval_class = MultiVectorInformationRetrievalEvaluator  # type: ignore[assignment]

    def __init__(
        self,
        dataset_names: list[DatasetNameType | str] | None = None,
        dataset_id: str = "sentence-transformers/NanoBEIR-en",
        mrr_at_k: list[int] = [10],  # noqa: B006 - the reference's defaults, never mutated
        ndcg_at_k: list[int] = [10],  # noqa: B006
        accuracy_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        precision_recall_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        map_at_k: list[int] = [100],  # noqa: B006
        show_progress_bar: bool = False,
        batch_size: int = 32,
        write_csv: bool = True,
        truncate_dim: int | None = None,
        score_functions: dict[str, Callable[..., Tensor]] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        aggregate_fn: Callable[[list[float]], float] = np.mean,
        aggregate_key: str = "mean",
        query_prompts: str | dict[str, str] | None = None,
        corpus_prompts: str | dict[str, str] | None = None,
        write_predictions: bool = False,
        *,
        corpus_chunk_size: int = 5000,
        chunk_elements: int | None = None,
    ) -> None:
        reject_truncate_dim(truncate_dim)
        check_chunk_elements(chunk_elements)
        # Read by _load_dataset, which the parent's constructor calls for every dataset.
        self._ir_extra_kwargs: dict[str, Any] = {
            "corpus_chunk_size": corpus_chunk_size,
            "chunk_elements": chunk_elements,
        }
        super().__init__(
            dataset_names=dataset_names,
            dataset_id=dataset_id,
            mrr_at_k=mrr_at_k,
            ndcg_at_k=ndcg_at_k,
            accuracy_at_k=accuracy_at_k,
            precision_recall_at_k=precision_recall_at_k,
            map_at_k=map_at_k,
            show_progress_bar=show_progress_bar,
            batch_size=batch_size,
            write_csv=write_csv,
            score_functions=score_functions,
            # Resolved here for its error message, which lists the valid names.
            main_score_function=resolve_similarity_function(main_score_function, "main_score_function"),
            aggregate_fn=aggregate_fn,
            aggregate_key=aggregate_key,
            query_prompts=query_prompts,
            corpus_prompts=corpus_prompts,
            write_predictions=write_predictions,
        )

    def _load_dataset(self, dataset_name: str, **ir_kwargs: Any) -> MultiVectorInformationRetrievalEvaluator:
        ir_kwargs = {**ir_kwargs, **self._ir_extra_kwargs}
        ir_kwargs.pop("truncate_dim", None)
        evaluator = super()._load_dataset(dataset_name, **ir_kwargs)
        assert isinstance(evaluator, MultiVectorInformationRetrievalEvaluator)
        return evaluator

    def __call__(  # type: ignore[override]
        self,
        model: MultiVectorEncoder,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Every dataset's metrics followed by the aggregates (see the parent class)."""
        return super().__call__(model, output_path, epoch, steps, *args, **kwargs)  # type: ignore[arg-type]
