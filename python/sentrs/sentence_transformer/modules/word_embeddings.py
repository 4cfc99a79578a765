"""Word-level embedding lookup (GloVe, word2vec, ...) over a word tokenizer: the classic first module."""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from sentrs.base.modules.module import InputModule
from sentrs.base.registry import fullname
from sentrs.exceptions import ModuleTypeError
from sentrs.sentence_transformer.modules.tokenizer import (
    PhraseTokenizer,
    TransformersTokenizerWrapper,
    WhitespaceTokenizer,
    WordTokenizer,
)

__all__ = ["WordEmbeddings"]

logger = logging.getLogger(__name__)

EMBEDDINGS_DOWNLOAD_URL = "https://public.ukp.informatik.tu-darmstadt.de/reimers/embeddings/"
"""Where the reference fetches an embeddings file given by bare name (``glove.6B.300d.txt.gz``) that is not local."""

# The packages a saved ``tokenizer_class`` may name a tokenizer under: the reference's current and pre-5.4 paths,
# and sentrs' own.
_TOKENIZER_PACKAGES = (
    "sentence_transformers.sentence_transformer.modules.tokenizer",
    "sentence_transformers.models.tokenizer",
    "sentrs.sentence_transformer.modules.tokenizer",
    "sentrs.models.tokenizer",
)
_TOKENIZER_CLASSES: dict[str, type[WordTokenizer]] = {
    cls.__name__: cls for cls in (WhitespaceTokenizer, PhraseTokenizer, TransformersTokenizerWrapper)
}
# The module below a tokenizer package that defines each class: current file names, and the pre-5.4 ones.
_DEFINING_MODULES: dict[str, tuple[str, ...]] = {
    "WhitespaceTokenizer": ("whitespace", "WhitespaceTokenizer"),
    "PhraseTokenizer": ("phrase", "PhraseTokenizer"),
    "TransformersTokenizerWrapper": ("word", "WordTokenizer"),
    "WordTokenizer": ("word", "WordTokenizer"),
}


def _tokenizer_class(class_path: Any, model_dir: str, trust_remote_code: bool) -> type[WordTokenizer]:
    """The sentrs tokenizer class for the ``tokenizer_class`` of a WordEmbeddings config.

    Accepts the reference's class paths, current (``...modules.tokenizer.whitespace.WhitespaceTokenizer``) and
    legacy (``sentence_transformers.models.tokenizer.WhitespaceTokenizer.WhitespaceTokenizer``), and sentrs' own.
    Nothing is imported by path: any other class is custom code, which sentrs does not run.

    Raises:
        ModuleTypeError: the path names no tokenizer sentrs implements.
    """
    supported = ", ".join(_TOKENIZER_CLASSES)
    if not isinstance(class_path, str) or not class_path:
        raise ModuleTypeError(
            f"WordEmbeddings config in {model_dir} must name its tokenizer in 'tokenizer_class' (a class path such "
            f"as {WhitespaceTokenizer.reference_type!r}), got {class_path!r}"
        )
    module_path, _, class_name = class_path.rpartition(".")
    subs = ("", *(f".{sub}" for sub in _DEFINING_MODULES.get(class_name, ())))
    if module_path in {package + sub for package in _TOKENIZER_PACKAGES for sub in subs}:
        if class_name == "WordTokenizer":
            raise ModuleTypeError(
                f"WordEmbeddings config in {model_dir} names the abstract tokenizer class {class_path!r}; "
                f"it needs a concrete one: {supported}"
            )
        if class_name in _TOKENIZER_CLASSES:
            return _TOKENIZER_CLASSES[class_name]
    if class_path.split(".", 1)[0] in ("sentence_transformers", "sentrs"):
        raise ModuleTypeError(
            f"WordEmbeddings config in {model_dir} names the tokenizer class {class_path!r}, which is not a word "
            f"tokenizer sentrs implements. Supported tokenizer classes: {supported}"
        )
    if not trust_remote_code:
        raise ModuleTypeError(
            f"WordEmbeddings config in {model_dir} names the tokenizer class {class_path!r}, which is not part of "
            "sentence-transformers: loading it would import third-party code (the reference requires "
            "trust_remote_code=True), and sentrs never runs custom code. Supported tokenizer classes: "
            f"{supported}"
        )
    raise ModuleTypeError(
        f"WordEmbeddings config in {model_dir} names the custom tokenizer class {class_path!r}; sentrs never "
        f"runs custom code, even with trust_remote_code=True. Supported tokenizer classes: {supported}"
    )


def _tokenizer_reference_path(tokenizer: WordTokenizer) -> str:
    """The class path saved as ``tokenizer_class``: the reference's, for the tokenizers sentrs implements."""
    own = type(tokenizer).__dict__.get("reference_type")
    return own if isinstance(own, str) else fullname(tokenizer)


def _read_state_dict(model_dir: str) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` (or ``pytorch_model.bin``) in ``model_dir``."""
    from sentrs.base.modules.module import read_weights_file

    return read_weights_file(model_dir)


def _as_weight_matrix(embedding_weights: Any) -> torch.Tensor:
    """A fresh ``(vocab, dim)`` tensor in the default float dtype from a tensor, array or nested list."""
    if isinstance(embedding_weights, torch.Tensor):
        weights = embedding_weights.detach().to("cpu", torch.get_default_dtype()).clone()
    else:
        weights = torch.tensor(np.asarray(embedding_weights), dtype=torch.get_default_dtype())
    if weights.dim() != 2:
        raise ValueError(f"embedding_weights must be a (vocab, dim) matrix, got shape {tuple(weights.shape)}")
    return weights


class WordEmbeddings(InputModule):
    """Looks up one vector per word: a word tokenizer maps texts to vocabulary indices, an ``nn.Embedding`` maps
    those to ``token_embeddings``. Usually followed by :class:`~sentrs.sentence_transformer.modules.Pooling`.

    Saves ``wordembedding_config.json`` (``tokenizer_class``, ``update_embeddings``, ``max_seq_length``), the
    tokenizer's own config file, and ``emb_layer.weight`` in ``model.safetensors``.

    Args:
        tokenizer: a :class:`~sentrs.sentence_transformer.modules.tokenizer.WordTokenizer`, or a Hugging Face
            tokenizer (used through ``TransformersTokenizerWrapper``).
        embedding_weights: ``(vocab, dim)`` vectors (tensor, numpy array or nested list); row ``i`` is the word of
            index ``i``. Stored in the default float dtype.
        update_embeddings: whether training updates the vectors (``requires_grad``).
        max_seq_length: texts are cut to this many words.
    """

    config_keys: ClassVar[list[str]] = ["tokenizer_class", "update_embeddings", "max_seq_length"]
    config_file_name: ClassVar[str] = "wordembedding_config.json"
    modalities: ClassVar[list[str]] = ["text"]
    reference_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.word_embeddings.WordEmbeddings"

    def __init__(
        self,
        tokenizer: WordTokenizer | Any,
        embedding_weights: torch.Tensor | npt.NDArray[Any] | list[list[float]],
        update_embeddings: bool = False,
        max_seq_length: int = 1000000,
    ) -> None:
        super().__init__()
        if not isinstance(tokenizer, WordTokenizer):
            from transformers import PreTrainedTokenizerBase

            if not isinstance(tokenizer, PreTrainedTokenizerBase):
                raise ValueError(
                    "tokenizer must be a WordTokenizer or a Hugging Face tokenizer (PreTrainedTokenizerBase), got "
                    f"{type(tokenizer).__name__}"
                )
            tokenizer = TransformersTokenizerWrapper(tokenizer)
        weights = _as_weight_matrix(embedding_weights)
        num_embeddings, self.embeddings_dimension = weights.shape
        self.emb_layer = nn.Embedding(num_embeddings, self.embeddings_dimension, _weight=weights)
        self.emb_layer.weight.requires_grad = update_embeddings
        self.tokenizer: WordTokenizer = tokenizer
        self.update_embeddings = update_embeddings
        self.max_seq_length = max_seq_length

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Adds ``token_embeddings`` ``(batch, words, dim)`` for ``input_ids`` ``(batch, words)`` int64."""
        features["token_embeddings"] = self.emb_layer(features["input_ids"])
        return features

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Tokenizes ``inputs`` (each prefixed by ``prompt``) into right-padded int64 tensors.

        Returns:
            ``input_ids`` and ``attention_mask`` ``(batch, longest)`` (pad id 0, at least one column), and
            ``sentence_lengths`` ``(batch,)``, the word count of each text after ``max_seq_length``.
        """
        if prompt:
            inputs = [prompt + text for text in inputs]
        rows = [self.tokenizer.tokenize(text, **kwargs)[: self.max_seq_length] for text in inputs]
        lengths = [len(row) for row in rows]
        width = max(1, *lengths) if lengths else 1
        input_ids = torch.zeros((len(rows), width), dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
                attention_mask[i, : len(row)] = 1
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "sentence_lengths": torch.tensor(lengths, dtype=torch.long),
        }

    def get_embedding_dimension(self) -> int:
        return self.embeddings_dimension

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "tokenizer_class": _tokenizer_reference_path(self.tokenizer),
            "update_embeddings": self.update_embeddings,
            "max_seq_length": self.max_seq_length,
        }

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        self.tokenizer.save(output_path)

    @classmethod
    def load(cls, model_dir: str, trust_remote_code: bool = False, **kwargs: Any) -> WordEmbeddings:
        """Builds the module from a folder the reference or sentrs saved (other loading options are ignored).

        Raises:
            ModuleTypeError: ``tokenizer_class`` names no tokenizer sentrs implements (custom code included).
        """
        config = cls.load_config(model_dir)
        tokenizer_cls = _tokenizer_class(config.pop("tokenizer_class", None), model_dir, trust_remote_code)
        tokenizer = tokenizer_cls.load(model_dir)
        state = _read_state_dict(model_dir)
        if "emb_layer.weight" not in state:
            raise ValueError(f"WordEmbeddings weights in {model_dir} lack 'emb_layer.weight', got {sorted(state)}")
        return cls(tokenizer=tokenizer, embedding_weights=state["emb_layer.weight"], **config)

    @classmethod
    def from_text_file(
        cls,
        embeddings_file_path: str,
        update_embeddings: bool = False,
        item_separator: str = " ",
        tokenizer: WordTokenizer | None = None,
        max_vocab_size: int | None = None,
    ) -> WordEmbeddings:
        """Reads a GloVe-style text file (``word v1 v2 ... vd`` per line; ``.gz`` allowed) into a module.

        A word2vec header line (``count dim``) is skipped, as are blank lines. Index 0 is a ``PADDING_TOKEN`` with
        a zero vector; the file's words follow in order. The tokenizer (default :class:`WhitespaceTokenizer`) gets
        that vocabulary. A bare file name that does not exist locally is downloaded from the reference's
        embeddings server, as the reference does.

        Args:
            embeddings_file_path: the text file.
            update_embeddings: whether training updates the vectors.
            item_separator: the separator between a line's fields.
            tokenizer: the word tokenizer; its vocabulary is replaced.
            max_vocab_size: read at most this many words (None or 0: all).

        Raises:
            ValueError: the file does not exist (a path), has no vectors, or a line's vector is not of the first
                line's length or not numeric (the message names the file and line).
        """
        if tokenizer is None:
            tokenizer = WhitespaceTokenizer()
        if not os.path.exists(embeddings_file_path):
            if "/" in embeddings_file_path or "\\" in embeddings_file_path:
                raise ValueError(f"Embeddings file not found: {embeddings_file_path}")
            from sentrs.util.file_io import http_get

            logger.info("%s does not exist locally; downloading it", embeddings_file_path)
            http_get(EMBEDDINGS_DOWNLOAD_URL + embeddings_file_path, embeddings_file_path)
        logger.info("Reading word embeddings from %s", embeddings_file_path)
        vocab, vectors = _read_embeddings_text(embeddings_file_path, item_separator, max_vocab_size)
        tokenizer.set_vocab(vocab)
        return cls(tokenizer=tokenizer, embedding_weights=vectors, update_embeddings=update_embeddings)


def _numbered_lines(path: str) -> Iterator[tuple[int, str]]:
    """``(line number from 1, line)`` of a UTF-8 text file, gzip-compressed when the name ends in ``.gz``."""
    from tqdm.auto import tqdm

    opened = gzip.open(path, "rt", encoding="utf8") if path.endswith(".gz") else open(path, encoding="utf8")
    with opened as f:
        yield from enumerate(tqdm(f, desc="Load Word Embeddings", unit="Embeddings", disable=None), start=1)


def _read_embeddings_text(
    path: str, separator: str, max_vocab_size: int | None
) -> tuple[list[str], npt.NDArray[np.float32]]:
    """The vocabulary (``PADDING_TOKEN`` first) and ``(vocab, dim)`` vectors (a zero row first) of a text file."""
    vocab: list[str] = []
    rows: list[npt.NDArray[np.float32]] = []
    dim = 0
    first_line = 0
    for line_no, line in _numbered_lines(path):
        if not line.strip():
            continue
        fields = line.rstrip().split(separator)
        if not vocab and len(fields) == 2:
            continue  # the "count dim" header of the word2vec text format
        if not vocab:
            dim, first_line = len(fields) - 1, line_no
            vocab.append("PADDING_TOKEN")
            rows.append(np.zeros(dim, dtype=np.float32))
        if len(fields) - 1 != dim:
            raise ValueError(
                f"{path}, line {line_no}: expected a word and {dim} values (as on line {first_line}), got "
                f"{len(fields) - 1} values"
            )
        try:
            # parsed as float64 and then rounded, as the reference does
            rows.append(np.array(fields[1:], dtype=np.float64).astype(np.float32))
        except ValueError as exc:
            raise ValueError(f"{path}, line {line_no}: the values after {fields[0]!r} are not all numbers") from exc
        vocab.append(fields[0])
        if max_vocab_size is not None and max_vocab_size > 0 and len(vocab) > max_vocab_size:
            break
    if not vocab:
        raise ValueError(f"{path} holds no word vectors")
    return vocab, np.stack(rows)
