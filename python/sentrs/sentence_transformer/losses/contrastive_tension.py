"""Contrastive Tension (CT): unsupervised training with two copies of the model, and its data loader."""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.similarity import cos_sim
from sentrs.sentence_transformer.readers.input_example import InputExample
from sentrs.util.misc import similarity_fct_name

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["ContrastiveTensionDataLoader", "ContrastiveTensionLoss", "ContrastiveTensionLossInBatchNegatives"]


class ContrastiveTensionLoss(nn.Module):
    """Contrastive Tension: two copies of the model, and for each pair of texts the dot product of the first copy's
    embedding of one text with the second copy's embedding of the other, trained with binary cross-entropy (summed
    over the batch) to be high for identical texts and low for different ones.

    ``model`` is the second copy, the one to keep (``model2``); ``model1`` is a deep copy made here, trained along.
    Feed it with :class:`ContrastiveTensionDataLoader`, which builds batches of identical (label 1) and random
    (label 0) pairs.

    Args:
        model: the SentenceTransformer to train.

    Requirements:
        1. (text, text) pairs: identical texts as positives, random pairs as negatives, from
           :class:`ContrastiveTensionDataLoader`.

    Inputs:
        +-------------------------------------+-------------------------------------------+
        | Texts                               | Labels                                    |
        +=====================================+===========================================+
        | (sentence_A, sentence_B) pairs      | 1 if the texts are the same, else 0       |
        +-------------------------------------+-------------------------------------------+

    Without labels (``None``), a pair is positive when its two token sequences are equal.

    Relations:
        - :class:`ContrastiveTensionLossInBatchNegatives` uses the other texts of the batch as negatives instead.

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import ContrastiveTensionLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = ContrastiveTensionLoss(model)
            pairs = [["A cat.", "A cat.", "Rain."], ["A cat.", "Stocks fell.", "A tree."]]
            loss([model.preprocess(texts) for texts in pairs], torch.tensor([1, 0, 0])).backward()
    """

    def __init__(self, model: SentenceTransformer) -> None:
        super().__init__()
        self.model2 = model  # the model that is kept
        self.model1 = copy.deepcopy(model)
        self.criterion = nn.BCEWithLogitsLoss(reduction="sum")

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        """The loss of a batch of two columns; ``labels`` are 1 (same text) / 0, or None to compare the tokens."""
        columns = list(sentence_features)
        if len(columns) != 2:
            raise ValueError(f"ContrastiveTensionLoss expects 2 input columns (text pairs), got {len(columns)}.")
        first, second = columns
        reps_1 = self.model1(first)["sentence_embedding"]
        reps_2 = self.model2(second)["sentence_embedding"]
        scores = (reps_1 * reps_2).sum(dim=-1)
        if labels is None:
            labels = _same_tokens(first, second).to(device=scores.device, dtype=scores.dtype)
        return self.criterion(scores, labels.view(-1).type_as(scores))

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card (it has none)."""
        return {}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


def _same_tokens(first: dict[str, Any], second: dict[str, Any]) -> Tensor:
    """Per row, whether the two columns hold the same token sequence (padding ignored when both have a mask)."""
    ids_1, ids_2 = first["input_ids"], second["input_ids"]
    mask_1, mask_2 = first.get("attention_mask"), second.get("attention_mask")
    if mask_1 is not None and mask_2 is not None:
        same = [torch.equal(a[m], b[n]) for a, m, b, n in zip(ids_1, mask_1.bool(), ids_2, mask_2.bool(), strict=True)]
        return torch.tensor(same, dtype=torch.float32)
    if ids_1.shape != ids_2.shape:
        return torch.zeros(ids_1.shape[0])
    return (ids_1 == ids_2).all(dim=1).float()


class ContrastiveTensionLossInBatchNegatives(nn.Module):
    """Contrastive Tension with in-batch negatives: two copies of the model embed the same texts, and each text's
    embedding by one copy must pick its own embedding by the other copy among the batch's (cross-entropy in both
    directions, averaged), on learnable-scale similarities.

    ``model`` is the copy to keep (``model2``); ``model1`` is a deep copy made here. The scale is a parameter of the
    loss (``logit_scale``, its log), starting at ``scale``.

    Args:
        model: the SentenceTransformer to train.
        scale: the initial scale of the similarities (``1 / temperature``).
        similarity_fct: ``(n, dim)`` x ``(n, dim)`` -> ``(n, n)`` scores; cosine by default.

    Requirements:
        1. Single texts (the first input column is used).

    Inputs:
        +------------------+--------+
        | Texts            | Labels |
        +==================+========+
        | single sentences | none   |
        +------------------+--------+

    Relations:
        - :class:`ContrastiveTensionLoss` trains on explicit identical/random pairs instead.

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import ContrastiveTensionLossInBatchNegatives

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = ContrastiveTensionLossInBatchNegatives(model)
            loss([model.preprocess(["A cat.", "Stocks fell.", "A tree."])], None).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
    ) -> None:
        super().__init__()
        self.model2 = model  # the model that is kept
        self.model1 = copy.deepcopy(model)
        self.similarity_fct = similarity_fct
        self.cross_entropy_loss = nn.CrossEntropyLoss()
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(scale))

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        """The loss of a batch (the first column's texts); ``labels`` are unused."""
        columns = list(sentence_features)
        if not columns:
            raise ValueError("ContrastiveTensionLossInBatchNegatives expects at least 1 input column, got 0.")
        features = columns[0]
        embeddings_1 = self.model1(features)["sentence_embedding"]
        embeddings_2 = self.model2(features)["sentence_embedding"]
        scores = self.similarity_fct(embeddings_1, embeddings_2) * self.logit_scale.exp()
        targets = torch.arange(scores.shape[0], device=scores.device)
        return (self.cross_entropy_loss(scores, targets) + self.cross_entropy_loss(scores.T, targets)) / 2

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card (the scale as it is now)."""
        return {"scale": self.logit_scale.exp().item(), "similarity_fct": similarity_fct_name(self.similarity_fct)}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


class ContrastiveTensionDataLoader:
    """Batches of text pairs for :class:`ContrastiveTensionLoss`, for the old ``model.fit`` API: in each batch,
    every ``pos_neg_ratio``-th pair is a text with itself (label 1), the others two different texts (label 0).

    Each iteration shuffles ``sentences`` in place and yields ``len(self)`` batches of ``batch_size``
    :class:`InputExample` pairs (or what ``collate_fn`` makes of them, when set), each text used once.

    Args:
        sentences: the training texts.
        batch_size: pairs per batch; a multiple of ``pos_neg_ratio``.
        pos_neg_ratio: one positive pair per this many pairs.

    Raises:
        ValueError: ``batch_size`` is not a multiple of ``pos_neg_ratio``.
    """

    def __init__(self, sentences: list[str], batch_size: int, pos_neg_ratio: int = 8) -> None:
        self.sentences = sentences
        self.batch_size = batch_size
        self.pos_neg_ratio = pos_neg_ratio
        self.collate_fn: Callable[[list[InputExample]], Any] | None = None
        if self.batch_size % self.pos_neg_ratio != 0:
            raise ValueError(
                f"ContrastiveTensionDataLoader was loaded with a pos_neg_ratio of {pos_neg_ratio} and a batch size "
                f"of {batch_size}. The batch size must be divisible by the pos_neg_ratio"
            )

    def __iter__(self) -> Iterator[Any]:
        random.shuffle(self.sentences)
        texts = iter(self.sentences)
        for _ in range(len(self)):
            batch = []
            for index in range(self.batch_size):
                first = next(texts)
                label = int(index % self.pos_neg_ratio == 0)
                second = first if label else next(texts)
                batch.append(InputExample(texts=[first, second], label=label))
            yield self.collate_fn(batch) if self.collate_fn is not None else batch

    def __len__(self) -> int:
        """Batches per iteration: positives use one text, negatives two."""
        texts_per_batch = 2 * self.batch_size - self.batch_size // self.pos_neg_ratio
        return len(self.sentences) // texts_per_batch


CITATION = """
@inproceedings{carlsson2021semantic,
    title={Semantic Re-tuning with Contrastive Tension},
    author={Fredrik Carlsson and Amaru Cuba Gyllensten and Evangelia Gogoulou and Erik Ylip{\"a}{\"a} Hellqvist and Magnus Sahlgren},
    booktitle={International Conference on Learning Representations},
    year={2021},
    url={https://openreview.net/forum?id=Ov_sMNau-PF}
}
"""  # noqa: E501
