"""``StaticEmbedding``: a text's embedding is the mean of its tokens' vectors (an embedding bag), no transformer.

Inference runs entirely in the Rust core (tokenize and average, for the whole input in a few calls); training runs
``torch.nn.EmbeddingBag`` on the flattened ids, as the reference does, so the gradients are torch's.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from sentrs import ops
from sentrs.base.modules.module import InputModule

__all__ = ["StaticEmbedding"]

logger = logging.getLogger(__name__)


def _as_tokenizers_tokenizer(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` of a fast transformers tokenizer, or the tokenizer itself."""
    from tokenizers import Tokenizer

    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if isinstance(backend, Tokenizer):
        return backend
    raise ValueError(
        "StaticEmbedding needs a fast (Rust-backed) tokenizer: a tokenizers.Tokenizer or a transformers "
        f"PreTrainedTokenizerFast, got {type(tokenizer).__name__}; load one with tokenizers.Tokenizer.from_file() "
        "or Tokenizer.from_pretrained()"
    )


def fold_model2vec_weights(embeddings: Any, mapping: Any = None, weights: Any = None) -> torch.Tensor:
    """One row per token id from model2vec's parts: ``embeddings[mapping[id]] * weights[id]`` (vocabulary-quantized
    models share rows through ``mapping``; ``weights`` scales each token)."""
    table = torch.as_tensor(np.asarray(embeddings) if not isinstance(embeddings, torch.Tensor) else embeddings)
    if mapping is not None:
        table = table[
            torch.as_tensor(np.asarray(mapping) if not isinstance(mapping, torch.Tensor) else mapping).long()
        ]
    if weights is not None:
        dtype = table.dtype
        scale = torch.as_tensor(np.asarray(weights) if not isinstance(weights, torch.Tensor) else weights)
        table = (table.to(torch.promote_types(dtype, torch.float32)) * scale[:, None]).to(dtype)
    return table.contiguous()


class StaticEmbedding(InputModule):
    """Embeds a text as the mean of per-token vectors: the fastest embedder there is, with no model forward pass.

    The tokenizer runs without special tokens and without padding (its own truncation setting, if any, applies).
    ``encode`` of a model whose first module this is runs tokenization and averaging in Rust, for the whole input,
    with the GIL released; training uses ``torch.nn.EmbeddingBag(mode="mean")``.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` or a fast transformers tokenizer.
        embedding_weights: a ``(vocab, dim)`` array or tensor of token vectors.
        embedding_dim: the width of randomly initialised vectors, when ``embedding_weights`` is not given.
        base_model: the model the vectors were distilled from (shown in the model card).

    Example::

        from tokenizers import Tokenizer
        from sentrs import SentenceTransformer
        from sentrs.sentence_transformer.modules import StaticEmbedding

        static = StaticEmbedding(Tokenizer.from_file("tokenizer.json"), embedding_dim=256)
        model = SentenceTransformer(modules=[static])
        embeddings = model.encode(["A cat sits on the mat.", "Stocks fell sharply."])
    """

    modalities: ClassVar[list[str]] = ["text"]
    reference_type: ClassVar[str] = (
        "sentence_transformers.sentence_transformer.modules.static_embedding.StaticEmbedding"
    )

    def __init__(
        self,
        tokenizer: Any,
        embedding_weights: np.ndarray | torch.Tensor | None = None,
        embedding_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        tokenizer = _as_tokenizers_tokenizer(tokenizer)
        if embedding_weights is not None:
            weights = torch.as_tensor(
                embedding_weights if isinstance(embedding_weights, torch.Tensor) else np.asarray(embedding_weights)
            )
            if weights.ndim != 2:
                raise ValueError(
                    f"embedding_weights must be a 2-D (vocab, dim) array, got shape {tuple(weights.shape)}"
                )
            if not weights.is_floating_point():
                raise ValueError(f"embedding_weights must hold floats, got {weights.dtype}")
            self.embedding = nn.EmbeddingBag.from_pretrained(weights, freeze=False)
        elif embedding_dim is not None:
            if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim < 1:
                raise ValueError(f"embedding_dim must be a positive int, got {embedding_dim!r}")
            self.embedding = nn.EmbeddingBag(tokenizer.get_vocab_size(), embedding_dim)
        else:
            raise ValueError("StaticEmbedding needs embedding_weights (a (vocab, dim) array) or embedding_dim")
        self.num_embeddings = int(self.embedding.num_embeddings)
        self.embedding_dim = int(self.embedding.embedding_dim)
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.base_model = kwargs.get("base_model")
        self._rust: ops.Tokenizer | None = None
        self._rust_key: tuple[Any, ...] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the Rust tokenizer (rebuilt on first use)."""
        state = dict(super().__getstate__())
        state["_rust"] = None
        state["_rust_key"] = None
        return state

    # ------------------------------------------------------------------ tokenizing
    @property
    def max_seq_length(self) -> float:
        """No limit from the module (the tokenizer's own truncation setting still applies)."""
        return math.inf

    def get_embedding_dimension(self) -> int:
        return self.embedding_dim

    def rust_tokenizer(self) -> ops.Tokenizer:
        """The Rust tokenizer for the current ``tokenizers`` tokenizer and its truncation setting."""
        truncation = self.tokenizer.truncation
        key = (id(self.tokenizer), None if truncation is None else tuple(sorted(truncation.items())))
        if self._rust is None or key != self._rust_key:
            kwargs: dict[str, Any] = {}
            if truncation is not None:
                kwargs = {
                    "max_length": int(truncation["max_length"]),
                    "truncation_strategy": str(truncation.get("strategy", "longest_first")),
                    "truncation_side": str(truncation.get("direction", "right")),
                }
            self._rust = ops.Tokenizer.from_str(self.tokenizer.to_str(), **kwargs)
            self._rust_key = key
        return self._rust

    @staticmethod
    def _texts(inputs: Any, prompt: str | None) -> list[str]:
        if isinstance(inputs, str):
            inputs = [inputs]
        texts = list(inputs)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(
                    f"StaticEmbedding embeds texts: input {i} is a {type(text).__name__}, expected str"
                    + (" (text pairs are for cross-encoders)" if isinstance(text, (tuple, list)) else "")
                )
        if prompt:
            texts = [prompt + t for t in texts]
        return texts

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Flattened token ids of every text and each text's start: ``{"input_ids", "offsets"}`` int64 tensors."""
        encoding = self.rust_tokenizer().encode(self._texts(inputs, prompt), add_special_tokens=False)
        ids, offsets = encoding.flat()
        return {"input_ids": torch.from_numpy(ids), "offsets": torch.from_numpy(offsets)}

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features["sentence_embedding"] = self.embedding(features["input_ids"], features["offsets"])
        return features

    # ------------------------------------------------------------------ the Rust inference path
    def can_run_on_host(self) -> bool:
        """Whether ``encode`` may skip torch: float32 weights on the CPU, and no gradient wanted."""
        weight = self.embedding.weight
        return (
            weight.device.type == "cpu"
            and weight.dtype == torch.float32
            and not (torch.is_grad_enabled() and weight.requires_grad)
        )

    def host_features(self, inputs: list[Any], prompt: str | None = None) -> dict[str, Any]:
        """``{"sentence_embedding"}`` of the inputs, tokenized and averaged in Rust (the GIL released)."""
        weights = self.embedding.weight.detach().numpy()
        embeddings = self.rust_tokenizer().embed_mean(self._texts(inputs, prompt), weights)
        return {"sentence_embedding": torch.from_numpy(embeddings)}

    # ------------------------------------------------------------------ save / load
    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        if safe_serialization:
            from safetensors.torch import save_file

            save_file(
                {k: v.contiguous() for k, v in self.state_dict().items()},
                os.path.join(output_path, "model.safetensors"),
            )
        else:
            torch.save(self.state_dict(), os.path.join(output_path, "pytorch_model.bin"))
        self.tokenizer.save(os.path.join(output_path, "tokenizer.json"))

    @classmethod
    def load(cls, model_dir: str, **kwargs: Any) -> StaticEmbedding:
        from tokenizers import Tokenizer

        tokenizer_path = os.path.join(model_dir, "tokenizer.json")
        if not os.path.isfile(tokenizer_path):
            raise FileNotFoundError(f"StaticEmbedding folder {model_dir} has no tokenizer.json")
        try:
            tokenizer = Tokenizer.from_file(tokenizer_path)
        except Exception as exc:
            raise ValueError(f"could not read the tokenizer {tokenizer_path}: {exc}") from exc
        state = _read_state(model_dir)
        if "embedding.weight" in state:
            weights = state["embedding.weight"]
        elif "embeddings" in state:  # a model2vec folder
            weights = fold_model2vec_weights(state["embeddings"], state.get("mapping"), state.get("weights"))
        else:
            raise ValueError(
                f"the weights in {model_dir} have neither 'embedding.weight' (StaticEmbedding) nor 'embeddings' "
                f"(model2vec), got keys {sorted(state)}"
            )
        return cls(tokenizer, embedding_weights=weights)

    # ------------------------------------------------------------------ model2vec
    @classmethod
    def from_model2vec(cls, model_id_or_path: str) -> StaticEmbedding:
        """The vectors and tokenizer of a model2vec model (a Hub id or a local folder); needs ``model2vec``."""
        try:
            from model2vec import StaticModel
        except ImportError as exc:
            raise ImportError(
                "StaticEmbedding.from_model2vec needs the model2vec package: pip install model2vec"
            ) from exc
        static_model = StaticModel.from_pretrained(model_id_or_path)
        return cls(
            static_model.tokenizer, embedding_weights=_model2vec_table(static_model), base_model=model_id_or_path
        )

    @classmethod
    def from_distillation(
        cls,
        model_name: str,
        vocabulary: list[str] | None = None,
        device: str | None = None,
        pca_dims: int | None = 256,
        apply_zipf: bool = True,
        sif_coefficient: float | None = 1e-4,
        token_remove_pattern: str | None = r"\[unused\d+\]",
        quantize_to: str = "float32",
        use_subword: bool = True,
        **kwargs: Any,
    ) -> StaticEmbedding:
        """Distils static vectors from a transformer with model2vec (``pip install model2vec[distill]``): the
        arguments are model2vec's ``distill`` ones; those this model2vec version lacks are dropped with a warning."""
        try:
            from model2vec.distill import distill
        except ImportError as exc:
            raise ImportError(
                "StaticEmbedding.from_distillation needs model2vec with its distillation extra: "
                "pip install model2vec[distill]"
            ) from exc
        accepted = set(inspect.signature(distill).parameters) - {"model_name"}
        options = {
            "vocabulary": vocabulary,
            "device": device,
            "pca_dims": pca_dims,
            "apply_zipf": apply_zipf,
            "sif_coefficient": sif_coefficient,
            "token_remove_pattern": token_remove_pattern,
            "quantize_to": quantize_to,
            "use_subword": use_subword,
            **kwargs,
        }
        unsupported = sorted(set(options) - accepted)
        if unsupported:
            logger.warning(
                "This model2vec version's distill() does not take %s; distilling without them (a newer model2vec "
                "may support them).",
                ", ".join(map(repr, unsupported)),
            )
            options = {k: v for k, v in options.items() if k in accepted}
        static_model = distill(model_name, **options)
        return cls(static_model.tokenizer, embedding_weights=_model2vec_table(static_model), base_model=model_name)

    def __repr__(self) -> str:
        return f"StaticEmbedding(num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim})"


def _model2vec_table(static_model: Any) -> torch.Tensor:
    embedding = static_model.embedding
    if isinstance(embedding, np.ndarray):
        return fold_model2vec_weights(
            embedding, getattr(static_model, "token_mapping", None), getattr(static_model, "weights", None)
        )
    return torch.as_tensor(embedding.weight)


def _read_state(model_dir: str) -> dict[str, Any]:
    """The tensors of ``model.safetensors`` (or a weights-only ``pytorch_model.bin``) in ``model_dir``."""
    from sentrs.base.modules.module import read_weights_file

    return dict(read_weights_file(model_dir))
