"""``MegaBatchMarginLoss``: a margin loss on each anchor's positive and its hardest in-batch negative."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.base.similarity import cos_sim
from sentrs.sentence_transformer.losses._gradcache import GradCacheMixin, validate_mini_batch_num_tokens
from sentrs.sentence_transformer.losses._inputs import embed_columns

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["MegaBatchMarginLoss"]


class MegaBatchMarginLoss(GradCacheMixin, nn.Module):
    """For each ``(anchor_i, positive_i)``, the hardest negative is the other row's positive most similar to
    ``anchor_i``; the loss is ``relu(positive_margin - cos(anchor_i, positive_i)) + relu(cos(anchor_i, hardest) -
    negative_margin)``, summed over the rows and divided by the batch size.

    The hardest negatives get better as the batch grows (the "mega batch" of ParaNMT-50M), so by default the loss is
    computed with gradient caching (see :class:`CachedMultipleNegativesRankingLoss`): mini-batches of
    ``mini_batch_size`` texts, at the memory of one of them.

    Args:
        model: the SentenceTransformer to train.
        positive_margin: the cosine similarity each positive should reach.
        negative_margin: the cosine similarity the hardest negative should stay under.
        use_mini_batched_version: compute with gradient caching (large batches at constant memory); False embeds
            the whole batch in one pass per column.
        mini_batch_size: texts per forward pass (and rows per loss chunk) of the cached version.
        mini_batch_num_tokens: when set, the cached version's forward passes are packed by token count instead.
        show_progress_bar: show tqdm bars over the mini-batches.

    Raises:
        ValueError: an argument is out of range, or (at forward) the batch has other than 2 input columns.

    Requirements:
        1. (anchor, positive) pairs.
        2. Large batches (500 or more), which the default cached version allows.

    Inputs:
        +--------------------------+--------+
        | Texts                    | Labels |
        +==========================+========+
        | (anchor, positive) pairs | none   |
        +--------------------------+--------+

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import MegaBatchMarginLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = MegaBatchMarginLoss(model, mini_batch_size=16)
            columns = [["It's sunny today.", "He drove."], ["The weather is nice.", "He took the car."]]
            loss([model.preprocess(texts) for texts in columns], None).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        positive_margin: float = 0.8,
        negative_margin: float = 0.3,
        use_mini_batched_version: bool = True,
        mini_batch_size: int = 50,
        mini_batch_num_tokens: int | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__()
        if mini_batch_size <= 0:
            raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}")
        validate_mini_batch_num_tokens(mini_batch_num_tokens)
        self.model = model
        self.positive_margin = positive_margin
        self.negative_margin = negative_margin
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar
        self.use_mini_batched_version = use_mini_batched_version
        # Only the cached version embeds again during the backward pass (see uses_gradient_cache).
        self.uses_gradient_cache = use_mini_batched_version

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """The loss of a batch of (anchor, positive) columns; ``labels`` are unused."""
        columns = list(sentence_features)
        if len(columns) != 2:
            raise ValueError(
                f"MegaBatchMarginLoss expects exactly 2 input columns, (anchor, positive), but got {len(columns)}. "
                "It takes each anchor's hardest negative from the other rows' positives, so it has no use for a "
                "negative column; CachedMultipleNegativesRankingLoss trains with explicit negatives."
            )
        if self.use_mini_batched_version:
            return self.forward_cached(columns, labels)
        return self.calculate_loss([[embeddings] for embeddings in embed_columns(self.model, columns)])

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The loss from the mini-batch embeddings ``reps[column][mini_batch]``: in chunks of ``mini_batch_size``
        anchor rows when backpropagating chunk by chunk (``with_backward``) or without gradients, else at once."""
        anchors, positives = torch.cat(reps[0]), torch.cat(reps[1])
        batch_size = anchors.shape[0]
        chunk = self.mini_batch_size if with_backward or not torch.is_grad_enabled() else batch_size
        parts: list[Tensor] = []
        for begin in range(0, batch_size, chunk):
            end = min(begin + chunk, batch_size)
            rows = torch.arange(end - begin, device=anchors.device)
            scores = cos_sim(anchors[begin:end], positives)
            own = torch.zeros_like(scores, dtype=torch.bool)
            own[rows, rows + begin] = True
            positive = scores[rows, rows + begin]
            hardest = scores.masked_fill(own, float("-inf")).max(dim=1).values
            part = (
                F.relu(self.positive_margin - positive) + F.relu(hardest - self.negative_margin)
            ).sum() / batch_size
            if with_backward:
                part.backward()
                part = part.detach()
            parts.append(part)
        return torch.stack(parts).sum()

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "positive_margin": self.positive_margin,
            "negative_margin": self.negative_margin,
            "mini_batch_size": self.mini_batch_size,
            "mini_batch_num_tokens": self.mini_batch_num_tokens,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{wieting-gimpel-2018-paranmt,
    title = "{P}ara{NMT}-50{M}: Pushing the Limits of Paraphrastic Sentence Embeddings with Millions of Machine Translations",
    author = "Wieting, John and Gimpel, Kevin",
    editor = "Gurevych, Iryna and Miyao, Yusuke",
    booktitle = "Proceedings of the 56th Annual Meeting of the Association for Computational Linguistics (Volume 1: Long Papers)",
    month = jul,
    year = "2018",
    address = "Melbourne, Australia",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/P18-1042",
    doi = "10.18653/v1/P18-1042",
    pages = "451--462",
}
"""  # noqa: E501
