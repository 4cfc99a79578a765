"""Cross-encoder folders built once per session with the reference (no pretrained cross-encoder ships on PyPI)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


@pytest.fixture(scope="session")
def make_ce(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> Callable[[int], str]:
    """MiniLM backbone + a seeded classification head with ``num_labels`` outputs, saved by the reference."""
    cache: dict[int, str] = {}

    def build(num_labels: int) -> str:
        if num_labels not in cache:
            from sentence_transformers import CrossEncoder

            torch.manual_seed(num_labels)
            ce = CrossEncoder(minilm_path, num_labels=num_labels, device="cpu")
            with torch.no_grad():  # a head with real spread, so rankings are meaningful
                ce.model.classifier.weight.normal_(0, 0.5)
            out = tmp_path_factory.mktemp(f"ce{num_labels}")
            ce.save(str(out))
            cache[num_labels] = str(out)
        return cache[num_labels]

    return build


@pytest.fixture(scope="session")
def make_tiny_ce(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> Callable[[int], str]:
    """A random 2-layer BERT (hidden 32) sequence classifier with ``num_labels`` outputs and the MiniLM tokenizer,
    saved by the reference: fast enough to compare losses and their gradients case by case.

    The weights are drawn with a wide ``initializer_range`` (0.2) so that pairs get well-separated scores: rankings
    (and so the listwise losses) do not hinge on float rounding.
    """
    cache: dict[int, str] = {}

    def build(num_labels: int) -> str:
        if num_labels not in cache:
            from sentence_transformers import CrossEncoder
            from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

            torch.manual_seed(10 + num_labels)
            config = BertConfig(
                vocab_size=30522,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=128,
                initializer_range=0.2,
                num_labels=num_labels,
            )
            raw = tmp_path_factory.mktemp(f"tiny_ce_raw{num_labels}")
            BertForSequenceClassification(config).save_pretrained(raw)
            AutoTokenizer.from_pretrained(minilm_path).save_pretrained(raw)
            out = tmp_path_factory.mktemp(f"tiny_ce{num_labels}")
            CrossEncoder(str(raw), device="cpu").save(str(out))
            cache[num_labels] = str(out)
        return cache[num_labels]

    return build
