"""``GISTEmbedLoss``: in-batch negatives ranking where a guide model removes the likely false negatives."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.base.tensors import batch_to_device
from sentrs.sentence_transformer.losses._inputs import embed_columns
from sentrs.sentence_transformer.losses.multiple_negatives_ranking import _gather_with_grad
from sentrs.util.distributed import get_rank

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["GISTEmbedLoss", "MarginStrategy"]

MarginStrategy = Literal["absolute", "relative"]


class GISTEmbedLoss(nn.Module):
    """Contrastive loss with in-batch negatives, guided: a fixed guide model scores every pair too, and a candidate
    the guide finds at least as similar to the anchor as the anchor's own positive (a likely false negative) is left
    out of the anchor's softmax.

    For a batch of ``(anchor_i, positive_i[, negative_i, ...])`` rows, row ``i``'s logits are the cosine
    similarities, divided by ``temperature``, of ``anchor_i`` with every positive, every anchor
    (``contrast_anchors``) and every negative, and of ``positive_i`` with every positive (``contrast_positives``);
    the loss is the cross-entropy of ``(anchor_i, positive_i)`` against them. A candidate is masked out when the
    guide's similarity for that pair exceeds the guide's anchor-positive similarity minus the margin:
    ``guide_sim > guide_pos - margin`` (``"absolute"``) or ``guide_sim > guide_pos - |guide_pos| * margin``
    (``"relative"``). The positive itself is never masked.

    Args:
        model: the SentenceTransformer to train.
        guide: the guide SentenceTransformer (not trained). When its tokenizer differs from the model's (another
            vocabulary, or a shorter ``max_seq_length``), the texts are decoded from the model's token ids and
            tokenized again for the guide.
        temperature: divides the similarities; 0.01 by default.
        margin_strategy: ``"absolute"`` or ``"relative"``, see above.
        margin: the margin of that test; 0 masks every candidate the guide ranks above the positive.
        contrast_anchors: include the anchor-anchor similarities as negatives.
        contrast_positives: include the positive-positive similarities as negatives.
        gather_across_devices: in a ``torch.distributed`` job, use the positives and negatives of every process.

    Raises:
        ValueError: the model or the guide has no transformers tokenizer, or ``margin_strategy`` is unknown.

    Requirements:
        1. (anchor, positive) pairs, or (anchor, positive, negative_1, ..., negative_n) tuples.

    Inputs:
        +-------------------------------------------------+--------+
        | Texts                                           | Labels |
        +=================================================+========+
        | (anchor, positive) pairs                        | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative) triplets           | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative_1, ..., negative_n) | none   |
        +-------------------------------------------------+--------+

    Relations:
        - :class:`MultipleNegativesRankingLoss` without the guide's masking (and with a scale instead of a
          temperature).
        - :class:`CachedGISTEmbedLoss` computes the same loss with gradient caching.

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import GISTEmbedLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            guide = SentenceTransformer("sentence-transformers/all-MiniLM-L12-v2")
            loss = GISTEmbedLoss(model, guide)
            columns = [["It's sunny today.", "He drove."], ["The weather is nice.", "He took the car."]]
            loss([model.preprocess(texts) for texts in columns], None).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        guide: SentenceTransformer,
        temperature: float = 0.01,
        margin_strategy: MarginStrategy = "absolute",
        margin: float = 0.0,
        contrast_anchors: bool = True,
        contrast_positives: bool = True,
        gather_across_devices: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.guide = guide
        self.temperature = temperature
        self.similarity_fct = nn.CosineSimilarity(dim=-1)
        self.must_retokenize = guide_needs_retokenization(self, model, guide)
        if self.must_retokenize:
            self.tokenizer = model.tokenizer
        if margin_strategy not in ("absolute", "relative"):
            raise ValueError(f"margin_strategy must be 'absolute' or 'relative', got {margin_strategy!r}.")
        self.margin_strategy = margin_strategy
        self.margin = margin
        self.contrast_anchors = contrast_anchors
        self.contrast_positives = contrast_positives
        self.gather_across_devices = gather_across_devices
        self.cross_entropy_loss = nn.CrossEntropyLoss()

    def sim_matrix(self, embed1: Tensor, embed2: Tensor) -> Tensor:
        """``(n, dim)`` x ``(m, dim)`` -> ``(n, m)`` similarities with ``similarity_fct``."""
        return similarity_matrix(self.similarity_fct, embed1, embed2)

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column; ``labels`` are unused."""
        columns = list(sentence_features)
        if len(columns) < 2:
            raise ValueError(
                f"{type(self).__name__} expects at least 2 input columns (anchor, positive[, negative, ...]), "
                f"got {len(columns)}."
            )
        guide_inputs = [dict(features) for features in columns]  # before the model's forward adds its outputs
        embeddings = embed_columns(self.model, columns)
        with torch.no_grad():
            guide_inputs = [guide_features(self, features, index) for index, features in enumerate(guide_inputs)]
            guide_embeddings = embed_columns(self.guide, guide_inputs)
        anchors, candidates = embeddings[0], embeddings[1:]
        anchors_guide, candidates_guide = guide_embeddings[0], guide_embeddings[1:]
        batch_size = anchors.shape[0]
        offset = 0
        if self.gather_across_devices:
            candidates = [_gather_with_grad(c) for c in candidates]
            candidates_guide = [_gather_with_grad(c) for c in candidates_guide]
            offset = get_rank() * batch_size
        scores = gist_logits(self, anchors, anchors_guide, candidates, candidates_guide, 0, batch_size, offset)
        targets = torch.arange(offset, offset + batch_size, device=anchors.device)
        return self.cross_entropy_loss(scores, targets)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "guide": self.guide,
            "temperature": self.temperature,
            "margin_strategy": self.margin_strategy,
            "margin": self.margin,
            "contrast_anchors": self.contrast_anchors,
            "contrast_positives": self.contrast_positives,
            "gather_across_devices": self.gather_across_devices,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


def guide_needs_retokenization(loss: nn.Module, model: Any, guide: Any) -> bool:
    """Whether the guide needs the texts tokenized by its own tokenizer: another vocabulary, or a shorter
    ``max_seq_length`` than the model's.

    Raises:
        ValueError: the model or the guide has no transformers tokenizer (whose vocabulary can be compared).
    """
    from transformers import PreTrainedTokenizerBase

    name = type(loss).__name__
    for role, owner in (("model", model), ("guide", guide)):
        tokenizer = getattr(owner, "tokenizer", None)
        if not isinstance(tokenizer, PreTrainedTokenizerBase):
            raise ValueError(
                f"{name} needs a transformers tokenizer on both the model and the guide (to compare vocabularies "
                f"and, if they differ, decode the model's token ids for the guide), but the {role} "
                f"({type(owner).__name__}) has {type(tokenizer).__name__ if tokenizer is not None else 'none'}."
            )
    if model.tokenizer.get_vocab() != guide.tokenizer.get_vocab():
        return True
    model_length, guide_length = model.max_seq_length, guide.max_seq_length
    return guide_length is not None and model_length is not None and guide_length < model_length


def guide_features(loss: Any, features: dict[str, Any], column: int | None = None) -> dict[str, Any]:
    """The guide's input for one column: ``features`` itself when the tokenizers agree, else the texts decoded from
    the model's token ids (padded or flattened) and tokenized by the guide, on the guide's device.

    Raises:
        ValueError: the texts must be tokenized again but ``features`` has no ``input_ids`` to decode.
    """
    if not loss.must_retokenize:
        return features
    input_ids = features.get("input_ids")
    if not isinstance(input_ids, Tensor):
        where = "an input column" if column is None else f"input column {column}"
        raise ValueError(
            f"{type(loss).__name__} must tokenize the texts again for the guide (its tokenizer differs from the "
            f"model's), but the features of {where} have no 'input_ids' tensor to decode "
            f"(keys: {sorted(features)})."
        )
    sequences: Any = input_ids
    if "cu_seq_lens_q" in features:
        flat = input_ids.reshape(-1).tolist()
        bounds = [int(b) for b in features["cu_seq_lens_q"].tolist()]
        sequences = [flat[start:end] for start, end in itertools.pairwise(bounds)]
    texts = loss.tokenizer.batch_decode(sequences, skip_special_tokens=True)
    return batch_to_device(loss.guide.preprocess(texts), loss.guide.device)


def similarity_matrix(similarity_fct: Any, a: Tensor, b: Tensor) -> Tensor:
    """``(n, dim)`` x ``(m, dim)`` -> ``(n, m)``. Cosine (the default ``nn.CosineSimilarity(dim=-1)``) runs as one
    matrix product of the normalized rows instead of an ``(n, m, dim)`` broadcast."""
    if isinstance(similarity_fct, nn.CosineSimilarity) and similarity_fct.dim == -1:
        eps = similarity_fct.eps
        return F.normalize(a, p=2, dim=-1, eps=eps) @ F.normalize(b, p=2, dim=-1, eps=eps).T
    return similarity_fct(a.unsqueeze(1), b.unsqueeze(0))


def gist_logits(
    loss: Any,
    anchors: Tensor,
    anchors_guide: Tensor,
    candidates: list[Tensor],
    candidates_guide: list[Tensor],
    begin: int,
    end: int,
    offset: int,
) -> Tensor:
    """The logits of the anchor rows ``begin:end``: ``[anchor-positive | anchor-anchor | positive-positive |
    anchor-negative ...] / temperature``, the guide's likely false negatives at ``-inf``.

    ``anchors`` are this process's rows; ``candidates`` (positives, then each negative column) may be gathered over
    processes, this process's rows starting at ``offset``. The target of row ``r`` is column ``offset + r``.
    """
    end = min(end, anchors.shape[0])
    sim = loss.sim_matrix
    rows = anchors[begin:end]
    rows_guide = anchors_guide[begin:end]
    positive_sim = sim(rows_guide, candidates_guide[0])
    threshold = positive_sim.diagonal(offset=offset + begin).view(-1, 1)
    if loss.margin_strategy == "absolute":
        threshold = threshold - loss.margin
    else:
        threshold = threshold - threshold.abs() * loss.margin

    def masked(scores: Tensor, guided: Tensor, keep: Tensor | None = None) -> Tensor:
        drop = guided > threshold
        if keep is not None:
            drop = drop & ~keep
        return scores.masked_fill(drop, float("-inf"))

    index = torch.arange(end - begin, device=anchors.device)
    positive = torch.zeros_like(positive_sim, dtype=torch.bool)
    positive[index, offset + begin + index] = True
    blocks = [masked(sim(rows, candidates[0]), positive_sim, keep=positive)]
    if loss.contrast_anchors:
        blocks.append(masked(sim(rows, anchors), sim(rows_guide, anchors_guide)))
    if loss.contrast_positives:
        own = slice(offset + begin, offset + end)
        blocks.append(
            masked(sim(candidates[0][own], candidates[0]), sim(candidates_guide[0][own], candidates_guide[0]))
        )
    for negatives, negatives_guide in zip(candidates[1:], candidates_guide[1:]):
        blocks.append(masked(sim(rows, negatives), sim(rows_guide, negatives_guide)))
    return torch.cat(blocks, dim=1) / loss.temperature


CITATION = """
@misc{solatorio2024gistembed,
    title={GISTEmbed: Guided In-sample Selection of Training Negatives for Text Embedding Fine-tuning},
    author={Aivin V. Solatorio},
    year={2024},
    eprint={2402.16829},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""
