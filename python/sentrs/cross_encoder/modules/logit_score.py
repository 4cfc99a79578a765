"""``LogitScore``: the relevance score of an LLM reranker, read off its next-token logits."""

from __future__ import annotations

from typing import Any, ClassVar

from sentrs.base.modules.module import Module

__all__ = ["LogitScore"]


def _token_id(value: Any, name: str, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        kind = "a non-negative integer (a vocabulary id)" + (" or None" if optional else "")
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return value


class LogitScore(Module):
    """Scores a (query, document) pair by the logits a causal LM gives its next token.

    Reads ``features[module_input_name]``, ``(batch, positions, vocab)`` logits of which the last position is the
    token after the prompt (the Transformer pads on the left, so it is a real token for every row), and writes
    ``features["scores"]``, ``(batch, 1)`` in the logits' dtype: ``logit[true_token_id] - logit[false_token_id]``
    (the log-odds of "yes" over "no"), or ``logit[true_token_id]`` alone when ``false_token_id`` is None.

    Args:
        true_token_id: vocabulary id of the token that means "relevant" (e.g. ``yes``).
        false_token_id: vocabulary id of the token that means "not relevant" (e.g. ``no``), or None.
        module_input_name: the features key holding the logits.
    """

    config_keys: ClassVar[list[str]] = ["true_token_id", "false_token_id", "module_input_name"]
    reference_type: ClassVar[str] = "sentence_transformers.cross_encoder.modules.logit_score.LogitScore"

    def __init__(
        self, true_token_id: int, false_token_id: int | None = None, module_input_name: str = "causal_logits"
    ) -> None:
        super().__init__()
        self.true_token_id = _token_id(true_token_id, "true_token_id")
        self.false_token_id = _token_id(false_token_id, "false_token_id", optional=True)
        if not isinstance(module_input_name, str) or not module_input_name:
            raise ValueError(f"module_input_name must be a non-empty string, got {module_input_name!r}")
        self.module_input_name = module_input_name

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if self.module_input_name not in features:
            raise KeyError(
                f"LogitScore reads features[{self.module_input_name!r}], which the modules before it did not write; "
                f"they wrote {sorted(features)}"
            )
        last = features[self.module_input_name][:, -1]  # (batch, vocab): the next-token logits
        vocab = last.shape[-1]
        for name in ("true_token_id", "false_token_id"):
            token_id = getattr(self, name)
            if token_id is not None and token_id >= vocab:
                raise ValueError(f"LogitScore {name}={token_id} is outside the model's vocabulary of {vocab} tokens")
        scores = last[:, self.true_token_id]
        if self.false_token_id is not None:
            scores = scores - last[:, self.false_token_id]
        features["scores"] = scores.unsqueeze(1)
        return features
