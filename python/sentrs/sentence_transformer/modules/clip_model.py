"""``CLIPModel``: the reference's deprecated CLIP module, kept to load folders saved with it.

It is a :class:`~sentrs.base.modules.transformer.Transformer` whose default modality config reads text with
``get_text_features`` and images with ``get_image_features``, both written as ``sentence_embedding``. A folder
saved by an older release (``modules.json`` type ``sentence_transformers.models.CLIPModel``, no
``sentence_bert_config.json``) gets that config; new models should use ``Transformer``, which infers the same config
from a CLIP folder.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from sentrs.base.modules.multimodal import output_name_if_declared
from sentrs.base.modules.transformer import Transformer

__all__ = ["CLIPModel"]

logger = logging.getLogger(__name__)


class CLIPModel(Transformer):
    """A CLIP model (text and image towers) as one input module; deprecated in the reference since 5.4.

    Args:
        model_name_or_path: a local CLIP folder (model and ``CLIPProcessor`` files) or a Hub id.
        processor_name: the old name of ``tokenizer_name_or_path``.
        **kwargs: the :class:`Transformer` arguments.
    """

    reference_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.clip_model.CLIPModel"

    def __init__(
        self, model_name_or_path: str = "openai/clip-vit-base-patch32", _from_auto_load: bool = False, **kwargs: Any
    ) -> None:
        if not _from_auto_load:
            logger.warning("The CLIPModel module is deprecated. Please use the Transformer module instead.")
        if "processor_name" in kwargs:
            kwargs["tokenizer_name_or_path"] = kwargs.pop("processor_name")
        if "modality_config" not in kwargs:
            kwargs["modality_config"], kwargs["module_output_name"] = self._clip_modality_config()
        super().__init__(model_name_or_path, **kwargs)

    @classmethod
    def load(
        cls,
        model_dir: str,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        init_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Transformer:
        return super().load(
            model_dir,
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
            config_kwargs=config_kwargs,
            backend=backend,
            init_defaults={**(init_defaults or {}), "_from_auto_load": True},
            **kwargs,
        )

    @staticmethod
    def _clip_modality_config() -> tuple[dict[Any, dict[str, Any]], str]:
        from transformers import CLIPModel as TransformersCLIPModel

        config = {
            "text": {
                "method": "get_text_features",
                "method_output_name": output_name_if_declared(
                    "pooler_output", TransformersCLIPModel.get_text_features
                ),
            },
            "image": {
                "method": "get_image_features",
                "method_output_name": output_name_if_declared(
                    "pooler_output", TransformersCLIPModel.get_image_features
                ),
            },
        }
        return config, "sentence_embedding"

    @classmethod
    def _default_modality_config(cls, task: str) -> tuple[dict[Any, dict[str, Any]], str] | None:
        return cls._clip_modality_config()
