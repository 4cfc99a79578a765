"""``MultiVectorInformationRetrievalEvaluator``: retrieval metrics (accuracy, precision, recall, MRR, NDCG, MAP at k)
of a late-interaction model that searches a corpus with MaxSim.

The corpus is encoded ``corpus_chunk_size`` documents at a time and each chunk is scored in blocks of documents on
the Rust MaxSim kernel (:func:`sentrs.base.maxsim.maxsim`, ragged buffers, no padding), with a running top-k per query:
no ``queries x documents x tokens`` tensor is ever built and at most one ``queries x block`` score matrix is alive.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from tqdm import trange

from sentrs.base.evaluation.ranking import matrix_top_k, merge_top_k, scores_as_numpy, slice_rows
from sentrs.base.maxsim import maxsim, mean_maxsim
from sentrs.base.similarity import SimilarityFunction
from sentrs.sentence_transformer.evaluation.information_retrieval import InformationRetrievalEvaluator

if TYPE_CHECKING:
    from torch import Tensor

    from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = ["MultiVectorInformationRetrievalEvaluator"]

logger = logging.getLogger(__name__)

#: At most this many query x document scores per MaxSim call (64 MiB of float32).
_SCORE_BLOCK_ELEMENTS = 1 << 24

_NO_TRUNCATION = (
    "truncate_dim is not supported by MultiVectorEncoder evaluators: multi-vector token embeddings have no "
    "Matryoshka-style truncation; leave truncate_dim at None to evaluate at the full dimension"
)


def resolve_similarity_function(value: Any, arg_name: str) -> SimilarityFunction | None:
    """``value`` (a name or member) as a ``SimilarityFunction`` member; None for None. It differs from calling
    ``SimilarityFunction`` in its error message, which names ``arg_name`` and the valid names.

    Raises:
        ValueError: ``value`` names no similarity function.
    """
    if not value:
        return None
    try:
        return SimilarityFunction(getattr(value, "value", value))
    except ValueError:
        valid = sorted(SimilarityFunction.possible_values())
        raise ValueError(f"{arg_name} must be one of {valid}, got {value!r}") from None


def reject_truncate_dim(truncate_dim: int | None) -> None:
    """Raises ``ValueError`` unless ``truncate_dim`` is None (token embeddings cannot be truncated)."""
    if truncate_dim is not None:
        raise ValueError(f"{_NO_TRUNCATION}, got truncate_dim={truncate_dim!r}")


def check_chunk_elements(chunk_elements: int | None) -> None:
    """Raises ``ValueError`` unless ``chunk_elements`` is None or a positive integer."""
    if chunk_elements is not None and (
        isinstance(chunk_elements, bool) or not isinstance(chunk_elements, (int, np.integer)) or chunk_elements < 1
    ):
        raise ValueError(f"chunk_elements must be a positive integer or None, got {chunk_elements!r}")


def _is_xtr(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is XTR scoring (either library's ``xtr_scores`` or an ``XTRScores`` object), seen through
    ``functools.partial`` and ``torch.compile``."""
    target: Any = fn.func if isinstance(fn, functools.partial) else fn
    target = getattr(target, "_torchdynamo_orig_callable", target)
    if getattr(target, "__name__", None) == "xtr_scores":
        return True
    return any(cls.__name__ == "XTRScores" for cls in type(target).__mro__)


def _is_own_maxsim(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is sentrs' MaxSim or MeanMaxSim, at most with ``chunk_elements`` bound: it takes the queries as
    a list (no padding to build), and its scores are the same either way. Any other binding (masks, ...) is
    called as the reference calls a custom function."""
    if isinstance(fn, functools.partial):
        if fn.args or set(fn.keywords) - {"chunk_elements"}:
            return False
        fn = fn.func
    return fn is maxsim or fn is mean_maxsim


class MultiVectorInformationRetrievalEvaluator(InformationRetrievalEvaluator):
    """Searches the corpus with every query that has relevant documents, scoring with MaxSim, and reports the
    ranked hits' metrics; a drop-in for the reference's ``MultiVectorInformationRetrievalEvaluator``.

    Queries are encoded with ``encode_query`` and the corpus, ``corpus_chunk_size`` documents at a time, with
    ``encode_document``. Without ``score_functions`` the model's ``similarity_fn_name`` (``maxsim`` or
    ``meanmaxsim``) is resolved at every call and scored on the Rust MaxSim kernel, a block of documents at a time,
    keeping each query's best hits (equal scores go to the lower corpus id, as in the reference). The metrics, keys,
    CSV file (``Information-Retrieval_evaluation[_<name>]_results.csv``) and primary metric
    (``<fn>_ndcg@<max(ndcg_at_k)>``) are those of
    :class:`~sentrs.sentence_transformer.evaluation.InformationRetrievalEvaluator`.

    Args:
        queries: query id -> query text.
        corpus: corpus id -> document text.
        relevant_docs: query id -> the ids of its relevant documents (a set).
        corpus_chunk_size: documents encoded (and held as token embeddings) at a time.
        chunk_elements: element budget of the padded torch MaxSim fallback (used for data that is not float32 on
            the CPU), bound into the model-resolved scoring; None uses MaxSim's default (100M).
        score_functions: name -> ``f(queries (q, tokens, dim) padded tensor, documents [(tokens_i, dim)]) -> (q, n)``
            scores, replacing the model's similarity (XTR scoring is refused: its top-k is global, not per chunk).
        mrr_at_k: the k of MRR@k.
        ndcg_at_k: the k of NDCG@k; the largest is the primary metric's.
        accuracy_at_k: the k of accuracy@k.
        precision_recall_at_k: the k of precision@k and recall@k.
        map_at_k: the k of MAP@k.
        show_progress_bar: show progress bars while encoding and over the corpus chunks.
        batch_size: encoding batch size.
        name: prefix of the metric keys and part of the CSV file name.
        write_csv: append the metrics to the CSV file in ``output_path``.
        truncate_dim: must stay None (token embeddings have no Matryoshka truncation).
        main_score_function: the function whose NDCG is the primary metric (e.g. ``"maxsim"``).
        query_prompt: prompt put before every query (it replaces the model's ``query`` prompt).
        query_prompt_name: name of a model prompt put before every query.
        corpus_prompt: prompt put before every document (it replaces the model's document prompt).
        corpus_prompt_name: name of a model prompt put before every document.
        write_predictions: also write each query's ranked hits as JSON lines (see the dense evaluator).

    Raises:
        ValueError: ``truncate_dim`` is set, ``chunk_elements`` is not a positive integer or is given together with
            ``score_functions``, a score function is XTR scoring, ``main_score_function`` is unknown, or one of the
            dense evaluator's checks fails (``*_at_k`` lists, sizes, no query with relevant documents).
        TypeError: as for the dense evaluator (``queries``/``corpus``/``relevant_docs`` not dicts, ...).
    """

    def __init__(
        self,
        queries: dict[str, Any],
        corpus: dict[str, Any],
        relevant_docs: dict[str, set[str]],
        *,
        corpus_chunk_size: int = 5000,
        chunk_elements: int | None = None,
        score_functions: dict[str, Callable[..., Tensor]] | None = None,
        mrr_at_k: list[int] = [10],  # noqa: B006 - the reference's defaults, never mutated
        ndcg_at_k: list[int] = [10],  # noqa: B006
        accuracy_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        precision_recall_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        map_at_k: list[int] = [100],  # noqa: B006
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
    ) -> None:
        reject_truncate_dim(truncate_dim)
        check_chunk_elements(chunk_elements)
        if score_functions is not None:
            if chunk_elements is not None:
                raise ValueError(
                    "chunk_elements configures only the scoring resolved from the model, so it would be ignored "
                    "beside score_functions; bind it into your own function instead, e.g. "
                    "functools.partial(maxsim, chunk_elements=...)"
                )
            for fn_name, fn in score_functions.items():
                if callable(fn) and _is_xtr(fn):
                    raise ValueError(
                        f"score_functions[{fn_name!r}] is XTR scoring, whose top-k runs over every candidate at "
                        "once; this evaluator scores the corpus a chunk at a time, so use MaxSim instead"
                    )
        self.chunk_elements = chunk_elements
        super().__init__(
            queries=queries,
            corpus=corpus,
            relevant_docs=relevant_docs,
            corpus_chunk_size=corpus_chunk_size,
            mrr_at_k=mrr_at_k,
            ndcg_at_k=ndcg_at_k,
            accuracy_at_k=accuracy_at_k,
            precision_recall_at_k=precision_recall_at_k,
            map_at_k=map_at_k,
            show_progress_bar=show_progress_bar,
            batch_size=batch_size,
            name=name,
            write_csv=write_csv,
            score_functions=score_functions,
            # Resolved here for its error message, which lists the valid names.
            main_score_function=resolve_similarity_function(main_score_function, "main_score_function"),
            query_prompt=query_prompt,
            query_prompt_name=query_prompt_name,
            corpus_prompt=corpus_prompt,
            corpus_prompt_name=corpus_prompt_name,
            write_predictions=write_predictions,
        )
        self._warned_prompts: set[str] = set()

    def __call__(  # type: ignore[override]
        self,
        model: MultiVectorEncoder,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Encodes, searches and returns the metrics (see the class docstring); warns once when an explicit prompt
        replaces a prompt the model has registered for that side."""
        for explicit, arg_name, roles in (
            (self.query_prompt, "query_prompt", ("query",)),
            (self.corpus_prompt, "corpus_prompt", ("document", "passage", "corpus")),
        ):
            if explicit is None:
                continue
            role = next((key for key in roles if key in model.prompts), None)
            registered = model.prompts.get(role) if role is not None else None
            if registered and not explicit.startswith(registered) and arg_name not in self._warned_prompts:
                self._warned_prompts.add(arg_name)
                logger.warning(
                    "The explicit %s replaces the model's %r prompt (%r) instead of adding to it; start %s with it "
                    "to keep the prompt the model was trained with.",
                    arg_name,
                    role,
                    registered,
                    arg_name,
                )
        return super().__call__(model, output_path, epoch, steps, *args, **kwargs)  # type: ignore[arg-type]

    def _model_score_functions(self, model: Any) -> dict[str, Callable[..., Tensor]]:
        """``{model.similarity_fn_name: maxsim or mean_maxsim}``, with ``chunk_elements`` bound when set."""
        name = str(model.similarity_fn_name)
        fn: Callable[..., Tensor] = mean_maxsim if name == "meanmaxsim" else maxsim
        if self.chunk_elements is not None:
            fn = functools.partial(fn, chunk_elements=self.chunk_elements)
        return {name: fn}

    def _search(
        self, model: Any, corpus_model: Any, corpus_embeddings: Any, max_k: int
    ) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """Per score function, every query's best ``max_k`` corpus rows ``(ids, scores)``, ranked by descending
        score then ascending corpus id."""
        assert self.score_functions is not None
        queries = self.embed_inputs(
            model, self.queries, encode_fn_name="query", prompt_name=self.query_prompt_name, prompt=self.query_prompt
        )
        padded_queries: Tensor | None = None
        if not all(_is_own_maxsim(fn) for fn in self.score_functions.values()):
            import torch

            # What the reference hands a custom score function: the queries padded with zero rows.
            padded_queries = torch.nn.utils.rnn.pad_sequence(list(queries), batch_first=True)
        ranks = self._corpus_id_ranks()
        n_queries = len(queries)
        best = {
            fn_name: (np.empty((n_queries, 0), dtype=np.int64), np.empty((n_queries, 0), dtype=np.float64))
            for fn_name in self.score_functions
        }
        block = max(1, _SCORE_BLOCK_ELEMENTS // max(n_queries, 1))
        for start in trange(
            0, len(self.corpus), self.corpus_chunk_size, desc="Corpus Chunks", disable=not self.show_progress_bar
        ):
            end = min(start + self.corpus_chunk_size, len(self.corpus))
            if corpus_embeddings is None:
                chunk = self.embed_inputs(
                    corpus_model,
                    self.corpus[start:end],
                    encode_fn_name="document",
                    prompt_name=self.corpus_prompt_name,
                    prompt=self.corpus_prompt,
                )
            else:
                chunk = slice_rows(corpus_embeddings, start, end)
            scorers: dict[str, Callable[..., Any]] = dict(self.score_functions)
            for fn_name, fn in scorers.items():
                if _is_own_maxsim(fn):
                    # Blocks of documents on the Rust kernel: one (queries x block) matrix at a time.
                    for offset in range(0, end - start, block):
                        stop = min(offset + block, end - start)
                        scores = fn(queries, chunk[offset:stop])
                        ids, values = matrix_top_k(
                            scores_as_numpy(scores), ranks[start + offset : start + stop], max_k
                        )
                        best[fn_name] = merge_top_k(best[fn_name], (ids + start + offset, values), ranks, max_k)
                else:
                    scores = fn(padded_queries, chunk)
                    ids, values = matrix_top_k(scores_as_numpy(scores), ranks[start:end], max_k)
                    best[fn_name] = merge_top_k(best[fn_name], (ids + start, values), ranks, max_k)
        return best

    def embed_inputs(  # type: ignore[override]
        self,
        model: MultiVectorEncoder,
        sentences: Any,
        encode_fn_name: Literal["query", "document"] | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
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
            sentences,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            **kwargs,
        )
        return embeddings
