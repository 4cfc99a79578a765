"""Readers of the old ``model.fit`` training API: they turn text files into lists of :class:`InputExample`.

Kept for scripts written for sentence-transformers v2; new code should load a ``datasets.Dataset`` and train with
:class:`~sentrs.SentenceTransformerTrainer`. Nothing here imports torch.
"""

from __future__ import annotations

from sentrs.sentence_transformer.readers.input_example import InputExample
from sentrs.sentence_transformer.readers.label_sentence import LabelSentenceReader
from sentrs.sentence_transformer.readers.nli_data import NLIDataReader
from sentrs.sentence_transformer.readers.paired_files import PairedFilesReader
from sentrs.sentence_transformer.readers.sts_data import STSBenchmarkDataReader, STSDataReader
from sentrs.sentence_transformer.readers.triplet import TripletReader

__all__ = [
    "InputExample",
    "LabelSentenceReader",
    "NLIDataReader",
    "PairedFilesReader",
    "STSBenchmarkDataReader",
    "STSDataReader",
    "TripletReader",
]
