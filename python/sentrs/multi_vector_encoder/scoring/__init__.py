"""Training-time scoring functions for multi-vector models: ColBERT (MaxSim) and XTR (top-k token retrieval).

Each takes padded query token embeddings ``(Q, q_tokens, dim)`` and document token embeddings with their masks, and
returns differentiable float32 scores in the layout a loss expects: every query against every document group
(``colbert_scores``, ``xtr_scores``: ``(Q, Q_doc * N)``), matched pairs (``*_pairwise``: ``(batch,)``), or each
query's own candidates for distillation (``*_kd_scores``: ``(batch, n_ways)``). Pass one as a multi-vector loss's
``similarity_fct``.
"""

from __future__ import annotations

from sentrs.multi_vector_encoder.scoring.colbert import (
    colbert_kd_scores,
    colbert_scores,
    colbert_scores_pairwise,
    mean_colbert_kd_scores,
    mean_colbert_scores,
    mean_colbert_scores_pairwise,
)
from sentrs.multi_vector_encoder.scoring.xtr import (
    XTRKDScores,
    XTRScores,
    xtr_kd_scores,
    xtr_scores,
    xtr_scores_pairwise,
)

__all__ = [
    "XTRKDScores",
    "XTRScores",
    "colbert_kd_scores",
    "colbert_scores",
    "colbert_scores_pairwise",
    "mean_colbert_kd_scores",
    "mean_colbert_scores",
    "mean_colbert_scores_pairwise",
    "xtr_kd_scores",
    "xtr_scores",
    "xtr_scores_pairwise",
]
