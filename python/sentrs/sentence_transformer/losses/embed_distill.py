"""``EmbedDistillLoss``: pull the student's embeddings towards precomputed teacher embeddings."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from sentrs.sentence_transformer.losses._inputs import embed_columns

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["DistanceMetric", "EmbedDistillLoss"]

DistanceMetric = Literal["mse", "l2", "cosine"]


class EmbedDistillLoss(nn.Module):
    """Embedding distillation: the distance of each column's embeddings to the teacher's embeddings.

    The labels are the teacher's embeddings, computed beforehand (``teacher.encode`` in a ``dataset.map``): one
    ``(batch_size, teacher_dim)`` tensor for every column, or ``(batch_size, n_columns, teacher_dim)`` with one
    target per column. The loss is the distance averaged over the rows, then over the columns. When the student's
    dimension differs from the teacher's, ``projection_dim`` adds a trainable linear map in front of the distance
    (it is part of the loss, not the model: keep it with :meth:`save_projection`).

    Args:
        model: the student SentenceTransformer.
        distance_metric: ``"cosine"`` (``1 - cos``), ``"l2"`` (euclidean distance) or ``"mse"`` (mean squared error
            over the dimensions).
        projection_dim: the teacher's dimension, to map the student's embeddings to it; None for no projection.

    Raises:
        ValueError: an unknown ``distance_metric``.

    Requirements:
        1. Precomputed teacher embeddings of the texts as the labels.

    Inputs:
        +-------------------------------+-----------------------------------------------------+
        | Texts                         | Labels                                              |
        +===============================+=====================================================+
        | sentence                      | teacher embedding ``(teacher_dim,)``                |
        +-------------------------------+-----------------------------------------------------+
        | (sentence_1, ..., sentence_n) | teacher embedding, one for all or one per column    |
        +-------------------------------+-----------------------------------------------------+

    Relations:
        - :class:`MSELoss` is this loss with ``distance_metric="mse"``.

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import EmbedDistillLoss

            student = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            teacher = SentenceTransformer("sentence-transformers/all-mpnet-base-v2")
            texts = ["A man eats.", "A plane takes off."]
            targets = teacher.encode(texts, convert_to_tensor=True)
            loss = EmbedDistillLoss(student, projection_dim=targets.shape[1])
            loss([student.preprocess(texts)], targets).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        distance_metric: DistanceMetric = "cosine",
        projection_dim: int | None = None,
    ) -> None:
        super().__init__()
        if distance_metric not in ("mse", "l2", "cosine"):
            raise ValueError(f"distance_metric must be one of 'mse', 'l2', 'cosine', but got '{distance_metric}'.")
        self.model = model
        self.distance_metric = distance_metric
        self.projection_dim = projection_dim
        self.projection: nn.Linear | None = None
        if projection_dim is not None:
            self.projection = nn.Linear(self._student_dim(), projection_dim, device=model.device)

    def _student_dim(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise ValueError("the model does not report its embedding dimension, so the projection cannot be built")
        return dim

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """The loss of a batch: one features dict per column, the teacher embeddings as ``labels``."""
        if labels is None:
            raise ValueError(
                "EmbedDistillLoss requires pre-computed teacher embeddings as labels. "
                "Compute them once with the teacher and add them via `dataset.map(...)`."
            )
        embeddings = embed_columns(self.model, sentence_features)
        targets = labels.detach()
        if targets.dim() == 2:
            per_column = [targets] * len(embeddings)
        elif targets.dim() == 3:
            if targets.shape[1] != len(embeddings):
                raise ValueError(
                    f"Number of label columns ({targets.shape[1]}) does not match number of input "
                    f"text columns ({len(embeddings)}). Either pass 3D labels with shape "
                    f"(batch_size, {len(embeddings)}, teacher_dim), or pass 2D labels of shape "
                    f"(batch_size, teacher_dim) to broadcast a single label across all columns."
                )
            per_column = list(targets.unbind(1))
        else:
            raise ValueError(
                f"Expected labels to be 2D (batch_size, teacher_dim) or "
                f"3D (batch_size, num_columns, teacher_dim); got {targets.dim()}D."
            )
        return self.compute_loss_from_embeddings(embeddings, per_column)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], teacher_embeddings: list[Tensor]) -> Tensor:
        """The mean over columns of the mean distance of ``embeddings[c]`` to ``teacher_embeddings[c]``,
        ``(batch_size, dim)`` each."""
        distances = []
        for student, teacher in zip(embeddings, teacher_embeddings):
            teacher = teacher.to(device=student.device, dtype=student.dtype)
            if self.projection is not None:
                student = self.projection(student)
            if self.distance_metric == "mse":
                distances.append(nn.functional.mse_loss(student, teacher))
            elif self.distance_metric == "l2":
                distances.append(torch.linalg.vector_norm(student - teacher, dim=-1).mean())
            else:
                distances.append((1 - nn.functional.cosine_similarity(student, teacher, dim=-1)).mean())
        return torch.stack(distances).mean()

    def save_projection(self, path: str | os.PathLike[str]) -> None:
        """Writes the projection's weights to a safetensors file.

        Raises:
            ValueError: the loss has no projection.
        """
        from safetensors.torch import save_model

        if self.projection is None:
            raise ValueError(
                "No projection layer to save. Construct EmbedDistillLoss with "
                "projection_dim=<int> if you want a learnable projection."
            )
        save_model(self.projection, str(path))

    def load_projection(self, path: str | os.PathLike[str]) -> None:
        """Loads projection weights written by :meth:`save_projection`, building the projection when there is none.

        Raises:
            ValueError: the saved shape does not fit the student or the configured projection.
        """
        from safetensors.torch import load_file

        state = load_file(str(path))
        out_features, in_features = state["weight"].shape
        if self.projection is None:
            student_dim = self._student_dim()
            if in_features != student_dim:
                raise ValueError(
                    f"Saved projection expects student embeddings of dim {in_features}, "
                    f"but the current student model outputs {student_dim}-dim embeddings."
                )
            self.projection = nn.Linear(in_features, out_features, device=self.model.device)
            self.projection_dim = out_features
        elif (self.projection.in_features, self.projection.out_features) != (in_features, out_features):
            raise ValueError(
                f"Saved projection shape ({in_features} -> {out_features}) does not "
                f"match the configured projection shape "
                f"({self.projection.in_features} -> {self.projection.out_features})."
            )
        self.projection.load_state_dict(state)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"distance_metric": self.distance_metric, "projection_dim": self.projection_dim}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@article{kim2023embeddistill,
    title={EmbedDistill: A Geometric Knowledge Distillation for Information Retrieval},
    author={Kim, Seungyeon and Rawat, Ankit Singh and Zaheer, Manzil and Jayasumana, Sadeep and Sadhanala, Veeranjaneyulu and Jitkrittum, Wittawat and Menon, Aditya Krishna and Fergus, Rob and Kumar, Sanjiv},
    year={2023},
    eprint={2301.12005},
    archivePrefix={arXiv},
    primaryClass={cs.IR}
}
"""  # noqa: E501
