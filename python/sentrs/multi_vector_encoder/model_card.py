"""``MultiVectorEncoderModelCardData``: what a late-interaction model's card shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from sentrs._lazy import lazy_module_attrs
from sentrs.base.model_card import BaseModelCardData, _code_block, _model_modules, _to_numpy, format_score_matrix

if TYPE_CHECKING:
    from sentrs.base.model_card_callback import MultiVectorEncoderModelCardCallback

__all__ = ["MultiVectorEncoderModelCardCallback", "MultiVectorEncoderModelCardData"]

__getattr__, __dir__ = lazy_module_attrs(
    __name__, {"MultiVectorEncoderModelCardCallback": "sentrs.base.model_card_callback"}
)

_SIMILARITY_LABELS = {"maxsim": "MaxSim", "meanmaxsim": "MeanMaxSim", "xtr": "XTR"}


@dataclass
class MultiVectorEncoderModelCardData(BaseModelCardData):
    """The model card data of a :class:`~sentrs.MultiVectorEncoder` (see :class:`BaseModelCardData` for the
    fields). Its usage snippet encodes one query and three documents and scores them with MaxSim."""

    task_name: str | None = None
    tags: list[str] = field(
        default_factory=lambda: ["sentence-transformers", "multi-vector", "colbert", "late-interaction"]
    )
    usage_examples: list[Any] | None = field(default=None, init=False)
    pipeline_tag: str | None = field(default=None, init=False)
    model_type: str = field(default="Multi-Vector Encoder", init=False, repr=False)

    model_kind: ClassVar[str] = "Multi-Vector Encoder"
    docs_section: ClassVar[str] = "multi_vector_encoder"
    _snippet_model_class: ClassVar[str] = "MultiVectorEncoder"
    _snippet_default_model_id: ClassVar[str] = "multi_vector_encoder_model_id"

    def register_model(self, model: Any) -> None:
        super().register_model(model)
        if self.task_name is None:
            self.task_name = "semantic search with late interaction"
        if self.pipeline_tag is None:
            self.pipeline_tag = "feature-extraction"
        if self.ir_model is None:
            self.ir_model = True

    def _default_usage_examples(self) -> list[Any]:
        return [
            "Which planet is known as the Red Planet?",
            "Venus is often called Earth's twin because of its similar size and proximity.",
            "Mars, known for its reddish appearance, is often referred to as the Red Planet.",
            "Saturn, famous for its rings, is sometimes mistaken for the Red Planet.",
        ]

    def _split_examples(self) -> tuple[list[Any], list[Any]]:
        examples = list(self.usage_examples or self._default_usage_examples())[:4]
        return (examples[:1], examples[1:]) if len(examples) >= 2 else (examples, examples)

    def run_usage_snippet(self) -> None:
        """Encodes the query and documents and keeps the printed shapes and MaxSim scores."""
        super().run_usage_snippet()
        if not self.generate_widget_examples or self.model is None:
            return
        queries, documents = self._split_examples()
        query_embeddings = self.model.encode_query(queries, show_progress_bar=False)
        document_embeddings = self.model.encode_document(documents, show_progress_bar=False)
        scores = self.model.similarity(query_embeddings, document_embeddings)
        self.snippet_output = {
            "query_shape": str(tuple(query_embeddings[0].shape)),
            "document_shape": str(tuple(document_embeddings[0].shape)),
        }
        self.similarities = "\n".join(f"# {line}" for line in format_score_matrix(_to_numpy(scores)).splitlines())

    def generate_usage_snippet(self) -> str:
        queries, documents = self._split_examples()
        dim = self._output_dimension()
        lines = self._snippet_head("queries", queries)
        lines += ["documents = [", *(f"    {d!r}," for d in documents), "]"]
        lines += [
            "query_embeddings = model.encode_query(queries)",
            "document_embeddings = model.encode_document(documents)",
            "# One (num_tokens, dim) matrix per text",
            "print(query_embeddings[0].shape)",
            f"# {self.snippet_output.get('query_shape') or f'(num_query_tokens, {dim})'}",
            "print(document_embeddings[0].shape)",
            f"# {self.snippet_output.get('document_shape') or f'(num_document_tokens, {dim})'}",
            "",
            "# MaxSim scores of every query with every document",
            "similarities = model.similarity(query_embeddings, document_embeddings)",
        ]
        lines += self._similarity_lines(f"[{len(queries)}, {len(documents)}]")
        return _code_block(lines)

    def get_model_specific_metadata(self) -> dict[str, Any]:
        metadata = super().get_model_specific_metadata()
        if self.model is not None:
            name = self.model.similarity_fn_name
            metadata["output_dimensionality"] = self.model.get_embedding_dimension()
            metadata["similarity_fn_name"] = _SIMILARITY_LABELS.get(name, str(name).replace("_", " ").title())
            transformer = next(
                (m for m in _model_modules(self.model) if type(m).__name__.endswith("Transformer")), None
            )
            expansion = getattr(transformer, "query_expansion", None) or {}
            if expansion.get("strategy") == "fixed":
                metadata["query_length"] = expansion["length"]
        return metadata

    def readme_summary(self, values: Mapping[str, Any]) -> str:
        dim = values.get("output_dimensionality")
        return (
            f"It maps each token of its input to a {dim}-dimensional vector and scores query-document pairs with "
            f"late interaction ({values.get('similarity_fn_name')}); it can be used for {self.task_name}."
        )

    def readme_details(self, values: Mapping[str, Any]) -> list[str]:
        return [
            f"- **Output Dimensionality:** {values.get('output_dimensionality')} dimensions per token",
            f"- **Similarity Function:** {values.get('similarity_fn_name')}",
        ]
