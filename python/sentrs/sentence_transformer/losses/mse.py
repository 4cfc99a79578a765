"""``MSELoss``: mean squared error to precomputed teacher embeddings (multilingual distillation)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sentrs.sentence_transformer.losses.embed_distill import EmbedDistillLoss

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["MSELoss"]


class MSELoss(EmbedDistillLoss):
    """Mean squared error between the student's embeddings and the teacher's, averaged over the columns.

    The classic use is making a model multilingual: the teacher embeds the English sentence, and the student learns
    to give the same embedding to the sentence and to its translations (one column each). The labels are the
    teacher's embeddings, ``(batch_size, teacher_dim)`` for every column or ``(batch_size, n_columns, teacher_dim)``.

    Args:
        model: the student SentenceTransformer.
        projection_dim: the teacher's dimension, when it differs from the student's: a trainable linear map in front
            of the error (see :class:`EmbedDistillLoss`).

    Requirements:
        1. Precomputed teacher embeddings of the texts as the labels.

    Inputs:
        +-------------------------------------------+-------------------+
        | Texts                                     | Labels            |
        +===========================================+===================+
        | sentence                                  | teacher embedding |
        +-------------------------------------------+-------------------+
        | (sentence_1, sentence_2, ..., sentence_n) | teacher embedding |
        +-------------------------------------------+-------------------+

    Relations:
        - :class:`EmbedDistillLoss` offers cosine and euclidean distances too.

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import MSELoss

            student = SentenceTransformer("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2")
            teacher = SentenceTransformer("sentence-transformers/all-MiniLM-L12-v2")
            english, german = ["A man eats."], ["Ein Mann isst."]
            targets = teacher.encode(english, convert_to_tensor=True)
            loss = MSELoss(student)
            loss([student.preprocess(english), student.preprocess(german)], targets).backward()
    """

    def __init__(self, model: SentenceTransformer, projection_dim: int | None = None) -> None:
        super().__init__(model, distance_metric="mse", projection_dim=projection_dim)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"projection_dim": self.projection_dim}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{reimers-2020-multilingual-sentence-bert,
    title = "Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing",
    month = "11",
    year = "2020",
    publisher = "Association for Computational Linguistics",
    url = "https://arxiv.org/abs/2004.09813",
}
"""
