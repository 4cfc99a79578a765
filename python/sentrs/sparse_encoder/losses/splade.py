"""``SpladeLoss``: a sparse base loss plus FLOPS regularization of the query and document embeddings (SPLADE)."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.sentence_transformer.losses._inputs import _merge_columns, embed_columns
from sentrs.sparse_encoder.losses.flops import FlopsLoss

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SpladeLoss"]

logger = logging.getLogger(__name__)


class SpladeLoss(nn.Module):
    """The SPLADE training objective: a base loss for ranking quality plus weighted sparsity regularizers.

    The batch's columns are embedded once; the base loss gets all of them (``compute_loss_from_embeddings``), the
    document regularizer the candidate columns (the second onwards, or every column with
    ``use_document_regularizer_only``) and the query regularizer the first column. The result is a dict of
    components (``base_loss`` or the base loss's own components, ``document_regularizer_loss``,
    ``query_regularizer_loss``) that the trainer sums and logs one by one. During training,
    :class:`~sentrs.sparse_encoder.callbacks.SpladeRegularizerWeightSchedulerCallback` raises both weights from 0
    to the values given here.

    Args:
        model: the SparseEncoder to train.
        loss: the base loss: one of the sparse losses with ``compute_loss_from_embeddings(embeddings, labels)``
            (:class:`SparseMultipleNegativesRankingLoss`, :class:`SparseMarginMSELoss`, ...), not a CSR loss nor
            :class:`FlopsLoss`.
        document_regularizer_weight: weight of the document regularizer (lambda_d, also lambda_c in the papers).
            Required.
        query_regularizer_weight: weight of the query regularizer (lambda_q). None: queries are not regularized,
            which suits inference-free models (queries that skip the encoder) and ``use_document_regularizer_only``.
        document_regularizer: the document regularizer; None builds a :class:`FlopsLoss`.
        query_regularizer: the query regularizer; None builds a :class:`FlopsLoss` (unless
            ``use_document_regularizer_only``).
        document_regularizer_threshold: ``threshold`` of the default document :class:`FlopsLoss`: only documents
            with more active dimensions than this are regularized.
        query_regularizer_threshold: the same for the default query :class:`FlopsLoss`.
        use_document_regularizer_only: regularize every column as a document with ``document_regularizer_weight``
            (symmetric data, e.g. pairs of documents); ``query_regularizer_weight`` is then ignored.

    Raises:
        TypeError: a weight is not a number.
        ValueError: ``document_regularizer_weight`` is None, or ``loss`` cannot be a base loss (it has no
            ``compute_loss_from_embeddings``, or it is a regularizer or a CSR loss).

    Requirements:
        1. The inputs (and labels) of the base loss; at least two columns unless ``use_document_regularizer_only``.

    Inputs:
        +--------------------------------+---------------------------+
        | Texts                          | Labels                    |
        +================================+===========================+
        | those of the base loss         | those of the base loss    |
        +--------------------------------+---------------------------+

    Relations:
        - :class:`CachedSpladeLoss` is the same objective with gradient caching (much larger batches).

    Example:
        ::

            from sentrs import SparseEncoder
            from sentrs.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss

            model = SparseEncoder("naver/splade-cocondenser-ensembledistil")
            loss = SpladeLoss(
                model,
                loss=SparseMultipleNegativesRankingLoss(model),
                document_regularizer_weight=3e-5,
                query_regularizer_weight=5e-5,
            )
            features = [model.preprocess(["What do men eat?"]), model.preprocess(["A man eats bread."])]
            components = loss(features, None)
            sum(components.values()).backward()
    """

    def __init__(
        self,
        model: SparseEncoder,
        loss: nn.Module,
        document_regularizer_weight: float,
        query_regularizer_weight: float | None = None,
        document_regularizer: nn.Module | None = None,
        query_regularizer: nn.Module | None = None,
        document_regularizer_threshold: int | None = None,
        query_regularizer_threshold: int | None = None,
        use_document_regularizer_only: bool = False,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if document_regularizer_weight is None:
            raise ValueError(
                f"{name} needs document_regularizer_weight, the weight of the FLOPS regularization of the documents "
                "(e.g. 3e-5), got None"
            )
        _check_weight(name, "document_regularizer_weight", document_regularizer_weight)
        if query_regularizer_weight is not None:
            _check_weight(name, "query_regularizer_weight", query_regularizer_weight)
        _check_base_loss(name, loss)
        self.model = model
        self.loss = loss
        self.document_regularizer_weight = document_regularizer_weight
        self.query_regularizer_weight = query_regularizer_weight
        self.use_document_regularizer_only = use_document_regularizer_only
        self.document_regularizer = (
            document_regularizer
            if document_regularizer is not None
            else FlopsLoss(model, threshold=document_regularizer_threshold)
        )
        self.query_regularizer: nn.Module | None = query_regularizer
        if query_regularizer is None and not use_document_regularizer_only:
            self.query_regularizer = FlopsLoss(model, threshold=query_regularizer_threshold)

        if query_regularizer_weight is None and not use_document_regularizer_only:
            logger.warning(
                "query_regularizer_weight is None, so the queries are not regularized. That suits an inference-free "
                "model (queries that skip the encoder); otherwise set query_regularizer_weight > 0."
            )
        if use_document_regularizer_only and query_regularizer_weight is not None:
            logger.warning(
                "use_document_regularizer_only=True regularizes every column as a document with "
                "document_regularizer_weight; query_regularizer_weight=%r is ignored.",
                query_regularizer_weight,
            )
            self.query_regularizer_weight = None

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> dict[str, Tensor]:
        """The loss components of a batch: ``sentence_features`` is one features dict per column."""
        return self._loss_components(self._embed(sentence_features), labels)

    def _embed(self, sentence_features: Iterable[dict[str, Any]]) -> list[Tensor]:
        """Each column's embeddings. The candidate columns share one forward pass; with
        ``use_document_regularizer_only`` every column is a document, and all of them share it (as in the
        reference, so that a seeded run draws the same dropout masks)."""
        columns = list(sentence_features)
        if self.use_document_regularizer_only and len(columns) > 1:
            merged = _merge_columns(columns)
            if merged is not None:
                stacked = self.model(merged)["sentence_embedding"]
                return list(stacked.reshape(len(columns), -1, *stacked.shape[1:]).unbind(0))
        return embed_columns(self.model, columns)

    def _loss_components(self, embeddings: list[Tensor], labels: Tensor | None) -> dict[str, Tensor]:
        """The components from the columns' ``(batch_size, vocab)`` embeddings: the base loss's (``base_loss`` when
        it returns one tensor), then ``document_regularizer_loss`` and ``query_regularizer_loss`` (weighted)."""
        if not embeddings or (len(embeddings) < 2 and not self.use_document_regularizer_only):
            raise ValueError(
                f"{type(self).__name__} needs at least 2 input columns (queries, then documents), got "
                f"{len(embeddings)}; with a single column of documents set use_document_regularizer_only=True"
            )
        components: dict[str, Tensor] = {}
        base_loss: Any = self.loss
        base = base_loss.compute_loss_from_embeddings(embeddings, labels)
        if isinstance(base, dict):
            components.update(base)
        else:
            components["base_loss"] = base
        documents = torch.cat(embeddings if self.use_document_regularizer_only else embeddings[1:])
        document_regularizer: Any = self.document_regularizer
        document_loss = document_regularizer.compute_loss_from_embeddings(documents)
        components["document_regularizer_loss"] = document_loss * self.document_regularizer_weight
        query_regularizer: Any = self.query_regularizer
        if self.query_regularizer_weight is not None and query_regularizer is not None:
            query_loss = query_regularizer.compute_loss_from_embeddings(embeddings[0])
            components["query_regularizer_loss"] = query_loss * self.query_regularizer_weight
        return components

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card: the base loss, the weights, and the regularizers (their class
        when not FLOPS, their threshold when set)."""
        config: dict[str, Any] = {"loss": self.loss, "document_regularizer_weight": self.document_regularizer_weight}
        if self.query_regularizer_weight is not None:
            config["query_regularizer_weight"] = self.query_regularizer_weight
        for side, regularizer in (("document", self.document_regularizer), ("query", self.query_regularizer)):
            if regularizer is None:
                continue
            if not isinstance(regularizer, FlopsLoss):
                config[f"{side}_regularizer"] = type(regularizer).__name__
            if getattr(regularizer, "threshold", None) is not None:
                config[f"{side}_regularizer_threshold"] = regularizer.threshold
        return config

    @property
    def citation(self) -> str:
        """BibTeX of the SPLADE paper that introduced this training setup."""
        return CITATION


def _check_weight(loss_name: str, arg_name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, Tensor)):
        raise TypeError(f"{loss_name} {arg_name} must be a number, got {type(value).__name__}")


def _check_base_loss(loss_name: str, loss: Any) -> None:
    from sentrs.sparse_encoder.losses.csr import CSRLoss, CSRReconstructionLoss

    if isinstance(loss, (FlopsLoss, CSRLoss, CSRReconstructionLoss)):
        raise ValueError(
            f"{type(loss).__name__} cannot be the base loss of {loss_name}: use a ranking or distillation loss "
            "such as SparseMultipleNegativesRankingLoss (FlopsLoss is the regularizer it adds itself; CSR losses "
            "train CSR models on their own)"
        )
    if not callable(getattr(loss, "compute_loss_from_embeddings", None)):
        raise ValueError(
            f"The base loss of {loss_name} must have a compute_loss_from_embeddings(embeddings, labels) method, "
            f"which {type(loss).__name__} lacks: use one of the sparse losses (SparseMultipleNegativesRankingLoss, "
            "SparseMarginMSELoss, SparseDistillKLDivLoss, ...)"
        )


CITATION = """
@misc{formal2022distillationhardnegativesampling,
      title={From Distillation to Hard Negative Sampling: Making Sparse Neural IR Models More Effective},
      author={Thibault Formal and Carlos Lassance and Benjamin Piwowarski and Stéphane Clinchant},
      year={2022},
      eprint={2205.04733},
      archivePrefix={arXiv},
      primaryClass={cs.IR},
      url={https://arxiv.org/abs/2205.04733},
}
"""
