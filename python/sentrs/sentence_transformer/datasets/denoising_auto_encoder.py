"""``DenoisingAutoEncoderDataset``: (damaged, original) text pairs for TSDAE, for the old ``model.fit`` API."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

import numpy as np
from torch.utils.data import Dataset

from sentrs.sentence_transformer.readers.input_example import InputExample

__all__ = ["DenoisingAutoEncoderDataset"]

_NLTK_HINT = (
    "{name} needs the nltk package for its default noise function (word tokenization): pip install nltk, and "
    "download its 'punkt' tokenizer data (nltk.download('punkt_tab')); or pass your own noise_fn."
)


def _delete_words(text: str) -> str:
    return DenoisingAutoEncoderDataset.delete(text)


class DenoisingAutoEncoderDataset(Dataset[InputExample]):
    """Each item is an :class:`InputExample` with ``texts=[noise_fn(sentence), sentence]``: the damaged text, which
    :class:`~sentrs.sentence_transformer.losses.DenoisingAutoEncoderLoss` embeds, and the original, which its decoder
    must rebuild.

    Args:
        sentences: the training texts.
        noise_fn: damages one text; by default :meth:`delete`, which needs nltk.

    Raises:
        ImportError: the default ``noise_fn`` is used but nltk is not installed.
    """

    def __init__(self, sentences: list[str], noise_fn: Callable[[str], str] = _delete_words) -> None:
        if noise_fn is _delete_words and importlib.util.find_spec("nltk") is None:
            raise ImportError(_NLTK_HINT.format(name=type(self).__name__))
        self.sentences = sentences
        self.noise_fn = noise_fn

    def __getitem__(self, item: int) -> InputExample:
        sentence = self.sentences[item]
        return InputExample(texts=[self.noise_fn(sentence), sentence])

    def __len__(self) -> int:
        return len(self.sentences)

    @staticmethod
    def delete(text: str, del_ratio: float = 0.6) -> str:
        """``text`` with each word (nltk's word tokens) deleted with probability ``del_ratio`` (numpy's global
        random state), keeping at least one word; the rest joined back with nltk's Treebank detokenizer."""
        try:
            from nltk import word_tokenize
            from nltk.tokenize.treebank import TreebankWordDetokenizer
        except ImportError as error:
            raise ImportError(_NLTK_HINT.format(name="DenoisingAutoEncoderDataset.delete")) from error
        words = word_tokenize(text)
        if not words:
            return text
        keep = np.random.rand(len(words)) > del_ratio
        if not keep.any():
            keep[np.random.choice(len(words))] = True
        return str(TreebankWordDetokenizer().detokenize(np.array(words)[keep]))
