"""Peak memory of encode and search stays within bounds set by the inputs and outputs, never by ``Q x N``.

Each case runs in a fresh subprocess (torch on one thread, so the timings do not depend on the machine's load): it
builds its inputs without transient copies, resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), runs the
call and reports ``extra`` = peak RSS during the call minus RSS before it. Bounds established here (MiB = 2**20 B):

- Dense search, ``util.semantic_search`` / ``ops.topk_search`` of Q queries over an (N, d) float32 corpus:
  extra <= 96 MiB + 400 B per returned hit (the list of dicts), whatever Q x N. Measured: 1,000 x 100k x 64
  (Q x N x 4 B = 381 MiB): 3-7 MiB; 100 x 1M x 384 (1.5 GB corpus, Q x N x 4 B = 381 MiB): 2-53 MiB.
- Sparse inverted index (``ops.SparseIndex``) of N documents with nnz stored values: building it, extra <=
  8 B x nnz + 8 B x (N + dim) + 32 MiB (the index holds a u32 document id and an f32 value per entry); searching
  Q queries, extra <= 4 B x N per Rust thread (the score accumulator) + 12 B x Q x min(k, N) + 32 MiB. Measured:
  1M documents x 32 values: build 248 MiB (for 374 MiB of CSR input), search of 100 queries 4 MiB.
- ``SentenceTransformer.encode`` of T texts holding K tokens in all: extra <= output + 48 B x K + 64 MiB (every
  text is tokenized once up front; batches then pad only their own rows). Measured: 1M short texts (about 9M
  tokens, 122 MiB output): 332 MiB.
- Arguments far beyond the data (``top_k=10**12`` and ``2**64``, ``corpus_chunk_size``/``query_chunk_size=10**12``,
  ``batch_size=10**9``, ``max_active_dims=10**9``, ``max_pairs=10**30``) give the in-range result, within a second,
  with extra <= 64 MiB: nothing is sized by the argument.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

MIB = 2**20

# Shared by every child: peak-RSS reset and measurement (Linux), inputs built in place.
HELPERS = r"""
import json, sys, time
import numpy as np

def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(key)

def measure(fn):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM, the peak RSS, to the current RSS
    before = _status("VmRSS")
    start = time.perf_counter()
    out = fn()
    return out, _status("VmHWM") - before, time.perf_counter() - start

def normal_rows(n, d, seed):
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 65536):
        out[s : s + 65536] = rng.standard_normal((min(65536, n - s), d), dtype=np.float32)
    return out

def random_csr(n, dim, nnz, seed):
    rng = np.random.default_rng(seed)
    indptr = np.arange(0, (n + 1) * nnz, nnz, dtype=np.int64)
    indices = np.empty(n * nnz, dtype=np.int64)
    values = np.empty(n * nnz, dtype=np.float32)
    for s in range(0, n, 65536):
        m = min(65536, n - s)
        cols = np.sort(rng.integers(0, dim // nnz, size=(m, nnz)) + np.arange(nnz) * (dim // nnz), axis=1)
        indices[s * nnz : (s + m) * nnz] = cols.reshape(-1)
        values[s * nnz : (s + m) * nnz] = rng.random(m * nnz, dtype=np.float32) + 0.01
    return indptr, indices, values

WORDS = "the a man woman dog cat eats rides bread food park river city music old new".split()

def short_texts(n, seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 9, size=n)
    picks = rng.integers(0, len(WORDS), size=int(lengths.sum()))
    out, pos = [], 0
    for k in lengths.tolist():
        out.append(" ".join(WORDS[j] for j in picks[pos : pos + k]))
        pos += k
    return out

REPORT = {}
"""


def run_child(body: str, timeout: float = 170) -> dict[str, Any]:
    """Runs ``HELPERS + body`` in a fresh interpreter; ``body`` fills ``REPORT``, printed as JSON on the last line."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    code = HELPERS + body + "\nprint(json.dumps(REPORT))\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS is read from /proc")

DENSE = r"""
from sentrs import ops
from sentrs.util import semantic_search
N, D, Q = {n}, {d}, {q}
corpus = normal_rows(N, D, 0)
queries = normal_rows(Q, D, 1)
ops.topk_search(queries[:2], corpus[:1000], 3)  # starts the Rust pool outside the measurement
(ids, scores), extra, secs = measure(lambda: ops.topk_search(queries, corpus, 10))
REPORT["topk_search"] = [extra, secs]
hits, extra, secs = measure(lambda: semantic_search(queries, corpus, top_k=10))
REPORT["semantic_search"] = [extra, secs]
REPORT["same"] = [[h["corpus_id"] for h in row] for row in hits] == ids.tolist()
"""


def _check_dense(report: dict[str, Any], q: int, n: int) -> None:
    assert report["same"]
    bound = 96 * MIB + 400 * q * 10
    assert bound < q * n * 4  # the bound could not hold a Q x N score matrix
    for name in ("topk_search", "semantic_search"):
        extra, _ = report[name]
        assert extra <= bound, f"{name}: {extra / MIB:.0f} MiB extra, bound {bound / MIB:.0f} MiB"


def test_dense_search_100k_x_64_memory() -> None:
    """1,000 queries over 100k x 64: the Q x N score matrix would be 381 MiB; the search stays under 100 MiB."""
    _check_dense(run_child(DENSE.format(n=100_000, d=64, q=1000)), 1000, 100_000)


@pytest.mark.slow
def test_dense_search_1m_x_384_memory() -> None:
    """100 queries over a 1M x 384 float32 corpus (1.5 GB): extra peak independent of Q x N (381 MiB)."""
    _check_dense(run_child(DENSE.format(n=1_000_000, d=384, q=100)), 100, 1_000_000)


SPARSE = r"""
from sentrs import ops
N, DIM, NNZ, Q = {n}, 30522, 32, 100
csr = random_csr(N, DIM, NNZ, 0)
queries = random_csr(Q, DIM, 16, 1)
index, extra, secs = measure(lambda: ops.SparseIndex(*csr, DIM))
REPORT["build"] = [extra, secs]
(ids, scores), extra, secs = measure(lambda: index.search(*queries, 10))
REPORT["search"] = [extra, secs]
REPORT["shape"] = list(ids.shape)
(all_ids, _), extra, secs = measure(lambda: index.search(queries[0][:3], queries[1][:32], queries[2][:32], 10**12))
REPORT["huge_k"] = [extra, secs]
REPORT["huge_k_shape"] = list(all_ids.shape)
REPORT["threads"] = ops.num_threads()
"""


def _check_sparse(report: dict[str, Any], n: int) -> None:
    nnz, dim, q = n * 32, 30522, 100
    build_bound = 8 * nnz + 8 * (n + dim) + 32 * MIB
    assert report["build"][0] <= build_bound, f"index build {report['build'][0] / MIB:.0f} MiB"
    assert report["shape"] == [q, 10]
    search_bound = 4 * n * report["threads"] + 12 * q * 10 + 32 * MIB
    assert report["search"][0] <= search_bound, f"search {report['search'][0] / MIB:.0f} MiB"
    assert search_bound < q * n * 4
    # top_k far beyond the corpus: the whole ranking, sized by N (2 queries x N x 12 B), not by k.
    assert report["huge_k_shape"] == [2, n]
    assert report["huge_k"][0] <= 4 * n * report["threads"] + 12 * 2 * n + 32 * MIB


def test_sparse_index_100k_memory() -> None:
    _check_sparse(run_child(SPARSE.format(n=100_000)), 100_000)


@pytest.mark.slow
def test_sparse_index_1m_memory() -> None:
    """1M documents x 32 values over a 30,522 vocabulary (374 MiB of CSR)."""
    _check_sparse(run_child(SPARSE.format(n=1_000_000)), 1_000_000)


ENCODE = r"""
import sentrs, torch
model = sentrs.SentenceTransformer({path!r}, device="cpu")
model.encode(["warm up"] * 8)
texts = short_texts({n}, 0)
REPORT["tokens"] = int(model[0].encode_texts(texts).lengths().sum())
emb, extra, secs = measure(lambda: model.encode(texts, batch_size={batch}))
REPORT["encode"] = [extra, secs]
REPORT["out_bytes"] = emb.nbytes
REPORT["first"] = emb[:3].tolist()
REPORT["first_alone"] = model.encode(texts[:3]).tolist()
"""


def _check_encode(report: dict[str, Any]) -> None:
    import numpy as np

    np.testing.assert_allclose(report["first"], report["first_alone"], atol=1e-6, rtol=0)
    bound = report["out_bytes"] + 48 * report["tokens"] + 64 * MIB
    extra = report["encode"][0]
    assert extra <= bound, f"encode: {extra / MIB:.0f} MiB extra, bound {bound / MIB:.0f} MiB"


def test_encode_10k_short_texts_memory(far_report: dict[str, Any]) -> None:
    """10k short texts (measured in the child of the far-beyond cases, which loads the same model)."""
    _check_encode(far_report)


@pytest.mark.slow
def test_encode_1m_short_texts_memory(make_tiny_st: Any) -> None:
    """1M short texts (2-8 words) through the tiny BERT (hidden 32) on one torch thread."""
    _check_encode(run_child(ENCODE.format(path=make_tiny_st(), n=1_000_000, batch=1024), timeout=170))


FAR = r"""
import torch, sentrs
from sentrs import ops, util
corpus = normal_rows(2000, 16, 0)
queries = normal_rows(5, 16, 1)

def case(name, fn, want):
    got, extra, secs = measure(fn)
    REPORT[name] = [extra, secs, got == want]

ids = lambda hits: [[h["corpus_id"] for h in row] for row in hits]
full = ids(util.semantic_search(queries, corpus, top_k=2000))
case("semantic_search top_k=1e12", lambda: ids(util.semantic_search(queries, corpus, top_k=10**12)), full)
case("semantic_search top_k=2**64", lambda: ids(util.semantic_search(queries, corpus, top_k=2**64)), full)
case("semantic_search chunk sizes=1e12",
     lambda: ids(util.semantic_search(queries, corpus, top_k=5, corpus_chunk_size=10**12, query_chunk_size=10**12)),
     [row[:5] for row in full])
manhattan = lambda a, b: -torch.cdist(a, b, p=1)
tq, tc = torch.from_numpy(queries), torch.from_numpy(corpus)
case("semantic_search torch path top_k=1e12",
     lambda: ids(util.semantic_search(tq, tc, top_k=10**12, score_function=manhattan, corpus_chunk_size=10**12)),
     ids(util.semantic_search(tq, tc, top_k=2000, score_function=manhattan)))
small = torch.from_numpy(corpus[:300])
case("paraphrase_mining top_k=1e12 max_pairs=1e30",
     lambda: util.paraphrase_mining_embeddings(small, top_k=10**12, max_pairs=10**30)[:50],
     util.paraphrase_mining_embeddings(small, top_k=299, max_pairs=300 * 299)[:50])
case("paraphrase_mining torch path top_k=1e12",
     lambda: util.paraphrase_mining_embeddings(small, top_k=10**12, score_function=manhattan)[:50],
     util.paraphrase_mining_embeddings(small, top_k=299, score_function=manhattan)[:50])
case("community_detection batch_size=1e12",
     lambda: util.community_detection(small, threshold=0.3, min_community_size=2, batch_size=10**12),
     util.community_detection(small, threshold=0.3, min_community_size=2))
dense = np.maximum(corpus, 0)
case("dense_to_csr max_active_dims=1e9",
     lambda: [a.tolist() for a in ops.dense_to_csr(dense, max_active_dims=10**9)],
     [a.tolist() for a in ops.dense_to_csr(dense)])

st = sentrs.SentenceTransformer({st!r}, device="cpu")
texts = short_texts(200, 2)
case("encode batch_size=1e9", lambda: st.encode(texts, batch_size=10**9).round(5).tolist(),
     st.encode(texts, batch_size=32).round(5).tolist())
ce = sentrs.CrossEncoder({ce!r}, device="cpu")
pairs = [(texts[0], t) for t in texts[:50]]
case("CrossEncoder.predict batch_size=1e9", lambda: ce.predict(pairs, batch_size=10**9).round(5).tolist(),
     ce.predict(pairs, batch_size=8).round(5).tolist())
rank_ids = lambda r: [x["corpus_id"] for x in r]
case("CrossEncoder.rank top_k=1e12", lambda: rank_ids(ce.rank(texts[0], texts[:50], top_k=10**12)),
     rank_ids(ce.rank(texts[0], texts[:50])))
se = sentrs.SparseEncoder({mlm!r}, device="cpu")
coo = lambda e: (e.coalesce().indices().tolist(), e.coalesce().values().round(decimals=5).tolist())
case("SparseEncoder.encode batch_size=1e9 max_active_dims=1e9",
     lambda: coo(se.encode(texts[:40], batch_size=10**9, max_active_dims=10**9)), coo(se.encode(texts[:40])))
emb = se.encode(texts[:40])
case("sparse semantic_search top_k=1e12",
     lambda: ids(util.semantic_search(emb.index_select(0, torch.tensor([0, 1])), emb, top_k=10**12)),
     ids(util.semantic_search(emb.index_select(0, torch.tensor([0, 1])), emb, top_k=40)))
case("SparseEncoder.decode top_k=1e12", lambda: se.decode(emb.index_select(0, torch.tensor([0])), top_k=10**12),
     se.decode(emb.index_select(0, torch.tensor([0]))))

model = st
texts = short_texts(10_000, 0)
REPORT["tokens"] = int(model[0].encode_texts(texts).lengths().sum())
emb, extra, secs = measure(lambda: model.encode(texts, batch_size=256))
REPORT["encode"] = [extra, secs]
REPORT["out_bytes"] = emb.nbytes
REPORT["first"] = emb[:3].tolist()
REPORT["first_alone"] = model.encode(texts[:3]).tolist()
"""


@pytest.fixture(scope="module")
def far_report(make_tiny_st: Any, tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertForSequenceClassification

    torch.manual_seed(5)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
    )
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    ce_dir, mlm_dir = tmp_path_factory.mktemp("far_ce"), tmp_path_factory.mktemp("far_mlm")
    BertForSequenceClassification(config).save_pretrained(ce_dir)
    tokenizer.save_pretrained(ce_dir)
    mlm = BertForMaskedLM(config)
    with torch.no_grad():
        mlm.cls.predictions.bias.fill_(-0.25)  # a few hundred active dimensions per text
    mlm.save_pretrained(mlm_dir)
    tokenizer.save_pretrained(mlm_dir)
    return run_child(FAR.format(st=make_tiny_st(), ce=str(ce_dir), mlm=str(mlm_dir)), timeout=120)


FAR_CASES = [
    "semantic_search top_k=1e12",
    "semantic_search top_k=2**64",
    "semantic_search chunk sizes=1e12",
    "semantic_search torch path top_k=1e12",
    "paraphrase_mining top_k=1e12 max_pairs=1e30",
    "paraphrase_mining torch path top_k=1e12",
    "community_detection batch_size=1e12",
    "dense_to_csr max_active_dims=1e9",
    "encode batch_size=1e9",
    "CrossEncoder.predict batch_size=1e9",
    "CrossEncoder.rank top_k=1e12",
    "SparseEncoder.encode batch_size=1e9 max_active_dims=1e9",
    "sparse semantic_search top_k=1e12",
    "SparseEncoder.decode top_k=1e12",
]


@pytest.mark.parametrize("case", FAR_CASES)
def test_arguments_far_beyond_the_data(far_report: dict[str, Any], case: str) -> None:
    extra, secs, same = far_report[case]
    assert same, f"{case}: not the in-range result"
    assert secs < 1.0, f"{case}: took {secs:.2f}s"
    assert extra <= 64 * MIB, f"{case}: {extra / MIB:.0f} MiB extra"
