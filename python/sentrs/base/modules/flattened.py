"""The flattened (unpadded) token layout of varlen attention, as the reference's Transformer hands it on.

``token_embeddings`` holds every sequence back to back, ``(1, total_tokens, width)``, and ``cu_seq_lens_q`` the
``(batch + 1,)`` cumulative lengths starting at 0; pooling modules reduce each ``[start, end)`` segment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from torch import Tensor

__all__ = ["flattened_rows"]


def flattened_rows(tokens: Tensor, cu_seq_lens: Any, width: str = "hidden") -> tuple[Tensor, npt.NDArray[np.int64]]:
    """``(total, width)`` tokens and the validated ``(batch + 1,)`` int64 sequence bounds of a flattened batch;
    ``width`` names the last dimension in the error message (``hidden``, ``vocab``)."""
    if tokens.dim() == 3 and tokens.shape[0] == 1:
        tokens = tokens[0]
    if tokens.dim() != 2:
        raise ValueError(
            f"flattened token_embeddings must have shape (1, total_tokens, {width}), got {tuple(tokens.shape)}"
        )
    cu = cu_seq_lens.detach().cpu() if isinstance(cu_seq_lens, Tensor) else cu_seq_lens
    bounds = np.asarray(cu, dtype=np.int64).reshape(-1)
    if bounds.size == 0 or bounds[0] != 0 or bounds[-1] != tokens.shape[0] or (np.diff(bounds) < 1).any():
        raise ValueError(
            "cu_seq_lens_q must rise from 0 in steps of at least 1 to the number of flattened tokens "
            f"({tokens.shape[0]}), got {bounds.tolist()}"
        )
    return tokens, bounds
