"""``MultiVectorEncoder``: late-interaction (ColBERT-style) models with the reference's API and folders.

One vector per token instead of one per text; queries and documents are compared with MaxSim (each query token's
best match among the document's tokens, summed). Tokenization and length-sorted batching run in the Rust core as
for the other model types; scoring runs on the Rust MaxSim kernels (:mod:`sentrs.base.maxsim`).
"""

from __future__ import annotations

import json
import logging
import os
import string
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sentrs.base.inputs import (
    check_batch_size,
    multi_process_requested,
    pop_sentences_alias,
)
from sentrs.base.model import BaseModel, ClassOnAccess, ModelOptions, with_model_options
from sentrs.base.prompts import QueryDocumentMixin

if TYPE_CHECKING:
    from torch import Tensor, nn
    from typing_extensions import Unpack

    from sentrs.base.similarity import SimilarityFunction
    from sentrs.multi_vector_encoder.modules.token_pooling import BaseTokenPooling

__all__ = ["MultiVectorEncoder"]

logger = logging.getLogger(__name__)

#: The Transformer settings a PyLate (<= 3) folder keeps at the top of ``config_sentence_transformers.json``.
_PYLATE_TRANSFORMER_KEYS = ("query_length", "document_length", "query_expansion")
#: Keys that mark a ``config_sentence_transformers.json`` written by PyLate.
_PYLATE_MARKERS = (
    *_PYLATE_TRANSFORMER_KEYS,
    "do_query_expansion",
    "attend_to_expansion_tokens",
    "attend_to_mask_tokens",
    "query_prefix",
    "document_prefix",
    "skiplist_words",
)
#: The projection width of a new late-interaction head (ColBERT's).
_DEFAULT_PROJECTION_DIM = 128


class _Legacy:
    """What an older late-interaction folder (PyLate <= 3, Stanford ColBERT) says beyond the reference's format:
    Transformer settings, prefix tokens to register, the skiplist. Empty for folders saved by either library."""

    def __init__(self) -> None:
        self.transformer_config: dict[str, Any] = {}
        self.prefixes: dict[str, str] = {}
        self.skiplist_words: list[str] | None = None
        self.is_pylate_v3 = False


@with_model_options
class MultiVectorEncoder(QueryDocumentMixin, BaseModel):
    """Maps texts to one vector per token and scores them with MaxSim; a drop-in for
    ``sentence_transformers.MultiVectorEncoder``.

    A plain transformers folder gets Transformer + a new (untrained) 128-wide token projection + MultiVectorMask +
    token-level Normalize; a SentenceTransformer folder keeps its Transformer (and its Dense head, moved to the
    tokens); Stanford ColBERT (``HF_ColBERT``) and PyLate folders load with their projection, prefixes, lengths and
    skiplist.

    Args:
        similarity_fn_name: ``maxsim`` (default) or ``meanmaxsim`` (MaxSim divided by the query's token count).
        The other arguments are as for :class:`~sentrs.SentenceTransformer`. Query/document lengths and query
        expansion are settings of the Transformer module (``model[0].query_length``, ...), the scoring mask those
        of :class:`~sentrs.multi_vector_encoder.modules.MultiVectorMask`.
    """

    model_type: ClassVar[str] = "MultiVectorEncoder"
    model_card_data_class: ClassVar[Any] = ClassOnAccess(
        "sentrs.multi_vector_encoder.model_card:MultiVectorEncoderModelCardData"
    )
    default_huggingface_organization: ClassVar[str | None] = None
    _default_prompts: ClassVar[dict[str, str | None]] = {"query": None, "document": None}
    SUPPORTED_SIMILARITY_FN_NAMES: ClassVar[tuple[str, ...]] = ("maxsim", "meanmaxsim")

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        similarity_fn_name: str | SimilarityFunction | None = None,
        **options: Unpack[ModelOptions],
    ) -> None:
        self._similarity_fn_name: str | None = None
        self.similarity_fn_name = similarity_fn_name  # checked before anything loads
        self._user_similarity = self._similarity_fn_name
        self._legacy = _Legacy()
        super().__init__(model_name_or_path, **options)
        self._post_init()

    # ------------------------------------------------------------------ similarity
    @property
    def similarity_fn_name(self) -> str:
        """``maxsim`` or ``meanmaxsim``: what :meth:`similarity` computes (``maxsim`` unless set or saved)."""
        if self._similarity_fn_name is None:
            self._similarity_fn_name = "maxsim"
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, value: str | SimilarityFunction | None) -> None:
        name = getattr(value, "value", value)
        if name is not None and name not in self.SUPPORTED_SIMILARITY_FN_NAMES:
            if name == "xtr":
                raise ValueError(
                    "similarity_fn_name 'xtr' is a training-time scoring (its top-k runs over a batch's tokens); "
                    "a MultiVectorEncoder scores with 'maxsim' or 'meanmaxsim'. Pass xtr_scores as a loss's "
                    "similarity_fct instead"
                )
            raise ValueError(
                f"similarity_fn_name must be 'maxsim' or 'meanmaxsim' for a MultiVectorEncoder, got {value!r} "
                "(cosine, dot, euclidean and manhattan compare single vectors, not per-token embeddings)"
            )
        self._similarity_fn_name = name

    def similarity(self, embeddings1: Any, embeddings2: Any, **kwargs: Any) -> Tensor:
        """``(n1, n2)`` MaxSim (or MeanMaxSim) scores between queries and documents.

        Each side is a list of ``(tokens_i, dim)`` tensors or arrays, a padded ``(n, tokens, dim)`` tensor, or one
        ``(tokens, dim)`` matrix. ``kwargs`` go to :func:`sentrs.util.maxsim` (``device``, ``chunk_elements``,
        ``length_normalize``, masks).
        """
        from sentrs.base.maxsim import maxsim, mean_maxsim

        scorer = mean_maxsim if self.similarity_fn_name == "meanmaxsim" else maxsim
        return scorer(embeddings1, embeddings2, **kwargs)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any, **kwargs: Any) -> Tensor:
        """``(n,)`` MaxSim (or MeanMaxSim) scores of query i with document i."""
        from sentrs.base.maxsim import maxsim_pairwise, mean_maxsim_pairwise

        scorer = mean_maxsim_pairwise if self.similarity_fn_name == "meanmaxsim" else maxsim_pairwise
        return scorer(embeddings1, embeddings2, **kwargs)

    # ------------------------------------------------------------------ encode
    def encode(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: str | None = "token_embeddings",
        convert_to_numpy: bool = False,
        device: str | None = None,
        normalize_embeddings: bool = False,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        token_pooling: BaseTokenPooling | None = None,
        task: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Per-token embeddings: a list of ``(tokens_i, dim)`` tensors, one per input, holding the tokens the
        scoring mask keeps (a single input gives one tensor).

        Args:
            inputs: a text or a list of texts.
            prompt_name: a key of ``prompts`` whose text is put before every input.
            prompt: a prompt text (wins over ``prompt_name``).
            batch_size: texts per forward pass.
            show_progress_bar: a progress bar over batches (default: when logging is at INFO or DEBUG).
            output_value: ``"token_embeddings"`` or None for each input's raw output features (every key, batch
                rows split out, still padded to their batch's longest text; no normalisation or conversion).
            convert_to_numpy: float numpy arrays instead of tensors (moved to the CPU batch by batch).
            device: where to run (the model moves there).
            normalize_embeddings: make each token vector unit length (before any per-call pooling).
            pool, chunk_size: multi-process encoding (see ``start_multi_process_pool``).
            token_pooling: a :class:`~sentrs.multi_vector_encoder.modules.BaseTokenPooling` applied to this call's
                outputs (on top of any pooling module the model has) for the tasks it lists.
            task: ``"query"`` or ``"document"``: the length, query expansion and mask of that side (use
                :meth:`encode_query` / :meth:`encode_document`).
        """

        inputs = pop_sentences_alias(inputs, kwargs)
        batch_size = check_batch_size(batch_size)
        use_pool = multi_process_requested(pool, device, chunk_size)
        if output_value not in ("token_embeddings", None):
            raise ValueError(
                f"output_value must be 'token_embeddings' or None (each input's raw output features), got "
                f"{output_value!r}"
            )
        if "convert_to_tensor" in kwargs:
            raise ValueError(
                "MultiVectorEncoder.encode() has no convert_to_tensor: the per-token embeddings of different texts "
                "have different lengths and cannot be stacked into one tensor; encode returns a list of tensors "
                "already (or of arrays with convert_to_numpy=True)"
            )
        accepted = {"processing_kwargs", *self.get_model_kwargs()}
        unused = set(kwargs) - accepted
        if unused:
            raise ValueError(
                f"MultiVectorEncoder.encode() got keyword arguments this model does not use: {sorted(unused)}; it "
                f"accepts {sorted(accepted | {'task'})}"
            )
        if task is not None and not isinstance(task, str):
            raise ValueError(f"task must be a str such as 'query' or 'document', got {task!r}")
        if token_pooling is not None:
            from sentrs.multi_vector_encoder.modules.token_pooling import BaseTokenPooling

            if not isinstance(token_pooling, BaseTokenPooling):
                raise ValueError(
                    f"token_pooling must be a BaseTokenPooling (e.g. HierarchicalTokenPooling), got "
                    f"{type(token_pooling).__name__}"
                )
        if output_value is None:
            convert_to_numpy = False
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        batch, single = self._prepare_inputs(inputs)
        resolved_prompt = self._resolve_prompt(prompt, prompt_name)
        if task is not None:
            kwargs["task"] = task
        if batch:
            self._warn_compounding_pooling(token_pooling, task)
        options: dict[str, Any] = dict(
            prompt=resolved_prompt,
            batch_size=batch_size,
            output_value=output_value,
            normalize_embeddings=normalize_embeddings,
            token_pooling=token_pooling,
            convert_to_numpy=convert_to_numpy,
            **kwargs,
        )
        if use_pool and batch:
            from sentrs.base.multi_process import run_in_pool

            results = run_in_pool(self, batch, pool, device, chunk_size, bool(show_progress_bar), **options)
        else:
            results = self._inference(batch, show_progress_bar=bool(show_progress_bar), device=device, **options)
        if convert_to_numpy:
            results = [_to_numpy(e) for e in results]
        return results[0] if single else results

    def _inference(
        self,
        batch: list[Any],
        *,
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        device: str | None,
        output_value: str | None,
        normalize_embeddings: bool,
        token_pooling: BaseTokenPooling | None,
        convert_to_numpy: bool,
        **kwargs: Any,
    ) -> list[Any]:
        """Per-input token embeddings (or feature dicts for ``output_value=None``) in input order; ``task`` (in
        ``kwargs``) selects the query or document side."""
        import torch

        task = kwargs.get("task")
        results: list[Any] = [None] * len(batch)
        if batch:
            with torch.inference_mode():
                for rows, out in self._batched_forward(batch, prompt, batch_size, show_progress_bar, device, **kwargs):
                    if output_value is None:
                        if token_pooling is not None:
                            out = token_pooling(out, task=task)
                        for position, row in enumerate(rows):
                            results[int(row)] = _row_features(out, position, len(rows))
                        continue
                    tokens = out["token_embeddings"]
                    mask = out["attention_mask"].bool()
                    embeddings = [tokens[i][mask[i]] for i in range(len(rows))]
                    if normalize_embeddings:
                        embeddings = [torch.nn.functional.normalize(e, p=2, dim=-1) for e in embeddings]
                    if token_pooling is not None:
                        pooled = token_pooling.pool(embeddings, task=task)
                        assert isinstance(pooled, list)
                        embeddings = pooled
                    for row, embedding in zip(rows, embeddings):
                        results[int(row)] = embedding.cpu() if convert_to_numpy else embedding
        return results

    def _warn_compounding_pooling(self, token_pooling: BaseTokenPooling | None, task: str | None) -> None:
        from sentrs.multi_vector_encoder.modules.token_pooling import BaseTokenPooling

        if token_pooling is None or not token_pooling.applies_to(task):
            return
        if any(isinstance(module, BaseTokenPooling) for module in self) and not getattr(self, "_warned_pool", False):
            self._warned_pool = True
            logger.warning(
                "This model pools tokens in its own pipeline already; token_pooling= pools its output again. Leave "
                "it out to get only the model's own pooling."
            )

    # ------------------------------------------------------------------ construction and config
    def _post_init(self) -> None:
        """After the modules exist: legacy fixups, then every module's ``on_model_ready`` hook."""
        if self._engine is not None:
            return
        from sentrs.base.modules.normalize import Normalize
        from sentrs.base.modules.transformer import Transformer
        from sentrs.multi_vector_encoder.modules.multi_vector_mask import MultiVectorMask

        if self._legacy.prefixes:
            self._register_prefix_tokens(self._legacy.prefixes)
        if self._legacy.is_pylate_v3 and not any(isinstance(m, MultiVectorMask) for m in self._modules.values()):
            skiplist = (
                self._legacy.skiplist_words if self._legacy.skiplist_words is not None else list(string.punctuation)
            )
            self.append(MultiVectorMask(skiplist_words=skiplist))
            self.append(Normalize("token_embeddings", "token_embeddings"))
        modules = list(self._modules.values())
        for index, module in enumerate(modules):
            if (
                isinstance(module, Transformer)
                and module.query_expansion is not None
                and not any(isinstance(m, MultiVectorMask) for m in modules[index + 1 :])
            ):
                logger.warning(
                    "The Transformer expands queries (query_expansion), but no MultiVectorMask follows it, so the "
                    "expansion tokens are not scored; add a MultiVectorMask after the Transformer"
                )
        for module in self.modules():
            hook = getattr(module, "on_model_ready", None)
            if callable(hook) and module is not self:
                hook(self)

    def _register_prefix_tokens(self, prefixes: dict[str, str]) -> None:
        """Makes a legacy checkpoint's prefix marker (``[unused0]``, ``[Q] ``) one special token, so putting it
        before the text as a prompt gives the ids it was trained with. Markers the vocabulary lacks stay text."""
        from tokenizers import AddedToken

        tokenizer = self.tokenizer
        if tokenizer is None:
            return
        added = set(getattr(tokenizer, "added_tokens_encoder", None) or {})
        vocab = tokenizer.get_vocab()
        register = []
        for value in prefixes.values():
            if not value or not value.split():
                continue
            for candidate in (value, value.split(None, 1)[0]):
                if candidate not in added and candidate not in vocab:
                    continue
                if tokenizer.tokenize(candidate) != [candidate]:
                    register.append(AddedToken(candidate, normalized=False, special=True))
                break
        if register:
            tokenizer.add_special_tokens({"additional_special_tokens": register})
            first = self._first_module()
            if hasattr(first, "_rust_tokenizer"):
                first._rust_tokenizer = None  # rebuilt from the tokenizer with the new tokens

    def _read_model_config(self, model_dir: str) -> dict[str, Any]:
        config = super()._read_model_config(model_dir)
        if config.get("model_type") == "ColBERT":  # PyLate <= 3
            config = {**config, "model_type": self.model_type}
            self._legacy.is_pylate_v3 = True
        self._read_legacy_config(config)
        if "model_type" not in config and _is_stanford_colbert(model_dir):
            config = {**config, "model_type": self.model_type}
        return config

    def _read_legacy_config(self, config: dict[str, Any]) -> None:
        """PyLate's top-level keys: prefixes become prompts (registered as tokens), lengths and expansion go to
        the Transformer, ``skiplist_words`` to the MultiVectorMask it lacks."""
        if not any(key in config for key in _PYLATE_MARKERS):
            return
        prompts = dict(config.get("prompts") or {})
        for prefix_key, role in (("query_prefix", "query"), ("document_prefix", "document")):
            if prefix_key in config:
                prefix = config[prefix_key] or ""
                self._legacy.prefixes[role] = prefix
                prompts[role] = prefix + (prompts.get(role) or "").removeprefix(prefix)
        config["prompts"] = prompts
        knobs = {
            key: config[key]
            for key in _PYLATE_TRANSFORMER_KEYS
            if key in config and (config[key] is not None or key == "query_expansion")
        }
        if "query_expansion" not in knobs:
            if config.get("do_query_expansion") is False:
                knobs["query_expansion"] = None
            else:
                attend = config.get("attend_to_expansion_tokens", config.get("attend_to_mask_tokens"))
                length = knobs.pop("query_length", None) or 32
                knobs["query_expansion"] = {"strategy": "fixed", "attend": bool(attend), "length": length}
        self._legacy.transformer_config.update(knobs)
        self._legacy.skiplist_words = config.get("skiplist_words")

    def _load_modules(
        self, model_dir: str, trust_remote_code: bool = False, **hub_kwargs: Any
    ) -> OrderedDict[str, nn.Module]:
        """The folder's modules, with PyLate's Transformer settings and token-level Dense defaults applied."""
        from sentrs.base.modules.dense import Dense
        from sentrs.base.modules.transformer import Transformer

        modules = super()._load_modules(model_dir, trust_remote_code=trust_remote_code, **hub_kwargs)
        with open(os.path.join(model_dir, "modules.json"), encoding="utf-8") as f:
            paths = {str(entry.get("name", i)): entry["path"] for i, entry in enumerate(json.load(f))}
        for name, module in modules.items():
            if isinstance(module, Transformer):
                self._apply_transformer_defaults(module, os.path.join(model_dir, paths[name]))
            elif isinstance(module, Dense):
                saved = Dense.load_config(os.path.join(model_dir, paths[name]))
                if "module_input_name" not in saved:  # PyLate and pre-5.4 folders: a token-level projection
                    module.module_input_name = "token_embeddings"
                    if "module_output_name" not in saved:
                        module.module_output_name = "token_embeddings"
        return modules

    def _apply_transformer_defaults(self, transformer: Any, module_dir: str) -> None:
        """Legacy settings for the keys the Transformer's own config does not set (its config wins)."""
        if not self._legacy.transformer_config:
            return
        saved = transformer.load_config(module_dir)
        for key in ("query_length", "document_length"):
            if key in self._legacy.transformer_config and saved.get(key) is None:
                setattr(transformer, key, self._legacy.transformer_config[key])
        if "query_expansion" in self._legacy.transformer_config and "query_expansion" not in saved:
            transformer.query_expansion = self._legacy.transformer_config["query_expansion"]

    def _load_default_modules(self, model_dir: str, **hub_kwargs: Any) -> OrderedDict[str, nn.Module]:
        """A plain transformers folder: Transformer + a 128-wide token projection (from ``linear.weight`` for a
        Stanford ColBERT folder) + MultiVectorMask + token-level Normalize; a ``*ForRetrieval`` folder (ColPali,
        ColQwen2, ColModernVBert): Transformer(``retrieval``) + MultiVectorMask."""
        import torch

        from sentrs.base.modules.dense import Dense
        from sentrs.base.modules.normalize import Normalize
        from sentrs.base.modules.transformer import Transformer
        from sentrs.multi_vector_encoder.modules.multi_vector_mask import MultiVectorMask

        architectures = _architectures(model_dir)
        retriever = next((a for a in architectures if a.endswith("ForRetrieval")), None)
        if retriever is not None:
            # ColPali / ColQwen2 / ColModernVBert: the model projects, normalises and zeroes padding itself, and its
            # processor writes the query prefix, augmentation tokens and visual prompt; only the scoring mask is added.
            embeddings = {"method": "forward", "method_output_name": "embeddings"}
            retrieval = Transformer(
                model_dir,
                transformer_task="retrieval",
                modality_config={"text": dict(embeddings), "image": dict(embeddings)},
                module_output_name="token_embeddings",
                model_kwargs=hub_kwargs.get("model_kwargs"),
                processor_kwargs=hub_kwargs.get("processor_kwargs"),
                config_kwargs=hub_kwargs.get("config_kwargs"),
                cache_dir=self.cache_folder,
                backend=hub_kwargs.get("backend", "torch"),
            )
            logger.info("%s is a transformers %s: Transformer + MultiVectorMask, no projection", model_dir, retriever)
            return OrderedDict([("0", retrieval), ("1", MultiVectorMask(skiplist_words=self._legacy.skiplist_words))])
        stanford = "HF_ColBERT" in architectures
        if stanford:
            self._read_stanford_metadata(model_dir)
        transformer = Transformer(
            model_dir,
            model_kwargs=hub_kwargs.get("model_kwargs"),
            processor_kwargs=hub_kwargs.get("processor_kwargs"),
            config_kwargs=hub_kwargs.get("config_kwargs"),
            cache_dir=self.cache_folder,
            backend=hub_kwargs.get("backend", "torch"),
            **self._legacy.transformer_config,
        )
        hidden = transformer.get_embedding_dimension()
        if stanford:
            weight = _read_root_tensor(model_dir, "linear.weight")
            projection = Dense(
                int(weight.shape[1]),
                int(weight.shape[0]),
                bias=False,
                activation_function=torch.nn.Identity(),
                init_weight=weight,
                module_input_name="token_embeddings",
            )
        else:
            projection = Dense(
                hidden,
                _DEFAULT_PROJECTION_DIM,
                bias=False,
                activation_function=torch.nn.Identity(),
                module_input_name="token_embeddings",
            )
            logger.info(
                "%s is not a late-interaction checkpoint: added a new (untrained) %d -> %d token projection; train "
                "the model before use, or pass modules=[...] for another head",
                model_dir,
                hidden,
                _DEFAULT_PROJECTION_DIM,
            )
        return OrderedDict(
            [
                ("0", transformer),
                ("1", projection),
                ("2", MultiVectorMask(skiplist_words=self._legacy.skiplist_words)),
                ("3", Normalize("token_embeddings", "token_embeddings")),
            ]
        )

    def _read_stanford_metadata(self, model_dir: str) -> None:
        """Stanford ColBERT's ``artifact.metadata``: prefix markers, lengths, expansion, punctuation skiplist."""
        path = os.path.join(model_dir, "artifact.metadata")
        metadata: dict[str, Any] = {}
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                loaded = json.load(f)
            if not isinstance(loaded, dict):
                raise ValueError(f"{path} must hold a JSON object, got {type(loaded).__name__}")
            metadata = loaded
        else:
            logger.warning("%s has no artifact.metadata; using Stanford ColBERT's defaults", model_dir)
        self._legacy.prefixes = {
            "query": (metadata.get("query_token_id") or "[unused0]") + " ",
            "document": (metadata.get("doc_token_id") or "[unused1]") + " ",
        }
        self._stanford_prompts = dict(self._legacy.prefixes)
        if metadata.get("doc_maxlen") is not None:
            self._legacy.transformer_config.setdefault("document_length", metadata["doc_maxlen"])
        self._legacy.transformer_config.setdefault(
            "query_expansion",
            {
                "strategy": "fixed",
                "attend": bool(metadata.get("attend_to_mask_tokens")),
                "length": metadata.get("query_maxlen") or 32,
            },
        )
        self._legacy.skiplist_words = list(string.punctuation) if metadata.get("mask_punctuation", True) else []

    def _load_converted_modules(
        self, model_dir: str, saved_type: str, trust_remote_code: bool = False, **hub_kwargs: Any
    ) -> OrderedDict[str, nn.Module]:
        """A SentenceTransformer folder keeps its Transformer and Dense layers (moved to the tokens), loses its
        pooling and sentence-level Normalize, and gets MultiVectorMask + token-level Normalize."""
        import torch

        from sentrs.base.modules.dense import Dense
        from sentrs.base.modules.normalize import Normalize
        from sentrs.base.modules.transformer import Transformer
        from sentrs.multi_vector_encoder.modules.multi_vector_mask import MultiVectorMask
        from sentrs.sentence_transformer.modules.pooling import Pooling

        if saved_type != "SentenceTransformer":
            return self._load_default_modules(model_dir, **hub_kwargs)
        loaded = BaseModel._load_modules(self, model_dir, trust_remote_code=trust_remote_code, **hub_kwargs)
        kept: list[nn.Module] = []
        for module in loaded.values():
            if isinstance(module, Pooling):
                continue
            if isinstance(module, Normalize) and module.module_input_name == "sentence_embedding":
                continue
            if isinstance(module, Dense) and module.module_input_name == "sentence_embedding":
                module.module_input_name = "token_embeddings"
                module.module_output_name = "token_embeddings"
            kept.append(module)
        transformer = next((m for m in kept if isinstance(m, Transformer)), None)
        if transformer is None:
            raise ValueError(f"cannot make a MultiVectorEncoder of {model_dir}: it has no Transformer module")
        if not any(isinstance(m, Dense) for m in kept):
            hidden = transformer.get_embedding_dimension()
            kept.append(
                Dense(
                    hidden,
                    _DEFAULT_PROJECTION_DIM,
                    bias=False,
                    activation_function=torch.nn.Identity(),
                    module_input_name="token_embeddings",
                )
            )
        skiplist = self._legacy.skiplist_words
        if skiplist is None and self._legacy.prefixes:
            skiplist = list(string.punctuation)
        kept.append(MultiVectorMask(skiplist_words=skiplist))
        kept.append(Normalize("token_embeddings", "token_embeddings"))
        self._model_card_text = None  # the folder's card describes the other model
        return OrderedDict((str(i), m) for i, m in enumerate(kept))

    def _parse_model_config(self, model_config: dict[str, Any]) -> None:
        saved = model_config.get("similarity_fn_name")
        if self._user_similarity is None and saved in self.SUPPORTED_SIMILARITY_FN_NAMES:
            self._similarity_fn_name = saved
        stanford_prompts = getattr(self, "_stanford_prompts", None)
        if stanford_prompts:
            for role, marker in stanford_prompts.items():
                if not self.prompts.get(role):
                    self.prompts[role] = marker

    def _get_model_config(self) -> dict[str, Any]:
        return {"similarity_fn_name": self._similarity_fn_name}

    def get_embedding_dimension(self) -> int | None:
        """The width of each token vector."""
        for module in reversed(list(self)):
            getter = getattr(module, "get_embedding_dimension", None)
            if callable(getter):
                value = getter()
                if value is not None:
                    return int(value)
        return None

    def get_sentence_embedding_dimension(self) -> int | None:
        """Deprecated name of :meth:`get_embedding_dimension`."""
        return self.get_embedding_dimension()


def _row_features(features: dict[str, Any], position: int, batch: int) -> dict[str, Any]:
    """Row ``position`` of a batch's output features: batch-first tensors indexed, everything else as it is."""
    from torch import Tensor

    return {
        key: value[position] if isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == batch else value
        for key, value in features.items()
    }


def _to_numpy(embedding: Tensor) -> np.ndarray:
    import torch

    embedding = embedding.detach()
    if embedding.dtype in (torch.bfloat16, torch.float16):
        embedding = embedding.float()
    return embedding.cpu().numpy()


def _architectures(model_dir: str) -> list[str]:
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    archs = config.get("architectures") if isinstance(config, dict) else None
    return [str(a) for a in archs] if isinstance(archs, list) else []


def _is_stanford_colbert(model_dir: str) -> bool:
    return "HF_ColBERT" in _architectures(model_dir)


def _read_root_tensor(model_dir: str, key: str) -> Tensor:
    """One tensor of the weights file at a folder's root (safetensors, else a weights-only torch file)."""
    st_path = os.path.join(model_dir, "model.safetensors")
    if os.path.isfile(st_path):
        from safetensors import safe_open

        from sentrs.base.formats import file_named_in_errors

        with file_named_in_errors(st_path), safe_open(st_path, framework="pt") as f:
            if key in f.keys():
                return f.get_tensor(key)
    bin_path = os.path.join(model_dir, "pytorch_model.bin")
    if os.path.isfile(bin_path):
        from sentrs.base.modules.module import load_pickled_weights

        state = load_pickled_weights(bin_path)
        if key in state:
            return state[key]
    raise ValueError(f"{model_dir} is a Stanford ColBERT folder without the projection weight {key!r}")
