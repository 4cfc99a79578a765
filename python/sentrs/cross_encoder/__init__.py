"""Cross-encoders: pair scoring and reranking."""

from __future__ import annotations

from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["CrossEncoder"]
