"""``SparseEncoder``: SPLADE-style sparse embeddings with the reference's API and folders."""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sentrs import ops
from sentrs.base.inputs import (
    SIMILARITY_FN_NAMES,
    check_batch_size,
    check_optional_positive_int,
    multi_process_requested,
    pop_sentences_alias,
    prepare_text_inputs,
)
from sentrs.base.model import BaseModel, ClassOnAccess, ModelOptions, QueryDocumentMixin, with_model_options
from sentrs.base.similarity_config import SimilarityMixin

if TYPE_CHECKING:
    from torch import Tensor, nn
    from typing_extensions import Unpack

    from sentrs.base.engine.steps import HostPipeline
    from sentrs.base.similarity import SimilarityFunction
    from sentrs.sparse_encoder.modules.splade_pooling import SpladePooling

__all__ = ["SparseEncoder"]

logger = logging.getLogger(__name__)


@with_model_options
class SparseEncoder(QueryDocumentMixin, SimilarityMixin, BaseModel):
    """Maps texts to sparse vocabulary-sized vectors (SPLADE); a drop-in for ``sentence_transformers.SparseEncoder``.

    Args:
        max_active_dims: keep at most this many non-zero dimensions per embedding (also read from the saved config).
        similarity_fn_name: ``dot`` (default), ``cosine``, ``euclidean`` or ``manhattan``.
        The other arguments are as for :class:`~sentrs.SentenceTransformer`.
    """

    model_type: ClassVar[str] = "SparseEncoder"
    model_card_data_class: ClassVar[Any] = ClassOnAccess("sentrs.sparse_encoder.model_card:SparseEncoderModelCardData")
    default_huggingface_organization: ClassVar[str | None] = "sparse-encoder"
    _default_prompts: ClassVar[dict[str, str | None]] = {"query": None, "document": None}
    _engine_task: ClassVar[str | None] = "fill-mask"
    _engine_call_settings: ClassVar[tuple[str, ...]] = ("max_active_dims",)
    default_similarity_fn_name: ClassVar[str] = "dot"

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        similarity_fn_name: str | SimilarityFunction | None = None,
        max_active_dims: int | None = None,
        **options: Unpack[ModelOptions],
    ) -> None:
        self.max_active_dims = check_optional_positive_int(max_active_dims, "max_active_dims")
        self._init_similarity(similarity_fn_name)
        super().__init__(model_name_or_path, **options)
        if self.max_active_dims is None and self._engine is None:
            from sentrs.sparse_encoder.modules.sparse_auto_encoder import SparseAutoEncoder

            for module in self._modules.values():
                if isinstance(module, SparseAutoEncoder):
                    self.max_active_dims = module.k
                    break

    # ------------------------------------------------------------------ construction and config
    def _load_default_modules(self, model_dir: str, **hub_kwargs: Any) -> OrderedDict[str, nn.Module]:
        """A masked-LM folder gets Transformer(fill-mask) + SpladePooling(max); any other transformer gets the CSR
        head: Transformer + mean Pooling + SparseAutoEncoder(hidden=4d, k=256, k_aux=512), freshly initialised."""
        from sentrs.base.modules.transformer import Transformer
        from sentrs.base.peft_mixin import load_transformer_config
        from sentrs.sentence_transformer.modules.pooling import Pooling
        from sentrs.sparse_encoder.modules.sparse_auto_encoder import SparseAutoEncoder
        from sentrs.sparse_encoder.modules.splade_pooling import SpladePooling

        # Through the config loader, so a folder holding only a PEFT adapter reads its base model's architectures.
        archs = list(getattr(load_transformer_config(model_dir), "architectures", None) or [])
        is_mlm = any(a.endswith("ForMaskedLM") for a in archs)
        transformer = Transformer(
            model_dir,
            transformer_task="fill-mask" if is_mlm else "feature-extraction",
            model_kwargs=hub_kwargs.get("model_kwargs"),
            processor_kwargs=hub_kwargs.get("processor_kwargs"),
            config_kwargs=hub_kwargs.get("config_kwargs"),
            cache_dir=self.cache_folder,
            backend=hub_kwargs.get("backend", "torch"),
        )
        if is_mlm:
            return OrderedDict(
                [("0", transformer), ("1", SpladePooling("max", "relu", transformer.get_embedding_dimension()))]
            )
        logger.warning(
            "%s is not a masked-language model; using Transformer + mean Pooling + a new (untrained) "
            "SparseAutoEncoder",
            model_dir,
        )
        dim = transformer.get_embedding_dimension()
        pooling = Pooling(dim, pooling_mode="mean")
        sae = SparseAutoEncoder(input_dim=dim, hidden_dim=4 * dim, k=256, k_aux=512)
        return OrderedDict([("0", transformer), ("1", pooling), ("2", sae)])

    def _load_converted_modules(
        self, model_dir: str, saved_type: str, trust_remote_code: bool = False, **hub_kwargs: Any
    ) -> OrderedDict[str, nn.Module]:
        """A SentenceTransformer folder keeps its modules and gets a new SparseAutoEncoder on top (CSR)."""
        from sentrs.sparse_encoder.modules.sparse_auto_encoder import SparseAutoEncoder

        if saved_type != "SentenceTransformer":
            return self._load_default_modules(model_dir, **hub_kwargs)
        modules = self._load_modules(model_dir, trust_remote_code=trust_remote_code, **hub_kwargs)
        dim = None
        for module in reversed(list(modules.values())):
            getter = getattr(module, "get_embedding_dimension", None)
            if getter is not None and getter() is not None:
                dim = int(getter())
                break
        if dim is None:
            raise ValueError(f"cannot tell the embedding dimension of the SentenceTransformer in {model_dir}")
        modules[str(len(modules))] = SparseAutoEncoder(input_dim=dim, hidden_dim=4 * dim, k=dim // 4, k_aux=dim // 2)
        return modules

    def _parse_model_config(self, model_config: dict[str, Any]) -> None:
        name = model_config.get("similarity_fn_name")
        if self._user_similarity is None and name in SIMILARITY_FN_NAMES:
            self.similarity_fn_name = name
        if self.max_active_dims is None and model_config.get("max_active_dims") is not None:
            self.max_active_dims = int(model_config["max_active_dims"])

    def _get_model_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"similarity_fn_name": self._similarity_fn_name}
        if self.max_active_dims is not None:
            config["max_active_dims"] = self.max_active_dims
        return config

    def _check_engine(self, pipeline: HostPipeline) -> None:
        from sentrs.base.engine.steps import HostSpladePooling, NeedsTorch

        if pipeline.transformer.task != "fill-mask" or [type(step) for step in pipeline.steps] != [HostSpladePooling]:
            raise NeedsTorch("SparseEncoder engine path needs an MLM Transformer + SpladePooling")

    def get_embedding_dimension(self) -> int | None:
        """Vocabulary size (the sparse vectors' width)."""
        modules = list(self) if self._engine is not None else list(self._modules.values())
        for module in reversed(modules):
            getter = getattr(module, "get_embedding_dimension", None)
            if getter is not None and getter() is not None:
                return int(getter())
        return None

    def get_sentence_embedding_dimension(self) -> int | None:
        """Deprecated name of :meth:`get_embedding_dimension`."""
        return self.get_embedding_dimension()

    def _splade(self) -> SpladePooling | None:
        from sentrs.sparse_encoder.modules.splade_pooling import SpladePooling

        if self._engine is not None:
            return None  # the engine pools in Rust, without sequence chunks

        for module in self._modules.values():
            if isinstance(module, SpladePooling):
                return module
        return None

    @property
    def splade_pooling_chunk_size(self) -> int | None:
        """Sequence chunk of SpladePooling's torch path (None: whole sequence)."""
        pooling = self._splade()
        return pooling.chunk_size if pooling is not None else None

    @splade_pooling_chunk_size.setter
    def splade_pooling_chunk_size(self, value: int | None) -> None:

        pooling = self._splade()
        if pooling is None:
            logger.warning("This model has no SpladePooling module; splade_pooling_chunk_size is ignored")
            return
        pooling.chunk_size = value

    # ------------------------------------------------------------------ encode
    def encode(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_tensor: bool = True,
        convert_to_sparse_tensor: bool = True,
        save_to_cpu: bool = False,
        device: str | None = None,
        max_active_dims: int | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Sparse embeddings: a ``(n, vocab)`` torch sparse COO tensor by default (1-D for one text).

        ``convert_to_sparse_tensor=False`` gives dense tensors, ``convert_to_tensor=False`` a list of per-text
        tensors; ``max_active_dims`` keeps only the largest dimensions of each embedding.
        """
        import torch

        inputs = pop_sentences_alias(inputs, kwargs)
        batch_size = check_batch_size(batch_size)
        use_pool = multi_process_requested(pool, device, chunk_size)
        unused = set(kwargs) - set(self.get_model_kwargs()) - {"task", "processing_kwargs", "max_active_dims"}
        if unused:
            raise ValueError(
                f"SparseEncoder.encode() got keyword arguments this model does not use: {sorted(unused)}; it accepts "
                f"{sorted({'task', 'processing_kwargs', *self.get_model_kwargs()})}"
            )
        max_active_dims = max_active_dims if max_active_dims is not None else self.max_active_dims
        if max_active_dims is not None and (
            isinstance(max_active_dims, bool) or not isinstance(max_active_dims, int) or max_active_dims < 1
        ):
            raise ValueError(f"max_active_dims must be a positive integer or None, got {max_active_dims!r}")
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        batch, single = prepare_text_inputs(inputs)
        resolved_prompt = self._resolve_prompt(prompt, prompt_name)
        if not batch:
            import torch

            empty = torch.tensor([])
            return (
                empty.to_sparse()
                if convert_to_sparse_tensor and convert_to_tensor
                else (empty if convert_to_tensor else [])
            )
        if use_pool:
            from sentrs.base.multi_process import run_in_pool

            coo = run_in_pool(
                self,
                batch,
                pool,
                device,
                chunk_size,
                bool(show_progress_bar),
                prompt=resolved_prompt,
                batch_size=batch_size,
                max_active_dims=max_active_dims,
                **kwargs,
            )
        else:
            coo = self._inference(
                batch, resolved_prompt, batch_size, bool(show_progress_bar), device, max_active_dims, **kwargs
            )
        if not save_to_cpu and self.device.type != "cpu":
            coo = coo.to(self.device)
        result: Any = coo if convert_to_sparse_tensor else coo.to_dense()
        if not convert_to_tensor:
            result = list(result)
        if single:
            return result[0]
        return result

    def _inference(
        self,
        inputs: list[Any],
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        device: str | None,
        max_active_dims: int | None,
        **kwargs: Any,
    ) -> Tensor:
        """All embeddings as one coalesced ``(n, width)`` sparse COO tensor on the CPU, in input order."""
        import torch

        from sentrs.base.tensors import host_float32
        from sentrs.sparse_encoder._fused_head import FusedSpladeHead
        from sentrs.sparse_encoder.modules.splade_pooling import SpladePooling

        with self._inference_context():
            if self._engine is not None:
                engine_parts: list[tuple[np.ndarray, ops.CsrArrays]] = []
                for rows, out in self._batched_forward(
                    inputs, prompt, batch_size, show_progress_bar, device, max_active_dims=max_active_dims, **kwargs
                ):
                    engine_parts.append((rows, out["sparse_rows"]))
                return _stack_rows(engine_parts, len(inputs), self.get_embedding_dimension() or 0)
            modules = self._inference_modules(kwargs.get("task"))
            splade = modules[-1] if isinstance(modules[-1], SpladePooling) else None
            parts: list[tuple[np.ndarray, ops.CsrArrays]] = []
            width = 0
            if max_active_dims is not None:
                kwargs["max_active_dims"] = max_active_dims
            on_cpu = (self.device.type if device is None else torch.device(device).type) == "cpu"
            fused = FusedSpladeHead.for_modules(modules) if on_cpu and not torch.is_grad_enabled() else None
            with fused.capturing() if fused is not None else contextlib.nullcontext():
                for rows, out in self._batched_forward(
                    inputs, prompt, batch_size, show_progress_bar, device, stop_before=splade, **kwargs
                ):
                    csr = fused.pool_to_csr(out, max_active_dims) if fused is not None else None
                    if csr is not None:
                        assert fused is not None
                        width = fused.decoder.out_features
                        parts.append((rows, csr))
                        continue
                    if fused is not None:
                        # The model did not return the decoder's output as it is: this batch runs unfused.
                        with fused.released():
                            out = modules[0](out)
                    csr = splade.pool_to_csr(out, max_active_dims) if splade is not None else None
                    if csr is None:
                        if splade is not None:
                            out = splade(out)
                        dense = out["sentence_embedding"].detach().float()
                        host = host_float32(dense)
                        csr = ops.dense_to_csr(host if host is not None else dense.cpu().numpy(), max_active_dims)
                        width = int(dense.shape[-1])
                    else:
                        width = int(out["token_embeddings"].shape[-1])
                    parts.append((rows, csr))
            return _stack_rows(parts, len(inputs), width)

    # ------------------------------------------------------------------ similarity and inspection

    @staticmethod
    def sparsity(embeddings: Tensor) -> dict[str, float]:
        """Mean active dimensions per row and the mean share of zero dimensions."""
        import torch
        from torch import Tensor

        if not isinstance(embeddings, Tensor):
            raise TypeError(f"embeddings must be a torch.Tensor, got {type(embeddings).__name__}")
        if embeddings.ndim not in (1, 2):
            raise ValueError(f"embeddings must be 1-D or 2-D, got {embeddings.ndim}-D")
        if embeddings.ndim == 1:
            embeddings = embeddings.unsqueeze(0)
        rows, cols = embeddings.shape
        if rows == 0 or cols == 0:
            return {"active_dims": 0.0, "sparsity_ratio": 1.0}
        if embeddings.is_sparse:
            coalesced = embeddings.coalesce()
            nonzero = coalesced.values() != 0
            counts = torch.bincount(coalesced.indices()[0][nonzero], minlength=rows)
        else:
            counts = (embeddings != 0).sum(dim=1)
        active = float(counts.float().mean().item())
        return {"active_dims": active, "sparsity_ratio": 1.0 - active / cols}

    @staticmethod
    def intersection(embeddings_1: Tensor, embeddings_2: Tensor) -> Tensor:
        """Element-wise product of a 1-D embedding with a 1-D or 2-D one, keeping only positive entries (sparse)."""
        if embeddings_1.ndim != 1:
            raise ValueError(f"embeddings_1 must be 1-D, got {embeddings_1.ndim}-D")
        if embeddings_2.ndim not in (1, 2):
            raise ValueError(f"embeddings_2 must be 1-D or 2-D, got {embeddings_2.ndim}-D")
        if embeddings_1.shape[-1] != embeddings_2.shape[-1]:
            raise ValueError(
                f"embeddings must have the same vocabulary size, got {embeddings_1.shape[-1]} and "
                f"{embeddings_2.shape[-1]}"
            )
        a = embeddings_1.to_dense() if embeddings_1.is_sparse else embeddings_1
        b = embeddings_2.to_dense() if embeddings_2.is_sparse else embeddings_2
        product = a * b
        return product.clamp(min=0).to_sparse()

    def decode(self, embeddings: Tensor, top_k: int | None = None) -> list[Any]:
        """``[(token, weight), ...]`` best first (a list of such lists for 2-D input); ``top_k`` caps each list."""
        import torch
        from torch import Tensor

        if not isinstance(embeddings, Tensor):
            raise TypeError(f"embeddings must be a torch.Tensor, got {type(embeddings).__name__}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
            raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
        if embeddings.ndim not in (1, 2):
            raise ValueError(f"embeddings must be 1-D or 2-D, got {embeddings.ndim}-D")
        single = embeddings.ndim == 1
        matrix = embeddings.unsqueeze(0) if single else embeddings
        dense = (matrix.to_dense() if matrix.is_sparse else matrix).detach().float().cpu()
        decoded = []
        for row in dense:
            idx = torch.nonzero(row, as_tuple=True)[0]
            vals = row[idx]
            order = torch.argsort(vals, descending=True, stable=True)[:top_k]
            tokens = self.tokenizer.convert_ids_to_tokens(idx[order].tolist())
            decoded.append(list(zip(tokens, vals[order].tolist())))
        return decoded[0] if single else decoded


def _stack_rows(parts: list[tuple[np.ndarray, ops.CsrArrays]], n: int, width: int) -> Tensor:
    """Per-batch CSR pieces (rows given in input numbering) to one coalesced COO tensor in input order."""
    import torch

    all_rows, all_cols, all_vals = [], [], []
    for rows, (indptr, indices, values) in parts:
        counts = np.diff(indptr)
        all_rows.append(np.repeat(np.asarray(rows, dtype=np.int64), counts))
        all_cols.append(indices)
        all_vals.append(values)
    index = torch.from_numpy(np.stack([np.concatenate(all_rows), np.concatenate(all_cols)]))
    stored = torch.from_numpy(np.concatenate(all_vals))
    return torch.sparse_coo_tensor(index, stored, (n, width), check_invariants=False).coalesce()
