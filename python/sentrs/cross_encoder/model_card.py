"""``CrossEncoderModelCardData``: what a cross-encoder's card shows, and the callback that records training.

``CrossEncoderModelCardCallback`` subclasses ``transformers.TrainerCallback``; it loads on first use
(:mod:`sentrs.base.model_card_callback`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sentrs._lazy import lazy_module_attrs
from sentrs.base.model_card import BaseModelCardData, _code_block, _is_dataset, _to_numpy

if TYPE_CHECKING:
    from sentrs.base.model_card_callback import CrossEncoderModelCardCallback

__all__ = ["CrossEncoderModelCardCallback", "CrossEncoderModelCardData"]

__getattr__, __dir__ = lazy_module_attrs(
    __name__, {"CrossEncoderModelCardCallback": "sentrs.base.model_card_callback"}
)

_PAIR_EXAMPLES = [
    [
        "How many calories in an egg",
        "There are on average between 55 and 80 calories in an egg depending on its size.",
    ],
    [
        "How many calories in an egg",
        "Egg whites are very low in calories, have no fat, no cholesterol, and are loaded with protein.",
    ],
    ["How many calories in an egg", "Most of the calories in an egg come from the yellow yolk in the center."],
]


@dataclass
class CrossEncoderModelCardData(BaseModelCardData):
    """The model card data of a :class:`~sentrs.CrossEncoder` (see :class:`BaseModelCardData` for the fields).

    The task name and the Hub pipeline tag follow the label count when the model is attached: one label is a
    reranker (``text-ranking``), more are a pair classifier (``text-classification``).
    """

    task_name: str | None = None
    tags: list[str] = field(default_factory=lambda: ["sentence-transformers", "cross-encoder", "reranker"])
    usage_examples: list[Any] | None = field(default=None, init=False)
    ir_model: bool | None = field(default=True, init=False, repr=False)
    pipeline_tag: str | None = field(default=None, init=False)

    model_kind: ClassVar[str] = "Cross Encoder"
    docs_section: ClassVar[str] = "cross_encoder"
    _snippet_model_class: ClassVar[str] = "CrossEncoder"
    _snippet_default_model_id: ClassVar[str] = "cross_encoder_model_id"

    def register_model(self, model: Any) -> None:
        super().register_model(model)
        one_label = model.num_labels == 1
        if self.task_name is None:
            self.task_name = "text reranking and semantic search" if one_label else "text pair classification"
        if self.pipeline_tag is None:
            self.pipeline_tag = "text-ranking" if one_label else "text-classification"

    def set_widget_examples(self, dataset: Any) -> None:
        """No Hub widget takes pairs; the first rows' two text columns become the usage snippet's pairs."""
        if isinstance(dataset, Mapping):
            dataset = next(iter(dataset.values()), None)
        if dataset is None or _is_dataset(dataset, "IterableDataset", "IterableDatasetDict") or not len(dataset):
            return
        first = dataset[0]
        columns = [
            column
            for column, value in first.items()
            if column not in ("dataset_name", "label")
            and (isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], str)))
        ][:2]
        if len(columns) < 2:
            return
        head = dataset[:5]
        queries, answers = head[columns[0]], head[columns[1]]
        if isinstance(first[columns[1]], list):  # one query with a list of candidates: its candidates
            answers = answers[0][:5]
            queries = [queries[0]] * len(answers)
        self.usage_examples = [[query, answer] for query, answer in zip(queries, answers)]

    def _default_usage_examples(self) -> list[Any]:
        return [list(pair) for pair in _PAIR_EXAMPLES]

    def run_usage_snippet(self) -> None:
        """Scores the example pairs and keeps the printed scores."""
        super().run_usage_snippet()
        if not self.generate_widget_examples or self.model is None:
            return
        scores = _to_numpy(self.model.predict(self.usage_examples, convert_to_numpy=True, show_progress_bar=False))
        self.snippet_output = {"shape": str(tuple(scores.shape))}
        printed = np.array2string(scores, precision=4, suppress_small=True)
        self.similarities = "\n".join(f"# {line}" for line in printed.splitlines())

    def generate_usage_snippet(self) -> str:
        examples = self.usage_examples or self._default_usage_examples()
        num_labels = self.model.num_labels if self.model is not None else 1
        lines = self._snippet_head("pairs", examples)
        lines += ["scores = model.predict(pairs)"]
        if self.similarities:
            lines += ["print(scores)", self.similarities]
        else:
            shape = (len(examples), num_labels) if num_labels > 1 else (len(examples),)
            lines += ["print(scores.shape)", f"# {self.snippet_output.get('shape') or shape}"]
        if num_labels == 1 and examples:
            lines += [
                "",
                "# Or rank texts by how well they match one query",
                "ranks = model.rank(",
                f"    {examples[0][0]!r},",
                "    [",
                *(f"        {pair[1]!r}," for pair in examples),
                "    ],",
                ")",
                "# [{'corpus_id': ..., 'score': ...}, {'corpus_id': ..., 'score': ...}, ...]",
            ]
        return _code_block(lines)

    def get_model_specific_metadata(self) -> dict[str, Any]:
        metadata = super().get_model_specific_metadata()
        if self.model is not None:
            metadata["model_num_labels"] = self.model.num_labels
        return metadata

    def readme_summary(self, values: Mapping[str, Any]) -> str:
        return f"It scores pairs of texts, for {self.task_name}."

    def readme_details(self, values: Mapping[str, Any]) -> list[str]:
        labels = values.get("model_num_labels") or 1
        return [f"- **Number of Output Labels:** {labels} label{'s' if labels > 1 else ''}"]
