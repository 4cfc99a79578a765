"""``MultiVectorDistillationEvaluator``: how closely a late-interaction student's scores follow a teacher's (KL
divergence of the score distributions and Spearman rank correlation)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.base.evaluation.ranking import scores_as_numpy
from sentrs.base.inputs import is_message_dict
from sentrs.sentence_transformer.evaluation.embedding_similarity import spearman_correlation
from sentrs.util.misc import similarity_fct_name

if TYPE_CHECKING:
    from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = ["MultiVectorDistillationEvaluator"]

logger = logging.getLogger(__name__)


class MultiVectorDistillationEvaluator(BaseEvaluator):
    """Compares the student's MaxSim scores with teacher scores; a drop-in for the reference's
    ``MultiVectorDistillationEvaluator``.

    Two layouts:

    - **Candidate sets** (the knowledge-distillation training format): ``documents[i]`` is a list of ``N``
      candidates for query ``i`` and ``scores`` is ``(num_queries, N)``. The KL divergence is taken per query over
      its candidates and averaged over queries, with the temperatures of ``MultiVectorDistillKLDivLoss`` (scores
      divided by them, the KL scaled by the student temperature squared), so it matches the training loss. The
      Spearman correlation is the mean of the per-query correlations; queries whose teacher or student scores are
      all equal have none and are skipped (0.0 when every query is).
    - **Flat pairs**: ``documents[i]`` is one document and ``scores`` is ``(num_queries,)``. There is no per-query
      distribution, so the KL softmaxes over all pairs at once and reports the whole divergence (a sum, not a mean),
      and the Spearman correlation is one over all pairs (0.0 when undefined).

    Metrics: ``kl_divergence`` (lower is better) and ``spearman`` (the primary metric), prefixed with
    ``name + "_"`` when ``name`` is set; the CSV file is ``distillation_evaluation[_<name>]_results.csv``.

    Args:
        queries: the query texts.
        documents: one document per query, or one list of ``N`` candidates per query (the same ``N`` for all).
        scores: teacher scores, ``(num_queries,)`` or ``(num_queries, N)`` (a list, an array or a tensor).
        temperature: divides teacher and student scores before the softmax unless a side overrides it (> 0).
        student_temperature: the student side's temperature (> 0); None uses ``temperature``.
        teacher_temperature: the teacher side's temperature (> 0); None uses ``temperature``.
        similarity_fct: ``f(queries, documents) -> (n,)`` pairwise scores replacing ``model.similarity_pairwise``
            (e.g. to mirror a loss that scores with MeanMaxSim).
        name: prefix of the metric keys and part of the CSV file name.
        batch_size: encoding batch size.
        show_progress_bar: show a progress bar while encoding.
        write_csv: append the metrics to the CSV file in ``output_path``.

    Raises:
        ValueError: the three inputs differ in length or are empty, candidate lists differ in length, ``scores`` has
            the wrong shape for the layout, or a temperature is not a positive finite number.
    """

    def __init__(
        self,
        queries: Sequence[Any],
        documents: Sequence[Any] | Sequence[Sequence[Any]],
        scores: Any,
        *,
        temperature: float = 1.0,
        student_temperature: float | None = None,
        teacher_temperature: float | None = None,
        similarity_fct: Callable[..., Any] | None = None,
        name: str = "",
        batch_size: int = 16,
        show_progress_bar: bool = False,
        write_csv: bool = True,
    ) -> None:
        super().__init__()
        if not len(queries) == len(documents) == len(scores):
            raise ValueError(
                f"queries ({len(queries)}), documents ({len(documents)}), and scores ({len(scores)}) must all have "
                "the same length"
            )
        if len(queries) == 0:
            raise ValueError("queries, documents and scores must not be empty")
        self.queries = list(queries)
        first = documents[0]
        # A conversation (a list of message dicts) is one document, not a list of candidates.
        self.nested_documents = isinstance(first, (list, tuple)) and not (first and is_message_dict(first[0]))
        self.documents: list[Any]
        teacher = _as_float32(scores)
        if self.nested_documents:
            n_ways = len(first)
            if any(not isinstance(row, (list, tuple)) or len(row) != n_ways for row in documents):
                raise ValueError(
                    f"documents must hold one list of candidates per query, all of the same length ({n_ways})"
                )
            self.documents = [list(row) for row in documents]
            if teacher.ndim != 2 or teacher.shape[1] != n_ways:
                raise ValueError(
                    f"scores must be 2-D (num_queries, {n_ways}) with per-query candidate documents, got shape "
                    f"{tuple(teacher.shape)}"
                )
        else:
            self.documents = list(documents)
            if teacher.ndim != 1:
                raise ValueError(
                    f"scores must be 1-D with one document per query, got shape {tuple(teacher.shape)}; pass "
                    "documents as per-query candidate lists to use 2-D scores"
                )
        self.scores = teacher
        self.temperature = temperature
        self.student_temperature = student_temperature if student_temperature is not None else temperature
        self.teacher_temperature = teacher_temperature if teacher_temperature is not None else temperature
        for label in ("temperature", "student_temperature", "teacher_temperature"):
            value = getattr(self, label)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{label} must be a positive finite number, got {value!r}")
        self.similarity_fct = similarity_fct
        self.name = name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.csv_file = "distillation_evaluation" + (f"_{name}" if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps", "kl_divergence", "spearman"]

    def __call__(
        self, model: MultiVectorEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Scores every pair with the student and returns ``kl_divergence`` and ``spearman`` (see the class
        docstring)."""
        logger.info(
            "MultiVectorDistillationEvaluator: Evaluating the model on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps),
        )
        pairwise = self.similarity_fct if self.similarity_fct is not None else model.similarity_pairwise
        query_embeddings = model.encode_query(
            self.queries, batch_size=self.batch_size, show_progress_bar=self.show_progress_bar
        )
        if self.nested_documents:
            n_ways = len(self.documents[0])
            flat = [document for row in self.documents for document in row]
            document_embeddings = model.encode_document(
                flat, batch_size=self.batch_size, show_progress_bar=self.show_progress_bar
            )
            # Way w of every query scored as pairs: the (num_queries, N) scores the KD loss computes.
            student = np.stack(
                [_as_float32(pairwise(query_embeddings, document_embeddings[way::n_ways])) for way in range(n_ways)],
                axis=1,
            )
        else:
            document_embeddings = model.encode_document(
                self.documents, batch_size=self.batch_size, show_progress_bar=self.show_progress_bar
            )
            student = _as_float32(pairwise(query_embeddings, document_embeddings))

        teacher_log_probs = _log_softmax(self.scores / self.teacher_temperature)
        student_log_probs = _log_softmax(student / self.student_temperature)
        divergence = float(np.sum(np.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs)))
        if self.nested_documents:
            divergence /= len(self.queries)  # the mean over queries of each query's KL
        kl = divergence * self.student_temperature**2
        if self.nested_documents:
            per_query = [_spearman(t, s) for t, s in zip(self.scores, student, strict=True)]
            defined = [value for value in per_query if not math.isnan(value)]
            spearman = sum(defined) / len(defined) if defined else 0.0
        else:
            spearman = _spearman(self.scores, student)
            if math.isnan(spearman):
                spearman = 0.0

        logger.info("KL divergence:\t%.4f", kl)
        logger.info("Spearman correlation:\t%.4f", spearman)
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, kl, spearman])

        self.primary_metric = "spearman"
        metrics = self.prefix_name_to_metrics({"kl_divergence": kl, "spearman": float(spearman)}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        """The temperatures that differ from the defaults, and the name of ``similarity_fct`` where set."""
        config: dict[str, Any] = {}
        if self.temperature != 1.0:
            config["temperature"] = self.temperature
        if self.student_temperature != self.temperature:
            config["student_temperature"] = self.student_temperature
        if self.teacher_temperature != self.temperature:
            config["teacher_temperature"] = self.teacher_temperature
        if self.similarity_fct is not None:
            config["similarity_fct"] = similarity_fct_name(self.similarity_fct)
        return config


def _as_float32(values: Any) -> npt.NDArray[np.float32]:
    """Scores (a list, an array or a tensor) as a float32 numpy array."""
    from sentrs._lazy import is_tensor

    if is_tensor(values):
        return np.asarray(scores_as_numpy(values), dtype=np.float32)
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"scores must be numbers in a (num_queries,) or (num_queries, N) layout ({error})") from None


def _log_softmax(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Log-softmax over the last axis, in float64."""
    values = x.astype(np.float64)
    shifted = values - values.max(axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _spearman(teacher: npt.NDArray[np.float32], student: npt.NDArray[np.float32]) -> float:
    """Spearman's rho; NaN when it is undefined (fewer than two values, or either side constant)."""
    if len(teacher) < 2:
        return float("nan")
    return spearman_correlation(teacher.astype(np.float64), student.astype(np.float64))
