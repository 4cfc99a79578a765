"""``SparseTranslationEvaluator``: how often a sentence's nearest sparse neighbour in the other language is its
translation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs.sentence_transformer.evaluation.translation import TranslationEvaluator
from sentrs.sparse_encoder.evaluation._sparse_evaluator import SparseEvaluatorMixin, mean
from sentrs.sparse_encoder.evaluation._sparse_rows import SparseRows, pairwise_similarity

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseTranslationEvaluator"]


class SparseTranslationEvaluator(SparseEvaluatorMixin, TranslationEvaluator):
    """:class:`~sentrs.sentence_transformer.evaluation.TranslationEvaluator` for sparse models:
    ``src2trg_accuracy``, ``trg2src_accuracy`` and their mean (primary), plus the sparsity of the embeddings.

    Each side's nearest neighbours (cosine) come from the Rust inverted index over the other side's sparse
    embeddings; equal scores go to the lower index. The metrics add ``active_dims`` and ``sparsity_ratio``
    (averaged over both sides), also appended to the CSV row.

    Args:
        source_sentences: sentences in one language.
        target_sentences: their translations, row-aligned.
        show_progress_bar: show a progress bar while encoding.
        batch_size: encoding batch size.
        name: prefix of the metric keys and part of the CSV file name.
        print_wrong_matches: print each source matched to a wrong target, with its five nearest targets.
        write_csv: append the accuracies to ``translation_evaluation[_<name>]_results.csv``.
        max_active_dims: keep at most this many dimensions of each embedding; None: the model's setting.

    Raises:
        ValueError: the two lists differ in length or are empty.
    """

    def __init__(
        self,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        show_progress_bar: bool = False,
        batch_size: int = 16,
        name: str = "",
        print_wrong_matches: bool = False,
        write_csv: bool = True,
        max_active_dims: int | None = None,
    ) -> None:
        self.max_active_dims = max_active_dims
        self.sparsity_stats: Any = defaultdict(list)
        super().__init__(
            source_sentences,
            target_sentences,
            show_progress_bar=show_progress_bar,
            batch_size=batch_size,
            name=name,
            print_wrong_matches=print_wrong_matches,
            write_csv=write_csv,
        )
        self.csv_headers.extend(["active_dims", "sparsity_ratio"])

    def __call__(  # type: ignore[override]
        self, model: SparseEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """The accuracies and the sparsity statistics (see the class docstring)."""
        self.sparsity_stats = defaultdict(list)
        metrics = super().__call__(model, output_path=output_path, epoch=epoch, steps=steps)  # type: ignore[arg-type]
        self.sparsity_stats = {key: mean(values) for key, values in self.sparsity_stats.items()}
        return self.add_sparsity_metrics(model, metrics, self.sparsity_stats, output_path, epoch, steps)

    def _nearest(self, queries: Any, candidates: Any) -> np.ndarray:
        ids, _ = candidates.index().search(*queries.csr_arrays(), 1, "cosine")
        return ids[:, 0]

    def _print_wrong_match(self, i: int, best: int, sources: Any, targets: Any) -> None:
        nearest, nearest_scores = targets.index().search(*sources[i].csr_arrays(), 5, "cosine")
        true_score = float(pairwise_similarity(sources[i], targets[i], "cosine")[0])
        print(f"\nIncorrect  : Source {i} is most similar to target {best} instead of target {i}")
        print("Source     :", self.source_sentences[i])
        print("Pred Target:", self.target_sentences[best], f"(Score: {float(nearest_scores[0, 0]):.4f})")
        print("True Target:", self.target_sentences[i], f"(Score: {true_score:.4f})")
        for idx, score in zip(nearest[0].tolist(), nearest_scores[0].tolist()):
            print("\t", idx, f"(Score: {score:.4f})", self.target_sentences[idx])

    def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> SparseRows:  # type: ignore[override]
        """Sparse embeddings of ``sentences`` (``model.encode``), recording their sparsity."""
        rows = self.encode_sparse(model, sentences, **kwargs)
        for key, value in rows.sparsity().items():
            self.sparsity_stats[key].append(value)
        return rows
