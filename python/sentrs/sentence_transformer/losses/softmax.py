"""``SoftmaxLoss``: a linear classifier on a pair's embeddings (the SBERT NLI objective)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.sentence_transformer.losses._inputs import embed_columns
from sentrs.util.decorators import deprecated_kwargs

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["SoftmaxLoss"]

logger = logging.getLogger(__name__)


class SoftmaxLoss(nn.Module):
    """Cross-entropy of a linear classifier over ``(u, v, |u - v|, u * v)`` of a pair's embeddings ``u`` and ``v``.

    This is how SBERT was trained on NLI data. The classifier belongs to the loss, not the model: it is trained along
    and then dropped. Which parts enter the classifier's input is configurable (``u`` and ``v``, ``|u - v|`` and
    ``u * v``).

    Args:
        model: the SentenceTransformer to train.
        embedding_dimension: the model's embedding dimension (``model.get_embedding_dimension()``). The old name
            ``sentence_embedding_dimension`` is accepted, with a warning.
        num_labels: the number of classes.
        concatenation_sent_rep: feed ``u`` and ``v``.
        concatenation_sent_difference: feed ``|u - v|``.
        concatenation_sent_multiplication: feed ``u * v``.
        loss_fct: compares the ``(batch_size, num_labels)`` logits with the labels (cross-entropy by default).

    Raises:
        ValueError: none of the three parts is selected.

    Requirements:
        1. Sentence pairs with a class label.

    Inputs:
        +---------------------------------------+-------------+
        | Texts                                 | Labels      |
        +=======================================+=============+
        | (sentence_A, sentence_B) pairs        | class index |
        +---------------------------------------+-------------+

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import SoftmaxLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = SoftmaxLoss(model, model.get_embedding_dimension(), num_labels=3)
            features = [model.preprocess(["A man eats."]), model.preprocess(["Nobody eats."])]
            loss(features, torch.tensor([2])).backward()
    """

    @deprecated_kwargs(sentence_embedding_dimension="embedding_dimension")
    def __init__(
        self,
        model: SentenceTransformer,
        embedding_dimension: int,
        num_labels: int,
        concatenation_sent_rep: bool = True,
        concatenation_sent_difference: bool = True,
        concatenation_sent_multiplication: bool = False,
        loss_fct: Callable[..., Tensor] = nn.CrossEntropyLoss(),  # noqa: B008 - the reference's default object
    ) -> None:
        super().__init__()
        self.model = model
        self.num_labels = num_labels
        self.concatenation_sent_rep = concatenation_sent_rep
        self.concatenation_sent_difference = concatenation_sent_difference
        self.concatenation_sent_multiplication = concatenation_sent_multiplication
        parts = 2 * concatenation_sent_rep + concatenation_sent_difference + concatenation_sent_multiplication
        if parts == 0:
            raise ValueError(
                "At least one of concatenation_sent_rep, concatenation_sent_difference, "
                "or concatenation_sent_multiplication must be True."
            )
        logger.info("Softmax loss: %d vectors concatenated", parts)
        self.classifier = nn.Linear(parts * embedding_dimension, num_labels, device=model.device)
        self.loss_fct = loss_fct

    def forward(
        self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None
    ) -> Tensor | tuple[list[Tensor], Tensor]:
        """The loss of a batch (one features dict per column, ``labels`` ``(batch_size,)``); without labels, the two
        columns' embeddings and the ``(batch_size, num_labels)`` logits."""
        embeddings = embed_columns(self.model, sentence_features)
        if len(embeddings) != 2:
            raise ValueError(f"SoftmaxLoss expects 2 input columns (pairs), got {len(embeddings)}")
        u, v = embeddings
        parts = []
        if self.concatenation_sent_rep:
            parts += [u, v]
        if self.concatenation_sent_difference:
            parts.append(torch.abs(u - v))
        if self.concatenation_sent_multiplication:
            parts.append(u * v)
        logits = self.classifier(torch.cat(parts, 1).to(self.classifier.weight.dtype))
        if labels is None:
            return embeddings, logits
        if self.num_labels == 1 or labels.shape != logits.shape:
            labels = labels.view(-1)
        return self.loss_fct(logits, labels)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "num_labels": self.num_labels,
            "concatenation_sent_rep": self.concatenation_sent_rep,
            "concatenation_sent_difference": self.concatenation_sent_difference,
            "concatenation_sent_multiplication": self.concatenation_sent_multiplication,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{reimers-2019-sentence-bert,
    title = "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing",
    month = "11",
    year = "2019",
    publisher = "Association for Computational Linguistics",
    url = "https://arxiv.org/abs/1908.10084",
}
"""
