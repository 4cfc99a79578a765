"""Scalar and binary quantisation of embeddings (``precision=`` in ``encode``); public through
:mod:`sentrs.util.quantization`, which adds search over quantised corpora."""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from sentrs._lazy import is_tensor

__all__ = ["PRECISIONS", "Precision", "quantize_embeddings"]

logger = logging.getLogger(__name__)

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]
PRECISIONS: tuple[str, ...] = ("float32", "int8", "uint8", "binary", "ubinary")


def _tensor_to_numpy(t: Any) -> npt.NDArray[Any]:
    import torch

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
    if is_tensor(embeddings):
        embeddings = _tensor_to_numpy(embeddings)
    elif isinstance(embeddings, list):
        if not embeddings:
            return []
        if is_tensor(embeddings[0]):
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


def _dequantize(codes: npt.NDArray[Any], precision: str, ranges: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """int8/uint8 codes back to the float coordinates they were cut from (bucket starts)."""
    ranges = np.asarray(ranges).astype(np.float32, copy=False)
    steps = (ranges[1] - ranges[0]) / 255
    steps = np.where(steps == 0, 1, steps)
    values = codes.astype(np.float64)
    if precision == "int8":
        values += 128
    return values * steps + ranges[0]
