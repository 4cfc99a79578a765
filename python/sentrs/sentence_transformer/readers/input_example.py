"""``InputExample``: one training example of the old ``model.fit`` API (texts and a label)."""

from __future__ import annotations

__all__ = ["InputExample"]


class InputExample:
    """One example for the old training API: ``texts`` (one per input column) and a ``label``.

    :meth:`SentenceTransformer.fit <sentrs.sentence_transformer.fit_mixin.FitMixin.fit>` turns lists of these into
    ``datasets`` columns ``sentence_0``, ``sentence_1``, ... plus ``label``. New code should build a
    ``datasets.Dataset`` and use :class:`~sentrs.SentenceTransformerTrainer` directly.

    Args:
        guid: an identifier of the example.
        texts: the example's texts, one per input column (e.g. anchor, positive, negative).
        label: a class id, a score, or (for distillation) a target embedding; ``0`` by default, and ``fit`` drops the
            label column when every label is ``0``.
    """

    def __init__(self, guid: str = "", texts: list[str] | None = None, label: int | float = 0) -> None:
        self.guid = guid
        self.texts = texts
        self.label = label

    def __str__(self) -> str:
        return f"<InputExample> label: {self.label}, texts: {'; '.join(self.texts or [])}"

    def __repr__(self) -> str:
        return f"InputExample(guid={self.guid!r}, texts={self.texts!r}, label={self.label!r})"
