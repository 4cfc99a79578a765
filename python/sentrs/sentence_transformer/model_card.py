"""``SentenceTransformerModelCardData``: what a dense model's card shows, and the callback that records training.

``SentenceTransformerModelCardCallback`` (and its deprecated name ``ModelCardCallback``) subclass
``transformers.TrainerCallback``; they load on first use (:mod:`sentrs.base.model_card_callback`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sentrs._lazy import lazy_module_attrs
from sentrs.base.model_card import BaseModelCardData, _code_block, _to_numpy, format_score_matrix

if TYPE_CHECKING:
    from sentrs.base.model_card_callback import ModelCardCallback, SentenceTransformerModelCardCallback

__all__ = ["ModelCardCallback", "SentenceTransformerModelCardCallback", "SentenceTransformerModelCardData"]

__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    {
        "SentenceTransformerModelCardCallback": "sentrs.base.model_card_callback",
        "ModelCardCallback": "sentrs.base.model_card_callback",
    },
)

SIMILARITY_NAMES = {
    "cosine": "Cosine Similarity",
    "dot": "Dot Product",
    "euclidean": "Euclidean Distance",
    "manhattan": "Manhattan Distance",
}

_IR_EXAMPLES = [
    "Which planet is known as the Red Planet?",
    "Venus is often called Earth's twin because of its similar size and proximity.",
    "Mars, known for its reddish appearance, is often referred to as the Red Planet.",
    "Saturn, famous for its rings, is sometimes mistaken for the Red Planet.",
]


def similarity_label(name: str | None, default: str) -> str:
    """``"cosine"`` -> ``"Cosine Similarity"``; unknown names title-cased."""
    if not name:
        return default
    return SIMILARITY_NAMES.get(name, name.replace("_", " ").title())


@dataclass
class SentenceTransformerModelCardData(BaseModelCardData):
    """The model card data of a :class:`~sentrs.SentenceTransformer` (see :class:`BaseModelCardData` for the fields).

    Example::

        model = SentenceTransformer(
            "microsoft/mpnet-base",
            model_card_data=SentenceTransformerModelCardData(
                model_id="me/mpnet-base-nli", language="en", license="apache-2.0",
                train_datasets=[{"name": "SNLI", "id": "stanfordnlp/snli"}],
            ),
        )
    """

    task_name: str | None = (
        "semantic textual similarity, semantic search, paraphrase mining, classification, clustering, and more"
    )
    tags: list[str] = field(
        default_factory=lambda: ["sentence-transformers", "sentence-similarity", "feature-extraction", "dense"]
    )

    def try_to_set_base_model(self) -> None:
        super().try_to_set_base_model()
        first = next(iter(self.model), None) if self.model is not None else None
        distilled_from = getattr(first, "base_model", None)  # a StaticEmbedding distilled from a model
        if self.base_model is None and isinstance(distilled_from, str):
            self.set_base_model(distilled_from)

    def _default_usage_examples(self) -> list[Any]:
        return list(_IR_EXAMPLES) if self.ir_model else super()._default_usage_examples()

    def run_usage_snippet(self) -> None:
        """Encodes the examples (queries and documents apart for an IR model) and keeps the printed outputs."""
        super().run_usage_snippet()
        if not self.generate_widget_examples or self.model is None:
            return
        assert self.usage_examples is not None
        if self.ir_model:
            queries = self.model.encode_query(self.usage_examples[:1], show_progress_bar=False)
            documents = self.model.encode_document(self.usage_examples[1:], show_progress_bar=False)
            scores = self.model.similarity(queries, documents)
            self.snippet_output = {"shape": f"{tuple(queries.shape)} {tuple(documents.shape)}"}
        else:
            self.usage_examples = self.usage_examples[:3]
            embeddings = self.model.encode(self.usage_examples, show_progress_bar=False)
            scores = self.model.similarity(embeddings, embeddings)
            self.snippet_output = {"shape": str(tuple(embeddings.shape))}
        self.similarities = "\n".join(f"# {line}" for line in format_score_matrix(_to_numpy(scores)).splitlines())

    def generate_usage_snippet(self) -> str:
        if not self.ir_model:
            return super().generate_usage_snippet()
        examples = self.usage_examples or self._default_usage_examples()
        dim = self._output_dimension()
        documents = examples[1:]
        lines = self._snippet_head("queries", examples[:1])
        lines += [
            "documents = [",
            *(f"    {document!r}," for document in documents),
            "]",
            "query_embeddings = model.encode_query(queries)",
            "document_embeddings = model.encode_document(documents)",
            "print(query_embeddings.shape, document_embeddings.shape)",
            f"# {self.snippet_output.get('shape') or f'(1, {dim}) ({len(documents)}, {dim})'}",
            "",
            "# How well each document answers the query",
            "similarities = model.similarity(query_embeddings, document_embeddings)",
        ]
        lines += self._similarity_lines(f"[1, {len(documents)}]")
        return _code_block(lines)

    def get_model_specific_metadata(self) -> dict[str, Any]:
        metadata = super().get_model_specific_metadata()
        if self.model is not None:
            metadata["output_dimensionality"] = self.model.get_embedding_dimension()
            metadata["similarity_fn_name"] = similarity_label(self.model.similarity_fn_name, "Cosine Similarity")
        return metadata

    def readme_summary(self, values: Mapping[str, Any]) -> str:
        dim = values.get("output_dimensionality")
        return f"It maps inputs to a {dim}-dimensional dense vector space and can be used for {self.task_name}."
