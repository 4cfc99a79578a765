"""SPLADE inference without the ``(batch, seq, vocab)`` logits: the MLM decoder fused with SpladePooling.

A SPLADE model's last Transformer layer is a linear map from the hidden size to the vocabulary (the MLM
decoder). On a batch of 128 texts of 20 tokens its output is 78M floats (312 MB) that are written once and read
once by the pooling; on a CPU that traffic costs as much as the matrix product itself. Here the decoder is
skipped inside the Transformer's forward (its input is captured instead) and applied a few rows at a time into
a buffer that stays in the cache, each block pooled by the Rust kernel before the next is computed. The
arithmetic is the same fp32 product and the same pooling, so the embeddings are the ones the unfused path gives.

The fusion applies only where it is provably the same computation: a ``fill-mask`` Transformer on the torch
backend followed directly by SpladePooling, whose model's output embeddings are a plain ``nn.Linear`` in float32
on the CPU, and whose forward returns that layer's output untouched (checked once per model on a short probe
input, and again on every batch: a batch whose output is not the captured tensor is run again unfused).
``SENTRS_FUSED_SPLADE=0`` in the environment turns it off.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from sentrs import ops
from sentrs.base.modules.transformer import Transformer
from sentrs.sparse_encoder.modules.splade_pooling import SpladePooling, concat_csr

__all__ = ["FusedSpladeHead"]

# Token rows per decoder block: 128 x 30,522 fp32 logits are 16 MB (the fastest of 32 to 512 tokens on a 2-core Xeon).
_BLOCK_TOKENS = 128

# The capture is per thread: while one thread encodes with the fused head, other threads calling the same decoder
# (another encode, a forward pass, training) must get its logits. The decoder's forward is swapped once for a
# dispatcher while any thread captures (``_users`` counts them per decoder), and the dispatcher asks the calling
# thread's ``_capturing.heads`` whether to capture.
_patch_lock = threading.Lock()
_users: dict[int, int] = {}
_capturing = threading.local()


def _thread_heads() -> dict[int, FusedSpladeHead]:
    """The calling thread's capturing heads, by ``id`` of their decoder."""
    heads: dict[int, FusedSpladeHead] | None = getattr(_capturing, "heads", None)
    if heads is None:
        heads = _capturing.heads = {}
    return heads


def _dispatcher(decoder: nn.Linear) -> Any:
    """The decoder's forward while some thread captures: the input, recorded, on a capturing thread; else logits."""

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        head = _thread_heads().get(id(decoder))
        if head is None:
            return nn.Linear.forward(decoder, hidden)
        head._captured = hidden
        return hidden

    return forward


class FusedSpladeHead:
    """The decoder of ``transformer``'s MLM head applied block-wise and pooled by ``splade``.

    On CPUs with Intel AMX, max pooling runs as one Rust pass from the decoder's input (:func:`ops.splade_max_head`:
    bf16 tiles bound every logit, the entries that can be positive are rescored in fp32), so only the active
    entries' logits are computed in fp32; elsewhere (or with ``use_amx = False``) the fp32 blocks below run.
    """

    #: Whether max pooling may use the AMX kernel where the CPU has it.
    use_amx: bool = True

    def __init__(self, transformer: Transformer, splade: SpladePooling, decoder: nn.Linear) -> None:
        self.transformer = transformer
        self.splade = splade
        self.decoder = decoder
        self._captured: torch.Tensor | None = None
        self._outer: FusedSpladeHead | None = None
        self._buffer: torch.Tensor | None = None
        # The decoder's weights packed for the AMX pass, once per encode (this object lives for one encode call).
        self._prepared: Any = None

    @classmethod
    def for_modules(cls, modules: list[nn.Module]) -> FusedSpladeHead | None:
        """The fused head for an inference module list, or None where the fusion does not apply."""
        if os.environ.get("SENTRS_FUSED_SPLADE", "1") == "0" or len(modules) != 2:
            return None
        transformer, splade = modules
        if not isinstance(transformer, Transformer) or not isinstance(splade, SpladePooling):
            return None
        if transformer.backend != "torch" or transformer.transformer_task != "fill-mask":
            return None
        if "cu_seq_lens_q" in transformer._input_names:
            return None
        get_output_embeddings = getattr(transformer.model, "get_output_embeddings", None)
        decoder = get_output_embeddings() if callable(get_output_embeddings) else None
        if type(decoder) is not nn.Linear:
            return None
        if decoder.weight.device.type != "cpu" or decoder.weight.dtype != torch.float32:
            return None
        if decoder.bias is not None and decoder.bias.dtype != torch.float32:
            return None
        head = cls(transformer, splade, decoder)
        verdict = getattr(transformer, "_sentrs_fused_splade_ok", None)
        if verdict is None or verdict[0] is not decoder:
            verdict = (decoder, head._probe())
            transformer._sentrs_fused_splade_ok = verdict  # type: ignore[assignment]
        return head if verdict[1] else None

    @contextlib.contextmanager
    def capturing(self) -> Iterator[None]:
        """Within this context the decoder returns its input (recorded) instead of the logits, on this thread."""
        self._patch()
        try:
            yield
        finally:
            self._unpatch()
            self._captured = None

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """The plain decoder again, inside :meth:`capturing` (to run a batch unfused)."""
        self._unpatch()
        try:
            yield
        finally:
            self._patch()

    def _patch(self) -> None:
        """Captures the decoder's input on this thread (other threads still get logits)."""
        key = id(self.decoder)
        with _patch_lock:
            heads = _thread_heads()
            self._outer = heads.get(key)  # a capture this one nests in (restored by _unpatch)
            heads[key] = self
            if _users.get(key, 0) == 0:
                # An instance attribute: nn.Module.__call__ finds it before the class's forward.
                self.decoder.__dict__["forward"] = _dispatcher(self.decoder)
            _users[key] = _users.get(key, 0) + 1

    def _unpatch(self) -> None:
        key = id(self.decoder)
        with _patch_lock:
            heads = _thread_heads()
            if heads.get(key) is not self:
                return
            if self._outer is not None:
                heads[key] = self._outer
            else:
                del heads[key]
            _users[key] -= 1
            if _users[key] == 0:
                del _users[key]
                self.decoder.__dict__.pop("forward", None)

    def _probe(self) -> bool:
        """Whether the model's output is exactly the decoder applied to the captured input, on a short input."""
        config = self.transformer.model.config
        vocab = int(getattr(config, "vocab_size", 0) or self.decoder.out_features)
        ids = torch.arange(1, 5, dtype=torch.int64).remainder(max(vocab, 1))[None, :]
        features: dict[str, Any] = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if "token_type_ids" in self.transformer._input_names:
            features["token_type_ids"] = torch.zeros_like(ids)
        # In eval mode, as encoding runs it: dropout in a model left in training mode would fail the comparison.
        was_training = self.transformer.training
        self.transformer.eval()
        try:
            with torch.inference_mode():
                expected = self.transformer.forward(dict(features))["token_embeddings"]
                with self.capturing():
                    out = self.transformer.forward(dict(features))["token_embeddings"]
                    captured = self._captured
                if captured is None or out is not captured:
                    return False
                return bool(torch.equal(self.decoder(captured), expected))
        except Exception:
            return False
        finally:
            self.transformer.train(was_training)

    def pool_to_csr(self, features: dict[str, Any], max_active_dims: int | None) -> ops.CsrArrays | None:
        """CSR rows of one batch run inside :meth:`capturing`, or None when its output was not the captured
        decoder input (the caller then runs the batch again without the fusion)."""
        hidden = features.get("token_embeddings")
        captured, self._captured = self._captured, None
        if not isinstance(hidden, torch.Tensor) or hidden is not captured or hidden.ndim != 3:
            return None
        mask = features["attention_mask"].to(torch.int64).cpu().numpy()
        batch, seq, width = hidden.shape
        vocab = self.decoder.out_features
        if self.splade.embedding_dimension is None:
            self.splade.embedding_dimension = vocab
        if self.use_amx and self.splade.pooling_strategy == "max" and ops.maxsim_amx_supported():
            if self._prepared is None:
                bias = self.decoder.bias
                self._prepared = ops.splade_head_weights(
                    self.decoder.weight.detach().numpy(), None if bias is None else bias.detach().numpy()
                )
            csr = ops.splade_max_pool(
                self._prepared,
                hidden.detach().float().contiguous().numpy(),
                mask,
                self.splade.activation_function,
                max_active_dims,
            )
            if csr is not None:
                return csr
        rows_per_block = max(1, _BLOCK_TOKENS // max(seq, 1))
        need = rows_per_block * seq * vocab
        if self._buffer is None or self._buffer.numel() < need:
            self._buffer = torch.empty(need, dtype=torch.float32)
        weight_t = self.decoder.weight.t()
        bias = self.decoder.bias
        hidden = hidden.detach().float().contiguous()
        parts = []
        for start in range(0, batch, rows_per_block):
            end = min(start + rows_per_block, batch)
            block = hidden[start:end].reshape(-1, width)
            out = self._buffer[: block.shape[0] * vocab].view(block.shape[0], vocab)
            if bias is not None:
                torch.addmm(bias, block, weight_t, out=out)
            else:
                torch.mm(block, weight_t, out=out)
            parts.append(
                ops.splade_pool(
                    out.numpy().reshape(end - start, seq, vocab),
                    mask[start:end],
                    self.splade.pooling_strategy,
                    self.splade.activation_function,
                    max_active_dims,
                )
            )
        return concat_csr(parts)
