"""``TranslationEvaluator``: how often a sentence's nearest neighbour in the other language is its translation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs import ops
from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["TranslationEvaluator"]

logger = logging.getLogger(__name__)


class TranslationEvaluator(BaseEvaluator):
    """For parallel lists where ``target_sentences[i]`` translates ``source_sentences[i]``: the share of sources
    whose most cosine-similar target has the text of the right one (``src2trg_accuracy``), the same from the
    targets' side (``trg2src_accuracy``) and their mean (``mean_accuracy``, the primary metric); keys are prefixed
    with ``name + "_"`` when ``name`` is set.

    The nearest neighbours come from the exact top-1 search of the Rust core (no full similarity matrix); equal
    scores go to the lower index, as ``argmax``. Both lists are encoded with ``model.encode``.

    Args:
        source_sentences: sentences in one language.
        target_sentences: their translations, row-aligned.
        show_progress_bar: show a progress bar while encoding.
        batch_size: encoding batch size.
        name: prefix of the metric keys and part of the CSV file name.
        print_wrong_matches: print each source matched to a wrong target, with its five nearest targets.
        write_csv: append the accuracies to ``translation_evaluation[_<name>]_results.csv`` in ``output_path``.
        truncate_dim: truncate embeddings to this many dimensions; None keeps the model's setting.

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
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        if len(source_sentences) != len(target_sentences):
            raise ValueError(
                "source_sentences and target_sentences must have the same length, "
                f"got {len(source_sentences)} and {len(target_sentences)}"
            )
        if len(source_sentences) == 0:
            raise ValueError("source_sentences and target_sentences must not be empty")
        self.source_sentences = source_sentences
        self.target_sentences = target_sentences
        self.name = name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.print_wrong_matches = print_wrong_matches
        self.truncate_dim = truncate_dim
        self.csv_file = "translation_evaluation" + (f"_{name}" if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps", "src2trg", "trg2src"]
        self.write_csv = write_csv
        self.primary_metric = "mean_accuracy"

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encodes both lists, finds each sentence's nearest neighbour on the other side and returns the
        accuracies (see the class docstring)."""
        logger.info(
            "Evaluating translation matching Accuracy of the model on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps, self.truncate_dim),
        )
        sources = self.embed_inputs(model, self.source_sentences)
        targets = self.embed_inputs(model, self.target_sentences)
        src2trg_ids = self._nearest(sources, targets).tolist()
        trg2src_ids = self._nearest(targets, sources).tolist()

        correct_src2trg = 0
        for i, best in enumerate(src2trg_ids):
            if self.target_sentences[i] == self.target_sentences[best]:
                correct_src2trg += 1
            elif self.print_wrong_matches:
                self._print_wrong_match(i, best, sources, targets)
        correct_trg2src = sum(
            1 for i, best in enumerate(trg2src_ids) if self.source_sentences[i] == self.source_sentences[best]
        )
        acc_src2trg = correct_src2trg / len(src2trg_ids)
        acc_trg2src = correct_trg2src / len(trg2src_ids)
        logger.info("Accuracy src2trg: %.2f", acc_src2trg * 100)
        logger.info("Accuracy trg2src: %.2f", acc_trg2src * 100)

        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, acc_src2trg, acc_trg2src])

        metrics = {
            "src2trg_accuracy": acc_src2trg,
            "trg2src_accuracy": acc_trg2src,
            "mean_accuracy": (acc_src2trg + acc_trg2src) / 2,
        }
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _nearest(self, queries: Any, candidates: Any) -> np.ndarray:
        """``(n,)`` index of each query's most cosine-similar candidate, ties to the lower index."""
        ids, _ = ops.topk_search(queries, candidates, 1, "cosine")
        return ids[:, 0]

    def _print_wrong_match(self, i: int, best: int, sources: np.ndarray, targets: np.ndarray) -> None:
        """Prints source ``i``, the target it matched, its true target, and its five nearest targets."""
        nearest, nearest_scores = ops.topk_search(sources[i : i + 1], targets, 5, "cosine")
        true_score = float(ops.similarity_pairwise(sources[i : i + 1], targets[i : i + 1], "cosine")[0])
        best_score = float(nearest_scores[0, 0])
        print(f"\nIncorrect  : Source {i} is most similar to target {best} instead of target {i}")
        print("Source     :", self.source_sentences[i])
        print("Pred Target:", self.target_sentences[best], f"(Score: {best_score:.4f})")
        print("True Target:", self.target_sentences[i], f"(Score: {true_score:.4f})")
        for idx, score in zip(nearest[0].tolist(), nearest_scores[0].tolist()):
            print("\t", idx, f"(Score: {score:.4f})", self.target_sentences[idx])

    def embed_inputs(self, model: SentenceTransformer, sentences: Any, **kwargs: Any) -> np.ndarray:
        """``model.encode`` with this evaluator's batch size and truncation, as a float32 numpy array."""
        return model.encode(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` where set."""
        return {"truncate_dim": self.truncate_dim} if self.truncate_dim is not None else {}
