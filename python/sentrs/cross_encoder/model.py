"""``CrossEncoder``: scores text pairs jointly (reranking), with the reference's API and folders."""

from __future__ import annotations

import logging
import warnings
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sentrs.base.inputs import (
    check_predict_args,
    check_rank_args,
    is_single_pair_input,
    multi_process_requested,
    prepare_pair_inputs,
    rank_results,
)
from sentrs.base.model import BaseModel, ClassOnAccess, ModelOptions, with_model_options
from sentrs.base.registry import fullname, import_from_string
from sentrs.cross_encoder.fit_mixin import FitMixin

if TYPE_CHECKING:
    from torch import Tensor, nn

    from sentrs.base.engine.steps import HostPipeline

__all__ = ["CrossEncoder"]

logger = logging.getLogger(__name__)
# The legacy rank() keywords whose "no effect" notice was already logged in this process.
_RANK_NOTICES_GIVEN: set[str] = set()


@with_model_options
class CrossEncoder(BaseModel, FitMixin):
    """Scores (query, document) pairs with a sequence-classification transformer, or with a causal LM (an LLM
    reranker: ``Transformer(transformer_task="text-generation")`` + :class:`~sentrs.cross_encoder.modules.LogitScore`);
    a drop-in for ``sentence_transformers.CrossEncoder``.

    Args:
        model_name_or_path: a local folder (the reference's cross-encoder folders, old and new, a plain transformers
            sequence-classification folder, or a plain ``*ForCausalLM`` folder, scored by the logits of "yes" minus
            "no" for the next token) or a Hub id.
        num_labels: number of output labels (a new head is initialised when the checkpoint has none).
        max_length: truncation length of the pair, special tokens included.
        activation_fn: applied to the logits by ``predict``; default Sigmoid for one label, else Identity (or what
            the saved model records).
        keep_in_fp32_modules: recorded in the saved config (sentrs keeps every module in the model's dtype).
        The other arguments are as for :class:`~sentrs.SentenceTransformer`.
    """

    model_type: ClassVar[str] = "CrossEncoder"
    model_card_data_class: ClassVar[Any] = ClassOnAccess("sentrs.cross_encoder.model_card:CrossEncoderModelCardData")
    default_huggingface_organization: ClassVar[str | None] = "cross-encoder"
    _default_prompts: ClassVar[dict[str, str | None]] = {}
    _engine_task: ClassVar[str | None] = "sequence-classification"

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *legacy_args: Any,
        num_labels: int | None = None,
        max_length: int | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        keep_in_fp32_modules: list[str] | None = None,
        **options: Any,
    ) -> None:
        # ``options``: the shared ModelOptions, and the pre-v4 keyword names (renamed below).
        legacy = {key: options.pop(key) for key in list(options) if key not in ModelOptions.__annotations__}
        # The pre-v4 API: positional (num_labels, max_length, activation_fn, device) and older keyword names.
        if len(legacy_args) > 4:
            raise TypeError(f"CrossEncoder takes at most 5 positional arguments, got {1 + len(legacy_args)}")
        if legacy_args:
            logger.warning("Positional CrossEncoder arguments are deprecated; pass num_labels=..., device=... by name")
            given = dict(zip(("num_labels", "max_length", "activation_fn", "device"), legacy_args))
            num_labels = given.get("num_labels", num_labels)
            max_length = given.get("max_length", max_length)
            activation_fn = given.get("activation_fn", activation_fn)
            if "device" in given:
                options["device"] = given["device"]
        renames = {
            "automodel_args": "model_kwargs",
            "tokenizer_args": "tokenizer_kwargs",
            "config_args": "config_kwargs",
            "cache_dir": "cache_folder",
        }
        unknown = set(legacy) - set(renames) - {"model_name", "default_activation_function", "classifier_dropout"}
        if unknown:
            raise TypeError(f"CrossEncoder got unexpected keyword arguments {sorted(unknown)}")
        if "model_name" in legacy:
            model_name_or_path = legacy["model_name"]
        for old, new in renames.items():
            if old in legacy:
                options[new] = legacy[old]
        activation_fn = legacy.get("default_activation_function", activation_fn)
        if "classifier_dropout" in legacy:
            options["config_kwargs"] = {
                **(options.get("config_kwargs") or {}),
                "classifier_dropout": legacy["classifier_dropout"],
            }
        if num_labels is not None:
            if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
                raise ValueError(f"num_labels must be a positive integer, got {num_labels!r}")
            options["config_kwargs"] = {**(options.get("config_kwargs") or {}), "num_labels": num_labels}
        if max_length is not None:
            if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
                raise ValueError(f"max_length must be a positive integer, got {max_length!r}")
            options["processor_kwargs"] = {**(options.get("processor_kwargs") or {}), "model_max_length": max_length}
        self.keep_in_fp32_modules = keep_in_fp32_modules
        super().__init__(model_name_or_path, **options)
        if self._engine is not None:
            # The activation stays a name until someone asks for the torch module (predict applies it in numpy).
            object.__setattr__(self, "_activation_fn", activation_fn)
            return
        from sentrs.base.modules.transformer import Transformer

        if not isinstance(self._first_module(), Transformer):
            raise TypeError(
                f"a CrossEncoder needs a Transformer first module, got {type(self._first_module()).__name__}"
            )
        self.activation_fn = (
            activation_fn
            if activation_fn is not None
            else self._saved_activation_fn() or self.get_default_activation_fn()
        )

    # ------------------------------------------------------------------ construction
    def _check_engine(self, pipeline: HostPipeline) -> None:
        from sentrs.base.engine.steps import ACTIVATIONS, NeedsTorch

        transformer = pipeline.transformer
        if transformer.task != "sequence-classification" or pipeline.steps:
            raise NeedsTorch("CrossEncoder needs a lone sequence-classification Transformer")
        archs = transformer.config.get("architectures") or []
        if not any(isinstance(a, str) and a.endswith("ForSequenceClassification") for a in archs):
            raise NeedsTorch("not a ForSequenceClassification checkpoint")
        name = self._engine_activation_name(transformer.config)
        if name not in ACTIVATIONS:
            raise NeedsTorch(f"activation {name!r}")

    def _engine_activation_name(self, config: dict[str, Any]) -> str:
        """The saved activation's class path (or the default for the label count), from the folder's files."""
        from sentrs.base.engine.steps import num_labels

        if self._model_config.get("activation_fn"):
            return str(self._model_config["activation_fn"])
        legacy = config.get("sentence_transformers")
        if isinstance(legacy, dict) and legacy.get("activation_fn"):
            return str(legacy["activation_fn"])
        old = config.get("sbert_ce_default_activation_function")
        if old:
            return str(old)
        if num_labels(config) == 1:
            return "torch.nn.modules.activation.Sigmoid"
        return "torch.nn.modules.linear.Identity"

    def _sync_twin(self, twin: Any) -> None:
        twin.activation_fn = self.activation_fn

    def _load_default_modules(self, model_dir: str, **hub_kwargs: Any) -> OrderedDict[str, nn.Module]:
        """A plain transformers folder: a sequence-classification Transformer, or for a ``*ForCausalLM`` checkpoint
        a text-generation Transformer followed by LogitScore on the tokens "yes" (true) and "no" (false)."""
        from sentrs.base.modules.transformer import Transformer
        from sentrs.base.peft_mixin import load_transformer_config

        # Through the config loader, so a folder holding only a PEFT adapter reads its base model's architectures.
        archs = list(getattr(load_transformer_config(model_dir), "architectures", None) or [])
        causal = bool(archs) and isinstance(archs[0], str) and archs[0].endswith("ForCausalLM")
        transformer = Transformer(
            model_dir,
            transformer_task="text-generation" if causal else "sequence-classification",
            model_kwargs=hub_kwargs.get("model_kwargs"),
            processor_kwargs=hub_kwargs.get("processor_kwargs"),
            config_kwargs=hub_kwargs.get("config_kwargs"),
            cache_dir=self.cache_folder,
            backend=hub_kwargs.get("backend", "torch"),
        )
        if not causal:
            return OrderedDict([("0", transformer)])
        from sentrs.cross_encoder.modules.logit_score import LogitScore

        # As the reference: a token outside the vocabulary maps to the unknown token's id when there is one.
        true_token_id = transformer.tokenizer.convert_tokens_to_ids("yes")
        false_token_id = transformer.tokenizer.convert_tokens_to_ids("no")
        if true_token_id is None or false_token_id is None:
            raise ValueError(
                f"The tokenizer of {model_dir} has no 'yes' and/or 'no' token, which a causal LM CrossEncoder scores "
                "by default (LogitScore: the next-token logit of 'yes' minus that of 'no'). Build the model from "
                "modules instead, e.g. CrossEncoder(modules=[Transformer(path, transformer_task='text-generation'), "
                "LogitScore(true_token_id=..., false_token_id=...)]), or use a model whose tokenizer has these tokens."
            )
        score = LogitScore(true_token_id=int(true_token_id), false_token_id=int(false_token_id))
        return OrderedDict([("0", transformer), ("1", score)])

    def _import_activation(self, path: str, source: str) -> Callable[[Tensor], Tensor] | None:
        if not path.startswith("torch.") and not self.trust_remote_code:
            logger.warning(
                "Activation function %r from %s is not a torch class; pass trust_remote_code=True to load it. "
                "Using the default activation instead.",
                path,
                source,
            )
            return None
        try:
            activation = import_from_string(path)
        except ImportError as exc:
            logger.warning(
                "Could not import activation function %r from %s (%s); using the default", path, source, exc
            )
            return None
        return activation() if isinstance(activation, type) else activation

    def _saved_activation_fn(self) -> Callable[[Tensor], Tensor] | None:
        """The activation recorded by a saved model, in the reference's three historical places."""
        if self._model_config.get("activation_fn"):
            return self._import_activation(self._model_config["activation_fn"], "config_sentence_transformers.json")
        config = self.config
        legacy = getattr(config, "sentence_transformers", None)
        if isinstance(legacy, dict) and legacy.get("activation_fn"):
            return self._import_activation(legacy["activation_fn"], "config.json")
        old = getattr(config, "sbert_ce_default_activation_function", None)
        if old:
            return self._import_activation(old, "config.json")
        return None

    def get_default_activation_fn(self) -> Callable[[Tensor], Tensor]:
        """Sigmoid for one label, identity otherwise."""
        from torch import nn

        return nn.Sigmoid() if self.num_labels == 1 else nn.Identity()

    def _parse_model_config(self, model_config: dict[str, Any]) -> None:
        if self.keep_in_fp32_modules is None and model_config.get("keep_in_fp32_modules"):
            self.keep_in_fp32_modules = list(model_config["keep_in_fp32_modules"])

    def _get_model_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"activation_fn": fullname(self.activation_fn)}
        if self.keep_in_fp32_modules:
            config["keep_in_fp32_modules"] = self.keep_in_fp32_modules
        return config

    # ------------------------------------------------------------------ properties
    def __setattr__(self, name: str, value: Any) -> None:
        # The activation is a plain attribute, as in the reference: an nn.Module assigned normally would become a
        # child module, run in the pipeline and be saved as one.
        if name == "activation_fn":
            object.__setattr__(self, "_activation_fn", value)
            return
        super().__setattr__(name, value)

    @property
    def activation_fn(self) -> Callable[[Tensor], Tensor]:
        """Applied to the logits by ``predict`` unless a call passes its own (a torch module, as in the reference)."""
        activation: Callable[[Tensor], Tensor] | None = self.__dict__["_activation_fn"]
        if activation is None:  # the engine path: build the saved activation's torch module on first request
            assert self._engine is not None
            activation = self._import_activation(self._engine_activation_name(self._engine.transformer.config), "")
            assert activation is not None
            object.__setattr__(self, "_activation_fn", activation)
        return activation

    @activation_fn.setter
    def activation_fn(self, value: Callable[[Tensor], Tensor]) -> None:
        object.__setattr__(self, "_activation_fn", value)

    @property
    def config(self) -> Any:
        """The transformers config of the model (read from the folder on the engine path)."""
        if self._engine is not None:
            if self.__dict__.get("_hf_config") is None:
                from transformers import AutoConfig

                object.__setattr__(self, "_hf_config", AutoConfig.from_pretrained(self._engine.transformer.folder))
            return self.__dict__["_hf_config"]
        return self.transformers_model.config

    @property
    def model(self) -> Any:
        """The transformers sequence-classification model (None on the engine path)."""
        return self.transformers_model

    @property
    def num_labels(self) -> int:
        """Number of scores per pair: the last module that writes the scores decides (a Dense head writing
        ``scores``, the classifier's label count, or 1 for LogitScore)."""
        if self._engine is not None:
            from sentrs.base.engine.steps import num_labels

            return num_labels(self._engine.transformer.config)
        from sentrs.base.modules.dense import Dense
        from sentrs.base.modules.transformer import Transformer
        from sentrs.cross_encoder.modules.logit_score import LogitScore

        for module in reversed(list(self._modules.values())):
            if isinstance(module, Dense) and module.module_output_name == "scores":
                return int(module.out_features)
            if isinstance(module, Transformer):
                return int(module.model.config.num_labels)
            if isinstance(module, LogitScore):
                return 1
        return 1

    @property
    def max_length(self) -> int | None:
        """Deprecated name of ``max_seq_length`` (warns, as in the reference)."""
        _renamed("max_length", "max_seq_length")
        return self.max_seq_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        _renamed("max_length", "max_seq_length")
        self.max_seq_length = value

    @property
    def default_activation_function(self) -> Callable[[Tensor], Tensor]:
        """Deprecated name of ``activation_fn`` (warns, as in the reference)."""
        _renamed("default_activation_function", "activation_fn")
        return self.activation_fn

    def get_embedding_dimension(self) -> int:
        return self.num_labels

    def is_singular_input(self, inputs: Any) -> bool:
        """One pair (a list or tuple whose first item is not itself a list or tuple), or one bare text."""
        return is_single_pair_input(inputs)

    # ------------------------------------------------------------------ scoring
    def predict(
        self,
        inputs: Any = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        apply_softmax: bool | None = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        device: str | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Scores pairs: ``(n,)`` float32 for one label (sigmoid by default), ``(n, num_labels)`` otherwise.

        One pair in gives a scalar (``np.float32``, or a 0-d tensor). ``convert_to_tensor`` returns a tensor,
        ``convert_to_numpy=False`` a list of tensors; ``apply_softmax`` normalises multi-label scores.
        """
        inputs, activation_fn = check_predict_args(inputs, activation_fn, batch_size, pool, device, kwargs)
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        use_pool = multi_process_requested(pool, device, chunk_size)
        batch, single = prepare_pair_inputs(inputs)
        if not batch:
            if convert_to_tensor:
                import torch

                return torch.tensor([])
            return np.array([]) if convert_to_numpy else []
        resolved_prompt = self._resolve_prompt(prompt, prompt_name)
        if use_pool:
            from sentrs.base.multi_process import run_in_pool

            logits = run_in_pool(
                self,
                batch,
                pool,
                device,
                chunk_size,
                bool(show_progress_bar),
                method="_score",
                prompt=resolved_prompt,
                batch_size=batch_size,
                **kwargs,
            )
        else:
            logits = self._score(batch, resolved_prompt, batch_size, bool(show_progress_bar), device, **kwargs)
        if activation_fn is None and self.__dict__["_activation_fn"] is None:
            # The engine path with the saved activation: numpy all the way.
            from sentrs.base.engine.steps import ACTIVATIONS

            assert self._engine is not None and isinstance(logits, np.ndarray)
            scores: Any = ACTIVATIONS[self._engine_activation_name(self._engine.transformer.config)](logits)
            if scores.ndim > 1 and scores.shape[1] == 1:
                scores = scores[:, 0]
            if apply_softmax and scores.ndim > 1:
                shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
                scores = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
            if convert_to_numpy and not convert_to_tensor:
                return scores[0] if single else scores
            import torch

            scores = torch.from_numpy(np.ascontiguousarray(scores))
        else:
            import torch

            if isinstance(logits, np.ndarray):
                logits = torch.from_numpy(logits)
            activation = activation_fn if activation_fn is not None else self.activation_fn
            scores = activation(logits)
            if scores.ndim > 1 and scores.shape[1] == 1:
                scores = scores[:, 0]
            if apply_softmax and scores.ndim > 1:
                scores = torch.nn.functional.softmax(scores, dim=1)
        if convert_to_tensor:
            out: Any = scores
        elif convert_to_numpy:
            out = scores.detach().cpu().float().numpy()
        else:
            out = list(scores)
        return out[0] if single else out

    def _score(
        self,
        pairs: list[Any],
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        device: str | None,
        **kwargs: Any,
    ) -> Any:
        """Float32 logits ``(n, num_labels)`` in input order: numpy on the engine path, else a tensor."""
        if prompt and not getattr(self._first_module(), "renders_messages", False):
            # Text inputs: the prompt goes in front of the first text. A chat-template Transformer puts it in a
            # system message itself.
            pairs = [(prompt + p[0], p[1]) if not isinstance(p, str) else prompt + p for p in pairs]
            prompt = None
        if self._engine is not None:
            logits: np.ndarray | None = None
            for rows, out in self._batched_forward(pairs, prompt, batch_size, show_progress_bar, device, **kwargs):
                part = np.asarray(out["scores"], dtype=np.float32)
                if logits is None:
                    logits = np.empty((len(pairs), part.shape[1]), dtype=np.float32)
                logits[rows] = part
            assert logits is not None
            return logits
        import torch

        with self._inference_context():
            parts: list[tuple[np.ndarray, Tensor]] = []
            for rows, out in self._batched_forward(pairs, prompt, batch_size, show_progress_bar, device, **kwargs):
                parts.append((rows, out["scores"].float()))
            stacked = torch.cat([p for _, p in parts])
            order = torch.from_numpy(np.concatenate([r for r, _ in parts])).to(stacked.device)
            result = torch.empty_like(stacked)
            result[order] = stacked
        return result

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
        activation_fn: Callable[[Tensor], Tensor] | None = None,
        device: str | None = None,
        pool: dict[str, Any] | None = None,
        chunk_size: int | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Ranks ``documents`` for ``query``: ``[{"corpus_id": int, "score": float, ("text": str)}]``, best first,
        the first ``top_k`` (all when None). Needs a one-label model.

        The legacy keywords ``convert_to_numpy``, ``convert_to_tensor``, ``apply_softmax`` and ``num_workers`` have no
        effect (scores are Python floats) and log a warning, as in the reference; ``activation_fct`` is the old name of
        ``activation_fn``.
        """
        if "activation_fct" in kwargs:
            activation_fn = kwargs.pop("activation_fct")
        for name in ("convert_to_numpy", "convert_to_tensor", "apply_softmax", "num_workers"):
            if name in kwargs:
                kwargs.pop(name)
                if name not in _RANK_NOTICES_GIVEN:  # once per process, as the reference (clients pass it per call)
                    _RANK_NOTICES_GIVEN.add(name)
                    logger.warning(
                        "The CrossEncoder.rank `%s` argument is deprecated and has no effect: "
                        "rank returns Python floats",
                        name,
                    )
        if kwargs:
            raise TypeError(f"CrossEncoder.rank() got unexpected keyword arguments {sorted(kwargs)}")
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
            convert_to_numpy=True,
            device=device,
            pool=pool,
            chunk_size=chunk_size,
        )
        return rank_results(
            np.asarray(scores, dtype=np.float64).reshape(-1).tolist(), documents, top_k, return_documents
        )


def _renamed(old: str, new: str) -> None:
    warnings.warn(f"CrossEncoder.{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)
