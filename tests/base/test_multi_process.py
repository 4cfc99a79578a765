"""Multi-process pools (``start_multi_process_pool``, ``encode(pool=...)``, ``device=[...]``) for every model type:
results identical to one process (dense and scores at 1e-6, SPLADE values at 1e-5: a chunk's batches pad to other
widths than one process's), a killed worker
is a clear error within seconds, worker exceptions reach the caller, and the workers split the CPUs."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow  # each pool spawns interpreters that import torch

TEXTS = [
    f"sentence {i} about {['cats', 'the weather', 'heart disease', 'rivers and lakes'][i % 4]}" for i in range(60)
]


@pytest.fixture(scope="module")
def st_model(tiny_bert_dir: str) -> Any:
    import sentrs

    return sentrs.SentenceTransformer(tiny_bert_dir, device="cpu")


@pytest.fixture(scope="module")
def pool(st_model: Any) -> Any:
    pool = st_model.start_multi_process_pool(["cpu", "cpu"])
    yield pool
    st_model.stop_multi_process_pool(pool)


def test_pool_equals_one_process(st_model: Any, pool: Any) -> None:
    single = st_model.encode(TEXTS, batch_size=8)
    pooled = st_model.encode(TEXTS, batch_size=8, pool=pool, chunk_size=7)
    assert isinstance(pooled, np.ndarray) and pooled.shape == single.shape
    np.testing.assert_allclose(pooled, single, atol=1e-6)
    # Quantisation happens after the merge (calibration over all rows), as in the reference.
    np.testing.assert_array_equal(
        st_model.encode(TEXTS, pool=pool, precision="int8"), st_model.encode(TEXTS, precision="int8")
    )
    tensor = st_model.encode(TEXTS, pool=pool, convert_to_tensor=True, normalize_embeddings=True)
    assert isinstance(tensor, torch.Tensor)
    np.testing.assert_allclose(tensor.numpy(), st_model.encode(TEXTS, normalize_embeddings=True), atol=1e-6)
    tokens = st_model.encode(TEXTS[:5], pool=pool, output_value="token_embeddings")
    for a, b in zip(tokens, st_model.encode(TEXTS[:5], output_value="token_embeddings")):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert st_model.encode([], pool=pool).shape == (0,)


def test_reference_pool_api_matches(tiny_bert_dir: str, st_model: Any, pool: Any) -> None:
    """The same pool dict shape and the deprecated ``encode_multi_process``."""
    assert set(pool) == {"input", "output", "processes"} and len(pool["processes"]) == 2
    out = st_model.encode_multi_process(TEXTS, pool, batch_size=16)
    np.testing.assert_allclose(out, st_model.encode(TEXTS), atol=1e-6)


def test_device_list_makes_a_temporary_pool(st_model: Any) -> None:
    out = st_model.encode(TEXTS[:10], device=["cpu", "cpu"])
    np.testing.assert_allclose(out, st_model.encode(TEXTS[:10]), atol=1e-6)


def test_sparse_and_cross_encoder(tiny_bert_dir: str, tmp_path: Any) -> None:
    import cognition

    import sentrs

    splade = sentrs.SparseEncoder(os.path.join(os.path.dirname(cognition.__file__), "model"), device="cpu")
    single = splade.encode(TEXTS[:12], convert_to_tensor=True).to_dense()
    pooled = splade.encode(TEXTS[:12], device=["cpu", "cpu"], convert_to_tensor=True).to_dense()
    # Chunks pad their batches to other widths than one process does: float differences up to ~4e-6 in the logits.
    torch.testing.assert_close(pooled, single, atol=1e-5, rtol=0)

    torch.manual_seed(0)
    ce = sentrs.CrossEncoder(tiny_bert_dir, num_labels=1, device="cpu")
    pairs = [(t, t[::-1]) for t in TEXTS[:12]]
    np.testing.assert_allclose(ce.predict(pairs, device=["cpu", "cpu"]), ce.predict(pairs), atol=1e-6)
    ranked = ce.rank("cats", TEXTS[:12], device=["cpu", "cpu"])
    assert [r["corpus_id"] for r in ranked] == [r["corpus_id"] for r in ce.rank("cats", TEXTS[:12])]


def test_killed_worker_is_a_clear_error(st_model: Any) -> None:
    pool = st_model.start_multi_process_pool(["cpu", "cpu"])
    try:
        st_model.encode(TEXTS[:4], pool=pool)  # workers up
        # One idle worker killed: the survivor may finish every chunk (a complete result), or be stuck on the queue
        # lock the dead one held (then the call raises): never a hang, never missing rows.
        os.kill(pool["processes"][0].pid, signal.SIGKILL)
        time.sleep(0.5)
        start = time.monotonic()
        try:
            out = st_model.encode(TEXTS, pool=pool)
        except RuntimeError as exc:
            assert "died unexpectedly" in str(exc)
        else:
            np.testing.assert_allclose(out, st_model.encode(TEXTS), atol=1e-6)
        assert time.monotonic() - start < 30
        # No worker left: chunks would never come back, so the call raises instead of waiting.
        os.kill(pool["processes"][1].pid, signal.SIGKILL)
        time.sleep(0.5)
        start = time.monotonic()
        with pytest.raises(RuntimeError, match="died unexpectedly"):
            st_model.encode(TEXTS * 20, pool=pool, chunk_size=1)
        assert time.monotonic() - start < 30
    finally:
        st_model.stop_multi_process_pool(pool)


def test_worker_exception_reaches_the_caller(st_model: Any, pool: Any) -> None:
    with pytest.raises(Exception, match="truncate_dim"):
        st_model.encode(TEXTS, pool=pool, truncate_dim=-3)


def test_bad_arguments(st_model: Any, pool: Any) -> None:
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        st_model.encode(TEXTS, pool=pool, chunk_size=0)
    with pytest.raises(ValueError, match="pool must be the dict"):
        st_model.encode(TEXTS, pool={"input": None})


def test_workers_split_the_cpus() -> None:
    from sentrs.base.multi_process import available_cpus

    assert available_cpus() >= 1
