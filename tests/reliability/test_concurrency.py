"""Shared models and indexes called from 8 threads at once give the serial results; a forked child still works.

Every test starts 8 daemon threads behind a barrier (so their calls really overlap), each running several rounds on
its own inputs (so a mix-up between threads shows), and compares every result with the same call made serially
beforehand. Threads are joined with a deadline: a deadlock (between the Rust pool, torch's intra-op threads, ONNX
Runtime or OpenVINO) fails the test instead of hanging the run. Daemon threads, not a ``ThreadPoolExecutor``: a stuck
executor thread would block the interpreter's exit.

Tolerances: Rust kernels (top-k search, the sparse inverted index, pooling, tokenization) are compared bitwise:
their result does not depend on which or how many threads run them. Torch and the exported backends are compared
at 1e-6 absolute: BLAS and oneDNN may split a reduction differently when several threads call at once, which moves
O(1) float32 values by a few ulps (observed: 0 here); a race between threads gives differences of order 1.
"""

from __future__ import annotations

import multiprocessing
import shutil
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs
from sentrs import ops
from sentrs.util import semantic_search
from tests.cross_encoder.conftest import make_tiny_ce  # noqa: F401  (a fixture used below)

THREADS = 8
DEADLINE_S = 120.0
TORCH_ATOL = 1e-6

_WORDS = (
    "the a man woman child dog cat horse eats rides reads writes quickly slowly bread food book letter park river "
    "city house runs sleeps under over near green red old new small large music heart disease cause"
).split()


def _texts(n: int, seed: int, min_words: int = 2, max_words: int = 30) -> list[str]:
    """``n`` sentences of varied lengths (so batches pad differently) from a fixed vocabulary."""
    rng = np.random.default_rng(seed)
    return [
        " ".join(rng.choice(_WORDS, size=int(rng.integers(min_words, max_words + 1))).tolist()) + "." for _ in range(n)
    ]


def run_threads(work: list[Callable[[], Any]], rounds: int, deadline_s: float = DEADLINE_S) -> list[list[Any]]:
    """Runs ``work[i]`` ``rounds`` times on thread i, all threads released together; returns each thread's results.

    Any exception in a thread is re-raised here; a thread still running at the deadline fails the test.
    """
    barrier = threading.Barrier(len(work))
    results: list[list[Any]] = [[] for _ in work]
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=deadline_s)
            for _ in range(rounds):
                results[i].append(work[i]())
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), daemon=True, name=f"conc-{i}") for i in range(len(work))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=deadline_s)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads {stuck} still running after {deadline_s}s: deadlock or livelock"
    if errors:
        raise errors[0]
    assert all(len(r) == rounds for r in results)
    return results


def _assert_each_matches(
    results: list[list[Any]], expected: list[Any], compare: Callable[[Any, Any], None], what: str
) -> None:
    for i, per_thread in enumerate(results):
        for r, got in enumerate(per_thread):
            try:
                compare(got, expected[i])
            except AssertionError as exc:
                raise AssertionError(f"{what}: thread {i}, round {r} differs from the serial run: {exc}") from None


def _close(got: Any, want: Any) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=TORCH_ATOL, rtol=0)


def _same(got: Any, want: Any) -> None:
    if isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
        return
    if isinstance(want, np.ndarray):
        np.testing.assert_array_equal(got, want)
        assert got.dtype == want.dtype
        return
    assert got == want


# ------------------------------------------------------------------ models


@pytest.fixture(scope="module")
def tiny_st(make_tiny_st: Callable[..., str]) -> Any:
    return sentrs.SentenceTransformer(make_tiny_st(normalize=True), device="cpu")


@pytest.fixture(scope="module")
def minilm(minilm_path: str) -> Any:
    return sentrs.SentenceTransformer(minilm_path, device="cpu")


@pytest.fixture(scope="module")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A random 2-layer BertForMaskedLM (hidden 32) with the MiniLM WordPiece tokenizer: a SPLADE model folder."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(3)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    model = BertForMaskedLM(config)
    with torch.no_grad():  # a negative decoder bias keeps a few hundred active dimensions per text, as SPLADE has
        model.cls.predictions.bias.fill_(-0.25)
    out = tmp_path_factory.mktemp("tiny_mlm")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def tiny_sparse(tiny_mlm_dir: str) -> Any:
    return sentrs.SparseEncoder(tiny_mlm_dir, device="cpu")


@pytest.fixture(scope="module")
def tiny_onnx_dir(tmp_path_factory: pytest.TempPathFactory, make_tiny_st: Callable[..., str]) -> str:
    """The tiny SentenceTransformer folder with ``onnx/model.onnx`` exported by sentrs."""
    out = tmp_path_factory.mktemp("conc_onnx") / "model"
    shutil.copytree(make_tiny_st(normalize=True), out)
    sentrs.SentenceTransformer(str(out), backend="onnx", device="cpu")
    return str(out)


@pytest.fixture(scope="module")
def tiny_openvino_dir(
    tmp_path_factory: pytest.TempPathFactory, make_tiny_st: Callable[..., str], tiny_onnx_dir: str
) -> str:
    """The tiny folder with ``openvino/openvino_model.xml`` converted from the exported ONNX file."""
    from sentrs.backend.openvino import convert_onnx_to_openvino

    out = tmp_path_factory.mktemp("conc_ov") / "model"
    shutil.copytree(make_tiny_st(normalize=True), out)
    convert_onnx_to_openvino(
        str(Path(tiny_onnx_dir) / "onnx" / "model.onnx"), str(out / "openvino" / "openvino_model.xml")
    )
    return str(out)


# ------------------------------------------------------------------ dense encoders


def test_tiny_sentence_transformer_encode_8_threads(tiny_st: Any) -> None:
    """8 threads x 3 rounds of encode on one torch model, each thread its own 40 texts in 3 batches."""
    inputs = [_texts(40, seed=i) for i in range(THREADS)]
    expected = [tiny_st.encode(x, batch_size=16) for x in inputs]
    results = run_threads([lambda x=x: tiny_st.encode(x, batch_size=16) for x in inputs], rounds=3)
    _assert_each_matches(results, expected, _close, "SentenceTransformer.encode")


def test_per_call_max_length_8_threads(tiny_st: Any) -> None:
    """Threads alternating two truncation lengths (``processing_kwargs``) each get their own: the module's cached
    Rust tokenizer is rebuilt per setting, and one thread must never tokenize with the other's."""
    long_texts = [_texts(12, seed=100 + i, min_words=20, max_words=40) for i in range(THREADS)]
    lengths = [6 if i % 2 else 20 for i in range(THREADS)]

    def call(i: int) -> Any:
        return tiny_st.encode(long_texts[i], batch_size=8, processing_kwargs={"text": {"max_length": lengths[i]}})

    expected = [call(i) for i in range(THREADS)]
    assert not np.allclose(expected[0], tiny_st.encode(long_texts[0], batch_size=8))  # truncation matters here
    results = run_threads([lambda i=i: call(i) for i in range(THREADS)], rounds=4)
    _assert_each_matches(results, expected, _close, "encode(processing_kwargs=max_length)")


@pytest.mark.slow
def test_minilm_encode_8_threads(minilm: Any) -> None:
    """The real MiniLM: 8 threads x 2 rounds, 5 texts each (real BLAS work in every thread at once)."""
    inputs = [_texts(5, seed=200 + i) for i in range(THREADS)]
    expected = [minilm.encode(x, batch_size=8) for x in inputs]
    results = run_threads([lambda x=x: minilm.encode(x, batch_size=8) for x in inputs], rounds=2)
    _assert_each_matches(results, expected, _close, "MiniLM encode")


def test_cross_encoder_predict_and_rank_8_threads(make_tiny_ce: Callable[[int], str]) -> None:  # noqa: F811
    """Even threads predict pairs, odd threads rank documents, 3 rounds each, on one tiny cross-encoder."""
    ce = sentrs.CrossEncoder(make_tiny_ce(1), device="cpu")
    queries = _texts(THREADS, seed=300)
    docs = [_texts(20, seed=310 + i) for i in range(THREADS)]

    def call(i: int) -> Any:
        if i % 2 == 0:
            return ce.predict([(queries[i], d) for d in docs[i]], batch_size=8)
        ranked = ce.rank(queries[i], docs[i], top_k=7, batch_size=8)
        return [(r["corpus_id"], r["score"]) for r in ranked]

    def compare(got: Any, want: Any) -> None:
        if isinstance(want, np.ndarray):
            _close(got, want)
        else:
            assert [g[0] for g in got] == [w[0] for w in want]
            _close([g[1] for g in got], [w[1] for w in want])

    expected = [call(i) for i in range(THREADS)]
    results = run_threads([lambda i=i: call(i) for i in range(THREADS)], rounds=3)
    _assert_each_matches(results, expected, compare, "CrossEncoder predict/rank")


# ------------------------------------------------------------------ search (Rust kernels)


@pytest.fixture(scope="module")
def dense_corpus() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.standard_normal((40_000, 64), dtype=np.float32)


def test_semantic_search_8_threads(dense_corpus: np.ndarray) -> None:
    """8 threads x 3 rounds of ``util.semantic_search`` (cosine and dot) and ``ops.topk_self_search``-free top-k,
    all on the Rust pool at once; bitwise identical to the serial results."""
    rng = np.random.default_rng(8)
    queries = [rng.standard_normal((64, 64), dtype=np.float32) for _ in range(THREADS)]

    def call(i: int) -> Any:
        from sentrs.util import dot_score

        if i % 2:
            hits = semantic_search(queries[i], dense_corpus, top_k=15)
        else:
            hits = semantic_search(queries[i], dense_corpus, top_k=15, score_function=dot_score)
        return [[(h["corpus_id"], h["score"]) for h in row] for row in hits]

    expected = [call(i) for i in range(THREADS)]
    results = run_threads([lambda i=i: call(i) for i in range(THREADS)], rounds=3)
    _assert_each_matches(results, expected, _same, "semantic_search")


def _random_csr(n: int, dim: int, nnz_per_row: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    indptr = np.arange(0, (n + 1) * nnz_per_row, nnz_per_row, dtype=np.int64)
    indices = np.sort(
        rng.integers(0, dim, size=(n, nnz_per_row), dtype=np.int64) // 4 * 4 + np.arange(nnz_per_row) % 4, axis=1
    )
    keep_unique = np.concatenate([np.ones((n, 1), bool), np.diff(indices, axis=1) != 0], axis=1)
    values = (rng.random((n, nnz_per_row), dtype=np.float32) + 0.01) * keep_unique  # duplicates weigh nothing
    return indptr, indices.reshape(-1), values.reshape(-1).astype(np.float32)


def test_sparse_index_and_sparse_semantic_search_8_threads() -> None:
    """One shared ``ops.SparseIndex`` searched from 4 threads while 4 others run ``util.semantic_search`` on sparse
    tensors (each building its own index), 3 rounds each; bitwise identical to the serial results."""
    dim = 5000
    corpus = _random_csr(20_000, dim, 24, seed=9)
    index = ops.SparseIndex(*corpus, dim)
    query_csr = [_random_csr(50, dim, 12, seed=20 + i) for i in range(THREADS)]
    corpus_t = torch.sparse_csr_tensor(*(torch.from_numpy(a) for a in corpus), size=(20_000, dim)).to_sparse_coo()

    def call(i: int) -> Any:
        if i % 2 == 0:
            return index.search(*query_csr[i], 10, "dot" if i % 4 else "cosine")
        q = torch.sparse_csr_tensor(*(torch.from_numpy(a) for a in query_csr[i]), size=(50, dim)).to_sparse_coo()
        hits = semantic_search(q, corpus_t, top_k=10)
        return [[(h["corpus_id"], h["score"]) for h in row] for row in hits]

    expected = [call(i) for i in range(THREADS)]
    results = run_threads([lambda i=i: call(i) for i in range(THREADS)], rounds=3)
    _assert_each_matches(results, expected, _same, "sparse search")


def test_sparse_encoder_encode_8_threads(tiny_sparse: Any) -> None:
    """8 threads x 3 rounds of SparseEncoder.encode (the fused SPLADE head patches the shared decoder while it runs),
    half of them with ``max_active_dims``; same active dimensions and values (1e-6) as the serial run."""
    inputs = [_texts(20, seed=400 + i) for i in range(THREADS)]

    def call(i: int) -> Any:
        emb = tiny_sparse.encode(inputs[i], batch_size=8, max_active_dims=64 if i % 2 else None).coalesce()
        return emb.indices().numpy(), emb.values().numpy()

    def compare(got: Any, want: Any) -> None:
        np.testing.assert_array_equal(got[0], want[0])
        _close(got[1], want[1])

    expected = [call(i) for i in range(THREADS)]
    results = run_threads([lambda i=i: call(i) for i in range(THREADS)], rounds=3)
    _assert_each_matches(results, expected, compare, "SparseEncoder.encode")


def test_sparse_encoder_fused_head_leaves_other_threads_alone(tiny_sparse: Any) -> None:
    """While threads encode (the fused head swaps the decoder's forward for the duration), other threads calling the
    model's forward pass directly must still get the decoder's logits, never the captured hidden states."""
    inputs = [_texts(16, seed=450 + i) for i in range(THREADS)]
    features = tiny_sparse.preprocess(_texts(4, seed=460))
    with torch.inference_mode():
        want_logits = tiny_sparse[0](dict(features))["token_embeddings"].clone()
    assert want_logits.shape[-1] == 30522

    def call(i: int) -> Any:
        if i % 2:
            return tiny_sparse.encode(inputs[i], batch_size=4).coalesce().values().sum().item()
        with torch.inference_mode():
            return tiny_sparse[0](dict(features))["token_embeddings"]

    expected_sums = {i: call(i) for i in range(1, THREADS, 2)}
    results = run_threads([lambda i=i: call(i) for i in range(THREADS)], rounds=3)
    for i, per_thread in enumerate(results):
        for r, got in enumerate(per_thread):
            if i % 2:
                assert abs(got - expected_sums[i]) <= 1e-3, f"thread {i} round {r}: sparse sums differ"
            else:
                assert got.shape == want_logits.shape, f"thread {i} round {r}: forward returned {tuple(got.shape)}"
                _close(got, want_logits)


# ------------------------------------------------------------------ exported backends


@pytest.mark.slow
def test_onnx_engine_encode_8_threads(tiny_onnx_dir: str) -> None:
    """The engine (ONNX Runtime, one stream per core, its own stream threads per call) from 8 threads at once."""
    model = sentrs.SentenceTransformer(tiny_onnx_dir, backend="onnx", device="cpu")
    assert model.runs_in_engine
    inputs = [_texts(40, seed=500 + i) for i in range(THREADS)]
    expected = [model.encode(x, batch_size=8) for x in inputs]
    results = run_threads([lambda x=x: model.encode(x, batch_size=8) for x in inputs], rounds=3)
    _assert_each_matches(results, expected, _close, "ONNX engine encode")


@pytest.mark.slow
@pytest.mark.parametrize("torch_modules", [False, True], ids=["engine", "torch-modules"])
def test_openvino_encode_8_threads(
    tiny_openvino_dir: str, torch_modules: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenVINO in the engine (throughput streams) and inside the torch Transformer module (one compiled model,
    whose infer requests are not thread-safe) from 8 threads at once."""
    if torch_modules:
        monkeypatch.setenv("SENTRS_TORCH_FREE", "0")
    model = sentrs.SentenceTransformer(tiny_openvino_dir, backend="openvino", device="cpu")
    assert model.runs_in_engine is not torch_modules
    inputs = [_texts(40, seed=600 + i) for i in range(THREADS)]
    expected = [model.encode(x, batch_size=8) for x in inputs]
    results = run_threads([lambda x=x: model.encode(x, batch_size=8) for x in inputs], rounds=3)
    _assert_each_matches(
        results, expected, _close, f"OpenVINO encode ({'torch modules' if torch_modules else 'engine'})"
    )


# ------------------------------------------------------------------ everything at once


@pytest.mark.slow
def test_all_apis_at_once(tiny_st: Any, tiny_sparse: Any, tiny_onnx_dir: str, dense_corpus: np.ndarray) -> None:
    """Torch encode, ONNX engine encode, sparse encode, dense and sparse search: 8 threads (two per kind) at once,
    3 rounds; no deadlock between torch's, ONNX Runtime's and the Rust pool's threads, serial results."""
    onnx_model = sentrs.SentenceTransformer(tiny_onnx_dir, backend="onnx", device="cpu")
    texts = [_texts(24, seed=700 + i) for i in range(THREADS)]
    rng = np.random.default_rng(70)
    queries = rng.standard_normal((32, 64), dtype=np.float32)
    dim = 3000
    index = ops.SparseIndex(*_random_csr(10_000, dim, 16, seed=71), dim)
    sparse_q = _random_csr(40, dim, 8, seed=72)

    def call(i: int) -> Any:
        kind = i % 4
        if kind == 0:
            return tiny_st.encode(texts[i], batch_size=8)
        if kind == 1:
            return onnx_model.encode(texts[i], batch_size=8)
        if kind == 2:
            emb = tiny_sparse.encode(texts[i], batch_size=8).coalesce()
            return emb.indices().numpy(), emb.values().numpy()
        ids, scores = ops.topk_search(queries, dense_corpus, 10)
        sparse_ids, sparse_scores = index.search(*sparse_q, 10)
        return ids, scores, sparse_ids, sparse_scores

    def compare(got: Any, want: Any) -> None:
        if isinstance(want, tuple) and len(want) == 4:
            _same(got, want)
        elif isinstance(want, tuple):
            np.testing.assert_array_equal(got[0], want[0])
            _close(got[1], want[1])
        else:
            _close(got, want)

    expected = [call(i) for i in range(THREADS)]
    results = run_threads([lambda i=i: call(i) for i in range(THREADS)], rounds=3)
    _assert_each_matches(results, expected, compare, "mixed APIs")


# ------------------------------------------------------------------ fork


def _child_work(model: Any, queries: np.ndarray, corpus: np.ndarray, texts: list[str], out: Any) -> None:
    """In the forked child: a parallel-sized search (sequential there) and an encode, results sent back."""
    ids, scores = ops.topk_search(queries, corpus, 10)
    out.put((ids, scores, model.encode(texts, batch_size=8), ops.num_threads(), torch.get_num_threads()))


def test_fork_after_rust_pool_started(tiny_st: Any, dense_corpus: np.ndarray) -> None:
    """The parent runs a search on the Rust pool and an encode, then forks: the child (multiprocessing ``fork``
    context) searches and encodes with the inherited model and returns the parent's results (search bitwise, encode
    within 1e-6). Rust and torch run single-threaded in the child: torch with the parent's thread count there waits
    forever for OpenMP workers that were not forked (sentrs sets it to 1 at fork)."""
    rng = np.random.default_rng(80)
    queries = rng.standard_normal((256, 64), dtype=np.float32)
    texts = _texts(20, seed=81)
    assert ops.num_threads() >= 1
    ids, scores = ops.topk_search(queries, dense_corpus, 10)  # 256 x 40k x 64: runs on the pool
    emb = tiny_st.encode(texts, batch_size=8)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a process with threads may deadlock; that is what this test checks.
        warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
        child = ctx.Process(target=_child_work, args=(tiny_st, queries, dense_corpus, texts, queue))
        child.start()
    try:
        child_ids, child_scores, child_emb, child_threads, child_torch_threads = queue.get(timeout=60)
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    assert child_threads == 1  # the pool is off in the child
    assert child_torch_threads == 1
    np.testing.assert_array_equal(child_ids, ids)
    np.testing.assert_array_equal(child_scores, scores)
    _close(child_emb, emb)
