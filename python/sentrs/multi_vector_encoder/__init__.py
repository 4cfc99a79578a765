"""Multi-vector (late-interaction, ColBERT-style) models.

The package has the reference's shape: ``model.py``, ``modules/``, ``scoring/``, ``losses/``, ``evaluation/``,
``trainer.py``, ``training_args.py``, ``data_collator.py``, ``model_card.py``, ``interpretability.py``; sentrs adds
``search.py`` (exact MaxSim top-k and a PLAID-style candidate index, in Rust). The training names load on first use
(they import torch, transformers and datasets).
"""

from __future__ import annotations

from sentrs._lazy import lazy_module_attrs
from sentrs.base.maxsim import maxsim, maxsim_pairwise
from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = ["MultiVectorEncoder", "maxsim", "maxsim_pairwise"]

__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    {
        "MultiVectorEncoderModelCardData": "sentrs.multi_vector_encoder.model_card",
        "MultiVectorIndex": "sentrs.multi_vector_encoder.search",
        "maxsim_search": "sentrs.multi_vector_encoder.search",
        "MultiVectorEncoderDataCollator": "sentrs.multi_vector_encoder.data_collator",
        "MultiVectorEncoderTrainer": "sentrs.multi_vector_encoder.trainer",
        "MultiVectorEncoderTrainingArguments": "sentrs.multi_vector_encoder.training_args",
    },
)
