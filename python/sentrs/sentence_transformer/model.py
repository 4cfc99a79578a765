"""``SentenceTransformer``: dense sentence embeddings with the reference's API."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from sentrs import ops
from sentrs.base.inputs import check_encode_args, check_similarity_fn_name
from sentrs.base.inputs import normalize_inputs as _normalize_inputs
from sentrs.base.inputs import pop_sentences_alias as _pop_sentences_alias
from sentrs.base.model import BaseModel, QueryDocumentMixin
from sentrs.base.modules.transformer import Transformer
from sentrs.sentence_transformer.modules.pooling import Pooling
from sentrs.util.quantization import quantize_embeddings
from sentrs.util.similarity import SimilarityFunction
from sentrs.util.tensor import host_float32

__all__ = ["SentenceTransformer"]

logger = logging.getLogger(__name__)


class SentenceTransformer(QueryDocumentMixin, BaseModel):
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
        backend: ``"torch"`` (ONNX and OpenVINO are not available yet).
        similarity_fn_name: ``cosine`` (default), ``dot``, ``euclidean`` or ``manhattan``.
        truncate_dim: keep only the first ``truncate_dim`` dimensions of every embedding.
    """

    model_type: ClassVar[str] = "SentenceTransformer"
    default_huggingface_organization: ClassVar[str | None] = "sentence-transformers"
    _default_prompts: ClassVar[dict[str, str | None]] = {"query": None, "document": None}

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        modules: list[nn.Module] | OrderedDict[str, nn.Module] | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        use_auth_token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: Any = None,
        backend: Literal["torch", "onnx", "openvino"] = "torch",
        similarity_fn_name: str | SimilarityFunction | None = None,
        truncate_dim: int | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if truncate_dim is not None and (
            isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int) or truncate_dim < 1
        ):
            raise ValueError(f"truncate_dim must be a positive integer or None, got {truncate_dim!r}")
        self._similarity_fn_name: str | None = None
        self.truncate_dim = truncate_dim
        self._user_similarity = similarity_fn_name
        super().__init__(
            model_name_or_path,
            modules=modules,
            device=device,
            prompts=prompts,
            default_prompt_name=default_prompt_name,
            cache_folder=cache_folder,
            trust_remote_code=trust_remote_code,
            revision=revision,
            local_files_only=local_files_only,
            token=token,
            use_auth_token=use_auth_token,
            model_kwargs=model_kwargs,
            processor_kwargs=processor_kwargs,
            tokenizer_kwargs=tokenizer_kwargs,
            config_kwargs=config_kwargs,
            model_card_data=model_card_data,
            backend=backend,
        )
        if similarity_fn_name is not None:
            self.similarity_fn_name = similarity_fn_name
        if truncate_dim is not None:
            self.truncate_dim = truncate_dim

    # ------------------------------------------------------------------ config
    def _load_default_modules(self, model_dir: str, **hub_kwargs: Any) -> OrderedDict[str, nn.Module]:
        transformer = Transformer(
            model_dir,
            model_kwargs=hub_kwargs.get("model_kwargs"),
            processor_kwargs=hub_kwargs.get("processor_kwargs"),
            config_kwargs=hub_kwargs.get("config_kwargs"),
            cache_dir=self.cache_folder,
            backend=hub_kwargs.get("backend", "torch"),
        )
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

    @property
    def similarity_fn_name(self) -> str:
        """The similarity used by :meth:`similarity`; defaults to ``cosine`` on first use."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | SimilarityFunction) -> None:
        self._similarity_fn_name = check_similarity_fn_name(value)

    # ------------------------------------------------------------------ similarity
    def similarity(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """``(n, m)`` scores between two sets of embeddings with :attr:`similarity_fn_name`."""
        return SimilarityFunction.to_similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Tensor:
        """``(n,)`` scores between row i of each set with :attr:`similarity_fn_name`."""
        return SimilarityFunction.to_similarity_pairwise_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    # ------------------------------------------------------------------ dimensions
    def get_embedding_dimension(self) -> int | None:
        """Size of the sentence embedding (after ``truncate_dim``), or None if no module fixes it."""
        dim = None
        for module in reversed(list(self._modules.values())):
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
        precision: Literal["float32", "int8", "uint8", "binary", "ubinary"] = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Embeds one text or a batch of texts.

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
        check_encode_args(batch_size, pool, device, kwargs, allowed, precision, truncate_dim)
        single = self.is_singular_input(inputs)
        batch = [inputs] if single else _normalize_inputs(inputs)
        resolved_prompt = self._resolve_prompt(prompt, prompt_name)
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim

        result = self._inference(
            batch,
            prompt=resolved_prompt,
            batch_size=batch_size,
            show_progress_bar=bool(show_progress_bar),
            output_value=output_value,
            keep_on_host=convert_to_numpy,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            device=device,
            **kwargs,
        )

        if output_value != "sentence_embedding":
            return result[0] if single else result
        embeddings: Any = result
        if len(batch) and precision != "float32":
            embeddings = quantize_embeddings(embeddings, precision=precision)
        if convert_to_tensor:
            if len(batch):
                embeddings = torch.as_tensor(embeddings) if isinstance(embeddings, np.ndarray) else embeddings
            else:
                embeddings = torch.tensor([], device=self.device)
        elif convert_to_numpy:
            if not len(batch):
                embeddings = np.array([])
            elif isinstance(embeddings, Tensor):
                embeddings = embeddings.detach().cpu().float().numpy()
        else:
            embeddings = list(torch.from_numpy(embeddings) if isinstance(embeddings, np.ndarray) else embeddings)
        if single:
            return embeddings[0]
        return embeddings

    @torch.inference_mode()
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
        """Tokenizes everything once in Rust, runs length-sorted batches, and restores input order.

        Sentence embeddings come back as one ``(n, dim)`` array (numpy when ``keep_on_host`` or on the CPU, else a
        tensor on the model's device); other outputs as lists in input order.
        """
        host_out: npt.NDArray[np.float32] | None = None
        device_parts: list[tuple[npt.NDArray[np.int64], Tensor]] = []
        rows_out: list[Any] = [None] * len(inputs)
        for rows, out in self._batched_forward(inputs, prompt, batch_size, show_progress_bar, device, **kwargs):
            if output_value == "sentence_embedding":
                emb: Tensor = out["sentence_embedding"]
                if truncate_dim is not None:
                    emb = emb[..., :truncate_dim]
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
                    if normalize_embeddings:
                        emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                    device_parts.append((rows, emb))
            elif output_value == "token_embeddings":
                tokens, mask = out["token_embeddings"], out["attention_mask"]
                lengths = mask.shape[1] - mask.flip(1).to(torch.int64).argmax(dim=1)
                lengths = torch.where(mask.sum(dim=1) > 0, lengths, torch.ones_like(lengths))
                for j, r in enumerate(rows):
                    rows_out[int(r)] = tokens[j, : int(lengths[j])]
            else:
                n = len(rows)
                for j, r in enumerate(rows):
                    rows_out[int(r)] = {
                        name: (
                            value[j] if isinstance(value, Tensor) and value.ndim > 0 and value.shape[0] == n else value
                        )
                        for name, value in out.items()
                    }
        if output_value != "sentence_embedding":
            return rows_out
        if host_out is not None:
            return host_out
        if not device_parts:
            return np.zeros((0, 0), dtype=np.float32)
        order = torch.from_numpy(np.concatenate([r for r, _ in device_parts])).to(device_parts[0][1].device)
        stacked = torch.cat([e for _, e in device_parts])
        result = torch.empty_like(stacked)
        result[order] = stacked
        return result
