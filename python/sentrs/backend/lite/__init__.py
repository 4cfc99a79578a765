"""Inference on exported ONNX / OpenVINO models without torch.

``sentrs.SentenceTransformer(path, backend="onnx")`` (or ``"openvino"``, and ``sentrs.CrossEncoder``) builds a
:class:`~sentrs.backend.lite.models.LiteSentenceTransformer`
(:class:`~sentrs.backend.lite.models.LiteCrossEncoder`) when the folder already holds the exported file and every
module has a numpy counterpart here: the process then never imports torch or transformers. Tokenization, batching,
pooling and normalisation run in the Rust core; the forward pass in ONNX Runtime or OpenVINO. Otherwise the torch
model classes load as before.
"""

from __future__ import annotations

from sentrs.backend.lite.tokenizer import NotLite

__all__ = ["NotLite"]
