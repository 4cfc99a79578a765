"""Scalar and binary quantisation of embeddings (``precision=`` in ``encode``)."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch

__all__ = ["quantize_embeddings"]

logger = logging.getLogger(__name__)

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[str, ...] = ("float32", "int8", "uint8", "binary", "ubinary")


def _tensor_to_numpy(t: torch.Tensor) -> npt.NDArray[Any]:
    t = t.detach().cpu()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.numpy()


def _ranges(embeddings: npt.NDArray[Any], precision: str, calibration: npt.NDArray[Any] | None) -> npt.NDArray[Any]:
    if calibration is None:
        if embeddings.ndim == 1 or embeddings.shape[0] == 1:
            raise ValueError(
                f"{precision} quantization needs ranges or calibration_embeddings for a single embedding: "
                "value ranges cannot be estimated from one row"
            )
        if embeddings.shape[0] < 100:
            logger.warning(
                "Computing %s quantization ranges from only %d embeddings; pass ranges or "
                "calibration_embeddings from a larger representative set for more stable buckets.",
                precision,
                embeddings.shape[0],
            )
        calibration = embeddings
    return np.vstack((np.min(calibration, axis=0), np.max(calibration, axis=0)))


def quantize_embeddings(
    embeddings: Any,
    precision: Precision | str,
    ranges: npt.NDArray[Any] | None = None,
    calibration_embeddings: npt.NDArray[Any] | None = None,
) -> Any:
    """Quantises float embeddings ``(n, d)`` (numpy, torch or a list of rows) to ``precision``; returns numpy.

    - ``int8``/``uint8``: per-dimension ``[min, max]`` ranges (from ``ranges``, else ``calibration_embeddings``,
      else the embeddings themselves, which needs at least two rows) cut into 256 buckets; int8 is uint8 - 128.
    - ``binary``/``ubinary``: the bits ``x > 0`` packed 8 per byte, shape ``(n, ceil(d/8))``; binary is - 128.
    - A list of 2-D arrays (one per multi-vector document) gives a list, quantised with shared ranges.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"Precision {precision!r} is not supported, must be one of {PRECISIONS}")
    if isinstance(embeddings, torch.Tensor):
        embeddings = _tensor_to_numpy(embeddings)
    elif isinstance(embeddings, list):
        if not embeddings:
            return []
        if isinstance(embeddings[0], torch.Tensor):
            embeddings = [_tensor_to_numpy(e) for e in embeddings]
        if isinstance(embeddings[0], np.ndarray) and embeddings[0].ndim == 2:
            if precision.endswith("int8") and ranges is None:
                data = np.concatenate(embeddings) if calibration_embeddings is None else calibration_embeddings
                if len(data):
                    ranges = _ranges(data, precision, calibration_embeddings)
            return [quantize_embeddings(m, precision, ranges, calibration_embeddings) for m in embeddings]
        embeddings = np.array(embeddings)
    emb = np.asarray(embeddings)
    if emb.dtype in (np.int8, np.uint8):
        raise ValueError(f"embeddings must be float to quantize, got dtype {emb.dtype}")
    if emb.dtype.kind not in "fiu":
        raise TypeError(f"embeddings must hold numbers, got dtype {emb.dtype}")
    if emb.ndim == 2 and emb.shape[0] == 0:
        dim = emb.shape[1]
        signed = np.int8 if precision in ("int8", "binary") else np.uint8
        if precision.endswith("int8"):
            return np.zeros((0, dim), dtype=signed)
        if precision.endswith("binary"):
            return np.zeros((0, (dim + 7) // 8), dtype=signed)
    if precision == "float32":
        return emb.astype(np.float32)
    if precision.endswith("int8"):
        if ranges is None:
            ranges = _ranges(
                emb, precision, None if calibration_embeddings is None else np.asarray(calibration_embeddings)
            )
        ranges = np.asarray(ranges).astype(np.float32, copy=False)
        starts = ranges[0, :]
        steps = (ranges[1, :] - starts) / 255
        steps = np.where(steps == 0, 1, steps)
        q = np.clip(np.floor((emb - starts) / steps), 0, 255)
        return q.astype(np.uint8) if precision == "uint8" else (q - 128).astype(np.int8)
    packed = np.packbits(emb > 0, axis=-1)
    if precision == "ubinary":
        return packed
    return (packed.astype(np.int16) - 128).astype(np.int8)
