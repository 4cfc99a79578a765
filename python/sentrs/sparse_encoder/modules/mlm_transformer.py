"""``MLMTransformer``: the reference's deprecated name for a masked-language-model Transformer."""

from __future__ import annotations

from typing import Any

from sentrs.base.modules.transformer import Transformer

__all__ = ["MLMTransformer"]


class MLMTransformer(Transformer):
    """A :class:`~sentrs.base.modules.Transformer` with ``transformer_task="fill-mask"`` (MLM logits as
    ``token_embeddings``). Saves as a plain Transformer, as the reference does."""

    def __init__(self, model_name_or_path: str, **kwargs: Any) -> None:
        kwargs.setdefault("transformer_task", "fill-mask")
        super().__init__(model_name_or_path, **kwargs)

    @classmethod
    def load(cls, model_dir: str, init_defaults: dict[str, Any] | None = None, **kwargs: Any) -> Transformer:  # type: ignore[override]
        return super().load(
            model_dir, init_defaults={"transformer_task": "fill-mask", **(init_defaults or {})}, **kwargs
        )
