"""``MultipleNegativesRankingLoss``: InfoNCE with in-batch negatives, optional hard negatives and more directions."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from sentrs.base.similarity import cos_sim
from sentrs.sentence_transformer.losses._inputs import embed_columns
from sentrs.util.distributed import get_rank
from sentrs.util.environment import is_dist_initialized
from sentrs.util.misc import similarity_fct_name

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["Direction", "HardnessMode", "MultipleNegativesRankingLoss", "PartitionMode"]

logger = logging.getLogger(__name__)

Direction = Literal["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]
PartitionMode = Literal["joint", "per_direction"]
HardnessMode = Literal["in_batch_negatives", "hard_negatives", "all_negatives"]

_DIRECTIONS = {"query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"}
_HARDNESS_MODES = {None, "in_batch_negatives", "hard_negatives", "all_negatives"}


class MultipleNegativesRankingLoss(nn.Module):
    """Contrastive loss where each query must pick its own document out of every document in the batch.

    For a batch of ``(query_i, doc_i[, negative_i_1, ...])`` rows, the logits are ``scale * similarity_fct`` between
    the texts that ``directions`` pairs up, and the loss is the cross-entropy of the positive ``(query_i, doc_i)``
    against them, averaged over the rows. The documents of other rows are in-batch negatives; the extra columns are
    hard negatives of their own row. The default is the classic InfoNCE (in-batch negatives) loss.

    The directions (which interactions enter the softmax denominator of row ``i``):

    - ``"query_to_doc"``: ``query_i`` against every document and hard negative. Always included: it holds the
      positive.
    - ``"query_to_query"``: ``query_i`` against the other queries.
    - ``"doc_to_query"``: ``doc_i`` against every query (the symmetric loss).
    - ``"doc_to_doc"``: ``doc_i`` against the documents and hard negatives of other rows.

    Args:
        model: the SentenceTransformer to train.
        scale: multiplies the similarities (``1 / temperature``; 20 is a temperature of 0.05). Must be positive.
        similarity_fct: ``(n, dim)`` x ``(m, dim)`` -> ``(n, m)`` scores; cosine by default (use ``dot_score`` with
            ``scale=1`` for a dot-product model).
        gather_across_devices: in a ``torch.distributed`` job, score each process's queries against the documents of
            every process (a larger effective batch). Outside of one, it changes nothing.
        directions: the interactions in the loss, a tuple of the names above that contains ``"query_to_doc"``.
        partition_mode: ``"joint"``: one softmax over the logits of every direction; ``"per_direction"``: one
            softmax per direction, the losses averaged (only for ``"query_to_doc"`` and ``"doc_to_query"``, whose
            candidates contain the positive).
        hardness_mode: ``None`` (default) or where to add ``hardness_strength * cos`` (detached) to the negatives'
            query-to-document logits, so that harder negatives weigh more: ``"in_batch_negatives"`` (other rows'
            documents), ``"hard_negatives"`` (the row's own extra columns) or ``"all_negatives"`` (both).
        hardness_strength: the weight of that term (``alpha``), >= 0; ignored when ``hardness_mode`` is None.

    Raises:
        ValueError: an argument is out of range or the directions do not fit ``partition_mode``.

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

    Recommendations:
        - Batches without duplicate texts (``BatchSamplers.NO_DUPLICATES``): a duplicate of a row's positive in
          another row counts as a negative.

    Relations:
        - ``directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"`` is
          :class:`MultipleNegativesSymmetricRankingLoss`.
        - All four directions with ``partition_mode="joint"`` is GTE's improved contrastive loss.

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import MultipleNegativesRankingLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = MultipleNegativesRankingLoss(model)
            anchors = model.preprocess(["It's sunny today.", "He drove to work."])
            positives = model.preprocess(["The weather is nice.", "He took the car to the office."])
            loss([anchors, positives], None).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
        directions: tuple[Direction, ...] = ("query_to_doc",),
        partition_mode: PartitionMode = "joint",
        hardness_mode: HardnessMode | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError("Scale must be a positive value.")
        if not directions:
            raise ValueError("At least one direction must be specified.")
        if not set(directions) <= _DIRECTIONS:
            raise ValueError(f"Invalid directions: {set(directions) - _DIRECTIONS}. Valid: {_DIRECTIONS}")
        if "query_to_doc" not in directions:
            raise ValueError("'query_to_doc' direction is required (contains the positive pair).")
        if partition_mode not in ("joint", "per_direction"):
            raise ValueError(f"partition_mode must be 'joint' or 'per_direction', got {partition_mode}")
        if partition_mode == "per_direction" and set(directions) & {"query_to_query", "doc_to_doc"}:
            raise ValueError(
                "partition_mode='per_direction' requires every direction's candidate pool to include the positive "
                "pair. 'query_to_query' and 'doc_to_doc' only contain same-type similarities and never include the "
                "positive, making the per-direction loss ill-defined. Use partition_mode='joint' instead."
            )
        if hardness_mode not in _HARDNESS_MODES:
            raise ValueError(f"hardness_mode must be one of {_HARDNESS_MODES}, got {hardness_mode!r}")
        if hardness_strength < 0.0:
            raise ValueError("hardness_strength must be non-negative.")
        if hardness_mode is not None and hardness_strength == 0.0:
            logger.warning(
                "hardness_mode=%r is set but hardness_strength=0.0, so hardness weighting has no effect. Set "
                "hardness_strength to a positive value to enable hardness weighting.",
                hardness_mode,
            )
        self.model = model
        self.scale = scale
        self.similarity_fct = similarity_fct
        self.gather_across_devices = gather_across_devices
        self.directions = tuple(directions)
        self.partition_mode = partition_mode
        self.hardness_mode = hardness_mode
        self.hardness_strength = hardness_strength

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column; ``labels`` are unused."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the columns' embeddings, ``(batch_size, dim)`` each: queries first, then the positives,
        then any hard negatives (used by cached wrappers)."""
        if len(embeddings) < 2:
            raise ValueError(f"Expected at least 2 embeddings, got {len(embeddings)}")
        queries, docs = embeddings[0], list(embeddings[1:])
        batch_size = queries.shape[0]
        first = 0  # where this process's rows start among the gathered ones
        if self.gather_across_devices:
            queries = _gather_with_grad(queries)
            docs = [_gather_with_grad(doc) for doc in docs]
            first = get_rank() * batch_size
        total = queries.shape[0]  # rows over every process
        device = queries.device
        own = torch.arange(first, first + batch_size, device=device)  # this process's rows, as gathered indices
        rows = torch.arange(batch_size, device=device)
        all_docs = torch.cat(docs)  # (total * n_doc_columns, dim): positives, then each negative column
        # own_doc[i, k]: whether document k (of all_docs) belongs to local row i
        own_doc = torch.eye(total, dtype=torch.bool, device=device)[own].repeat(1, len(docs))

        logits: dict[str, Tensor] = {"query_to_doc": self.similarity_fct(queries[own], all_docs)}
        if "query_to_query" in self.directions:
            same = self.similarity_fct(queries[own], queries)
            logits["query_to_query"] = same.masked_fill(own_doc[:, :total], float("-inf"))
        if "doc_to_query" in self.directions:
            logits["doc_to_query"] = self.similarity_fct(queries, docs[0][own]).T
        if "doc_to_doc" in self.directions:
            same = self.similarity_fct(all_docs, docs[0][own]).T
            logits["doc_to_doc"] = same.masked_fill(own_doc, float("-inf"))

        penalty = self._hardness_penalty(logits["query_to_doc"], own_doc, total)
        logits = {name: scores * self.scale for name, scores in logits.items()}
        if penalty is not None:
            logits["query_to_doc"] = logits["query_to_doc"] + penalty

        positive = logits["query_to_doc"][rows, own]
        if self.partition_mode == "joint":
            log_partition = torch.logsumexp(torch.cat(list(logits.values()), dim=1), dim=1)
        else:
            log_partition = torch.stack([torch.logsumexp(s, dim=1) for s in logits.values()]).mean(dim=0)
        return (log_partition - positive).mean()

    def _hardness_penalty(self, similarities: Tensor, own_doc: Tensor, total: int) -> Tensor | None:
        """``hardness_strength * similarity`` (no gradient, not scaled) on the negatives ``hardness_mode`` selects,
        0 elsewhere; None when hardness weighting is off."""
        if self.hardness_mode is None or self.hardness_strength <= 0.0:
            return None
        positives = torch.zeros_like(own_doc)
        positives[:, :total] = own_doc[:, :total]
        if self.hardness_mode == "in_batch_negatives":
            selected = ~own_doc
        elif self.hardness_mode == "hard_negatives":
            selected = own_doc & ~positives
        else:  # "all_negatives"
            selected = ~positives
        return self.hardness_strength * similarities.detach() * selected

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "scale": self.scale,
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "gather_across_devices": self.gather_across_devices,
            "directions": self.directions,
            "partition_mode": self.partition_mode,
            "hardness_mode": self.hardness_mode,
            "hardness_strength": self.hardness_strength,
        }

    @property
    def temperature(self) -> float:
        """``1 / scale``."""
        return 1.0 / self.scale

    @property
    def citation(self) -> str:
        """BibTeX of the paper behind the configured variant (GTE, Jina's symmetric loss, or InfoNCE)."""
        if set(self.directions) == _DIRECTIONS and self.partition_mode == "joint":
            return CITATION_GTE
        if set(self.directions) == {"query_to_doc", "doc_to_query"} and self.partition_mode == "per_direction":
            return CITATION_SYMMETRIC
        return CITATION_INFONCE


_warned_not_distributed = False


def _gather_with_grad(tensor: Tensor) -> Tensor:
    """The rows of every process, in rank order, with gradients flowing back to each process's own rows; ``tensor``
    itself outside of a ``torch.distributed`` job (every process must pass the same shape)."""
    global _warned_not_distributed
    if not is_dist_initialized():
        if not _warned_not_distributed:
            _warned_not_distributed = True
            logger.warning(
                "gather_across_devices=True outside of a torch.distributed job: using this process's batch only."
            )
        return tensor
    from sentrs.util.distributed import all_gather_with_grad

    # Our autograd gather: torch.distributed.nn.all_gather is deprecated in recent torch.
    return all_gather_with_grad(tensor)


CITATION_GTE = """
@misc{li2023generaltextembeddingsmultistage,
      title={Towards General Text Embeddings with Multi-stage Contrastive Learning},
      author={Zehan Li and Xin Zhang and Yanzhao Zhang and Dingkun Long and Pengjun Xie and Meishan Zhang},
      year={2023},
      eprint={2308.03281},
      archivePrefix={arXiv},
      primaryClass={cs.CL},
      url={https://arxiv.org/abs/2308.03281},
}
"""

CITATION_SYMMETRIC = """
@misc{günther2024jinaembeddings28192token,
      title={Jina Embeddings 2: 8192-Token General-Purpose Text Embeddings for Long Documents},
      author={Michael Günther and Jackmin Ong and Isabelle Mohr and Alaeddine Abdessalem and Tanguy Abel and Mohammad Kalim Akram and Susana Guzman and Georgios Mastrapas and Saba Sturua and Bo Wang and Maximilian Werk and Nan Wang and Han Xiao},
      year={2024},
      eprint={2310.19923},
      archivePrefix={arXiv},
      primaryClass={cs.CL},
      url={https://arxiv.org/abs/2310.19923},
}
"""  # noqa: E501

CITATION_INFONCE = """
@misc{oord2019representationlearningcontrastivepredictive,
      title={Representation Learning with Contrastive Predictive Coding},
      author={Aaron van den Oord and Yazhe Li and Oriol Vinyals},
      year={2019},
      eprint={1807.03748},
      archivePrefix={arXiv},
      primaryClass={cs.LG},
      url={https://arxiv.org/abs/1807.03748},
}
"""
