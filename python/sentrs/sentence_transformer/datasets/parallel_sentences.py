"""``ParallelSentencesDataset``: translations labelled with a teacher's embedding of the source sentence, for
multilingual knowledge distillation with the old ``model.fit`` (train with ``MSELoss``)."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

from torch.utils.data import Dataset

from sentrs.sentence_transformer.readers._text_files import open_text
from sentrs.sentence_transformer.readers.input_example import InputExample

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

logger = logging.getLogger(__name__)

__all__ = ["ParallelSentencesDataset"]


def _limit(value: int | None) -> int | None:
    """``value`` as a limit: ``None`` and values below 1 mean no limit."""
    return value if value is not None and value > 0 else None


def _too_long(sentences: list[str], max_sentence_length: int | None) -> bool:
    limit = _limit(max_sentence_length)
    return limit is not None and max(len(s) for s in sentences) > limit


class ParallelSentencesDataset(Dataset[InputExample]):
    """Parallel sentences (one sentence and its translations per row) for a student model to learn a teacher's
    embeddings: every sentence of a row, source included, becomes an :class:`~sentrs.InputExample` with
    ``texts=[sentence]`` and ``label`` the teacher's embedding of the row's source (first) sentence.

    Examples are produced in rounds: each round takes the next row of every loaded dataset ``weight`` times (a
    dataset reshuffles its rows when it wraps around), encodes the source sentences with the teacher (cached unless
    ``use_embedding_cache=False``) and shuffles the round's examples. ``__getitem__`` ignores its index and hands out
    the next example, starting a new round when the current one is used up; ``len`` is the number of distinct
    (source, sentence) pairs loaded.

    Args:
        student_model: the model being trained (kept for reference; not used here).
        teacher_model: anything with
            ``encode(sentences, batch_size=..., show_progress_bar=..., convert_to_numpy=...)``.
        batch_size: the teacher's encoding batch size.
        use_embedding_cache: encode each source sentence once.
    """

    def __init__(
        self,
        student_model: SentenceTransformer | Any,
        teacher_model: SentenceTransformer | Any,
        batch_size: int = 8,
        use_embedding_cache: bool = True,
    ) -> None:
        self.student_model = student_model
        self.teacher_model = teacher_model
        self.datasets: list[list[tuple[str, set[str]]]] = []
        self.datasets_iterator: list[int] = []
        self.datasets_tokenized: list[Any] = []
        self.dataset_indices: list[int] = []
        self.copy_dataset_indices: list[int] = []
        self.cache: list[InputExample] = []
        self.batch_size = batch_size
        self.use_embedding_cache = use_embedding_cache
        self.embedding_cache: dict[str, Any] = {}
        self.num_sentences = 0

    def load_data(
        self, filepath: str, weight: int = 100, max_sentences: int | None = None, max_sentence_length: int = 128
    ) -> None:
        """Reads a tab-separated file (``.gz`` is gunzipped): the source sentence first, then its translations.

        Args:
            filepath: the file.
            weight: how many examples of this dataset each round takes, relative to the other datasets.
            max_sentences: read at most this many rows (``None`` or below 1: all).
            max_sentence_length: skip rows with a sentence longer than this many characters (``None`` or below 1:
                keep all).
        """
        logger.info("Loading %s", filepath)
        rows = []
        limit = _limit(max_sentences)
        with open_text(filepath) as f:
            for line in f:
                sentences = line.strip().split("\t")
                if _too_long(sentences, max_sentence_length):
                    continue
                rows.append(sentences)
                if limit is not None and len(rows) >= limit:
                    break
        self.add_dataset(rows, weight=weight, max_sentences=max_sentences, max_sentence_length=max_sentence_length)

    def add_dataset(
        self,
        parallel_sentences: list[list[str]],
        weight: int = 100,
        max_sentences: int | None = None,
        max_sentence_length: int = 128,
    ) -> None:
        """Adds rows of parallel sentences (the source first); rows with the same source are merged, and at most
        ``max_sentences`` distinct sources are kept. See :meth:`load_data` for the arguments."""
        translations: dict[str, set[str]] = {}
        limit = _limit(max_sentences)
        for sentences in parallel_sentences:
            if _too_long(sentences, max_sentence_length):
                continue
            translations.setdefault(sentences[0], set()).update(sentences)
            if limit is not None and len(translations) >= limit:
                break
        if not translations:
            return
        self.num_sentences += sum(len(targets) for targets in translations.values())
        dataset_id = len(self.datasets)
        self.datasets.append(list(translations.items()))
        self.datasets_iterator.append(0)
        self.dataset_indices.extend([dataset_id] * weight)

    def generate_data(self) -> None:
        """Fills the cache with one round of examples (see the class description)."""
        entries = [self.next_entry(data_idx) for data_idx in self.dataset_indices]
        embeddings = self.get_embeddings([source for source, _ in entries])
        for embedding, (_, targets) in zip(embeddings, entries):
            self.cache.extend(InputExample(texts=[target], label=embedding) for target in targets)
        random.shuffle(self.cache)

    def next_entry(self, data_idx: int) -> tuple[str, set[str]]:
        """The next (source, sentences) row of dataset ``data_idx``; the dataset reshuffles when it wraps around."""
        rows = self.datasets[data_idx]
        entry = rows[self.datasets_iterator[data_idx]]
        self.datasets_iterator[data_idx] += 1
        if self.datasets_iterator[data_idx] >= len(rows):
            self.datasets_iterator[data_idx] = 0
            random.shuffle(rows)
        return entry

    def _encode(self, sentences: list[str]) -> Any:
        return self.teacher_model.encode(
            sentences, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )

    def get_embeddings(self, sentences: list[str]) -> Any:
        """The teacher's embeddings of ``sentences``, through the cache when it is on."""
        if not self.use_embedding_cache:
            return self._encode(sentences)
        new = [s for s in sentences if s not in self.embedding_cache]
        if new:
            self.embedding_cache.update(zip(new, self._encode(new)))
        return [self.embedding_cache[s] for s in sentences]

    def __len__(self) -> int:
        return self.num_sentences

    def __getitem__(self, idx: int) -> InputExample:
        if not self.cache:
            self.generate_data()
        return self.cache.pop()
