"""``ParaphraseMiningEvaluator``: how well the most similar sentence pairs of a collection match its known
duplicates."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.util.retrieval import paraphrase_mining

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["ParaphraseMiningEvaluator"]

logger = logging.getLogger(__name__)


def _bool_defaultdict() -> defaultdict[Any, bool]:
    return defaultdict(bool)


class ParaphraseMiningEvaluator(BaseEvaluator):
    """Mines the most similar pairs of ``sentences_map`` (cosine similarity, exact search in the Rust core) and
    scores them against the gold duplicate pairs.

    Walking down the mined pairs from the most similar, every distinct score is a candidate threshold. The metrics
    are ``average_precision`` (of that ranking, against all gold pairs), and ``f1``, ``precision``, ``recall`` and
    ``threshold`` at the threshold with the best F1 (the midpoint to the next lower score); keys are prefixed with
    ``name + "_"`` when ``name`` is set. The primary metric is ``average_precision``.

    Args:
        sentences_map: sentence id -> sentence.
        duplicates_list: pairs of ids that are duplicates (paraphrases); pairs naming an id outside
            ``sentences_map`` are ignored.
        duplicates_dict: ``duplicates_dict[id1][id2]`` is True when the two are duplicates (either direction
            counts). Used as the starting set, ``duplicates_list`` is added to it.
        add_transitive_closure: also count as duplicates every two sentences connected through duplicates.
        query_chunk_size: kept for the reference's signature (the search runs in the Rust core).
        corpus_chunk_size: kept for the reference's signature (the search runs in the Rust core).
        max_pairs: mine at most this many pairs.
        top_k: each sentence contributes at most its ``top_k`` most similar others.
        show_progress_bar: show a progress bar while encoding.
        batch_size: encoding batch size.
        name: prefix of the metric keys and part of the CSV file name.
        write_csv: append the metrics to ``paraphrase_mining_evaluation[_<name>]_results.csv`` in ``output_path``.
        truncate_dim: truncate embeddings to this many dimensions; None keeps the model's setting.

    Raises:
        TypeError: ``sentences_map`` is not a dict, or a ``duplicates_list`` entry is not a pair.
        ValueError: ``max_pairs``, ``top_k``, a chunk size or ``batch_size`` is below 1.
    """

    def __init__(
        self,
        sentences_map: dict[str, str],
        duplicates_list: list[tuple[str, str]] | None = None,
        duplicates_dict: dict[str, dict[str, bool]] | None = None,
        add_transitive_closure: bool = False,
        query_chunk_size: int = 5000,
        corpus_chunk_size: int = 100000,
        max_pairs: int = 500000,
        top_k: int = 100,
        show_progress_bar: bool = False,
        batch_size: int = 16,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(sentences_map, Mapping):
            raise TypeError(f"sentences_map must be a dict from id to sentence, got {type(sentences_map).__name__}")
        for arg_name, value in (
            ("query_chunk_size", query_chunk_size),
            ("corpus_chunk_size", corpus_chunk_size),
            ("max_pairs", max_pairs),
            ("top_k", top_k),
            ("batch_size", batch_size),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{arg_name} must be a positive integer, got {value!r}")
        self.ids = list(sentences_map.keys())
        self.sentences = [sentences_map[sid] for sid in self.ids]
        self.name = name
        self.show_progress_bar = show_progress_bar
        self.batch_size = batch_size
        self.query_chunk_size = query_chunk_size
        self.corpus_chunk_size = corpus_chunk_size
        self.max_pairs = max_pairs
        self.top_k = top_k
        self.truncate_dim = truncate_dim
        # `add_transitive_closure` is the static method; the flag lives under a private name, as in the reference.
        self._add_transitive_closure = add_transitive_closure

        duplicates: MutableMapping[Any, Any] = (
            duplicates_dict if duplicates_dict is not None else defaultdict(_bool_defaultdict)
        )
        for pair in duplicates_list or []:
            if isinstance(pair, (str, bytes)) or len(pair) != 2:
                raise TypeError(f"duplicates_list must hold (id1, id2) pairs, got {pair!r}")
            id1, id2 = pair
            if id1 in sentences_map and id2 in sentences_map:
                _row(duplicates, id1)[id2] = True
                _row(duplicates, id2)[id1] = True
        if add_transitive_closure:
            duplicates = self.add_transitive_closure(duplicates)
        self.duplicates = duplicates
        gold_pairs = {
            (key1, key2) if _id_order(key1, key2) else (key2, key1)
            for key1, row in duplicates.items()
            for key2 in row
            if key1 in sentences_map and key2 in sentences_map and self._is_duplicate(key1, key2)
        }
        self.total_num_duplicates = len(gold_pairs)

        self.csv_file: str = "paraphrase_mining_evaluation" + (f"_{name}" if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps", "precision", "recall", "f1", "threshold", "average_precision"]
        self.write_csv = write_csv
        self.primary_metric = "average_precision"

    def _is_duplicate(self, id1: Any, id2: Any) -> bool:
        """Whether either direction of the pair is marked as duplicate (without adding entries to the dict)."""
        return bool(self.duplicates.get(id1, {}).get(id2, False) or self.duplicates.get(id2, {}).get(id1, False))

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Mines the pairs and returns the metrics (see the class docstring)."""
        logger.info(
            "Paraphrase Mining Evaluation of the model on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps, self.truncate_dim),
        )
        pairs = paraphrase_mining(
            model,
            self.sentences,
            show_progress_bar=self.show_progress_bar,
            batch_size=self.batch_size,
            query_chunk_size=self.query_chunk_size,
            corpus_chunk_size=self.corpus_chunk_size,
            max_pairs=self.max_pairs,
            top_k=self.top_k,
            truncate_dim=self.truncate_dim,
        )
        logger.info("Number of candidate pairs: %d", len(pairs))
        scores = np.asarray([pair[0] for pair in pairs], dtype=np.float64)
        correct = np.array(
            [self._is_duplicate(self.ids[int(i)], self.ids[int(j)]) for _, i, j in pairs], dtype=np.bool_
        )
        average_precision, f1, precision, recall, threshold = _best_threshold(
            scores, correct, self.total_num_duplicates
        )
        logger.info("Average Precision: %.2f", average_precision * 100)
        logger.info("Optimal threshold: %.4f", threshold)
        logger.info("Precision: %.2f", precision * 100)
        logger.info("Recall: %.2f", recall * 100)
        logger.info("F1: %.2f\n", f1 * 100)

        if output_path is not None and self.write_csv:
            row = [epoch, steps, precision, recall, f1, threshold, average_precision]
            append_csv_row(output_path, self.csv_file, self.csv_headers, row)

        metrics = {
            "average_precision": average_precision,
            "f1": f1,
            "precision": precision,
            "recall": recall,
            "threshold": threshold,
        }
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    @staticmethod
    def add_transitive_closure(graph: MutableMapping[Any, Any]) -> MutableMapping[Any, Any]:
        """Marks every two ids reachable from one another through duplicate marks as duplicates (both ways), in
        place; returns ``graph``."""
        done: set[Any] = set()
        for start in list(graph.keys()):
            if start in done:
                continue
            group = [start]
            seen = {start}
            frontier = list(_marked(graph, start))
            while frontier:
                node = frontier.pop()
                if node not in seen:
                    seen.add(node)
                    group.append(node)
                    frontier.extend(_marked(graph, node))
            if len(group) < 2:
                continue
            for a in group:
                row = _row(graph, a)
                for b in group:
                    if a != b:
                        row[b] = True
            done.update(group)
        return graph

    def get_config_dict(self) -> dict[str, Any]:
        """``add_transitive_closure``, ``max_pairs``, ``top_k``, and ``truncate_dim`` where set."""
        config: dict[str, Any] = {
            "add_transitive_closure": self._add_transitive_closure,
            "max_pairs": self.max_pairs,
            "top_k": self.top_k,
        }
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config


def _row(graph: MutableMapping[Any, Any], node: Any) -> MutableMapping[Any, bool]:
    """``graph[node]``, created (as a ``defaultdict(bool)``) when missing."""
    row = graph.get(node)
    if row is None:
        row = graph[node] = _bool_defaultdict()
    return row


def _marked(graph: Mapping[Any, Any], node: Any) -> Iterable[Any]:
    """The ids ``node`` is marked as a duplicate of."""
    return [other for other, is_duplicate in graph.get(node, {}).items() if is_duplicate]


def _id_order(a: Any, b: Any) -> bool:
    """Whether ``(a, b)`` is the canonical order of an unordered pair (ids of mixed types order by their repr)."""
    try:
        return bool(a <= b)
    except TypeError:
        return repr(a) <= repr(b)


def _best_threshold(scores: np.ndarray, correct: np.ndarray, total: int) -> tuple[float, float, float, float, float]:
    """``(average_precision, f1, precision, recall, threshold)`` of pairs ranked by descending ``scores``.

    Each run of equal scores is one step: at a step that adds correct pairs, precision is correct / extracted so
    far and recall correct / ``total``; average precision sums precision times the new correct pairs, over
    ``total``. The best F1 is the first step with the highest F1, its threshold the midpoint to the next score.
    """
    if len(scores) == 0:
        return 0.0, 0.0, 0.0, 0.0, 0.0
    step_ends = np.flatnonzero(np.append(scores[1:] != scores[:-1], True))
    found = np.cumsum(correct)[step_ends].astype(np.float64)
    gained = np.diff(found, prepend=0.0)
    useful = gained > 0
    if not useful.any():
        return 0.0, 0.0, 0.0, 0.0, 0.0
    ends, found, gained = step_ends[useful], found[useful], gained[useful]
    precision = found / (ends + 1)
    recall = found / total if total > 0 else np.zeros_like(found)
    f1 = 2 * precision * recall / (precision + recall)
    average_precision = float(np.sum(precision * gained)) / total if total > 0 else 0.0
    best = int(np.argmax(f1))
    if f1[best] <= 0:
        return average_precision, 0.0, 0.0, 0.0, 0.0
    end = int(ends[best])
    threshold = (scores[end] + scores[min(end + 1, len(scores) - 1)]) / 2
    return average_precision, float(f1[best]), float(precision[best]), float(recall[best]), float(threshold)
