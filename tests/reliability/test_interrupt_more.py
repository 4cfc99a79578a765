"""Ctrl-C stops a long encode, predict, rank or search within a second, and the model works afterwards.

tests/ops/test_interrupt.py covers ``ops.topk_search``; here every long-running public call is interrupted. One child
process per group runs the calls one after the other: before each it prints ``ready <name>``, the parent waits
0.5 s and sends SIGINT, the child catches ``KeyboardInterrupt`` and reports the moment it caught it
(``time.monotonic()``, one clock for both processes on Linux), then runs the same model on a small input and
compares with the result it computed before the interruption. Latency = caught - sent, asserted below 1 s.

Every call is sized to run for several seconds uninterrupted on a 2-core machine (a call that finishes first fails
the test). Torch runs on one thread (``OMP_NUM_THREADS=1``) so a busy machine does not stretch a single batch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGINT delivery to a child process is POSIX-only here"
)

LATENCY_S = 1.0

CHILD_HELPERS = r"""
import json, sys, time
import numpy as np

def run_case(name, long_call, check_call):
    before = check_call()
    print(f"ready {name}", flush=True)
    try:
        long_call()
    except KeyboardInterrupt:
        caught = time.monotonic()
        after = check_call()
        print(json.dumps({"name": name, "caught": caught, "usable": bool(np.allclose(before, after, atol=1e-6))}),
              flush=True)
        return
    print(json.dumps({"name": name, "caught": None, "usable": True}), flush=True)

WORDS = "the a man woman dog cat eats rides bread food park river city music old new".split()

def texts(n, words, seed):
    rng = np.random.default_rng(seed)
    base = [" ".join(WORDS[j] for j in rng.integers(0, len(WORDS), size=words)) for _ in range(997)]
    return [base[i % 997] + f" {i}" for i in range(n)]
"""

TORCH_CHILD = r"""
import torch, sentrs
from sentrs.util import semantic_search
st = sentrs.SentenceTransformer({st!r}, device="cpu")
ce = sentrs.CrossEncoder({ce!r}, device="cpu")
se = sentrs.SparseEncoder({mlm!r}, device="cpu")
short = texts(30_000, 6, 0)  # tokenized in a few ms; batches of 2 then run for seconds
small = short[:5]
sparse_check = lambda: se.encode(small).to_dense().numpy()

run_case("SentenceTransformer.encode", lambda: st.encode(short, batch_size=2), lambda: st.encode(small))
run_case("SparseEncoder.encode", lambda: se.encode(short, batch_size=2), sparse_check)
# Pairs tokenize far slower than single texts (about 15k pairs/s): few pairs, one per batch.
pairs = [(short[0], t) for t in short[:4000]]
run_case("CrossEncoder.predict", lambda: ce.predict(pairs, batch_size=1), lambda: ce.predict(pairs[:5]))
run_case("CrossEncoder.rank", lambda: ce.rank(short[0], short[:4000], batch_size=1), lambda: ce.predict(pairs[:5]))

def sparse_rows(n, nnz, seed):
    rng = np.random.default_rng(seed)
    dim = 30522
    crow = torch.arange(0, (n + 1) * nnz, nnz, dtype=torch.int64)
    cols = np.sort(rng.integers(0, dim // nnz, size=(n, nnz)), axis=1) + np.arange(nnz) * (dim // nnz)
    vals = rng.random(n * nnz, dtype=np.float32)
    return torch.sparse_csr_tensor(crow, torch.from_numpy(cols.reshape(-1)), torch.from_numpy(vals), size=(n, dim))

corpus = sparse_rows(200_000, 64, 1)
queries = sparse_rows(20_000, 64, 2)
run_case("util.semantic_search (sparse)", lambda: semantic_search(queries, corpus, top_k=10),
         lambda: np.array([h["corpus_id"] for h in semantic_search(sparse_rows(2, 64, 2), corpus)[0]]))
"""

SEARCH_CHILD = r"""
from sentrs import ops
from sentrs.util import semantic_search
rng = np.random.default_rng(0)
corpus = rng.standard_normal((200_000, 256), dtype=np.float32)
queries = rng.standard_normal((8_000, 256), dtype=np.float32)
ids = lambda hits: np.array([[h["corpus_id"] for h in row] for row in hits])
run_case("util.semantic_search (dense)", lambda: semantic_search(queries, corpus, top_k=10),
         lambda: ids(semantic_search(queries[:3], corpus, top_k=5)))
"""

UNCANCELLABLE_CHILD = r"""
import sentrs
from sentrs import ops
rng = np.random.default_rng(0)
st = sentrs.SentenceTransformer({st!r}, device="cpu")
many_long = texts(600_000, 60, 1)  # about 5 s of tokenization
run_case("SentenceTransformer.encode (during tokenization)", lambda: st.encode(many_long),
         lambda: st.encode(many_long[:5]))
del many_long
dim, n = 30522, 1_000_000
indptr = np.arange(0, (n + 1) * 32, 32, dtype=np.int64)
indices = (np.sort(rng.integers(0, dim // 32, size=(n, 32)), axis=1) + np.arange(32) * (dim // 32)).reshape(-1)
values = rng.random(n * 32, dtype=np.float32)
index = ops.SparseIndex(indptr, indices.astype(np.int64), values, dim)
nq = 3000
q_indptr = np.arange(0, (nq + 1) * 32, 32, dtype=np.int64)
run_case("ops.SparseIndex.search", lambda: index.search(q_indptr, indices[: nq * 32], values[: nq * 32], 10),
         lambda: index.search(q_indptr[:4], indices[:96], values[:96], 5)[0])
"""


def _run_group(code: str, timeout: float = 240) -> dict[str, dict[str, Any]]:
    """Runs a child, interrupts each case 0.5 s after its ``ready`` line; returns per case its report plus the
    latency (None when the call finished before the signal came)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    reports: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    sent = 0.0
    with subprocess.Popen(
        [sys.executable, "-c", CHILD_HELPERS + code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        try:
            for line in child.stdout:
                if time.monotonic() > deadline:
                    break
                if line.startswith("ready "):
                    time.sleep(0.5)
                    sent = time.monotonic()
                    child.send_signal(signal.SIGINT)
                elif line.startswith("{"):
                    report = json.loads(line)
                    report["latency"] = None if report["caught"] is None else report["caught"] - sent
                    reports[report["name"]] = report
            child.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        err = child.stderr.read()
    assert child.returncode == 0, err[-4000:]
    return reports


@pytest.fixture(scope="module")
def torch_reports(make_tiny_st: Any, tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> dict[str, Any]:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertForSequenceClassification

    torch.manual_seed(6)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
    )
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    ce_dir, mlm_dir = tmp_path_factory.mktemp("int_ce"), tmp_path_factory.mktemp("int_mlm")
    BertForSequenceClassification(config).save_pretrained(ce_dir)
    tokenizer.save_pretrained(ce_dir)
    mlm = BertForMaskedLM(config)
    with torch.no_grad():
        mlm.cls.predictions.bias.fill_(-0.25)  # a few hundred active dimensions per text, as SPLADE has
    mlm.save_pretrained(mlm_dir)
    tokenizer.save_pretrained(mlm_dir)
    return _run_group(TORCH_CHILD.format(st=make_tiny_st(), ce=str(ce_dir), mlm=str(mlm_dir)))


@pytest.fixture(scope="module")
def search_reports() -> dict[str, Any]:
    return _run_group(SEARCH_CHILD)


@pytest.fixture(scope="module")
def uncancellable_reports(make_tiny_st: Any) -> dict[str, Any]:
    return _run_group(UNCANCELLABLE_CHILD.format(st=make_tiny_st()))


def _check(reports: dict[str, Any], name: str) -> None:
    report = reports[name]
    assert report["latency"] is not None, f"{name} finished before Ctrl-C arrived: make it longer"
    assert report["latency"] < LATENCY_S, f"{name}: KeyboardInterrupt {report['latency']:.2f}s after SIGINT"
    assert report["usable"], f"{name}: the model gives other results after the interruption"


@pytest.mark.parametrize(
    "name",
    [
        "SentenceTransformer.encode",
        "SparseEncoder.encode",
        "CrossEncoder.predict",
        "CrossEncoder.rank",
        "util.semantic_search (sparse)",
    ],
)
def test_ctrl_c_torch_models(torch_reports: dict[str, Any], name: str) -> None:
    _check(torch_reports, name)


@pytest.mark.slow
def test_ctrl_c_during_tokenization(uncancellable_reports: dict[str, Any]) -> None:
    _check(uncancellable_reports, "SentenceTransformer.encode (during tokenization)")


def test_ctrl_c_dense_semantic_search(search_reports: dict[str, Any]) -> None:
    _check(search_reports, "util.semantic_search (dense)")


@pytest.mark.slow
def test_ctrl_c_sparse_index_search(uncancellable_reports: dict[str, Any]) -> None:
    _check(uncancellable_reports, "ops.SparseIndex.search")
