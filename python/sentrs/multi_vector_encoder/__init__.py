"""Multi-vector (late-interaction, ColBERT-style) models.

The package has the reference's shape: ``model.py``, ``modules/``, ``scoring/``, ``model_card.py``; the names
that need the training stack load on first use.
"""

from __future__ import annotations

from sentrs._lazy import lazy_module_attrs
from sentrs.base.maxsim import maxsim, maxsim_pairwise
from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = ["MultiVectorEncoder", "maxsim", "maxsim_pairwise"]

__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    {"MultiVectorEncoderModelCardData": "sentrs.multi_vector_encoder.model_card"},
)
