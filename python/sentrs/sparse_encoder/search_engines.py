"""Search sparse embeddings in external engines: the reference's ``sparse_encoder.search_engines``.

Four engines with the reference's signatures, defaults and return values ``(results, search_time)``, or
``(results, search_time, corpus_index)`` with ``output_index=True``, where ``results`` holds one list per query of
``{"corpus_id": ..., "score": ...}`` dicts, best first, and ``search_time`` is the seconds spent searching (index
building excluded):

- :func:`semantic_search_qdrant`: torch sparse COO tensors, in a Qdrant collection;
- :func:`semantic_search_elasticsearch` and :func:`semantic_search_opensearch`: decoded embeddings
  (``SparseEncoder.decode`` output) as ``rank_features`` documents; they send the same requests as the reference;
- :func:`semantic_search_seismic`: decoded embeddings in an in-process Seismic index (``pip install pyseismic-lsr``).

Passing ``corpus_index`` searches an existing index (``(client, name)``, or a ``SeismicIndex``); without it the
corpus is indexed first. sentrs additions, none of which changes what a reference call does:

- ``corpus_index`` may also be a bare client (a ``QdrantClient``, ``Elasticsearch`` or ``OpenSearch`` object): the
  corpus is indexed into a new collection or index of that client, e.g. ``QdrantClient(":memory:")`` for Qdrant's
  embedded local mode;
- the keyword arguments that configure a new client may name the server (``location``/``url``/``host``/``path``
  for Qdrant, ``hosts`` for Elasticsearch and OpenSearch) instead of the reference's fixed localhost address;
- :func:`semantic_search_qdrant_hybrid`: dense, sparse, or both fused with Qdrant's reciprocal rank fusion, over
  one collection that holds both kinds of vectors.

Bad arguments raise ``ValueError`` naming the argument before anything is sent; a missing client package raises
``ImportError`` with the ``pip install`` line. The client packages are imported on call, not with this module.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from sentrs._lazy import is_tensor

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch
    from opensearchpy import OpenSearch
    from qdrant_client import QdrantClient
    from seismic import SeismicIndex
    from torch import Tensor

__all__ = [
    "semantic_search_elasticsearch",
    "semantic_search_opensearch",
    "semantic_search_qdrant",
    "semantic_search_qdrant_hybrid",
    "semantic_search_seismic",
]

logger = logging.getLogger(__name__)

SearchResults = list[list[dict[str, Any]]]
DecodedEmbeddings = list[list[tuple[str, float]]]

# The reference's fixed server addresses, used when the client keyword arguments name no server.
QDRANT_URL = "http://localhost:6333"
SEARCH_SERVER_URL = "http://localhost:9200"
# Vector names inside a Qdrant collection. The sparse name is the reference's, so a collection built by
# semantic_search_qdrant_hybrid can also be searched by semantic_search_qdrant (and the reference's function).
QDRANT_SPARSE_VECTOR = "text"
QDRANT_DENSE_VECTOR = "dense"
# Rows per Qdrant upload request, queries per Qdrant batch query, documents per Elasticsearch/OpenSearch bulk call
# (the reference's batch size, so the bulk calls are the same).
QDRANT_UPLOAD_BATCH = 256
QDRANT_QUERY_BATCH = 256
BULK_BATCH = 1000
# Seismic search parameters the reference sets when the caller does not.
SEISMIC_SEARCH_DEFAULTS: dict[str, Any] = {"query_cut": 10, "heap_factor": 0.7}

QdrantDistance = Literal["cosine", "dot"]


class _CsrRows(NamedTuple):
    """Rows of a sparse matrix: row ``i`` is ``indices[indptr[i]:indptr[i + 1]]`` with the matching ``values``."""

    indptr: npt.NDArray[np.int64]
    indices: npt.NDArray[np.int64]
    values: npt.NDArray[Any]

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row(self, i: int) -> tuple[list[int], list[float]]:
        start, end = self.indptr[i], self.indptr[i + 1]
        return self.indices[start:end].tolist(), self.values[start:end].tolist()


# ----------------------------------------------------------------------------------------------- argument checks
def _check_top_k(top_k: Any, name: str = "top_k") -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {top_k!r}")
    return int(top_k)


def _describe(value: Any) -> str:
    if is_tensor(value):
        layout = str(value.layout).replace("torch.", "").replace("strided", "dense")
        return f"a {layout} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _sparse_rows(tensor: Any, name: str, allow_1d: bool) -> _CsrRows:
    """A torch sparse COO tensor (2-D, or 1-D for one row when ``allow_1d``) as CSR rows on the host."""
    import torch

    from sentrs.base.quantization import _tensor_to_numpy

    if not is_tensor(tensor) or tensor.layout != torch.sparse_coo:
        hint = " (convert it with .to_sparse_coo())" if is_tensor(tensor) else ""
        raise ValueError(
            f"{name} must be a torch sparse COO tensor, as SparseEncoder.encode returns, got {_describe(tensor)}{hint}"
        )
    if tensor.ndim == 1 and allow_1d:
        tensor = tensor.unsqueeze(0)
    elif tensor.ndim != 2:
        shapes = "1-D or 2-D" if allow_1d else "2-D"
        raise ValueError(f"{name} must be a {shapes} sparse tensor, got {tensor.ndim}-D")
    coo = tensor.detach().coalesce()
    coords = coo.indices().cpu().numpy()
    n_rows = int(tensor.shape[0])
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(coords[0], minlength=n_rows), out=indptr[1:])
    return _CsrRows(indptr, coords[1].astype(np.int64, copy=False), _tensor_to_numpy(coo.values()))


def _dense_rows(embeddings: Any, name: str, allow_1d: bool) -> npt.NDArray[Any]:
    """Dense embeddings (a torch tensor, numpy array or nested lists) as a 2-D float array on the host."""
    from sentrs.base.quantization import _tensor_to_numpy

    if is_tensor(embeddings):
        import torch

        if embeddings.layout != torch.strided:
            raise ValueError(f"{name} must be dense, got {_describe(embeddings)} (convert it with .to_dense())")
        array = _tensor_to_numpy(embeddings)
    else:
        array = np.asarray(embeddings)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
    if array.ndim == 1 and allow_1d:
        array = array[None, :]
    if array.ndim != 2:
        shapes = "1-D or 2-D" if allow_1d else "2-D"
        raise ValueError(f"{name} must be {shapes}, got shape {array.shape}")
    return array


def _check_decoded(decoded: Any, name: str) -> DecodedEmbeddings:
    """``[[(token, weight), ...], ...]``, one list per embedding, as ``SparseEncoder.decode`` returns for 2-D input."""
    expected = f"{name} must be a list with one list of (token, weight) tuples per embedding"
    if not isinstance(decoded, list):
        raise ValueError(f"{expected}, got {_describe(decoded)}")
    for i, item in enumerate(decoded):
        if isinstance(item, tuple):
            raise ValueError(
                f"{expected}, but item {i} is a tuple: for one embedding, wrap its decoded list in a list "
                "([model.decode(embedding)])"
            )
        if not isinstance(item, list):
            raise ValueError(f"{expected}, but item {i} is {_describe(item)}")
        for pair in item:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ValueError(f"{expected}, but item {i} holds {pair!r}, not a (token, weight) tuple")
    return decoded


def _split_corpus_index(
    corpus_index: Any, is_client: Callable[[Any], bool], client_name: str, index_word: str
) -> tuple[Any, Any]:
    """``(client, name)`` of an existing index, ``(client, None)`` for a bare client, ``(None, None)`` for None."""
    if corpus_index is None:
        return None, None
    if isinstance(corpus_index, (tuple, list)):
        if len(corpus_index) != 2:
            raise ValueError(
                f"corpus_index must be a ({client_name}, {index_word}) pair, got {len(corpus_index)} items"
            )
        return corpus_index[0], corpus_index[1]
    if is_client(corpus_index):
        return corpus_index, None
    raise ValueError(
        f"corpus_index must be a ({client_name}, {index_word}) tuple or a {client_name}, got {_describe(corpus_index)}"
    )


def _progress(items: Iterable[Any], desc: str, total: int) -> Iterable[Any]:
    """A progress bar when this module logs at INFO (like ``encode``'s default), otherwise the items as they are."""
    if logger.getEffectiveLevel() > logging.INFO:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, total=total)


# ------------------------------------------------------------------------------------------------------ Qdrant
def _import_qdrant(function: str) -> tuple[Any, Any]:
    try:
        from qdrant_client import QdrantClient, models
    except ImportError as exc:
        raise ImportError(f"{function} needs the Qdrant client: pip install qdrant-client") from exc
    return QdrantClient, models


def _qdrant_client(client_class: Any, client_kwargs: dict[str, Any]) -> Any:
    """A new client from the keyword arguments; the reference's localhost URL unless they name a server."""
    if any(key in client_kwargs for key in ("location", "url", "host", "path")):
        return client_class(**client_kwargs)
    return client_class(url=QDRANT_URL, **client_kwargs)


def _is_qdrant_client(value: Any) -> bool:
    return hasattr(value, "query_batch_points") and hasattr(value, "create_collection")


def _qdrant_collection(
    client_class: Any,
    models: Any,
    corpus_index: Any,
    client_kwargs: dict[str, Any],
    prefix: str,
    n_rows: int,
    dense: npt.NDArray[Any] | None,
    sparse: _CsrRows | None,
    distance: QdrantDistance,
    dense_name: str,
    sparse_name: str,
) -> tuple[Any, str]:
    """A new collection holding the corpus (dense and/or sparse vectors, point ids ``0..n-1``)."""
    client, _ = _split_corpus_index(corpus_index, _is_qdrant_client, "QdrantClient", "collection_name")
    if client is not None and client_kwargs:
        raise ValueError(
            f"keyword arguments configure a new QdrantClient; got {sorted(client_kwargs)} together with a client "
            "passed as corpus_index"
        )
    if client is None:
        client = _qdrant_client(client_class, client_kwargs)
    collection_name = f"{prefix}_{uuid.uuid4().hex}"
    vectors_config: dict[str, Any] = {}
    if dense is not None:
        qdrant_distance = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT}[distance]
        vectors_config[dense_name] = models.VectorParams(size=int(dense.shape[1]), distance=qdrant_distance)
    sparse_config = None
    if sparse is not None:
        sparse_config = {sparse_name: models.SparseVectorParams(index=models.SparseIndexParams(on_disk=False))}
    client.create_collection(
        collection_name=collection_name, vectors_config=vectors_config, sparse_vectors_config=sparse_config
    )

    def points() -> Iterator[dict[str, Any]]:
        for i in range(n_rows):
            vector: dict[str, Any] = {}
            if dense is not None:
                vector[dense_name] = dense[i].tolist()
            if sparse is not None:
                indices, values = sparse.row(i)
                vector[sparse_name] = models.SparseVector(indices=indices, values=values)
            yield vector

    client.upload_collection(
        collection_name=collection_name,
        vectors=_progress(points(), "Uploading to Qdrant", n_rows),
        ids=range(n_rows),
        batch_size=QDRANT_UPLOAD_BATCH,
        wait=True,
    )
    return client, collection_name


def _qdrant_query(client: Any, collection_name: str, requests: list[Any]) -> SearchResults:
    results: SearchResults = []
    for start in range(0, len(requests), QDRANT_QUERY_BATCH):
        responses = client.query_batch_points(
            collection_name=collection_name, requests=requests[start : start + QDRANT_QUERY_BATCH]
        )
        results.extend(
            [{"corpus_id": hit.id, "score": hit.score} for hit in response.points] for response in responses
        )
    return results


def semantic_search_qdrant(
    query_embeddings: Tensor,
    corpus_embeddings: Tensor | None = None,
    corpus_index: tuple[QdrantClient, str] | QdrantClient | None = None,
    top_k: int = 10,
    output_index: bool = False,
    **kwargs: Any,
) -> tuple[SearchResults, float] | tuple[SearchResults, float, tuple[QdrantClient, str]]:
    """Search sparse embeddings in Qdrant by dot product (Qdrant's sparse-vector score).

    Args:
        query_embeddings: ``(n_queries, vocab)`` torch sparse COO tensor (1-D for one query), as
            ``SparseEncoder.encode`` returns.
        corpus_embeddings: ``(n_corpus, vocab)`` torch sparse COO tensor, indexed into a new collection when
            ``corpus_index`` is None or a bare client; ignored when ``corpus_index`` names a collection.
        corpus_index: ``(client, collection_name)`` of a collection to search: its sparse vectors are named
            ``"text"``, as in the collections this function builds. sentrs also accepts a bare ``QdrantClient``
            (e.g. ``QdrantClient(":memory:")``): the corpus then goes into a new collection of that client.
        top_k: Results per query. Qdrant returns only corpus entries sharing a dimension with the query, so a
            list may be shorter.
        output_index: Also return ``(client, collection_name)``, to search the same collection again.
        **kwargs: Arguments of the ``QdrantClient`` created when ``corpus_index`` is None. Without ``location``,
            ``url``, ``host`` or ``path`` it connects to ``http://localhost:6333``, as the reference.

    Returns:
        ``(results, search_time)`` or, with ``output_index``, ``(results, search_time, (client, collection_name))``;
        ``results[i]`` is ``[{"corpus_id": point id, "score": float}, ...]`` for query ``i``, best first.
    """
    client_class, models = _import_qdrant("semantic_search_qdrant")
    queries = _sparse_rows(query_embeddings, "query_embeddings", allow_1d=True)
    top_k = _check_top_k(top_k)
    client, collection_name = _split_corpus_index(corpus_index, _is_qdrant_client, "QdrantClient", "collection_name")
    if collection_name is None:
        if corpus_embeddings is None:
            raise ValueError("Either corpus_embeddings or corpus_index must be provided")
        corpus = _sparse_rows(corpus_embeddings, "corpus_embeddings", allow_1d=False)
        client, collection_name = _qdrant_collection(
            client_class,
            models,
            corpus_index,
            kwargs,
            "sparse_collection",
            corpus.n_rows,
            None,
            corpus,
            "dot",
            QDRANT_DENSE_VECTOR,
            QDRANT_SPARSE_VECTOR,
        )
    requests = []
    for i in range(queries.n_rows):
        indices, values = queries.row(i)
        requests.append(
            models.QueryRequest(
                query=models.SparseVector(indices=indices, values=values), using=QDRANT_SPARSE_VECTOR, limit=top_k
            )
        )
    start = time.perf_counter()
    results = _qdrant_query(client, collection_name, requests)
    search_time = time.perf_counter() - start
    if output_index:
        return results, search_time, (client, collection_name)
    return results, search_time


def semantic_search_qdrant_hybrid(
    dense_query_embeddings: Tensor | npt.ArrayLike | None = None,
    sparse_query_embeddings: Tensor | None = None,
    dense_corpus_embeddings: Tensor | npt.ArrayLike | None = None,
    sparse_corpus_embeddings: Tensor | None = None,
    corpus_index: tuple[QdrantClient, str] | QdrantClient | None = None,
    top_k: int = 10,
    output_index: bool = False,
    *,
    prefetch_limit: int | None = None,
    rrf_k: int | None = None,
    distance: QdrantDistance = "cosine",
    dense_vector_name: str = QDRANT_DENSE_VECTOR,
    sparse_vector_name: str = QDRANT_SPARSE_VECTOR,
    **kwargs: Any,
) -> tuple[SearchResults, float] | tuple[SearchResults, float, tuple[QdrantClient, str]]:
    """Dense, sparse or hybrid search in one Qdrant collection (a sentrs addition).

    The queries passed choose the search: dense only, sparse only, or both, which runs both searches in Qdrant
    (``prefetch_limit`` candidates each) and fuses them with reciprocal rank fusion (Qdrant's ``Fusion.RRF``):
    a corpus entry scores ``sum over the two rankings of 1 / (k + rank)``, ranks counted from 0, ``k`` = ``rrf_k``
    or Qdrant's default, 2.

    Args:
        dense_query_embeddings: ``(n_queries, dim)`` dense embeddings (torch tensor, numpy array or lists; 1-D for
            one query), as ``SentenceTransformer.encode`` returns.
        sparse_query_embeddings: ``(n_queries, vocab)`` torch sparse COO tensor (1-D for one query), as
            ``SparseEncoder.encode`` returns; with dense queries too, row ``i`` of each is the same query.
        dense_corpus_embeddings: ``(n_corpus, dim)`` dense corpus embeddings to index.
        sparse_corpus_embeddings: ``(n_corpus, vocab)`` sparse COO corpus embeddings to index; with dense ones too,
            row ``i`` of each is corpus entry ``i``. Give the corpus embeddings of every kind you will query.
        corpus_index: ``(client, collection_name)`` of a collection to search (no corpus embeddings then), e.g. one
            returned with ``output_index=True``; or a bare ``QdrantClient`` to build the new collection in (e.g.
            ``QdrantClient(":memory:")``); None builds it in a new client from ``**kwargs``.
        top_k: Results per query.
        output_index: Also return ``(client, collection_name)``.
        prefetch_limit: Candidates each search hands to the fusion; defaults to ``2 * top_k``. Only with both
            kinds of queries.
        rrf_k: The fusion's ``k``; None uses Qdrant's default (``FusionQuery(fusion=Fusion.RRF)``), an integer sends
            ``RrfQuery(rrf=Rrf(k=rrf_k))``.
        distance: Score of the dense vectors, ``"cosine"`` or ``"dot"``; used when the collection is built.
        dense_vector_name: Name of the dense vectors in the collection.
        sparse_vector_name: Name of the sparse vectors in the collection; the default, ``"text"``, is the one
            :func:`semantic_search_qdrant` uses, so either function can search the other's collections.
        **kwargs: Arguments of the ``QdrantClient`` created when ``corpus_index`` is None (``location=":memory:"``
            for the embedded local mode); without a server named, ``http://localhost:6333``.

    Returns:
        ``(results, search_time)`` or, with ``output_index``, ``(results, search_time, (client, collection_name))``;
        ``results[i]`` is ``[{"corpus_id": point id, "score": float}, ...]`` for query ``i``, best first; scores are
        similarities for a single search and fused RRF scores for hybrid search.
    """
    client_class, models = _import_qdrant("semantic_search_qdrant_hybrid")
    if dense_query_embeddings is None and sparse_query_embeddings is None:
        raise ValueError("Give dense_query_embeddings, sparse_query_embeddings, or both")
    dense_queries = (
        None
        if dense_query_embeddings is None
        else _dense_rows(dense_query_embeddings, "dense_query_embeddings", allow_1d=True)
    )
    sparse_queries = (
        None
        if sparse_query_embeddings is None
        else _sparse_rows(sparse_query_embeddings, "sparse_query_embeddings", allow_1d=True)
    )
    if dense_queries is not None and sparse_queries is not None and len(dense_queries) != sparse_queries.n_rows:
        raise ValueError(
            "dense_query_embeddings and sparse_query_embeddings must have one row per query each, got "
            f"{len(dense_queries)} and {sparse_queries.n_rows}"
        )
    top_k = _check_top_k(top_k)
    prefetch = 2 * top_k if prefetch_limit is None else _check_top_k(prefetch_limit, "prefetch_limit")
    if rrf_k is not None:
        _check_top_k(rrf_k, "rrf_k")
    if distance not in ("cosine", "dot"):
        raise ValueError(f"distance must be 'cosine' or 'dot', got {distance!r}")

    has_corpus = dense_corpus_embeddings is not None or sparse_corpus_embeddings is not None
    client, collection_name = _split_corpus_index(corpus_index, _is_qdrant_client, "QdrantClient", "collection_name")
    if collection_name is not None and has_corpus:
        raise ValueError(
            "Pass corpus embeddings to build a new collection, or corpus_index=(client, collection_name) to search "
            "an existing one, not both"
        )
    if collection_name is None:
        if not has_corpus:
            raise ValueError(
                "Either dense_corpus_embeddings/sparse_corpus_embeddings or corpus_index=(client, collection_name) "
                "must be provided"
            )
        dense_corpus = (
            None
            if dense_corpus_embeddings is None
            else _dense_rows(dense_corpus_embeddings, "dense_corpus_embeddings", allow_1d=False)
        )
        sparse_corpus = (
            None
            if sparse_corpus_embeddings is None
            else _sparse_rows(sparse_corpus_embeddings, "sparse_corpus_embeddings", allow_1d=False)
        )
        for kind, queries, corpus in (
            ("dense", dense_queries, dense_corpus),
            ("sparse", sparse_queries, sparse_corpus),
        ):
            if queries is not None and corpus is None:
                raise ValueError(f"{kind}_query_embeddings need {kind}_corpus_embeddings to search in")
        if dense_corpus is not None and sparse_corpus is not None and len(dense_corpus) != sparse_corpus.n_rows:
            raise ValueError(
                "dense_corpus_embeddings and sparse_corpus_embeddings must have one row per corpus entry each, got "
                f"{len(dense_corpus)} and {sparse_corpus.n_rows}"
            )
        if dense_corpus is not None and dense_queries is not None and dense_queries.shape[1] != dense_corpus.shape[1]:
            raise ValueError(
                "dense_query_embeddings and dense_corpus_embeddings must have the same dimension, got "
                f"{dense_queries.shape[1]} and {dense_corpus.shape[1]}"
            )
        n_rows = len(dense_corpus) if dense_corpus is not None else sparse_corpus.n_rows  # type: ignore[union-attr]
        client, collection_name = _qdrant_collection(
            client_class,
            models,
            corpus_index,
            kwargs,
            "hybrid_collection",
            n_rows,
            dense_corpus,
            sparse_corpus,
            distance,
            dense_vector_name,
            sparse_vector_name,
        )

    n_queries = len(dense_queries) if dense_queries is not None else sparse_queries.n_rows  # type: ignore[union-attr]
    fusion = (
        models.FusionQuery(fusion=models.Fusion.RRF) if rrf_k is None else models.RrfQuery(rrf=models.Rrf(k=rrf_k))
    )
    requests = []
    for i in range(n_queries):
        searches = []
        if dense_queries is not None:
            searches.append({"query": dense_queries[i].tolist(), "using": dense_vector_name})
        if sparse_queries is not None:
            indices, values = sparse_queries.row(i)
            searches.append(
                {"query": models.SparseVector(indices=indices, values=values), "using": sparse_vector_name}
            )
        if len(searches) == 1:
            requests.append(models.QueryRequest(**searches[0], limit=top_k))
        else:
            requests.append(
                models.QueryRequest(
                    prefetch=[models.Prefetch(**search, limit=prefetch) for search in searches],
                    query=fusion,
                    limit=top_k,
                )
            )
    start = time.perf_counter()
    results = _qdrant_query(client, collection_name, requests)
    search_time = time.perf_counter() - start
    if output_index:
        return results, search_time, (client, collection_name)
    return results, search_time


# ------------------------------------------------------------------------------ Elasticsearch and OpenSearch
def _is_search_client(value: Any) -> bool:
    return hasattr(value, "search") and hasattr(value, "indices")


def _rank_features_search(
    client_class: Any,
    bulk: Callable[[Any, list[dict[str, Any]]], Any],
    client_name: str,
    query_embeddings_decoded: Any,
    corpus_embeddings_decoded: Any,
    corpus_index: Any,
    top_k: int,
    output_index: bool,
    client_kwargs: dict[str, Any],
    field_name: Callable[[Any], Any],
    query_body: Callable[[dict[Any, float], int], dict[str, Any]],
) -> tuple[SearchResults, float] | tuple[SearchResults, float, tuple[Any, str]]:
    """The Elasticsearch/OpenSearch flow: an index with a ``rank_features`` field, bulk-loaded, one search per query.

    ``field_name`` maps a token to its feature name in the index; ``query_body`` builds one query's search body.
    """
    queries = _check_decoded(query_embeddings_decoded, "query_embeddings_decoded")
    top_k = _check_top_k(top_k)
    client, index_name = _split_corpus_index(corpus_index, _is_search_client, client_name, "index_name")
    if index_name is None:
        if corpus_embeddings_decoded is None:
            raise ValueError("Either corpus_embeddings_decoded or corpus_index must be provided")
        corpus = _check_decoded(corpus_embeddings_decoded, "corpus_embeddings_decoded")
        if client is not None and client_kwargs:
            raise ValueError(
                f"keyword arguments configure a new {client_name} client; got {sorted(client_kwargs)} together "
                "with a client passed as corpus_index"
            )
        if client is None:
            client = (
                client_class(**client_kwargs)
                if "hosts" in client_kwargs
                else client_class(SEARCH_SERVER_URL, **client_kwargs)
            )
        index_name = f"sparse_index_{uuid.uuid4().hex}"
        mappings = {"properties": {"tokens": {"type": "rank_features"}, "id": {"type": "keyword"}}}
        client.indices.create(index=index_name, body={"mappings": mappings})
        starts = range(0, len(corpus), BULK_BATCH)
        for batch_start in _progress(starts, f"Indexing into {client_name}", len(starts)):
            actions = []
            for doc_id in range(batch_start, min(batch_start + BULK_BATCH, len(corpus))):
                tokens = {field_name(token): weight for token, weight in dict(corpus[doc_id]).items()}
                actions.append(
                    {"_index": index_name, "_id": str(doc_id), "_source": {"id": str(doc_id), "tokens": tokens}}
                )
            bulk(client, actions)
        client.indices.refresh(index=index_name)

    results: SearchResults = []
    start = time.perf_counter()
    for query in queries:
        response = client.search(index=index_name, body=query_body(dict(query), top_k))
        results.append([{"corpus_id": int(hit["_id"]), "score": hit["_score"]} for hit in response["hits"]["hits"]])
    search_time = time.perf_counter() - start
    if output_index:
        return results, search_time, (client, index_name)
    return results, search_time


def _elasticsearch_field(token: Any) -> str:
    # Elasticsearch reads a "." in a rank_features key as an object path, so dots become underscores.
    return str(token).replace(".", "_")


def _elasticsearch_query(tokens: dict[Any, float], top_k: int) -> dict[str, Any]:
    features: dict[str, float] = {_elasticsearch_field(token): weight for token, weight in tokens.items()}
    should = [
        {"rank_feature": {"field": f"tokens.{feature}", "saturation": {}, "boost": weight}}
        for feature, weight in features.items()
    ]
    return {"size": top_k, "query": {"bool": {"should": should, "minimum_should_match": 1}}}


def _opensearch_query(tokens: dict[Any, float], top_k: int) -> dict[str, Any]:
    return {"size": top_k, "query": {"neural_sparse": {"tokens": {"query_tokens": tokens}}}}


def semantic_search_elasticsearch(
    query_embeddings_decoded: DecodedEmbeddings,
    corpus_embeddings_decoded: DecodedEmbeddings | None = None,
    corpus_index: tuple[Elasticsearch, str] | Elasticsearch | None = None,
    top_k: int = 10,
    output_index: bool = False,
    **kwargs: Any,
) -> tuple[SearchResults, float] | tuple[SearchResults, float, tuple[Elasticsearch, str]]:
    """Search decoded sparse embeddings in Elasticsearch with ``rank_feature`` queries.

    The corpus goes into a new index whose ``tokens`` field is ``rank_features`` (a ``.`` in a token becomes
    ``_``, which Elasticsearch would read as a path); each query is a ``bool``/``should`` of one ``rank_feature``
    clause per token (saturation function, the token's weight as boost). The requests are the reference's.

    Args:
        query_embeddings_decoded: ``[[(token, weight), ...], ...]``, one list per query, as
            ``SparseEncoder.decode`` returns for a 2-D tensor.
        corpus_embeddings_decoded: The corpus in the same format, indexed when ``corpus_index`` is None or a
            bare client; ignored when ``corpus_index`` names an index.
        corpus_index: ``(Elasticsearch client, index_name)`` of an index to search; sentrs also accepts a bare
            client, to build the new index with.
        top_k: Results per query.
        output_index: Also return ``(client, index_name)``.
        **kwargs: Arguments of the ``Elasticsearch`` client created when ``corpus_index`` is None; it connects to
            ``http://localhost:9200`` unless they include ``hosts``.

    Returns:
        ``(results, search_time)`` or, with ``output_index``, ``(results, search_time, (client, index_name))``;
        ``results[i]`` is ``[{"corpus_id": int, "score": float}, ...]`` for query ``i``, best first.
    """
    try:
        from elasticsearch import Elasticsearch, helpers
    except ImportError as exc:
        raise ImportError(
            "semantic_search_elasticsearch needs the Elasticsearch client: pip install elasticsearch"
        ) from exc
    return _rank_features_search(
        Elasticsearch,
        helpers.bulk,
        "Elasticsearch",
        query_embeddings_decoded,
        corpus_embeddings_decoded,
        corpus_index,
        top_k,
        output_index,
        kwargs,
        _elasticsearch_field,
        _elasticsearch_query,
    )


def semantic_search_opensearch(
    query_embeddings_decoded: DecodedEmbeddings,
    corpus_embeddings_decoded: DecodedEmbeddings | None = None,
    corpus_index: tuple[OpenSearch, str] | OpenSearch | None = None,
    top_k: int = 10,
    output_index: bool = False,
    **kwargs: Any,
) -> tuple[SearchResults, float] | tuple[SearchResults, float, tuple[OpenSearch, str]]:
    """Search decoded sparse embeddings in OpenSearch with ``neural_sparse`` queries.

    The corpus goes into a new index whose ``tokens`` field is ``rank_features``; each query is a
    ``neural_sparse`` query with the query's tokens and weights (``query_tokens``), which OpenSearch scores by dot
    product. The requests are the reference's.

    Args:
        query_embeddings_decoded: ``[[(token, weight), ...], ...]``, one list per query, as
            ``SparseEncoder.decode`` returns for a 2-D tensor.
        corpus_embeddings_decoded: The corpus in the same format, indexed when ``corpus_index`` is None or a
            bare client; ignored when ``corpus_index`` names an index.
        corpus_index: ``(OpenSearch client, index_name)`` of an index to search; sentrs also accepts a bare client,
            to build the new index with.
        top_k: Results per query.
        output_index: Also return ``(client, index_name)``.
        **kwargs: Arguments of the ``OpenSearch`` client created when ``corpus_index`` is None; it connects to
            ``http://localhost:9200`` unless they include ``hosts``.

    Returns:
        ``(results, search_time)`` or, with ``output_index``, ``(results, search_time, (client, index_name))``;
        ``results[i]`` is ``[{"corpus_id": int, "score": float}, ...]`` for query ``i``, best first.
    """
    try:
        from opensearchpy import OpenSearch, helpers
    except ImportError as exc:
        raise ImportError("semantic_search_opensearch needs the OpenSearch client: pip install opensearch-py") from exc
    return _rank_features_search(
        OpenSearch,
        helpers.bulk,
        "OpenSearch",
        query_embeddings_decoded,
        corpus_embeddings_decoded,
        corpus_index,
        top_k,
        output_index,
        kwargs,
        lambda token: token,
        _opensearch_query,
    )


# ----------------------------------------------------------------------------------------------------- Seismic
def semantic_search_seismic(
    query_embeddings_decoded: DecodedEmbeddings,
    corpus_embeddings_decoded: DecodedEmbeddings | None = None,
    corpus_index: SeismicIndex | None = None,
    top_k: int = 10,
    output_index: bool = False,
    index_kwargs: dict[str, Any] | None = None,
    search_kwargs: dict[str, Any] | None = None,
) -> tuple[SearchResults, float] | tuple[SearchResults, float, SeismicIndex]:
    """Search decoded sparse embeddings with Seismic, an in-process approximate inverted index (dot product).

    Args:
        query_embeddings_decoded: ``[[(token, weight), ...], ...]``, one list per query, as
            ``SparseEncoder.decode`` returns for a 2-D tensor.
        corpus_embeddings_decoded: The corpus in the same format, indexed (document ids ``"0".."n-1"``) when
            ``corpus_index`` is None; ignored otherwise.
        corpus_index: A ``SeismicIndex`` to search, e.g. one returned with ``output_index=True``.
        top_k: Results per query. Queries sharing no token with the corpus get an empty list.
        output_index: Also return the ``SeismicIndex``.
        index_kwargs: Arguments of ``SeismicIndex.build_from_dataset`` (``n_postings``, ``centroid_fraction``,
            ``summary_energy``, ``nknn``, ``num_threads``, ...).
        search_kwargs: Arguments of ``SeismicIndex.batch_search`` (``query_cut``, ``heap_factor``, ``n_knn``,
            ``sorted``, ``num_threads``); ``query_cut`` defaults to 10 and ``heap_factor`` to 0.7, as in the
            reference. The dict is not modified.

    Returns:
        ``(results, search_time)`` or, with ``output_index``, ``(results, search_time, index)``; ``results[i]`` is
        ``[{"corpus_id": int, "score": float}, ...]`` for query ``i``, best first.
    """
    try:
        from seismic import SeismicDataset, SeismicIndex, get_seismic_string
    except ImportError as exc:
        raise ImportError("semantic_search_seismic needs Seismic: pip install pyseismic-lsr") from exc
    token_dtype = get_seismic_string()
    queries = _check_decoded(query_embeddings_decoded, "query_embeddings_decoded")
    top_k = _check_top_k(top_k)
    for name, value in (("index_kwargs", index_kwargs), ("search_kwargs", search_kwargs)):
        if value is not None and not isinstance(value, dict):
            raise ValueError(f"{name} must be a dict or None, got {_describe(value)}")
    search_options = {**SEISMIC_SEARCH_DEFAULTS, **(search_kwargs or {})}

    def as_arrays(embedding: list[tuple[str, float]]) -> tuple[npt.NDArray[Any], npt.NDArray[np.float32]]:
        weights = dict(embedding)
        return np.array(list(weights), dtype=token_dtype), np.array(list(weights.values()), dtype=np.float32)

    if corpus_index is None:
        if corpus_embeddings_decoded is None:
            raise ValueError("Either corpus_embeddings_decoded or corpus_index must be provided")
        corpus = _check_decoded(corpus_embeddings_decoded, "corpus_embeddings_decoded")
        dataset = SeismicDataset()
        for doc_id in _progress(range(len(corpus)), "Adding documents to Seismic", len(corpus)):
            dataset.add_document(str(doc_id), *as_arrays(corpus[doc_id]))
        corpus_index = SeismicIndex.build_from_dataset(dataset, **(index_kwargs or {}))

    start = time.perf_counter()
    results: SearchResults = [[] for _ in queries]
    if queries:
        components, values = zip(*(as_arrays(query) for query in queries))
        found = corpus_index.batch_search(
            queries_ids=np.array([str(i) for i in range(len(queries))], dtype=token_dtype),
            query_components=list(components),
            query_values=list(values),
            k=top_k,
            **search_options,
        )
        # Seismic answers in any order, each hit as (query id, score, document id); a query that matched nothing
        # is an empty list without its id, so results are placed by the id inside them.
        for hits in found:
            if hits:
                results[int(hits[0][0])] = [{"corpus_id": int(doc_id), "score": score} for _, score, doc_id in hits]
    search_time = time.perf_counter() - start
    if output_index:
        return results, search_time, corpus_index
    return results, search_time
