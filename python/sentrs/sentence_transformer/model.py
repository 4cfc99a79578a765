"""``SentenceTransformer``: dense sentence embeddings with the reference's API."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from sentrs import ops
from sentrs.base.inputs import (
    check_encode_args,
    check_optional_positive_int,
    multi_process_requested,
)
from sentrs.base.inputs import pop_sentences_alias as _pop_sentences_alias
from sentrs.base.model import BaseModel, ClassOnAccess, ModelOptions, QueryDocumentMixin, with_model_options
from sentrs.base.quantization import quantize_embeddings
from sentrs.base.similarity_config import SimilarityMixin
from sentrs.sentence_transformer.fit_mixin import FitMixin

if TYPE_CHECKING:
    from torch import Tensor, nn
    from typing_extensions import Unpack

    from sentrs.base.engine.steps import HostPipeline
    from sentrs.base.similarity import SimilarityFunction

__all__ = ["SentenceTransformer"]

logger = logging.getLogger(__name__)


@with_model_options
class SentenceTransformer(QueryDocumentMixin, SimilarityMixin, BaseModel, FitMixin):
    """Maps sentences to dense vectors; a drop-in for ``sentence_transformers.SentenceTransformer``.

    Args:
        model_name_or_path: a local model folder or a Hub id (cache first; ``HF_HUB_OFFLINE`` respected).
        modules: build the model from these modules instead.
        device: ``"cpu"``, ``"cuda"``, ... (default: cuda when available).
        prompts: ``{"query": "query: ", ...}``; merged over the saved prompts.
        default_prompt_name: a key of ``prompts`` used when ``encode`` gets no prompt.
        cache_folder: Hub cache folder (default ``SENTENCE_TRANSFORMERS_HOME`` or the HF cache).
        trust_remote_code: allow custom code (sentrs refuses custom module classes either way).
        revision, local_files_only, token: Hub options.
        model_kwargs, processor_kwargs, config_kwargs: passed to transformers.
        model_card_data: kept for the model card.
        backend: ``"torch"``, ``"onnx"`` or ``"openvino"``. With ONNX/OpenVINO and a folder of plain modules
            (Transformer, Pooling, Dense, Normalize) the exported file runs in the engine without torch modules
            (exported on the first load when missing); other folders load their torch modules around it.
        similarity_fn_name: ``cosine`` (default), ``dot``, ``euclidean`` or ``manhattan``.
        truncate_dim: keep only the first ``truncate_dim`` dimensions of every embedding.
    """

    model_type: ClassVar[str] = "SentenceTransformer"
    model_card_data_class: ClassVar[Any] = ClassOnAccess(
        "sentrs.sentence_transformer.model_card:SentenceTransformerModelCardData"
    )
    default_huggingface_organization: ClassVar[str | None] = "sentence-transformers"
    _default_prompts: ClassVar[dict[str, str | None]] = {"query": None, "document": None}
    _engine_task: ClassVar[str | None] = "feature-extraction"
    default_similarity_fn_name: ClassVar[str] = "cosine"

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        similarity_fn_name: str | SimilarityFunction | None = None,
        truncate_dim: int | None = None,
        **options: Unpack[ModelOptions],
    ) -> None:
        self.truncate_dim = check_optional_positive_int(truncate_dim, "truncate_dim")
        self._init_similarity(similarity_fn_name)
        super().__init__(model_name_or_path, **options)
        if truncate_dim is not None:
            self.truncate_dim = truncate_dim

    # ------------------------------------------------------------------ config
    def _check_engine(self, pipeline: HostPipeline) -> None:
        from sentrs.base.engine.steps import NeedsTorch

        if pipeline.transformer.task != "feature-extraction":
            raise NeedsTorch("SentenceTransformer over a non-embedding transformer")

    def _sync_twin(self, twin: Any) -> None:
        twin.similarity_fn_name = self.similarity_fn_name
        twin.truncate_dim = self.truncate_dim

    def _load_default_modules(self, model_dir: str, **hub_kwargs: Any) -> OrderedDict[str, nn.Module]:
        from sentrs.base.modules.transformer import Transformer
        from sentrs.sentence_transformer.modules.pooling import Pooling

        transformer = Transformer(
            model_dir,
            model_kwargs=hub_kwargs.get("model_kwargs"),
            processor_kwargs=hub_kwargs.get("processor_kwargs"),
            config_kwargs=hub_kwargs.get("config_kwargs"),
            cache_dir=self.cache_folder,
            backend=hub_kwargs.get("backend", "torch"),
        )
        if transformer.module_output_name != "token_embeddings":
            return OrderedDict([("0", transformer)])  # it outputs sentence embeddings itself (CLIP)
        archs = getattr(transformer.auto_model.config, "architectures", None) or []
        mode = "lasttoken" if any(a.endswith("ForCausalLM") for a in archs) else "mean"
        pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode=mode)
        return OrderedDict([("0", transformer), ("1", pooling)])

    def _parse_model_config(self, model_config: dict[str, Any]) -> None:
        if model_config.get("model_type", self.model_type) != self.model_type:
            return
        name = model_config.get("similarity_fn_name")
        if name is not None and self._user_similarity is None:
            self.similarity_fn_name = name
        if self.truncate_dim is None and model_config.get("truncate_dim") is not None:
            self.truncate_dim = int(model_config["truncate_dim"])

    def _get_model_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"similarity_fn_name": self.similarity_fn_name}
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config

    # ------------------------------------------------------------------ dimensions
    def get_embedding_dimension(self) -> int | None:
        """Size of the sentence embedding (after ``truncate_dim``), or None if no module fixes it."""
        dim = None
        modules = list(self) if self._engine is not None else list(self._modules.values())
        for module in reversed(modules):
            getter = getattr(module, "get_embedding_dimension", None)
            if getter is not None:
                dim = getter()
                if dim is not None:
                    break
        if dim is None:
            return None
        return min(dim, self.truncate_dim) if self.truncate_dim else dim

    def get_sentence_embedding_dimension(self) -> int | None:
        """Deprecated name of :meth:`get_embedding_dimension`."""
        return self.get_embedding_dimension()

    @contextmanager
    def truncate_embeddings(self, truncate_dim: int | None) -> Iterator[None]:
        """Temporarily sets :attr:`truncate_dim`."""
        original = self.truncate_dim
        try:
            self.truncate_dim = truncate_dim
            yield
        finally:
            self.truncate_dim = original

    truncate_sentence_embeddings = truncate_embeddings

    def set_pooling_include_prompt(self, include_prompt: bool) -> None:
        """Sets ``include_prompt`` on the first Pooling module."""
        from sentrs.sentence_transformer.modules.pooling import Pooling

        if self._engine is not None:
            from sentrs.base.engine.steps import HostPooling

            for step in self._engine.steps:
                if isinstance(step, HostPooling):
                    step.include_prompt = include_prompt
                    return
            return
        for module in self._modules.values():
            if isinstance(module, Pooling):
                module.include_prompt = include_prompt
                return

    # ------------------------------------------------------------------ encode
    def encode(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: Literal["sentence_embedding", "token_embeddings"] | None = "sentence_embedding",
        precision: Literal["float32", "int8", "uint8", "binary", "ubinary"] | None = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Embeds one input or a batch of them: texts, and for a multimodal model (CLIP, ...) images (PIL images,
        image paths or URLs, ``(H, W, C)`` arrays), audio, video or ``{"text": ..., "image": ...}`` dicts, as the
        model's :attr:`modalities` allow.

        Returns a ``(n, dim)`` float32 numpy array by default (1-D for a single str); ``convert_to_tensor``
        gives a tensor, ``convert_to_numpy=False`` a list of tensors; ``output_value="token_embeddings"`` a list
        of ``(n_tokens_i, hidden)`` tensors; ``output_value=None`` a list of per-text feature dicts.
        ``precision`` quantises the result (``int8``, ``uint8``, ``binary``, ``ubinary``).
        """
        inputs = _pop_sentences_alias(inputs, kwargs)
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        if convert_to_tensor:
            convert_to_numpy = False
        if output_value != "sentence_embedding":
            convert_to_tensor = convert_to_numpy = False
        if output_value not in ("sentence_embedding", "token_embeddings", None):
            raise ValueError(
                f"output_value must be 'sentence_embedding', 'token_embeddings' or None, got {output_value!r}"
            )
        allowed = set(self.get_model_kwargs()) | {"task", "processing_kwargs"}
        precision_name = check_encode_args(batch_size, pool, device, kwargs, allowed, precision, truncate_dim)
        use_pool = multi_process_requested(pool, device, chunk_size)
        batch, single = self._prepare_inputs(inputs)
        resolved_prompt = self._resolve_prompt(prompt, prompt_name)
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim

        inference_kwargs: dict[str, Any] = dict(
            prompt=resolved_prompt,
            batch_size=batch_size,
            show_progress_bar=bool(show_progress_bar),
            output_value=output_value,
            keep_on_host=convert_to_numpy,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            **kwargs,
        )
        if use_pool and len(batch):
            from sentrs.base.multi_process import run_in_pool

            pool_kwargs = {k: v for k, v in inference_kwargs.items() if k != "show_progress_bar"}
            result = run_in_pool(self, batch, pool, device, chunk_size, bool(show_progress_bar), **pool_kwargs)
        elif self._distributed_inference is not None and device is None:
            # Inside distributed_evaluation on rank 0: every process of the job embeds a shard.
            result = self._distributed_inference(batch, **inference_kwargs)
        else:
            result = self._inference(batch, device=device, **inference_kwargs)

        if output_value == "token_embeddings" and len(batch) and precision_name != "float32":
            # As the reference: each input's token matrix quantised (numpy), int8 buckets shared by the batch.
            result = quantize_embeddings(list(result), precision=precision_name)
        if output_value != "sentence_embedding":
            return result[0] if single else result
        embeddings: Any = result
        if len(batch) and precision_name != "float32":
            embeddings = quantize_embeddings(embeddings, precision=precision_name)
        if convert_to_tensor:
            import torch

            if len(batch):
                embeddings = torch.as_tensor(embeddings) if isinstance(embeddings, np.ndarray) else embeddings
            else:
                embeddings = torch.tensor([], device=self.device)
        elif convert_to_numpy:
            if not len(batch):
                embeddings = np.array([])
            elif not isinstance(embeddings, np.ndarray):
                embeddings = embeddings.detach().cpu().float().numpy()
        else:
            import torch

            embeddings = list(torch.from_numpy(embeddings) if isinstance(embeddings, np.ndarray) else embeddings)
        if single:
            return embeddings[0]
        return embeddings

    def encode_multi_process(
        self,
        sentences: list[str],
        pool: dict[str, Any],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        chunk_size: int | None = None,
        show_progress_bar: bool | None = None,
        precision: Literal["float32", "int8", "uint8", "binary", "ubinary"] = "float32",
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
    ) -> np.ndarray:
        """Deprecated in the reference: ``encode(sentences, pool=pool, ...)`` does the same."""
        result: np.ndarray = self.encode(
            sentences,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            output_value="sentence_embedding",
            precision=precision,
            convert_to_numpy=True,
            convert_to_tensor=False,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            pool=pool,
            chunk_size=chunk_size,
        )
        return result

    def _inference(
        self,
        inputs: list[Any],
        *,
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        output_value: str | None,
        keep_on_host: bool,
        normalize_embeddings: bool,
        truncate_dim: int | None,
        device: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Runs every input through the engine and restores input order.

        Sentence embeddings come back as one ``(n, dim)`` array (numpy when ``keep_on_host`` or on the CPU, else a
        tensor on the model's device); other outputs as lists of tensors in input order.
        """
        with self._inference_context():
            host_out: npt.NDArray[np.float32] | None = None
            device_parts: list[tuple[npt.NDArray[np.int64], Tensor]] = []
            rows_out: list[Any] = [None] * len(inputs)
            for rows, out in self._batched_forward(
                inputs,
                prompt,
                batch_size,
                show_progress_bar,
                device,
                host_path=output_value == "sentence_embedding",
                **kwargs,
            ):
                if output_value == "sentence_embedding":
                    emb = out["sentence_embedding"]
                    if truncate_dim is not None:
                        emb = emb[..., :truncate_dim]
                    if isinstance(emb, np.ndarray):
                        host: npt.NDArray[np.float32] | None = np.asarray(emb, dtype=np.float32)
                    else:
                        from sentrs.base.tensors import host_float32

                        host = host_float32(emb)
                        if host is None and keep_on_host:
                            host = emb.detach().float().cpu().numpy()
                    if host is not None:
                        if normalize_embeddings:
                            host = ops.normalize(host)
                        if host_out is None:
                            host_out = np.empty((len(inputs), host.shape[1]), dtype=np.float32)
                        host_out[rows] = host
                    else:
                        import torch

                        if normalize_embeddings:
                            emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                        device_parts.append((rows, emb))
                elif output_value == "token_embeddings":
                    import torch

                    tokens, mask = _as_tensor(out["token_embeddings"]), _as_tensor(out["attention_mask"])
                    lengths = mask.shape[1] - mask.flip(1).to(torch.int64).argmax(dim=1)
                    lengths = torch.where(mask.sum(dim=1) > 0, lengths, torch.ones_like(lengths))
                    for j, r in enumerate(rows):
                        rows_out[int(r)] = tokens[j, : int(lengths[j])]
                else:
                    n = len(rows)
                    for j, r in enumerate(rows):
                        rows_out[int(r)] = {
                            name: (_row(value, j) if _is_batched(value, n) else value) for name, value in out.items()
                        }
            if output_value != "sentence_embedding":
                return rows_out
            if host_out is not None:
                return host_out
            if not device_parts:
                return np.zeros((0, 0), dtype=np.float32)
            import torch

            order = torch.from_numpy(np.concatenate([r for r, _ in device_parts])).to(device_parts[0][1].device)
            stacked = torch.cat([e for _, e in device_parts])
            result = torch.empty_like(stacked)
            result[order] = stacked
            return result


def _as_tensor(value: Any) -> Tensor:
    """A torch view of an engine output (numpy) or the tensor itself."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value


def _is_batched(value: Any, n: int) -> bool:
    return hasattr(value, "ndim") and hasattr(value, "shape") and value.ndim > 0 and value.shape[0] == n


def _row(value: Any, j: int) -> Any:
    """Row ``j`` of a batched output, as a tensor (the reference's feature dicts hold tensors)."""
    return _as_tensor(value)[j]
