"""A (bidirectional) LSTM over token embeddings."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from sentrs.base.modules.module import Module
from sentrs.util.decorators import deprecated_kwargs

__all__ = ["LSTM"]


class LSTM(Module):
    """Runs an ``nn.LSTM`` over ``token_embeddings``, packed by ``sentence_lengths`` so padding is skipped.

    Output ``token_embeddings`` are ``(batch, longest length, hidden_dim * (2 if bidirectional else 1))``; a text
    of no words is run as one word (its padding vector).

    Args:
        embedding_dimension: the size of the incoming token embeddings (old name ``word_embedding_dimension``).
        hidden_dim: the LSTM's hidden size per direction.
        num_layers: stacked LSTM layers.
        dropout: dropout between layers.
        bidirectional: run both directions and concatenate them.
    """

    config_keys: ClassVar[list[str]] = ["embedding_dimension", "hidden_dim", "num_layers", "dropout", "bidirectional"]
    config_file_name: ClassVar[str] = "lstm_config.json"
    config_key_renames: ClassVar[dict[str, str]] = {"word_embedding_dimension": "embedding_dimension"}
    reference_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.lstm.LSTM"

    @deprecated_kwargs(word_embedding_dimension="embedding_dimension")
    def __init__(
        self,
        embedding_dimension: int,
        hidden_dim: int,
        num_layers: int = 1,
        dropout: float = 0,
        bidirectional: bool = True,
    ) -> None:
        super().__init__()
        self.embedding_dimension = embedding_dimension
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.dropout = dropout
        self.bidirectional = bidirectional
        self.embeddings_dimension = hidden_dim * (2 if bidirectional else 1)
        self.encoder = nn.LSTM(
            embedding_dimension,
            hidden_dim,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            batch_first=True,
        )

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        lengths = torch.clamp(features["sentence_lengths"], min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            features["token_embeddings"], lengths, batch_first=True, enforce_sorted=False
        )
        output, _ = self.encoder(packed)
        features["token_embeddings"] = nn.utils.rnn.pad_packed_sequence(output, batch_first=True)[0]
        return features

    def get_embedding_dimension(self) -> int:
        return self.embeddings_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        # safetensors cannot write the LSTM's flattened weights from an accelerator: save from the CPU
        device = next(self.parameters()).device
        self.cpu()
        try:
            self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        finally:
            self.to(device)

    @classmethod
    def load(cls, model_dir: str, **kwargs: Any) -> LSTM:
        module = cls(**cls.load_config(model_dir))
        module.load_torch_weights(model_dir)
        return module
