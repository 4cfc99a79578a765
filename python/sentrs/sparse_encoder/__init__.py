"""Sparse (SPLADE-style) embedding models."""

from __future__ import annotations

from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseEncoder"]
