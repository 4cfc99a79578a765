"""``similarity_fn_name`` and ``similarity``/``similarity_pairwise`` for the embedding model types."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sentrs.base.inputs import check_similarity_fn_name

if TYPE_CHECKING:
    from torch import Tensor

    from sentrs.base.similarity import SimilarityFunction

__all__ = ["SimilarityMixin"]


class SimilarityMixin:
    """The configured similarity of an embedding model: unset until the user, the saved config or first use sets it
    (then :attr:`default_similarity_fn_name`)."""

    #: The similarity functions a model of this type can be configured with (single-vector ones).
    SUPPORTED_SIMILARITY_FN_NAMES: ClassVar[tuple[str, ...]] = ("cosine", "dot", "euclidean", "manhattan")
    default_similarity_fn_name: ClassVar[str] = "cosine"
    _similarity_fn_name: str | None
    _user_similarity: Any

    def _init_similarity(self, similarity_fn_name: Any) -> None:
        """Before the model loads: the user's choice, checked now; it wins over the saved config."""
        self._user_similarity = similarity_fn_name
        self._similarity_fn_name = None
        self.similarity_fn_name = similarity_fn_name

    @property
    def similarity_fn_name(self) -> str:
        """The similarity used by :meth:`similarity`; :attr:`default_similarity_fn_name` on first use."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = self.default_similarity_fn_name
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | SimilarityFunction | None) -> None:
        self._similarity_fn_name = None if value is None else check_similarity_fn_name(value)

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """``(n, m)`` scores between two sets of embeddings with :attr:`similarity_fn_name`."""
        from sentrs.base.similarity import SimilarityFunction

        return SimilarityFunction.to_similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """``(n,)`` scores between row i of each set with :attr:`similarity_fn_name`."""
        from sentrs.base.similarity import SimilarityFunction

        return SimilarityFunction.to_similarity_pairwise_fn(self.similarity_fn_name)(embeddings1, embeddings2)
