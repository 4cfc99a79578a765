"""Hard-negative mining for (anchor, positive) datasets: the reference's ``mine_hard_negatives``.

The search runs through the Rust exact top-k kernel (``sentrs.ops.topk_search``) for cosine and dot-product models,
through faiss when asked, and through ``model.similarity`` otherwise. Filtering and sampling run in numpy, with
float32 arithmetic like the reference's torch code, so ``sampling_strategy="top"`` gives the reference's rows.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import random
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from sentrs import ops

if TYPE_CHECKING:
    from datasets import Dataset

    from sentrs.cross_encoder.model import CrossEncoder
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["mine_hard_negatives"]

logger = logging.getLogger(__name__)

OutputFormat = Literal["triplet", "n-tuple", "labeled-pair", "labeled-list"]
SamplingStrategy = Literal["random", "top"]

OUTPUT_FORMATS: tuple[str, ...] = ("triplet", "n-tuple", "labeled-pair", "labeled-list")
SAMPLING_STRATEGIES: tuple[str, ...] = ("top", "random")
FAISS_GPU_MAX_K = 2048  # faiss on GPU cannot return more hits per query

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def mine_hard_negatives(
    dataset: Dataset,
    model: SentenceTransformer,
    anchor_column_name: str | None = None,
    positive_column_name: str | None = None,
    corpus: list[str] | None = None,
    cross_encoder: CrossEncoder | None = None,
    range_min: int = 0,
    range_max: int | None = None,
    max_score: float | None = None,
    min_score: float | None = None,
    absolute_margin: float | None = None,
    relative_margin: float | None = None,
    num_negatives: int = 3,
    sampling_strategy: SamplingStrategy = "top",
    query_prompt_name: str | None = None,
    query_prompt: str | None = None,
    corpus_prompt_name: str | None = None,
    corpus_prompt: str | None = None,
    include_positives: bool = False,
    output_format: OutputFormat = "triplet",
    output_scores: bool = False,
    batch_size: int = 32,
    faiss_batch_size: int = 16384,
    use_faiss: bool = False,
    use_multi_process: list[str] | bool = False,
    verbose: bool = True,
    cache_folder: str | None = None,
    as_triplets: bool | None = None,
    margin: float | None = None,
) -> Dataset:
    """Adds mined hard negatives to a dataset of (anchor, positive) pairs.

    Anchors are embedded with ``model.encode_query`` and the corpus (``corpus`` plus every positive, de-duplicated)
    with ``model.encode_document``, both normalised. For every unique anchor the ``range_max + max_positives`` most
    similar corpus texts are retrieved, optionally rescored with ``cross_encoder.predict`` (only when a margin or a
    score bound is set), stripped of the anchor's own positives (unless ``include_positives``), filtered by
    ``absolute_margin``/``relative_margin`` (against the anchor's lowest positive score), ``max_score`` and
    ``min_score``, ranked, cut to ranks ``[range_min, range_max)``, and sampled: the ``num_negatives`` best
    (``"top"``) or ``num_negatives`` drawn with Python's ``random`` module (``"random"``).

    Args:
        dataset: a ``datasets.Dataset`` of (anchor, positive) pairs; an anchor may repeat with other positives.
        model: the embedding model (a sentrs or sentence-transformers ``SentenceTransformer``).
        anchor_column_name: anchor column; defaults to the first column.
        positive_column_name: positive column; defaults to the second column.
        corpus: extra candidate texts; the positives are always candidates too.
        cross_encoder: rescoring model for the candidates and positives.
        range_min: number of best candidates to skip.
        range_max: number of best candidates to consider; derived from the other arguments when None.
        max_score: candidates scoring above it are dropped.
        min_score: candidates scoring below it are dropped.
        absolute_margin: candidates with ``score + absolute_margin > positive score`` are dropped.
        relative_margin: candidates with ``score > positive - |positive| * relative_margin`` are dropped.
        num_negatives: negatives per anchor (at least 1).
        sampling_strategy: ``"top"`` or ``"random"``.
        query_prompt_name: name of a ``model.prompts`` entry for the anchors.
        query_prompt: prompt text for the anchors (wins over ``query_prompt_name``).
        corpus_prompt_name: name of a ``model.prompts`` entry for the corpus.
        corpus_prompt: prompt text for the corpus (wins over ``corpus_prompt_name``).
        include_positives: keep the positives among the candidates; forces ``output_format="n-tuple"``.
        output_format: ``"triplet"`` (anchor, positive, negative), ``"n-tuple"`` (anchor, positive, negative_1, ...),
            ``"labeled-pair"`` (anchor, text, label) or ``"labeled-list"`` (anchor, [texts], [labels]).
        output_scores: add a ``scores`` column (triplet, n-tuple) or replace the labels with scores
            (``score`` for labeled-pair, ``scores`` for labeled-list).
        batch_size: encoding (and cross-encoder) batch size.
        faiss_batch_size: queries per search call.
        use_faiss: search with a faiss ``IndexFlatIP`` (needs ``faiss-cpu`` or ``faiss-gpu``).
        use_multi_process: embed (and rescore) in a multi-process pool: True for the default devices (every CUDA
            device, else four CPU workers), or a list of devices such as ``["cpu", "cpu"]``.
        verbose: print progress bars and a statistics summary.
        cache_folder: folder for ``query_embeddings_{hash}.npy`` / ``corpus_embeddings_{hash}.npy`` caches (the
            reference's file names, so both libraries share a cache).
        as_triplets: deprecated; ``True`` means ``output_format="triplet"``, ``False`` ``"n-tuple"``.
        margin: deprecated alias of ``absolute_margin``.

    Returns:
        A new ``datasets.Dataset`` in ``output_format``.
    """
    try:
        import datasets
    except ImportError as exc:
        raise ImportError(
            "mine_hard_negatives needs the `datasets` package; install it with `pip install datasets`"
        ) from exc

    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"dataset must be a datasets.Dataset, got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError("dataset is empty; it needs at least one (anchor, positive) row")
    _check_int("faiss_batch_size", faiss_batch_size, minimum=1)
    _check_int("batch_size", batch_size, minimum=1)
    _check_int("num_negatives", num_negatives, minimum=1)
    _check_int("range_min", range_min, minimum=0)
    if range_max is not None:
        _check_int("range_max", range_max, minimum=1)
    if not isinstance(use_multi_process, bool) and not (
        isinstance(use_multi_process, list) and all(isinstance(d, str) for d in use_multi_process)
    ):
        raise ValueError(
            f"use_multi_process must be a bool or a list of devices such as ['cpu', 'cpu'], got {use_multi_process!r}"
        )
    devices = None if isinstance(use_multi_process, bool) else use_multi_process
    faiss: Any = None
    if use_faiss:
        try:
            faiss = importlib.import_module("faiss")
        except ImportError as exc:
            raise ImportError(
                "use_faiss=True needs faiss; install it with `pip install faiss-cpu` (or `faiss-gpu`)"
            ) from exc

    columns = list(dataset.column_names)
    anchor_column_name = _resolve_column("anchor_column_name", anchor_column_name, columns, 0)
    positive_column_name = _resolve_column("positive_column_name", positive_column_name, columns, 1)

    if as_triplets is not None:
        output_format = "triplet" if as_triplets else "n-tuple"
        logger.warning(f"as_triplets is deprecated, use output_format; using output_format={output_format!r}")
    if include_positives:
        if (
            range_min != 0
            or range_max is not None
            or max_score is not None
            or min_score is not None
            or absolute_margin is not None
            or relative_margin is not None
            or margin is not None
            or sampling_strategy != "top"
        ):
            logger.warning(
                "with include_positives=True, non-default range_min, range_max, max_score, min_score, "
                "absolute_margin, relative_margin or sampling_strategy may still drop the positives"
            )
        if output_format != "n-tuple":
            logger.warning("include_positives=True keeps the ranking order: output_format is set to 'n-tuple'")
            output_format = "n-tuple"
    if output_format == "n-tuple-scores":
        logger.warning("output_format='n-tuple-scores' is deprecated, use output_format='n-tuple', output_scores=True")
        output_format = "n-tuple"
        output_scores = True
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}")
    if sampling_strategy not in SAMPLING_STRATEGIES:
        raise ValueError(f"sampling_strategy must be one of {SAMPLING_STRATEGIES}, got {sampling_strategy!r}")
    if margin is not None:
        absolute_margin = margin
        logger.warning(f"margin is deprecated, use absolute_margin or relative_margin; using absolute_margin={margin}")

    anchors = list(dataset[anchor_column_name])
    positives = list(dataset[positive_column_name])
    rows_per_anchor = Counter(anchors)
    max_positives = max(rows_per_anchor.values())

    faiss_cap_note = ""
    if range_max is None:
        if (
            absolute_margin is not None
            or relative_margin is not None
            or max_score is not None
            or (cross_encoder is not None and min_score is not None)
        ):
            range_max = range_min + 10 * num_negatives + max_positives  # room for candidates the filters drop
        else:
            range_max = range_min + num_negatives + max_positives
        if use_faiss and range_max + max_positives > FAISS_GPU_MAX_K and _faiss_gpus(faiss) > 0:
            range_max = FAISS_GPU_MAX_K - max_positives
            faiss_cap_note = (
                f" range_max was capped to {range_max}: faiss on GPU returns at most {FAISS_GPU_MAX_K} hits per "
                "query, some of them kept for the positives (use_faiss=False has no such cap)."
            )
            if verbose:
                print(
                    f"faiss on GPU returns at most {FAISS_GPU_MAX_K} hits per query; setting range_max to {range_max}."
                )
        if verbose:
            print(f"Setting range_max to {range_max} based on the provided parameters.")
    if range_min >= range_max:
        raise ValueError(
            f"range_min must be smaller than range_max, got range_min={range_min} and range_max={range_max}."
            f"{faiss_cap_note}"
        )
    if num_negatives > range_max - range_min:
        raise ValueError(
            f"num_negatives={num_negatives} does not fit: only {range_max - range_min} candidates remain between "
            f"range_min={range_min} and range_max={range_max}; lower num_negatives or range_min, or raise range_max."
            f"{faiss_cap_note}"
        )

    # De-duplicate: the corpus keeps its order and gains every positive; each unique anchor is embedded once.
    corpus_texts = list(dict.fromkeys([*(positives if corpus is None else list(corpus)), *positives]))
    corpus_pos = {text: i for i, text in enumerate(corpus_texts)}
    queries = list(dict.fromkeys(anchors))
    query_pos = {text: i for i, text in enumerate(queries)}
    n_queries = len(queries)
    if verbose and n_queries != len(anchors):
        print(f"Found {n_queries} unique queries out of {len(anchors)} total queries.")
    if verbose and max_positives > 1:
        print(f"Found an average of {np.mean(list(rows_per_anchor.values())):.3f} positives per query.")

    # Each unique anchor's distinct positives as corpus ids, in first-seen order.
    positive_ids: list[list[int]] = [[] for _ in range(n_queries)]
    for anchor, positive in zip(anchors, positives):
        ids = positive_ids[query_pos[anchor]]
        if corpus_pos[positive] not in ids:
            ids.append(corpus_pos[positive])
    n_positives = np.array([len(ids) for ids in positive_ids], dtype=np.int64)
    pair_query = np.repeat(np.arange(n_queries), n_positives)  # (n_pairs,) query of each (anchor, positive) pair
    pair_positive = np.array([i for ids in positive_ids for i in ids], dtype=np.int64)

    query_embeddings, corpus_embeddings = _embed(
        model,
        queries,
        corpus_texts,
        query_prompt_name=query_prompt_name,
        query_prompt=query_prompt,
        corpus_prompt_name=corpus_prompt_name,
        corpus_prompt=corpus_prompt,
        batch_size=batch_size,
        verbose=verbose,
        cache_folder=cache_folder,
        devices=devices if use_multi_process else False,
    )

    k = range_max + max_positives  # room for the positives among the candidates
    if use_faiss:
        cand_ids, cand_scores = _search_faiss(faiss, query_embeddings, corpus_embeddings, k, faiss_batch_size, verbose)
    else:
        cand_ids, cand_scores = _search_exact(model, query_embeddings, corpus_embeddings, k, faiss_batch_size, verbose)
    positive_scores = _as_f32(
        model.similarity_pairwise(query_embeddings[pair_query], corpus_embeddings[pair_positive])
    ).reshape(-1)
    del query_embeddings, corpus_embeddings

    if cross_encoder is not None and (
        absolute_margin is not None or relative_margin is not None or max_score is not None or min_score is not None
    ):
        cand_scores, positive_scores = _rescore(
            cross_encoder,
            queries,
            corpus_texts,
            cand_ids,
            pair_query,
            pair_positive,
            batch_size,
            verbose,
            devices if use_multi_process else False,
        )

    scores = cand_scores.copy()
    scores[cand_ids < 0] = -np.inf  # padding of queries with fewer hits than k
    if not include_positives:
        for q, ids in enumerate(positive_ids):
            scores[q, np.isin(cand_ids[q], ids)] = -np.inf
    skipped = _apply_filters(
        scores, positive_scores, n_positives, absolute_margin, relative_margin, max_score, min_score
    )

    # Rank the survivors (stable, so equal scores keep the retrieval order), then keep ranks [range_min, range_max).
    order = np.argsort(-scores, axis=1, kind="stable")[:, range_min:range_max]
    neg_ids = np.take_along_axis(cand_ids, order, axis=1)
    neg_scores = np.take_along_axis(scores, order, axis=1)
    if sampling_strategy == "top":
        neg_ids, neg_scores = neg_ids[:, :num_negatives], neg_scores[:, :num_negatives]
    else:
        neg_ids, neg_scores = _sample_random(neg_ids, neg_scores, num_negatives)

    if verbose:
        print("Negative candidates mined, preparing dataset...")
    mined = _Mined(
        queries=queries,
        corpus=corpus_texts,
        pair_query=pair_query,
        pair_positive=pair_positive,
        positive_scores=positive_scores,
        neg_ids=neg_ids,
        neg_scores=neg_scores,
        anchor_column=anchor_column_name,
        positive_column=positive_column_name,
        output_scores=output_scores,
    )
    builders = {
        "triplet": _build_triplets,
        "n-tuple": _build_n_tuples,
        "labeled-pair": _build_labeled_pairs,
        "labeled-list": _build_labeled_lists,
    }
    data, negatives_kept, differences, max_rows = builders[output_format](mined)
    if output_format == "labeled-pair":
        max_rows = n_queries * num_negatives + len(dataset)
    output = datasets.Dataset.from_dict(data)

    if verbose:
        _print_summary(positive_scores, negatives_kept, differences)
        for name, value in (
            ("absolute_margin", absolute_margin),
            ("relative_margin", relative_margin),
            ("max_score", max_score),
            ("min_score", min_score),
        ):
            if name in skipped:
                count, ratio = skipped[name]
                print(f"Skipped {count:,} potential negatives ({ratio:.2%}) due to the {name} of {value}.")
        missing = max_rows - len(output)
        if missing > 0:
            knobs = ["range_max"]
            knobs += ["range_min"] if range_min > 0 else []
            knobs += [
                name
                for name, value in (
                    ("absolute_margin", absolute_margin),
                    ("relative_margin", relative_margin),
                    ("max_score", max_score),
                )
                if value is not None
            ]
            listed = knobs[0] if len(knobs) == 1 else ", ".join(knobs[:-1]) + " and " + knobs[-1]
            print(
                f"Could not find enough negatives for {missing} samples ({missing / max_rows:.2%})."
                f" Consider adjusting the {listed} parameter{'s' if len(knobs) > 1 else ''}"
                " if you'd like to find more valid negatives."
            )
    return output


# ---------------------------------------------------------------------------------------------------- arguments
def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def _resolve_column(arg: str, name: str | None, columns: list[str], default_position: int) -> str:
    """The named column, or the column at ``default_position`` when no name is given."""
    if name:
        if name not in columns:
            raise ValueError(f"{arg}={name!r} is not a column of the dataset; its columns are {columns}")
        return name
    if len(columns) <= default_position:
        raise ValueError(
            f"dataset must have at least {default_position + 1} columns to pick {arg} automatically, "
            f"got columns {columns}"
        )
    return columns[default_position]


def _faiss_gpus(faiss: Any) -> int:
    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    return int(get_num_gpus()) if get_num_gpus is not None else 0


def _as_f32(x: Any) -> F32:
    """A tensor or array-like as a host float32 numpy array."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


# ---------------------------------------------------------------------------------------------------- embed
def _embed(
    model: Any,
    queries: list[str],
    corpus: list[str],
    *,
    query_prompt_name: str | None,
    query_prompt: str | None,
    corpus_prompt_name: str | None,
    corpus_prompt: str | None,
    batch_size: int,
    verbose: bool,
    cache_folder: str | None,
    devices: list[str] | bool | None = False,
) -> tuple[F32, F32]:
    """Normalised ``(n_queries, dim)`` and ``(n_corpus, dim)`` float32 embeddings, read from / written to the cache;
    ``devices`` other than False runs them in a multi-process pool on those devices (None: the default ones)."""
    query_file = corpus_file = None
    query_emb: F32 | None = None
    corpus_emb: F32 | None = None
    if cache_folder:
        os.makedirs(cache_folder, exist_ok=True)
        card = getattr(model, "model_card_data", None)
        model_name = getattr(card, "base_model", None) or ""
        query_file = os.path.join(
            cache_folder, f"query_embeddings_{_cache_key(model_name, query_prompt, query_prompt_name, queries)}.npy"
        )
        corpus_file = os.path.join(
            cache_folder, f"corpus_embeddings_{_cache_key(model_name, corpus_prompt, corpus_prompt_name, corpus)}.npy"
        )
        query_emb = _load_cached(query_file, len(queries), verbose)
        corpus_emb = _load_cached(corpus_file, len(corpus), verbose)

    common: dict[str, Any] = {"batch_size": batch_size, "normalize_embeddings": True, "convert_to_numpy": True}
    pool = None
    if devices is not False and (corpus_emb is None or query_emb is None):
        pool = model.start_multi_process_pool(target_devices=devices or None)
        common["pool"] = pool
    try:
        return _embed_with(
            model,
            queries,
            corpus,
            query_emb,
            corpus_emb,
            query_file,
            corpus_file,
            common,
            query_prompt_name,
            query_prompt,
            corpus_prompt_name,
            corpus_prompt,
            verbose,
        )
    finally:
        if pool is not None:
            model.stop_multi_process_pool(pool)


def _embed_with(
    model: Any,
    queries: list[str],
    corpus: list[str],
    query_emb: F32 | None,
    corpus_emb: F32 | None,
    query_file: str | None,
    corpus_file: str | None,
    common: dict[str, Any],
    query_prompt_name: str | None,
    query_prompt: str | None,
    corpus_prompt_name: str | None,
    corpus_prompt: str | None,
    verbose: bool,
) -> tuple[F32, F32]:
    if corpus_emb is None:
        corpus_emb = _as_f32(
            model.encode_document(
                corpus, prompt_name=corpus_prompt_name, prompt=corpus_prompt, show_progress_bar=verbose, **common
            )
        )
        if corpus_file is not None:
            _save_cached(corpus_file, corpus_emb, verbose)
    if query_emb is None:
        query_emb = _as_f32(
            model.encode_query(
                queries, prompt_name=query_prompt_name, prompt=query_prompt, show_progress_bar=verbose, **common
            )
        )
        if query_file is not None:
            _save_cached(query_file, query_emb, verbose)
    return query_emb, corpus_emb


def _cache_key(model_name: str, prompt: str | None, prompt_name: str | None, texts: list[str]) -> str:
    """SHA-256 of the model, prompt and texts; the reference's key, so cache files are interchangeable."""
    return hashlib.sha256(repr((model_name, prompt, prompt_name, texts)).encode(), usedforsecurity=False).hexdigest()


def _load_cached(path: str, n_rows: int, verbose: bool) -> F32 | None:
    if not os.path.exists(path):
        return None
    emb = _as_f32(np.load(path))
    if emb.ndim != 2 or emb.shape[0] != n_rows:
        logger.warning(f"ignoring cached embeddings {path}: shape {emb.shape} does not fit {n_rows} texts")
        return None
    if verbose:
        print(f"[Cache] Loaded embeddings from {path} (shape={emb.shape})")
    return emb


def _save_cached(path: str, emb: F32, verbose: bool) -> None:
    if os.path.exists(path):
        return
    np.save(path, emb)
    if verbose:
        print(f"[Cache] Saved embeddings to {path}")


# ---------------------------------------------------------------------------------------------------- search
def _pad(ids: I64, scores: F32, k: int) -> tuple[I64, F32]:
    """Pads ``(q, m)`` hits to ``(q, k)`` with id -1 and score -inf."""
    missing = k - ids.shape[1]
    if missing <= 0:
        return ids, scores
    ids = np.concatenate([ids, np.full((ids.shape[0], missing), -1, dtype=np.int64)], axis=1)
    scores = np.concatenate([scores, np.full((scores.shape[0], missing), -np.inf, dtype=np.float32)], axis=1)
    return ids, scores


def _search_exact(model: Any, queries: F32, corpus: F32, k: int, chunk: int, verbose: bool) -> tuple[I64, F32]:
    """The ``k`` best corpus ids and scores per query under ``model.similarity``, best first, -1/-inf padded."""
    similarity = getattr(model, "similarity_fn_name", "cosine")
    similarity = getattr(similarity, "value", similarity)  # a SimilarityFunction member or its name
    top = min(k, corpus.shape[0])
    ids_parts: list[I64] = []
    score_parts: list[F32] = []
    from tqdm.autonotebook import tqdm

    for start in tqdm(range(0, queries.shape[0], chunk), desc="Computing similarity scores", disable=not verbose):
        block = queries[start : start + chunk]
        if similarity in ("cosine", "dot"):
            ids, scores = ops.topk_search(block, corpus, top, similarity)
        else:  # euclidean / manhattan: the model's own score function, ties to the lower corpus id
            all_scores = _as_f32(model.similarity(block, corpus))
            ids = np.argsort(-all_scores, axis=1, kind="stable")[:, :top].astype(np.int64)
            scores = np.take_along_axis(all_scores, ids, axis=1)
        ids_parts.append(ids)
        score_parts.append(scores)
    return _pad(np.concatenate(ids_parts), np.concatenate(score_parts), k)


def _search_faiss(faiss: Any, queries: F32, corpus: F32, k: int, chunk: int, verbose: bool) -> tuple[I64, F32]:
    """The ``k`` best corpus ids and inner products per query from a faiss ``IndexFlatIP`` (on all GPUs if any)."""
    index = faiss.IndexFlatIP(corpus.shape[1])
    if _faiss_gpus(faiss) > 0:
        try:
            options = faiss.GpuMultipleClonerOptions()
            options.shard = True
            options.useFloat16 = True
            index = faiss.index_cpu_to_all_gpus(index, co=options)
        except Exception as exc:  # any faiss GPU failure: stay on the CPU index
            logger.warning(f"could not move the faiss index to the GPU ({exc}); searching on the CPU")
    index.add(corpus)
    ids_parts: list[I64] = []
    score_parts: list[F32] = []
    from tqdm.autonotebook import tqdm

    for start in tqdm(range(0, queries.shape[0], chunk), desc="Querying FAISS index", disable=not verbose):
        scores, ids = index.search(np.ascontiguousarray(queries[start : start + chunk]), k)
        ids_parts.append(ids.astype(np.int64))
        score_parts.append(scores.astype(np.float32))
    return np.concatenate(ids_parts), np.concatenate(score_parts)


def _rescore(
    cross_encoder: Any,
    queries: list[str],
    corpus: list[str],
    cand_ids: I64,
    pair_query: I64,
    pair_positive: I64,
    batch_size: int,
    verbose: bool,
    devices: list[str] | bool | None = False,
) -> tuple[F32, F32]:
    """Cross-encoder scores of every (query, candidate) and (query, positive) pair, in one ``predict`` call (in a
    multi-process pool on ``devices`` unless False)."""
    rows, cols = np.nonzero(cand_ids >= 0)  # padding (-1) stays unscored; it is masked to -inf later
    pairs = [(queries[q], corpus[c]) for q, c in zip(rows.tolist(), cand_ids[rows, cols].tolist())]
    pairs += [(queries[q], corpus[p]) for q, p in zip(pair_query.tolist(), pair_positive.tolist())]
    pool = cross_encoder.start_multi_process_pool(target_devices=devices or None) if devices is not False else None
    try:
        predicted = _as_f32(
            cross_encoder.predict(
                pairs, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=verbose, pool=pool
            )
        )
    finally:
        if pool is not None:
            cross_encoder.stop_multi_process_pool(pool)
    if predicted.ndim != 1:
        raise ValueError(
            f"cross_encoder must give one score per pair (num_labels=1), got scores of shape {predicted.shape}"
        )
    cand_scores = np.full(cand_ids.shape, -np.inf, dtype=np.float32)
    cand_scores[rows, cols] = predicted[: len(rows)]
    return cand_scores, predicted[len(rows) :]


# ---------------------------------------------------------------------------------------------------- filter, sample
def _apply_filters(
    scores: F32,
    positive_scores: F32,
    n_positives: I64,
    absolute_margin: float | None,
    relative_margin: float | None,
    max_score: float | None,
    min_score: float | None,
) -> dict[str, tuple[int, float]]:
    """Sets filtered candidate scores to -inf in place; returns ``{argument: (skipped, ratio)}`` like the reference.

    Margins compare against the anchor's lowest positive score. Arithmetic is float32, as in the reference.
    """
    skipped: dict[str, tuple[int, float]] = {}
    n_candidates = scores.size

    def drop(name: str, removed: npt.NDArray[np.bool_]) -> int:
        count = int(removed.sum())
        scores[removed] = -np.inf
        if count:
            skipped[name] = (count, count / n_candidates)
        return count

    if absolute_margin is not None or relative_margin is not None:
        offsets = np.concatenate([[0], np.cumsum(n_positives)[:-1]])
        hardest_positive = np.minimum.reduceat(positive_scores, offsets)[:, None]
        if absolute_margin is not None:
            n_candidates -= drop("absolute_margin", scores + np.float32(absolute_margin) > hardest_positive)
        if relative_margin is not None:
            threshold = hardest_positive - np.abs(hardest_positive) * np.float32(relative_margin)
            n_candidates -= drop("relative_margin", scores > threshold)
    if max_score is not None:
        drop("max_score", scores > np.float32(max_score))
    if min_score is not None:
        drop("min_score", scores < np.float32(min_score))  # counts already-dropped candidates too, as the reference
    return skipped


def _sample_random(neg_ids: I64, neg_scores: F32, num_negatives: int) -> tuple[I64, F32]:
    """``num_negatives`` candidates per row drawn with ``random.sample`` among the valid ones, best first."""
    valid = neg_ids.shape[1] - np.isinf(neg_scores).sum(axis=1)
    picks = np.array(
        [random.sample(range(max(int(n), num_negatives)), k=num_negatives) for n in valid], dtype=np.int64
    ).reshape(len(valid), num_negatives)
    ids = np.take_along_axis(neg_ids, picks, axis=1)
    scores = np.take_along_axis(neg_scores, picks, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)


# ---------------------------------------------------------------------------------------------------- output
@dataclass
class _Mined:
    """What the output builders need: per-query negatives and per-(anchor, positive)-pair data."""

    queries: list[str]
    corpus: list[str]
    pair_query: I64  # (n_pairs,)
    pair_positive: I64  # (n_pairs,) corpus id
    positive_scores: F32  # (n_pairs,)
    neg_ids: I64  # (n_queries, num_negatives), -inf scores mark missing negatives
    neg_scores: F32  # (n_queries, num_negatives)
    anchor_column: str
    positive_column: str
    output_scores: bool

    def per_pair(self) -> tuple[I64, F32, npt.NDArray[np.bool_]]:
        """Negatives repeated for each of a query's positives, and the mask of real (finite) ones."""
        ids, scores = self.neg_ids[self.pair_query], self.neg_scores[self.pair_query]
        return ids, scores, scores != -np.inf

    def anchor(self, pair: int) -> str:
        return self.queries[int(self.pair_query[pair])]

    def positive(self, pair: int) -> str:
        return self.corpus[int(self.pair_positive[pair])]


Built = tuple[dict[str, list[Any]], F32, F32, int]  # columns, kept negative scores, pos - neg differences, max rows


def _build_triplets(m: _Mined) -> Built:
    ids, scores, keep = m.per_pair()
    pairs, ranks = np.nonzero(keep)
    neg = scores[pairs, ranks]
    pos = m.positive_scores[pairs]
    data: dict[str, list[Any]] = {
        m.anchor_column: [m.anchor(p) for p in pairs.tolist()],
        m.positive_column: [m.positive(p) for p in pairs.tolist()],
        "negative": [m.corpus[i] for i in ids[pairs, ranks].tolist()],
    }
    if m.output_scores:
        data["scores"] = [list(s) for s in zip(pos.tolist(), neg.tolist())]
    return data, neg, pos - neg, keep.size


def _build_n_tuples(m: _Mined) -> Built:
    ids, scores, keep = m.per_pair()
    rows = np.nonzero(keep.all(axis=1))[0]
    data: dict[str, list[Any]] = {
        m.anchor_column: [m.anchor(p) for p in rows.tolist()],
        m.positive_column: [m.positive(p) for p in rows.tolist()],
    }
    for rank in range(ids.shape[1]):
        data[f"negative_{rank + 1}"] = [m.corpus[i] for i in ids[rows, rank].tolist()]
    if m.output_scores:
        data["scores"] = np.concatenate([m.positive_scores[rows, None], scores[rows]], axis=1).tolist()
    neg = scores[rows].reshape(-1)
    return data, neg, (m.positive_scores[rows, None] - scores[rows]).reshape(-1), keep.shape[0]


def _build_labeled_pairs(m: _Mined) -> Built:
    label_column = "score" if m.output_scores else "label"
    data: dict[str, list[Any]] = {m.anchor_column: [], m.positive_column: [], label_column: []}
    pair = 0
    for q, query in enumerate(m.queries):
        while pair < len(m.pair_query) and m.pair_query[pair] == q:
            data[m.anchor_column].append(query)
            data[m.positive_column].append(m.positive(pair))
            data[label_column].append(float(m.positive_scores[pair]) if m.output_scores else 1)
            pair += 1
        for neg_id, neg_score in zip(m.neg_ids[q].tolist(), m.neg_scores[q].tolist()):
            if neg_score == -np.inf:
                continue
            data[m.anchor_column].append(query)
            data[m.positive_column].append(m.corpus[neg_id])
            data[label_column].append(neg_score if m.output_scores else 0)
    _, scores, keep = m.per_pair()
    neg = scores[keep]
    diff = np.broadcast_to(m.positive_scores[:, None], keep.shape)[keep] - neg
    return data, neg, diff, 0  # the caller knows the labeled-pair maximum


def _build_labeled_lists(m: _Mined) -> Built:
    ids, scores, keep = m.per_pair()
    rows = np.nonzero(keep.any(axis=1))[0].tolist()
    documents = [[m.positive(p)] + [m.corpus[i] for i in ids[p][keep[p]].tolist()] for p in rows]
    data: dict[str, list[Any]] = {m.anchor_column: [m.anchor(p) for p in rows], m.positive_column: documents}
    if m.output_scores:
        data["scores"] = [[float(m.positive_scores[p]), *scores[p][keep[p]].tolist()] for p in rows]
    else:
        data["labels"] = [[1] + [0] * int(keep[p].sum()) for p in rows]
    neg = scores[keep]
    diff = np.broadcast_to(m.positive_scores[:, None], keep.shape)[keep] - neg
    return data, neg, diff, keep.shape[0]


# ---------------------------------------------------------------------------------------------------- report
def _print_summary(positive: F32, negative: F32, difference: F32) -> None:
    """The reference's table: count, mean, median (lower middle), std (n - 1), min, quartiles, max."""
    row = "{:<6} {:>14} {:>14} {:>14}"
    print(row.format("Metric", "Positive", "Negative", "Difference"))
    print(row.format("Count", f"{len(positive):,}", f"{len(negative):,}", ""))
    columns = [np.asarray(x, dtype=np.float64) for x in (positive, negative, difference)]

    def describe(x: npt.NDArray[np.float64], metric: str) -> str:
        n = x.size
        if metric in ("Mean", "Median", "Std") and (n == 0 or (metric == "Std" and n == 1)):
            return "nan"
        if n == 0:
            return "-inf" if metric == "Max" else "inf"
        if metric == "Mean":
            value = float(x.mean())
        elif metric == "Median":
            value = float(np.sort(x)[(n - 1) // 2])
        elif metric == "Std":
            value = float(x.std(ddof=1))
        elif metric == "Min":
            value = float(x.min())
        elif metric == "Max":
            value = float(x.max())
        else:
            value = float(np.quantile(x, int(metric[:-1]) / 100))
        return f"{value:.4f}"

    for metric in ("Mean", "Median", "Std", "Min", "25%", "50%", "75%", "Max"):
        print(row.format(metric, *(describe(x, metric) for x in columns)))
