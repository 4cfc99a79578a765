"""Torch-free ``SentenceTransformer`` and ``CrossEncoder`` for exported ONNX / OpenVINO models.

They implement the inference API (``encode``, ``encode_query``, ``encode_document``, ``predict``, ``rank`` and the
attributes around them) with the Rust core and numpy. Results equal the torch classes with the same backend: same
tokenization, same exported model, same pooling kernels. Outputs that are torch objects by definition (tensors from
``convert_to_tensor=True``, ``similarity`` scores) import torch when asked for. Every other attribute, for example
``save``, ``fit`` or ``output_value="token_embeddings"``, is served by the torch model class, built on first use
from the same arguments.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from sentrs import ops
from sentrs.backend.lite.pipeline import ACTIVATIONS, LitePipeline, num_labels
from sentrs.backend.lite.tokenizer import NotLite
from sentrs.base.inputs import (
    check_encode_args,
    check_pair,
    check_predict_args,
    check_rank_args,
    check_similarity_fn_name,
    is_single_pair_input,
    is_single_text_input,
    normalize_inputs,
    pop_sentences_alias,
    rank_results,
    split_pairs,
)
from sentrs.base.prompts import QueryDocumentMixin, check_default_prompt_name, merge_prompts, resolve_prompt
from sentrs.util.quantization import quantize_embeddings

__all__ = ["LiteCrossEncoder", "LiteModel", "LiteSentenceTransformer"]

logger = logging.getLogger(__name__)


def _progress_default(show_progress_bar: bool | None) -> bool:
    if show_progress_bar is None:
        return logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
    return bool(show_progress_bar)


class LiteModel:
    """What the torch-free models share: prompts, the pipeline, batching and the fallback to the torch class."""

    model_type: ClassVar[str] = ""
    _torch_class_path: ClassVar[str] = ""
    _synced: ClassVar[tuple[str, ...]] = ("prompts", "default_prompt_name", "max_seq_length")

    def __init__(
        self,
        pipeline: LitePipeline,
        *,
        model_name_or_path: str,
        model_config: dict[str, Any],
        backend: str,
        prompts: dict[str, str] | None,
        default_prompt_name: str | None,
        default_prompts: dict[str, str | None],
        init_args: tuple[tuple[Any, ...], dict[str, Any]],
    ) -> None:
        self._pipeline = pipeline
        self._full_model: Any = None
        self._init_args = init_args
        self.model_name_or_path = model_name_or_path
        self.backend = backend
        self._model_config = model_config
        self.prompts = merge_prompts(default_prompts, model_config.get("prompts"), prompts)
        self.default_prompt_name = (
            default_prompt_name if default_prompt_name is not None else model_config.get("default_prompt_name")
        )
        check_default_prompt_name(self.default_prompt_name, self.prompts)

    # ------------------------------------------------------------------ the torch class, on demand
    def _full(self) -> Any:
        """The torch model class built from the same arguments, with this object's settings copied over."""
        if self._full_model is None:
            import importlib

            module_name, _, class_name = self._torch_class_path.partition(":")
            cls = getattr(importlib.import_module(module_name), class_name)
            args, kwargs = self._init_args
            logger.info("Building the torch %s for an attribute the torch-free pipeline lacks", class_name)
            full = cls(*args, **kwargs)
            for name in self._synced:
                setattr(full, name, getattr(self, name))
            self._full_model = full
        return self._full_model

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes this class does not define: hand them to the torch class.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._full(), name)

    # Special methods bypass __getattr__; the torch class serves these too.
    def __getitem__(self, key: Any) -> Any:
        return self._full()[key]

    def __len__(self) -> int:
        return len(self._full())

    def __iter__(self) -> Any:
        return iter(self._full())

    # ------------------------------------------------------------------ shared attributes
    @property
    def device(self) -> str:
        """Always ``"cpu"``: the exported model runs on the host (a str here, a torch.device in the torch class)."""
        return "cpu"

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length in tokens (special tokens included)."""
        return self._pipeline.transformer.tokenizer.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        self._pipeline.transformer.tokenizer.max_seq_length = value
        if self._full_model is not None:
            self._full_model.max_seq_length = value

    def get_max_seq_length(self) -> int | None:
        return self.max_seq_length

    def get_backend(self) -> str:
        return self.backend

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        return resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)

    def _batches(
        self,
        texts: list[str],
        pairs: list[str] | None,
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        processing_kwargs: Any = None,
    ) -> Iterator[tuple[npt.NDArray[np.int64], dict[str, Any]]]:
        """Tokenizes everything once, runs length-sorted batches; yields ``(input rows, output features)``.

        When the backend model runs several streams (one single-threaded run per core), batches run side by side on
        that many threads, and a call with fewer batches than streams splits them so every core gets work.
        Results come back as they finish; callers place them by row.
        """
        from tqdm.autonotebook import tqdm

        transformer = self._pipeline.transformer
        text_kwargs = processing_kwargs.get("text", {}) if isinstance(processing_kwargs, dict) else {}
        if prompt:
            texts = [prompt + t for t in texts]
        encoding = transformer.tokenizer.encode(texts, pairs, max_length=text_kwargs.get("max_length"))
        _, batches = ops.plan_batches(encoding.lengths(), batch_size)
        prompt_length = transformer.tokenizer.prompt_length(prompt) if prompt else None
        streams = transformer.model.streams
        units: list[npt.NDArray[np.int64]] = list(batches)
        if streams > 1 and 0 < len(units) < streams:
            pieces = -(-streams // len(units))
            units = [part for rows in units for part in np.array_split(rows, min(pieces, len(rows)))]

        def run(rows: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], dict[str, Any]]:
            features = transformer.features(encoding, [int(r) for r in rows])
            if prompt_length is not None:
                features["prompt_length"] = prompt_length
            return rows, self._pipeline.run(features)

        with tqdm(total=len(units), desc="Batches", disable=not show_progress_bar) as bar:
            if streams <= 1 or len(units) <= 1:
                for rows in units:
                    yield run(rows)
                    bar.update(1)
                return
            from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

            pending: set[Future[tuple[npt.NDArray[np.int64], dict[str, Any]]]] = set()
            todo = iter(units)
            with ThreadPoolExecutor(max_workers=streams, thread_name_prefix="sentrs-stream") as pool:
                for rows in itertools.islice(todo, 2 * streams):
                    pending.add(pool.submit(run, rows))
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield future.result()
                        bar.update(1)
                        nxt = next(todo, None)
                        if nxt is not None:
                            pending.add(pool.submit(run, nxt))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_name_or_path!r}, backend={self.backend!r}) [torch-free]"


class LiteSentenceTransformer(QueryDocumentMixin, LiteModel):
    """``SentenceTransformer`` inference on an exported model without torch."""

    model_type: ClassVar[str] = "SentenceTransformer"
    _torch_class_path: ClassVar[str] = "sentrs.sentence_transformer.model:SentenceTransformer"
    _synced: ClassVar[tuple[str, ...]] = (*LiteModel._synced, "similarity_fn_name", "truncate_dim")

    def __init__(
        self,
        pipeline: LitePipeline,
        *,
        similarity_fn_name: Any = None,
        truncate_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pipeline, default_prompts={"query": None, "document": None}, **kwargs)
        if pipeline.transformer.task != "feature-extraction":
            raise NotLite("SentenceTransformer over a non-embedding transformer")
        self._similarity_fn_name: str | None = None
        saved = self._model_config.get("similarity_fn_name")
        if similarity_fn_name is None and saved is not None:
            similarity_fn_name = saved
        if similarity_fn_name is not None:
            self.similarity_fn_name = similarity_fn_name
        if truncate_dim is None and self._model_config.get("truncate_dim") is not None:
            truncate_dim = int(self._model_config["truncate_dim"])
        self.truncate_dim = truncate_dim

    @property
    def similarity_fn_name(self) -> str:
        """The similarity used by :meth:`similarity`; ``cosine`` unless the model or the user set another."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "cosine"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: Any) -> None:
        value = check_similarity_fn_name(value)
        self._similarity_fn_name = value
        if self._full_model is not None:
            self._full_model.similarity_fn_name = value

    def get_embedding_dimension(self) -> int | None:
        dim = self._pipeline.get_embedding_dimension()
        if dim is None:
            return None
        return min(dim, self.truncate_dim) if self.truncate_dim else dim

    def get_sentence_embedding_dimension(self) -> int | None:
        return self.get_embedding_dimension()

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        """``(n, m)`` scores (a torch tensor, as in the reference) with :attr:`similarity_fn_name`."""
        from sentrs.util.similarity import SimilarityFunction

        return SimilarityFunction.to_similarity_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        from sentrs.util.similarity import SimilarityFunction

        return SimilarityFunction.to_similarity_pairwise_fn(self.similarity_fn_name)(embeddings1, embeddings2)

    def encode(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str | None = "sentence_embedding",
        precision: str = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Embeds one text or a batch: a ``(n, dim)`` float32 array by default, as the torch class."""
        inputs = pop_sentences_alias(inputs, kwargs)
        if output_value != "sentence_embedding" or (device is not None and not isinstance(device, list)):
            # Token embeddings, feature dicts and explicit devices go through the torch class.
            return self._full().encode(
                inputs,
                prompt_name=prompt_name,
                prompt=prompt,
                batch_size=batch_size,
                show_progress_bar=show_progress_bar,
                output_value=output_value,
                precision=precision,
                convert_to_numpy=convert_to_numpy,
                convert_to_tensor=convert_to_tensor,
                device=device,
                normalize_embeddings=normalize_embeddings,
                truncate_dim=truncate_dim,
                pool=pool,
                chunk_size=chunk_size,
                **kwargs,
            )
        check_encode_args(batch_size, pool, device, kwargs, {"task", "processing_kwargs"}, precision, truncate_dim)
        if convert_to_tensor:
            convert_to_numpy = False
        single = is_single_text_input(inputs)
        batch = [inputs] if single else normalize_inputs(inputs)
        texts, pairs = split_pairs(batch)
        resolved = self._resolve_prompt(prompt, prompt_name)
        truncate_dim = truncate_dim if truncate_dim is not None else self.truncate_dim

        embeddings: npt.NDArray[Any] | None = None
        for rows, out in self._batches(
            texts, pairs, resolved, batch_size, _progress_default(show_progress_bar), kwargs.get("processing_kwargs")
        ):
            emb = np.asarray(out["sentence_embedding"], dtype=np.float32)
            if truncate_dim is not None:
                emb = emb[:, :truncate_dim]
            if normalize_embeddings:
                emb = ops.normalize(emb)
            if embeddings is None:
                embeddings = np.empty((len(batch), emb.shape[1]), dtype=np.float32)
            embeddings[rows] = emb
        result: Any = embeddings if embeddings is not None else np.zeros((0, 0), dtype=np.float32)
        if len(batch) and precision != "float32":
            result = quantize_embeddings(result, precision=precision)
        if convert_to_tensor:
            import torch

            result = torch.as_tensor(result) if len(batch) else torch.tensor([])
        elif convert_to_numpy:
            if not len(batch):
                result = np.array([])
        else:
            import torch

            result = [torch.from_numpy(row) for row in result]
        return result[0] if single else result


class LiteCrossEncoder(LiteModel):
    """``CrossEncoder`` inference (``predict``, ``rank``) on an exported model without torch."""

    model_type: ClassVar[str] = "CrossEncoder"
    _torch_class_path: ClassVar[str] = "sentrs.cross_encoder.model:CrossEncoder"

    def __init__(self, pipeline: LitePipeline, **kwargs: Any) -> None:
        super().__init__(pipeline, default_prompts={}, **kwargs)
        transformer = pipeline.transformer
        if transformer.task != "sequence-classification" or pipeline.steps:
            raise NotLite("CrossEncoder needs a lone sequence-classification Transformer")
        archs = transformer.config.get("architectures") or []
        if not any(isinstance(a, str) and a.endswith("ForSequenceClassification") for a in archs):
            raise NotLite("not a ForSequenceClassification checkpoint")
        self.config = transformer.config
        self.num_labels = num_labels(transformer.config)
        name = self._saved_activation_name()
        if name is None:
            name = (
                "torch.nn.modules.activation.Sigmoid" if self.num_labels == 1 else "torch.nn.modules.linear.Identity"
            )
        if name not in ACTIVATIONS:
            raise NotLite(f"activation {name!r}")
        self._activation_name = name
        self._custom_activation: Any = None

    def _saved_activation_name(self) -> str | None:
        if self._model_config.get("activation_fn"):
            return str(self._model_config["activation_fn"])
        legacy = self.config.get("sentence_transformers")
        if isinstance(legacy, dict) and legacy.get("activation_fn"):
            return str(legacy["activation_fn"])
        old = self.config.get("sbert_ce_default_activation_function")
        return str(old) if old else None

    @property
    def activation_fn(self) -> Any:
        """The activation ``predict`` applies, as the torch module the torch class uses (imports torch)."""
        if self._custom_activation is not None:
            return self._custom_activation
        return self._full().activation_fn

    @activation_fn.setter
    def activation_fn(self, value: Any) -> None:
        self._custom_activation = value
        if self._full_model is not None:
            self._full_model.activation_fn = value

    @property
    def max_length(self) -> int | None:
        return self.max_seq_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        self.max_seq_length = value

    def get_embedding_dimension(self) -> int:
        return self.num_labels

    def predict(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Any = None,
        apply_softmax: bool | None = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Scores pairs: ``(n,)`` float32 for one label (sigmoid by default), ``(n, num_labels)`` otherwise."""
        inputs, activation_fn = check_predict_args(inputs, activation_fn, batch_size, pool, device, kwargs)
        if device is not None and not isinstance(device, list) and device != "cpu":
            return self._full().predict(
                inputs,
                prompt_name=prompt_name,
                prompt=prompt,
                batch_size=batch_size,
                show_progress_bar=show_progress_bar,
                activation_fn=activation_fn,
                apply_softmax=apply_softmax,
                convert_to_numpy=convert_to_numpy,
                convert_to_tensor=convert_to_tensor,
                device=device,
                **kwargs,
            )
        if activation_fn is None:
            activation_fn = self._custom_activation
        single = is_single_pair_input(inputs)
        if isinstance(inputs, np.ndarray):
            inputs = inputs.tolist()
        batch = [inputs] if single else list(inputs)
        if not batch:
            if convert_to_tensor:
                import torch

                return torch.tensor([])
            return np.array([]) if convert_to_numpy else []
        for i, item in enumerate(batch):
            check_pair(item, i)
        kinds = {isinstance(item, str) for item in batch}
        if len(kinds) > 1:
            raise ValueError("inputs must be all (query, document) pairs or all single texts, not a mix")
        resolved = self._resolve_prompt(prompt, prompt_name)
        if resolved:
            batch = [resolved + p if isinstance(p, str) else (resolved + p[0], p[1]) for p in batch]
        if isinstance(batch[0], str):
            texts, pairs = list(batch), None
        else:
            texts, pairs = [p[0] for p in batch], [p[1] for p in batch]
        logits: npt.NDArray[np.float32] | None = None
        for rows, out in self._batches(
            texts, pairs, None, batch_size, _progress_default(show_progress_bar), kwargs.get("processing_kwargs")
        ):
            part = np.asarray(out["scores"], dtype=np.float32)
            if logits is None:
                logits = np.empty((len(batch), part.shape[1]), dtype=np.float32)
            logits[rows] = part
        assert logits is not None
        if activation_fn is not None:
            import torch  # a caller's activation is a torch callable

            scores_t = activation_fn(torch.from_numpy(logits))
            if scores_t.ndim > 1 and scores_t.shape[1] == 1:
                scores_t = scores_t[:, 0]
            if apply_softmax and scores_t.ndim > 1:
                scores_t = torch.nn.functional.softmax(scores_t, dim=1)
            scores = scores_t.detach().cpu().float().numpy()
        else:
            scores = ACTIVATIONS[self._activation_name](logits)
            if scores.ndim > 1 and scores.shape[1] == 1:
                scores = scores[:, 0]
            if apply_softmax and scores.ndim > 1:
                shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
                scores = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
        if convert_to_tensor:
            import torch

            out_value: Any = torch.from_numpy(np.ascontiguousarray(scores))
        elif convert_to_numpy:
            out_value = scores
        else:
            import torch

            out_value = list(torch.from_numpy(np.ascontiguousarray(scores)))
        return out_value[0] if single else out_value

    def rank(
        self,
        query: str,
        documents: list[str],
        top_k: int | None = None,
        return_documents: bool = False,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Any = None,
        device: str | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
    ) -> list[dict[str, Any]]:
        """Ranks ``documents`` for ``query``: ``[{"corpus_id", "score"(, "text")}]``, best first."""
        documents = check_rank_args(self.num_labels, query, documents, top_k)
        if not documents:
            return []
        scores = self.predict(
            [(query, doc) for doc in documents],
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            activation_fn=activation_fn,
            pool=pool,
            device=device,
        )
        return rank_results(np.asarray(scores).reshape(-1).tolist(), documents, top_k, return_documents)
