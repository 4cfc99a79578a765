"""Dense embedding models."""

from __future__ import annotations

from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["SentenceTransformer"]
