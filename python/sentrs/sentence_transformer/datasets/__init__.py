"""Data helpers of the old ``model.fit`` training API, as the reference's ``sentence_transformer.datasets``:
``DenoisingAutoEncoderDataset``, ``NoDuplicatesDataLoader``, ``ParallelSentencesDataset``, ``SentenceLabelDataset``
and ``SentencesDataset``.

Names load on first use, so importing this package imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

_PACKAGE = "sentrs.sentence_transformer.datasets"

_LAZY = {
    "DenoisingAutoEncoderDataset": f"{_PACKAGE}.denoising_auto_encoder",
    "NoDuplicatesDataLoader": f"{_PACKAGE}.no_duplicates_dataloader",
    "ParallelSentencesDataset": f"{_PACKAGE}.parallel_sentences",
    "SentenceLabelDataset": f"{_PACKAGE}.sentence_label",
    "SentencesDataset": f"{_PACKAGE}.sentences",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs.sentence_transformer.datasets.denoising_auto_encoder import DenoisingAutoEncoderDataset
    from sentrs.sentence_transformer.datasets.no_duplicates_dataloader import NoDuplicatesDataLoader
    from sentrs.sentence_transformer.datasets.parallel_sentences import ParallelSentencesDataset
    from sentrs.sentence_transformer.datasets.sentence_label import SentenceLabelDataset
    from sentrs.sentence_transformer.datasets.sentences import SentencesDataset

__all__ = [
    "DenoisingAutoEncoderDataset",
    "NoDuplicatesDataLoader",
    "ParallelSentencesDataset",
    "SentenceLabelDataset",
    "SentencesDataset",
]
