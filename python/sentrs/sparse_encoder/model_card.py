"""``SparseEncoderModelCardData``: what a sparse model's card shows, and the callback that records training.

``SparseEncoderModelCardCallback`` subclasses ``transformers.TrainerCallback``; it loads on first use
(:mod:`sentrs.base.model_card_callback`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sentrs._lazy import lazy_module_attrs
from sentrs.base.model_card import BaseModelCardData, _model_modules, _to_numpy, format_score_matrix
from sentrs.sentence_transformer.model_card import similarity_label

if TYPE_CHECKING:
    from sentrs.base.model_card_callback import SparseEncoderModelCardCallback

__all__ = ["SparseEncoderModelCardCallback", "SparseEncoderModelCardData"]

__getattr__, __dir__ = lazy_module_attrs(
    __name__, {"SparseEncoderModelCardCallback": "sentrs.base.model_card_callback"}
)

# Module classes that name a kind of sparse model, in the order the kind's name lists them.
_KIND_MODULES = (
    ("Router", "Asymmetric"),
    ("SparseStaticEmbedding", "Inference-free"),
    ("SpladePooling", "SPLADE"),
    ("SparseAutoEncoder", "CSR"),
)


@dataclass
class SparseEncoderModelCardData(BaseModelCardData):
    """The model card data of a :class:`~sentrs.SparseEncoder` (see :class:`BaseModelCardData` for the fields).

    Attaching the model names its kind from its modules (``"SPLADE Sparse Encoder"``, ``"CSR Sparse Encoder"``,
    ...) and tags the card with it.
    """

    task_name: str | None = None
    tags: list[str] = field(default_factory=lambda: ["sentence-transformers", "sparse-encoder", "sparse"])
    usage_examples: list[Any] | None = field(default=None, init=False)
    pipeline_tag: str | None = field(default=None, init=False)
    model_type: str = field(default="Sparse Encoder", init=False, repr=False)

    model_kind: ClassVar[str] = "Sparse Encoder"
    docs_section: ClassVar[str] = "sparse_encoder"
    _snippet_model_class: ClassVar[str] = "SparseEncoder"
    _snippet_default_model_id: ClassVar[str] = "sparse_encoder_model_id"

    def register_model(self, model: Any) -> None:
        super().register_model(model)
        if self.task_name is None:
            self.task_name = "semantic search and sparse retrieval"
        if self.pipeline_tag is None:
            self.pipeline_tag = "feature-extraction"
        names = {type(module).__name__.removeprefix("Host") for module in _all_modules(model)}
        kinds = [kind for module, kind in _KIND_MODULES if module in names]
        self.add_tags([kind.lower() for kind in kinds])
        self.model_type = " ".join([*kinds, "Sparse Encoder"])

    def get_default_model_name(self) -> str:
        return self.model_type

    def run_usage_snippet(self) -> None:
        """Encodes the examples and keeps the printed shape and similarities."""
        super().run_usage_snippet()
        if not self.generate_widget_examples or self.model is None:
            return
        assert self.usage_examples is not None
        self.usage_examples = self.usage_examples[:3]
        embeddings = self.model.encode(self.usage_examples, show_progress_bar=False)
        scores = self.model.similarity(embeddings, embeddings)
        self.snippet_output = {"shape": str(tuple(embeddings.shape))}
        self.similarities = "\n".join(f"# {line}" for line in format_score_matrix(_to_numpy(scores)).splitlines())

    def get_model_specific_metadata(self) -> dict[str, Any]:
        metadata = super().get_model_specific_metadata()
        if self.model is not None:
            metadata["output_dimensionality"] = self.model.get_embedding_dimension()
            metadata["similarity_fn_name"] = similarity_label(self.model.similarity_fn_name, "Dot Product")
            metadata["max_active_dims"] = getattr(self.model, "max_active_dims", None)
        return metadata

    def readme_summary(self, values: Mapping[str, Any]) -> str:
        dim = values.get("output_dimensionality")
        active = values.get("max_active_dims")
        limit = f" (at most {active} active dimensions)" if active and "CSR" in self.model_type else ""
        return (
            f"It maps inputs to a {dim}-dimensional sparse vector space{limit} and can be used for {self.task_name}."
        )

    def readme_details(self, values: Mapping[str, Any]) -> list[str]:
        active = values.get("max_active_dims")
        trained = f" (trained with at most {active} active dimensions)" if active else ""
        return [
            f"- **Output Dimensionality:** {values.get('output_dimensionality')} dimensions{trained}",
            f"- **Similarity Function:** {values.get('similarity_fn_name')}",
        ]


def _all_modules(model: Any) -> list[Any]:
    """Every module of the model, nested ones included (the host steps on the engine path)."""
    modules = getattr(model, "modules", None)
    if callable(modules) and not getattr(model, "runs_in_engine", False):
        try:
            return list(modules())
        except TypeError:
            pass
    return _model_modules(model)
