"""The scoring mask of a late-interaction model: which token vectors take part in MaxSim."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from torch import Tensor

from sentrs.base.modules.module import Module

__all__ = ["MultiVectorMask"]

logger = logging.getLogger(__name__)


class MultiVectorMask(Module):
    """Replaces ``features["attention_mask"]`` with the tokens a multi-vector model scores.

    Put it after the Transformer (and projection) of a :class:`~sentrs.MultiVectorEncoder`. A token counts when the
    tokenizer marked it real; for ``task="query"`` the query-expansion positions the Transformer added
    (``query_expansion_positions``) count too, even when the encoder did not attend to them. For the tasks in
    ``skiplist_tasks`` (an input without a task counts as ``"document"``) tokens whose id is one of
    ``skiplist_words`` are dropped, and for every task but ``"query"`` a ``keep_only_token_ids`` allow-list keeps
    only those ids. A batch without ``input_ids`` keeps its mask.

    Args:
        skiplist_words: tokens left out of scoring (default none; ColBERT checkpoints use
            ``list(string.punctuation)``). Words that are not one token of the vocabulary are dropped with a
            warning, since they would otherwise mask every unknown token.
        skiplist_tasks: the tasks the skiplist applies to (default ``["document"]``).
        keep_only_token_ids: an allow-list of token ids for non-query inputs (default none).
    """

    config_keys: ClassVar[list[str]] = ["skiplist_words", "skiplist_tasks", "keep_only_token_ids"]
    forward_kwargs: ClassVar[set[str]] = {"task"}
    reference_type: ClassVar[str] = (
        "sentence_transformers.multi_vector_encoder.modules.multi_vector_mask.MultiVectorMask"
    )

    def __init__(
        self,
        skiplist_words: list[str] | None = None,
        *,
        skiplist_tasks: str | list[str] | None = None,
        keep_only_token_ids: list[int] | None = None,
    ) -> None:
        super().__init__()
        if skiplist_words is not None and (
            isinstance(skiplist_words, str) or not all(isinstance(w, str) for w in skiplist_words)
        ):
            raise ValueError(f"skiplist_words must be a list of str, got {skiplist_words!r}")
        self.skiplist_words: list[str] = list(skiplist_words or [])
        if isinstance(skiplist_tasks, str):
            skiplist_tasks = [skiplist_tasks]
        self.skiplist_tasks: list[str] = list(skiplist_tasks) if skiplist_tasks is not None else ["document"]
        if keep_only_token_ids is not None and not all(
            isinstance(i, int) and not isinstance(i, bool) for i in keep_only_token_ids
        ):
            raise ValueError(f"keep_only_token_ids must be a list of int, got {keep_only_token_ids!r}")
        self.keep_only_token_ids: list[int] | None = (
            list(keep_only_token_ids) if keep_only_token_ids is not None else None
        )
        self._skiplist_ids: Tensor | None = None

    def on_model_ready(self, model: Any) -> None:
        """Resolves the skiplist with the model's tokenizer once the model is built."""
        tokenizer = getattr(model, "tokenizer", None)
        if tokenizer is not None:
            self.resolve_with_tokenizer(tokenizer)

    def resolve_with_tokenizer(self, tokenizer: Any) -> None:
        """Turns ``skiplist_words`` into token ids (call again after changing ``skiplist_words``)."""
        if not self.skiplist_words:
            self._skiplist_ids = None
            return
        unk_id = getattr(tokenizer, "unk_token_id", None)
        unk_token = getattr(tokenizer, "unk_token", None)
        ids: list[int] = []
        dropped: list[str] = []
        for word in self.skiplist_words:
            token_id = tokenizer.convert_tokens_to_ids(word)
            if token_id is None or (unk_id is not None and token_id == unk_id and word != unk_token):
                dropped.append(word)
            else:
                ids.append(int(token_id))
        if dropped:
            logger.warning(
                "Skiplist words %s are not single tokens of this tokenizer's vocabulary; they are left out of the "
                "skiplist (they would mask every unknown token)",
                dropped,
            )
        self._skiplist_ids = torch.tensor(ids, dtype=torch.long) if ids else None

    def forward(self, features: dict[str, Any], task: str | None = None, **kwargs: Any) -> dict[str, Any]:
        if "cu_seq_lens_q" in features:
            from sentrs.base.tensors import repad_flattened_features

            features = repad_flattened_features(features)
        input_ids = features.get("input_ids")
        if input_ids is None:
            return features
        mask = features["attention_mask"].bool()
        if task == "query":
            expansion = features.get("query_expansion_positions")
            if expansion is not None:
                mask = mask | expansion.bool()
        if (task or "document") in self.skiplist_tasks and self._skiplist_ids is not None:
            mask = mask & ~torch.isin(input_ids, self._skiplist_ids.to(input_ids.device))
        if task != "query" and self.keep_only_token_ids:
            keep = torch.tensor(self.keep_only_token_ids, dtype=torch.long, device=input_ids.device)
            mask = mask & torch.isin(input_ids, keep)
        features["attention_mask"] = mask
        return features
