"""``sentrs.compat``: code and client libraries that import sentence_transformers run on sentrs, unchanged.

Each case runs in a fresh interpreter (the alias must be installed before anything imports the reference) and its
outputs are compared with the reference's, computed in this process (which imports the real package). Tolerances:
embeddings 1e-5, KeyBERT scores 1e-4 (the same keywords in the same order).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

TEXTS = ["A man is eating food.", "A man is riding a horse.", "Supervised learning uses labelled examples."]


def _run(code: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_alias_gives_sentrs_modules(minilm_path: str) -> None:
    out = _run(
        """
        import json, sys
        from sentrs.compat import install_as_sentence_transformers
        install_as_sentence_transformers()
        import sentence_transformers
        from sentence_transformers import SentenceTransformer, util
        from sentence_transformers.models import Pooling
        from sentence_transformers.sentence_transformer.model import SentenceTransformer as Deep
        import sentrs, sentrs.util
        model = SentenceTransformer(sys.argv[1], device="cpu")
        emb = model.encode(["A man is eating food.", "A man is riding a horse."])
        print(json.dumps({
            "version": sentence_transformers.__version__,
            "subclass": issubclass(SentenceTransformer, sentrs.SentenceTransformer),
            "deep_same": Deep is SentenceTransformer,
            "type_name": str(type(model)),
            "util": util is sentrs.util,
            "pooling": Pooling.__module__,
            "cos": float(util.cos_sim(emb[0], emb[1])),
        }))
        """,
        minilm_path,
    )
    got = json.loads(out)
    assert got["version"] == "6.2.0" and got["subclass"] and got["deep_same"] and got["util"]
    assert "sentence_transformers" in got["type_name"]
    assert got["pooling"].startswith("sentrs.")
    assert got["cos"] == pytest.approx(0.2474, abs=1e-3)  # FIXTURES.md: MiniLM, food vs horse


def test_install_after_the_reference_is_an_error() -> None:
    out = _run(
        """
        import sentence_transformers
        from sentrs.compat import install_as_sentence_transformers
        try:
            install_as_sentence_transformers()
        except RuntimeError as exc:
            print("error:", exc)
        """
    )
    assert out.startswith("error: install_as_sentence_transformers() must run before")


def test_runner_module(tmp_path: Path, minilm_path: str) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(
        "import sys, sentence_transformers\nprint(type(sentence_transformers).__module__, sys.argv[1:])\n",
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "sentrs.compat", str(script), "a", "b"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "sentrs.compat ['a', 'b']"


def test_keybert(minilm_path: str) -> None:
    pytest.importorskip("keybert", reason="keybert is a test extra")
    from keybert import KeyBERT
    from sentence_transformers import SentenceTransformer

    doc = (
        "Supervised learning is the machine learning task of learning a function that maps an input to an output "
        "based on example input-output pairs. It infers a function from labeled training data."
    )
    expected = KeyBERT(model=SentenceTransformer(minilm_path, device="cpu")).extract_keywords(doc, top_n=5)
    out = _run(
        """
        import json, sys
        from sentrs.compat import install_as_sentence_transformers
        install_as_sentence_transformers()
        from keybert import KeyBERT
        from sentence_transformers import SentenceTransformer
        kw = KeyBERT(model=SentenceTransformer(sys.argv[1], device="cpu")).extract_keywords(sys.argv[2], top_n=5)
        by_name = KeyBERT(model=sys.argv[1]).extract_keywords(sys.argv[2], top_n=5)
        print(json.dumps([kw, by_name]))
        """,
        minilm_path,
        doc,
    )
    for got in json.loads(out):
        assert [k for k, _ in got] == [k for k, _ in expected]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-4)


def test_langchain_huggingface(minilm_path: str) -> None:
    pytest.importorskip("langchain_huggingface", reason="langchain-huggingface is a test extra")
    from langchain_huggingface import HuggingFaceEmbeddings

    ref = HuggingFaceEmbeddings(model_name=minilm_path, model_kwargs={"device": "cpu"})
    expected_docs, expected_query = ref.embed_documents(TEXTS), ref.embed_query(TEXTS[0])
    out = _run(
        """
        import json, sys
        from sentrs.compat import install_as_sentence_transformers
        install_as_sentence_transformers()
        from langchain_huggingface import HuggingFaceEmbeddings
        emb = HuggingFaceEmbeddings(
            model_name=sys.argv[1], model_kwargs={"device": "cpu"}, encode_kwargs={"normalize_embeddings": True}
        )
        print(json.dumps([emb.embed_documents(json.loads(sys.argv[2])), emb.embed_query(json.loads(sys.argv[2])[0])]))
        """,
        minilm_path,
        json.dumps(TEXTS),
    )
    docs, query = json.loads(out)
    np.testing.assert_allclose(docs, expected_docs, atol=1e-5)
    np.testing.assert_allclose(query, expected_query, atol=1e-5)
