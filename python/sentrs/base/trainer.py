"""``BaseTrainer``: the training loop of every sentrs model type, on :class:`transformers.Trainer`.

transformers runs the loop (optimizer, scheduler, gradient accumulation, mixed precision, logging, checkpoints,
resuming, callbacks); this class plugs in what differs for embedding models:

- datasets are columns of texts: the data loader uses the sentrs batch samplers and the family's data collator
  (Rust tokenization), and a ``DatasetDict`` trains on several datasets with a loss each (``dataset_name`` routing);
- the loss is a module that embeds the columns itself (``loss(features, labels)``), and its own parameters (e.g.
  the SoftmaxLoss classifier) are optimised too, with ``learning_rate_mapping`` groups on top;
- evaluation runs the evaluator(s) next to the eval loss, metrics prefixed ``eval_``;
- checkpoints are model folders in the sentence-transformers format, which ``load_best_model_at_end`` and
  ``resume_from_checkpoint`` read back.

Before the first step, one small batch of every training dataset is collated and passed through its loss without
gradients, so a dataset whose columns or labels do not fit the loss fails at once with a message that says which.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.utils.data import BatchSampler, ConcatDataset, DataLoader, RandomSampler
from transformers import Trainer, TrainerCallback
from transformers.trainer import TRAINING_ARGS_NAME

from sentrs.base.data_collator import BaseDataCollator
from sentrs.base.evaluation import SentenceEvaluator, SequentialEvaluator
from sentrs.base.sampler import (
    BatchSamplers,
    DefaultBatchSampler,
    GroupByLabelBatchSampler,
    MultiDatasetBatchSamplers,
    MultiDatasetDefaultBatchSampler,
    NoDuplicatesBatchSampler,
    ProportionalBatchSampler,
    RoundRobinBatchSampler,
)
from sentrs.base.training_args import BaseTrainingArguments

logger = logging.getLogger(__name__)

__all__ = ["BaseTrainer", "last_complete_checkpoint"]

_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


def last_complete_checkpoint(output_dir: str) -> str | None:
    """The ``checkpoint-N`` folder of ``output_dir`` with the highest step among those a save finished, or None.

    transformers writes a checkpoint's files one after another and ``trainer_state.json`` last, so a folder without
    it is what a run killed while saving leaves behind: it is skipped (with a warning naming it).
    """
    if not os.path.isdir(output_dir):
        return None
    steps = []
    for name in os.listdir(output_dir):
        match = _CHECKPOINT_NAME.match(name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            steps.append((int(match.group(1)), os.path.join(output_dir, name)))
    for _, path in sorted(steps, reverse=True):
        if os.path.isfile(os.path.join(path, "trainer_state.json")):
            return path
        logger.warning("Skipping the incomplete checkpoint %s (no trainer_state.json: its save did not finish)", path)
    return None


# Feature keys that mark a column's features in a collated batch: ``{column}_{suffix}``.
_FEATURE_SUFFIXES = (
    "input_ids",
    "sentence_embedding",
    "pixel_values",
    "input_features",
    "input_values",
    "pixel_values_videos",
)
_RESERVED_COLUMNS = frozenset({"return_loss", "dataset_name"})


def _require_training_libraries(model_class: str) -> None:
    missing = [name for name in ("datasets", "accelerate") if not _importable(name)]
    if missing:
        raise RuntimeError(
            f"Training a {model_class} needs the {' and '.join(missing)} package(s): pip install 'sentrs[train]'"
        )


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


class _ZeroGradAtBoundaries(TrainerCallback):
    """Clears gradients before the first step and after each, so no gradient outlives its step (a Cached loss's
    backward hook or an evaluation between steps must not see stale ones)."""

    def on_train_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)

    def on_step_end(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)


class BaseTrainer(Trainer, ABC):
    """The shared trainer; use :class:`~sentrs.SentenceTransformerTrainer` and its siblings.

    Args:
        model: the model to train (or ``model_init``, a callable returning one, for hyper-parameter search).
        args: the family's training arguments; defaults to ones with ``output_dir="tmp_trainer"``.
        train_dataset: a ``datasets.Dataset``, ``IterableDataset``, ``DatasetDict`` or a dict of datasets (several
            datasets: a batch comes from one dataset; ``loss`` and ``prompts`` may be per dataset).
        eval_dataset: the same kinds, for the evaluation loss.
        loss: a loss module, a dict dataset name -> loss, a callable model -> loss, or a dict of such callables.
            Defaults to the family's default loss.
        evaluator: an evaluator or a list of them (run one after another), whose metrics join the eval loss.
        data_collator: defaults to the family's collator over ``model.preprocess``.
        processing_class, model_init, compute_metrics, callbacks, optimizers, optimizer_cls_and_kwargs,
        preprocess_logits_for_metrics: as in :class:`transformers.Trainer` (``compute_metrics`` is unused: the
            losses return no predictions; use an evaluator).
    """

    # transformers types these for PreTrainedModel; here they are the sentrs model, args and collator.
    model: Any
    model_wrapped: Any
    args: Any
    data_collator: Any
    processing_class: Any
    model_class: type[Any]
    model_card_data_class: type[Any] | None = None
    model_card_callback_class: type[Any] | None = None
    data_collator_class: type[BaseDataCollator] = BaseDataCollator
    training_args_class: type[BaseTrainingArguments] = BaseTrainingArguments

    def __init__(
        self,
        model: Any = None,
        args: BaseTrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: nn.Module
        | dict[str, nn.Module]
        | Callable[[Any], nn.Module]
        | dict[str, Callable[[Any], nn.Module]]
        | None = None,
        evaluator: SentenceEvaluator | list[SentenceEvaluator] | None = None,
        data_collator: BaseDataCollator | None = None,
        processing_class: Any = None,
        model_init: Callable[[], Any] | None = None,
        compute_metrics: Callable[[Any], dict[str, Any]] | None = None,
        callbacks: list[TrainerCallback] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
        optimizer_cls_and_kwargs: tuple[type[Any], dict[str, Any]] | None = None,
        preprocess_logits_for_metrics: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        _require_training_libraries(self.model_class.__name__)
        from datasets import Dataset, DatasetDict, IterableDataset

        if args is None:
            logger.info("No `args` given: using %s(output_dir='tmp_trainer').", self.training_args_class.__name__)
            args = self.training_args_class(output_dir="tmp_trainer")
        elif not isinstance(args, self.training_args_class):
            raise ValueError(
                f"`args` must be a {self.training_args_class.__module__}.{self.training_args_class.__name__}; "
                f"got {type(args).__module__}.{type(args).__name__}"
            )

        if model is None:
            if model_init is None:
                raise RuntimeError(f"{type(self).__name__} needs a `model` or a `model_init`")
            self.model_init = model_init
            model = self.call_model_init()
        else:
            if model_init is not None:
                logger.warning(
                    "Both `model` and `model_init` given: `model_init` replaces the model when training starts."
                )
            self.model_init = model_init  # type: ignore[assignment]
        if not isinstance(model, nn.Module):
            raise TypeError(f"`model` must be a {self.model_class.__name__}; got {type(model).__name__}")
        if getattr(model, "runs_in_engine", False):
            raise ValueError(
                "`model` runs on an exported ONNX/OpenVINO engine, which has no gradients; load it with "
                "backend='torch' to train it"
            )
        if compute_metrics is not None:
            logger.warning(
                "`compute_metrics` is not used by %s (the losses return no predictions); pass an `evaluator` for "
                "metrics, or an `eval_dataset` for the evaluation loss.",
                type(self).__name__,
            )

        # Defaults, to tell the model card which arguments were changed.
        default_args_dict = self.training_args_class(
            output_dir="unused", accelerator_config={"use_configured_state": True}
        ).to_dict()
        card_data = getattr(model, "model_card_data", None)
        if args.hub_model_id and card_data is not None and not getattr(card_data, "model_id", None):
            if hasattr(card_data, "set_model_id"):
                card_data.set_model_id(args.hub_model_id)

        if data_collator is None:
            data_collator = self.get_data_collator(model=model, args=args, processing_class=processing_class)

        for kind, dataset in (("train", train_dataset), ("eval", eval_dataset)):
            if isinstance(dataset, IterableDataset) and dataset.column_names is None:
                raise ValueError(
                    f"`{kind}_dataset` is an IterableDataset without Features, so its columns are unknown; cast it "
                    f"with `{kind}_dataset.cast(Features({{...}}))` or create it with `features=`"
                )
            if dataset is not None and not isinstance(dataset, (Dataset, DatasetDict, IterableDataset, dict)):
                raise TypeError(
                    f"`{kind}_dataset` must be a datasets.Dataset, DatasetDict, IterableDataset or a dict of "
                    f"datasets; got {type(dataset).__name__}"
                )
        if isinstance(train_dataset, dict) and not isinstance(train_dataset, DatasetDict):
            train_dataset = DatasetDict(train_dataset)
        if isinstance(eval_dataset, dict) and not isinstance(eval_dataset, DatasetDict):
            eval_dataset = DatasetDict(eval_dataset)

        if eval_dataset is None and evaluator is None and args.eval_strategy != "no":
            raise ValueError(
                f"`args.eval_strategy` is {str(args.eval_strategy)!r}, but there is neither an `eval_dataset` nor an "
                f"`evaluator`: give one of them to {type(self).__name__}, or set `eval_strategy='no'`"
            )

        super().__init__(
            model=None if self.model_init else model,
            args=args,
            data_collator=data_collator,
            train_dataset=train_dataset,
            # transformers refuses evaluation without an eval dataset; an evaluator alone is enough here.
            eval_dataset=eval_dataset if eval_dataset is not None or evaluator is None else "evaluator-only",
            processing_class=processing_class,
            model_init=model_init,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
            optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )
        if isinstance(self.eval_dataset, str) and self.eval_dataset == "evaluator-only":
            self.eval_dataset = None
        self.accum_loss_components: dict[str, dict[str, torch.Tensor]] = {"train": {}, "eval": {}}
        self.can_return_loss = True

        if loss is None:
            loss = self.get_default_loss(self.model)
        if isinstance(loss, dict):
            self.loss: nn.Module | dict[str, nn.Module] = {
                name: self.prepare_loss(fn, self.model) for name, fn in loss.items()
            }
            for kind, dataset in (("train", train_dataset), ("eval", eval_dataset)):
                if dataset is None:
                    continue
                if not isinstance(dataset, dict):
                    raise ValueError(
                        f"`loss` is a dict (dataset name -> loss), so `{kind}_dataset` must be a DatasetDict or a "
                        f"dict of datasets; got {type(dataset).__name__}"
                    )
                missing = sorted(set(dataset) - set(loss))
                if missing:
                    raise ValueError(
                        f"`loss` is a dict, but has no loss for the {kind} dataset(s) {missing}; "
                        f"its keys are {sorted(loss)}"
                    )
        else:
            self.loss = self.prepare_loss(loss, self.model)

        if evaluator is not None and not isinstance(evaluator, SentenceEvaluator):
            if not isinstance(evaluator, (list, tuple)) or not all(callable(e) for e in evaluator):
                raise TypeError(
                    f"`evaluator` must be an evaluator or a list of evaluators; got {type(evaluator).__name__}"
                )
            evaluator = SequentialEvaluator(list(evaluator))
        self.evaluator = evaluator

        if self.train_dataset is not None:
            self.train_dataset = self.preprocess_dataset(self.train_dataset, dataset_name="train")
        if self.eval_dataset is not None:
            self.eval_dataset = self.preprocess_dataset(self.eval_dataset, dataset_name="eval")
        self._eval_dataloaders: dict[str, DataLoader[Any]] = {}
        self._inputs_checked = False
        self.add_model_card_callback(default_args_dict)
        self.add_callback(_ZeroGradAtBoundaries())

    # -- set-up -----------------------------------------------------------------------------------------------

    def get_data_collator(
        self, model: Any, args: BaseTrainingArguments, processing_class: Any = None
    ) -> BaseDataCollator:
        """The family's collator over ``model.preprocess``; a model with a Router needs ``args.router_mapping``."""
        from sentrs.base.modules.router import Router

        if any(isinstance(m, Router) for m in model.children()) and not args.router_mapping:
            raise ValueError(
                "The model has a Router module, but `router_mapping` is empty in the training arguments: map each "
                "column to a route, e.g. router_mapping={'question': 'query', 'answer': 'document'}"
            )
        return self.data_collator_class(
            preprocess_fn=model.preprocess,
            router_mapping=args.router_mapping,  # type: ignore[arg-type]
            prompts=args.prompts,
            max_length=getattr(args, "max_length", None),
        )

    def add_model_card_callback(self, default_args_dict: dict[str, Any]) -> None:
        """Adds the callback that records the run for the model card (when the family has one)."""
        if self.model_card_callback_class is None:
            return
        callback = self.model_card_callback_class(default_args_dict)
        self.add_callback(callback)
        callback.on_init_end(self.args, self.state, self.control, model=self.model, trainer=self)

    def call_model_init(self, trial: Any = None) -> Any:
        model = super().call_model_init(trial=trial)
        if not hasattr(self, "loss"):
            return model
        if isinstance(self.loss, dict):
            for key, fn in self.loss.items():
                if not isinstance(fn, nn.Module):
                    self.loss[key] = fn(model)
                elif hasattr(fn, "model"):
                    self.loss[key] = self.override_model_in_loss(fn, model)
        elif not isinstance(self.loss, nn.Module):
            self.loss = self.loss(model)
        elif hasattr(self.loss, "model"):
            self.loss = self.override_model_in_loss(self.loss, model)
        return model

    def override_model_in_loss(self, loss: nn.Module, model: Any) -> nn.Module:
        """Points every ``model`` attribute inside ``loss`` (modifier losses nest them) at ``model``."""
        for name, child in loss.named_children():
            if name == "model" and isinstance(child, self.model_class):
                for attr in ("preprocess", "get_embedding_dimension", "get_sentence_embedding_dimension"):
                    if hasattr(child, attr) and not hasattr(model, attr):
                        setattr(model, attr, getattr(child, attr))
                loss.model = model
            elif isinstance(child, nn.Module):
                setattr(loss, name, self.override_model_in_loss(child, model))
        return loss

    def prepare_loss(self, loss: Callable[[Any], nn.Module] | nn.Module, model: Any) -> nn.Module:
        if not isinstance(loss, nn.Module):
            if not callable(loss):
                raise TypeError(f"`loss` must be a loss module or a callable model -> loss; got {type(loss).__name__}")
            loss = loss(model)
        return loss.to(model.device)

    @abstractmethod
    def get_default_loss(self, model: Any) -> nn.Module:
        """The loss used when none is given."""

    # -- loss ------------------------------------------------------------------------------------------------

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        """``loss(features, labels)`` for the batch's dataset; a dict of loss terms is summed (and each logged)."""
        dataset_name = inputs.pop("dataset_name", None)
        loss_fn: Any = self.loss
        if isinstance(loss_fn, dict):
            if dataset_name is None:
                raise ValueError("`loss` is a dict, but the batch carries no dataset name")
            loss_fn = loss_fn[dataset_name]
        if model is self.model_wrapped and hasattr(loss_fn, "model") and loss_fn.model is not model:
            loss_fn = self.override_model_in_loss(loss_fn, model)
        loss = self.call_loss(loss_fn, inputs)
        if isinstance(loss, dict):
            self.track_loss_components(loss)
            loss = torch.stack(list(loss.values())).sum()
        if return_outputs:
            return loss, {}
        return loss

    def call_loss(self, loss_fn: nn.Module, inputs: dict[str, Any]) -> Any:
        """``loss_fn(features, labels)`` on a collated batch (its dataset name already removed)."""
        features, labels = self.collect_features(inputs)
        return loss_fn(features, labels)

    def track_loss_components(self, loss: dict[str, torch.Tensor]) -> None:
        """Adds each term of a dict loss to the running sums that :meth:`log` averages."""
        kind = "train" if self.model.training else "eval"
        sums = self.accum_loss_components[kind]
        steps = sums.get("steps")
        value: torch.Tensor | None = None
        for key, raw in loss.items():
            value = raw.detach()
            if self.args.logging_nan_inf_filter and not torch.isfinite(value).all():
                if key in sums and steps is not None and int(steps) > 0:
                    value = sums[key] / steps
                else:
                    value = torch.zeros((), dtype=value.dtype, device=value.device)
            sums[key] = value if key not in sums else sums[key] + value
        if value is not None:
            if "steps" not in sums:
                sums["steps"] = torch.zeros((), dtype=torch.long, device=value.device)
            sums["steps"] = sums["steps"] + 1

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        kind = "train" if "loss" in logs else "eval" if "eval_loss" in logs else None
        if kind is not None and "steps" in self.accum_loss_components[kind]:
            from transformers.trainer_pt_utils import nested_gather

            logs = dict(logs)
            gathered = nested_gather(self.accum_loss_components[kind], parallel_mode=self.args.parallel_mode)
            steps = gathered["steps"].sum().item()
            sums = self.accum_loss_components[kind]
            sums["steps"] = sums["steps"] * 0
            if steps:
                for key, value in gathered.items():
                    if key == "steps":
                        continue
                    logs[f"eval_{key}" if kind == "eval" else key] = round((value.sum() / steps).item(), 4)
                    sums[key] = torch.zeros((), dtype=value.dtype, device=value.device)
        if start_time is not None:
            super().log(logs, start_time)
        else:
            super().log(logs)

    def collect_features(self, inputs: dict[str, Any]) -> tuple[list[dict[str, Any]], torch.Tensor | None]:
        """Splits a collated batch into one features dict per column (in column order) and the labels."""
        features: list[dict[str, Any]] = []
        seen: set[str] = set()
        for key in inputs:
            prefix = next((key[: -len(s)] for s in _FEATURE_SUFFIXES if key.endswith("_" + s)), None)
            if prefix is None or prefix in seen:
                continue
            seen.add(prefix)
            features.append({k[len(prefix) :]: v for k, v in inputs.items() if k.startswith(prefix)})
        return features, inputs.get("label")

    # -- checking datasets against their losses -------------------------------------------------------------

    def validate_column_names(self, dataset: Any, dataset_name: str | None = None) -> None:
        if isinstance(dataset, dict):
            for name, inner in dataset.items():
                self.validate_column_names(inner, dataset_name=name)
            return
        names = getattr(dataset, "column_names", None) or []
        overlap = sorted(set(names) & _RESERVED_COLUMNS)
        if overlap:
            where = f"the {dataset_name} dataset" if dataset_name else "the dataset"
            raise ValueError(f"{where} has reserved column name(s) {overlap}; rename them")

    def check_datasets_fit_losses(self, rows: int = 4) -> None:
        """Collates ``rows`` rows of each training dataset and runs its loss on them without gradients, so a
        column or label mismatch fails before the first step, naming the dataset, its columns and the loss."""
        from datasets import Dataset, DatasetDict

        if self.train_dataset is None:
            return
        parts = (
            self.train_dataset.items() if isinstance(self.train_dataset, DatasetDict) else [(None, self.train_dataset)]
        )
        was_training = self.model.training
        self.model.eval()
        try:
            for name, dataset in parts:
                if not isinstance(dataset, Dataset) or len(dataset) == 0:
                    continue
                loss_fn: Any = self.loss[str(name)] if isinstance(self.loss, dict) else self.loss
                sample = [dataset[i] for i in range(min(rows, len(dataset)))]
                columns = [c for c in sample[0] if c != "dataset_name"]
                where = f"train dataset {name!r}" if name else "train dataset"
                try:
                    batch = self.data_collator(sample)
                    batch.pop("dataset_name", None)
                    batch = self._prepare_inputs(batch)
                    with torch.no_grad():
                        self.call_loss(loss_fn, batch)
                except (ValueError, TypeError, IndexError, KeyError, RuntimeError, AttributeError) as exc:
                    raise ValueError(
                        f"The {where} (columns {columns}) does not fit {type(loss_fn).__name__}: {exc}"
                    ) from exc
        finally:
            self.model.train(was_training)

    def train(self, *args: Any, **kwargs: Any) -> Any:
        """As ``transformers.Trainer.train``; ``resume_from_checkpoint=True`` resumes from the last *complete*
        checkpoint of ``output_dir``, passing over one that a killed run left half-written."""
        if not self._inputs_checked:
            self.check_datasets_fit_losses()
            self._inputs_checked = True
        if args and args[0] is True:
            args = (last_complete_checkpoint(self.args.output_dir) or True, *args[1:])
        elif kwargs.get("resume_from_checkpoint") is True:
            kwargs["resume_from_checkpoint"] = last_complete_checkpoint(self.args.output_dir) or True
        return super().train(*args, **kwargs)

    # -- evaluation ------------------------------------------------------------------------------------------

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        if eval_dataset is not None and not isinstance(eval_dataset, str):
            eval_dataset = self.preprocess_dataset(eval_dataset, dataset_name="eval")
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def evaluation_loop(
        self,
        dataloader: DataLoader[Any],
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> Any:
        output = super().evaluation_loop(
            dataloader=dataloader,
            description=description,
            prediction_loss_only=prediction_loss_only,
            ignore_keys=ignore_keys,
            metric_key_prefix=metric_key_prefix,
        )
        if self.evaluator is None:
            return output
        # With several eval datasets transformers evaluates each as eval_<name>: the evaluator runs once, with
        # the first, under the plain "eval" prefix.
        if self.is_in_train and isinstance(self.eval_dataset, dict) and metric_key_prefix.startswith("eval_"):
            if metric_key_prefix[len("eval_") :] != next(iter(self.eval_dataset)):
                return output
            metric_key_prefix = "eval"
        metrics: Any = {}
        if self.is_world_process_zero():
            output_path = os.path.join(self.args.output_dir, "eval")
            os.makedirs(output_path, exist_ok=True)
            metrics = self.evaluator(
                self.model,
                output_path=output_path,
                epoch=self.state.epoch,  # type: ignore[arg-type]
                steps=self.state.global_step,
            )
            if not isinstance(metrics, dict):
                metrics = {"evaluator": metrics}
        if self.args.world_size > 1:
            from accelerate.utils import broadcast_object_list

            metrics = broadcast_object_list([metrics])[0]
        for key in list(metrics):
            if not key.startswith(f"{metric_key_prefix}_"):
                metrics[f"{metric_key_prefix}_{key}"] = metrics.pop(key)
        output.metrics.update(metrics)  # type: ignore[union-attr]
        return output

    # -- data loaders ----------------------------------------------------------------------------------------

    def get_batch_sampler(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> BatchSampler | None:
        """The batch sampler ``args.batch_sampler`` names, for one dataset (None for an IterableDataset)."""
        from datasets import IterableDataset

        kwargs: dict[str, Any] = {
            "batch_size": batch_size,
            "drop_last": drop_last,
            "valid_label_columns": valid_label_columns,
            "generator": generator,
            "seed": seed,
        }
        choice = self.args.batch_sampler
        if not isinstance(choice, BatchSamplers) and (
            (inspect.isclass(choice) and issubclass(choice, DefaultBatchSampler)) or callable(choice)
        ):
            return choice(dataset, **kwargs)
        if isinstance(dataset, IterableDataset):
            if choice != BatchSamplers.BATCH_SAMPLER:
                logger.warning("An IterableDataset is read in order: `batch_sampler` %r is not used.", str(choice))
            return None
        if choice == BatchSamplers.NO_DUPLICATES:
            return NoDuplicatesBatchSampler(dataset, **kwargs)
        if choice == BatchSamplers.NO_DUPLICATES_HASHED:
            return NoDuplicatesBatchSampler(dataset, precompute_hashes=True, **kwargs)
        if choice == BatchSamplers.GROUP_BY_LABEL:
            return GroupByLabelBatchSampler(dataset, **kwargs)
        return DefaultBatchSampler(RandomSampler(dataset, generator=generator), **kwargs)

    def get_multi_dataset_batch_sampler(
        self,
        dataset: ConcatDataset[Any],
        batch_samplers: list[BatchSampler],
        generator: torch.Generator | None = None,
        seed: int | None = 0,
    ) -> BatchSampler:
        """The sampler that interleaves the batches of several datasets (``args.multi_dataset_batch_sampler``)."""
        kwargs: dict[str, Any] = {"batch_samplers": batch_samplers, "generator": generator, "seed": seed}
        choice = self.args.multi_dataset_batch_sampler
        if not isinstance(choice, MultiDatasetBatchSamplers) and (
            (inspect.isclass(choice) and issubclass(choice, MultiDatasetDefaultBatchSampler)) or callable(choice)
        ):
            return choice(dataset, **kwargs)
        if choice == MultiDatasetBatchSamplers.ROUND_ROBIN:
            return RoundRobinBatchSampler(dataset=dataset, **kwargs)
        return ProportionalBatchSampler(dataset=dataset, **kwargs)

    def _build_dataloader(self, dataset: Any, batch_size: int, dataset_kind: str) -> DataLoader[Any]:
        from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict

        generator = torch.Generator()
        if self.args.seed is not None:
            generator.manual_seed(self.args.seed)
        params: dict[str, Any] = {
            "collate_fn": self.data_collator,
            "num_workers": self.args.dataloader_num_workers,
            "pin_memory": self.args.dataloader_pin_memory,
            "persistent_workers": self.args.dataloader_persistent_workers,
            "prefetch_factor": self.args.dataloader_prefetch_factor,
        }
        label_columns = getattr(self.data_collator, "valid_label_columns", None)
        if isinstance(dataset, IterableDataset):
            params.update(batch_size=batch_size, drop_last=self.args.dataloader_drop_last)
            if self.args.batch_sampler != BatchSamplers.BATCH_SAMPLER:
                logger.warning("An IterableDataset is read in order: `batch_sampler` is not used.")
        elif isinstance(dataset, IterableDatasetDict):
            raise ValueError(
                f"`{dataset_kind}_dataset` is an IterableDatasetDict, which is not supported; use a DatasetDict"
            )
        elif isinstance(dataset, DatasetDict):
            if any(isinstance(d, IterableDataset) for d in dataset.values()):
                raise ValueError(
                    f"`{dataset_kind}_dataset` is a DatasetDict holding an IterableDataset, which is not supported"
                )
            samplers = [
                self.get_batch_sampler(
                    d,
                    batch_size=batch_size,
                    drop_last=self.args.dataloader_drop_last,
                    valid_label_columns=label_columns,
                    generator=generator,
                    seed=self.args.seed,
                )
                for d in dataset.values()
            ]
            concat: ConcatDataset[Any] = ConcatDataset(list(dataset.values()))
            params["batch_sampler"] = self.get_multi_dataset_batch_sampler(
                dataset=concat,
                batch_samplers=samplers,  # type: ignore[arg-type]
                generator=generator,
                seed=self.args.seed,
            )
            dataset = concat
        elif isinstance(dataset, Dataset):
            params["batch_sampler"] = self.get_batch_sampler(
                dataset,
                batch_size=batch_size,
                drop_last=self.args.dataloader_drop_last,
                valid_label_columns=label_columns,
                generator=generator,
                seed=self.args.seed,
            )
        else:
            raise ValueError(
                f"`{dataset_kind}_dataset` must be a Dataset, DatasetDict or IterableDataset; "
                f"got {type(dataset).__name__}"
            )
        return DataLoader(dataset, **params)

    def get_train_dataloader(self) -> DataLoader[Any]:
        if self.train_dataset is None:
            raise ValueError(f"Training needs a `train_dataset` given to {type(self).__name__}")
        self.accelerator.even_batches = False
        loader = self.accelerator.prepare(
            self._build_dataloader(self.train_dataset, self.args.train_batch_size, "train")
        )
        self._train_dataloader = loader
        return loader

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader[Any]:
        if eval_dataset is None and self.eval_dataset is None:
            if self.evaluator is not None:
                return DataLoader([])  # type: ignore[arg-type]
            raise ValueError(f"Evaluation needs an `eval_dataset` or an `evaluator` given to {type(self).__name__}")
        key = eval_dataset if isinstance(eval_dataset, str) else "eval"
        cacheable = isinstance(eval_dataset, str) or eval_dataset is None or eval_dataset is self.eval_dataset
        if cacheable and self.args.dataloader_persistent_workers and key in self._eval_dataloaders:
            return self._eval_dataloaders[key]
        if isinstance(eval_dataset, str):
            assert self.eval_dataset is not None
            eval_dataset = self.eval_dataset[eval_dataset]
        elif eval_dataset is None:
            eval_dataset = self.eval_dataset
        self.accelerator.even_batches = True
        loader = self.accelerator.prepare(self._build_dataloader(eval_dataset, self.args.eval_batch_size, "eval"))
        if cacheable and self.args.dataloader_persistent_workers:
            self._eval_dataloaders[key] = loader
        return loader

    def get_test_dataloader(self, test_dataset: Any) -> DataLoader[Any]:
        self.accelerator.even_batches = True
        return self.accelerator.prepare(self._build_dataloader(test_dataset, self.args.eval_batch_size, "test"))

    # -- datasets: dataset_name routing ----------------------------------------------------------------------

    def preprocess_dataset(self, dataset: Any = None, dataset_name: str | None = None) -> Any:
        if dataset is None or getattr(dataset, "_sentrs_preprocessed", False):
            return dataset
        self.validate_column_names(dataset, dataset_name=dataset_name)
        if self.should_dataset_name_column_be_added(dataset, self.args, self.loss):
            dataset = self.add_dataset_name_column(dataset)
            dataset._sentrs_preprocessed = True
        return dataset

    def should_dataset_name_column_be_added(self, dataset: Any, args: BaseTrainingArguments, loss: Any) -> bool:
        """Several datasets need their name in each batch when the loss, prompts or routes are per dataset."""
        from datasets import DatasetDict, IterableDatasetDict

        if not isinstance(dataset, (DatasetDict, IterableDatasetDict)):
            return False
        per_dataset_routes = (
            isinstance(args.router_mapping, dict)
            and bool(args.router_mapping)
            and isinstance(next(iter(args.router_mapping.values())), dict)
        )
        return isinstance(loss, dict) or (bool(args.prompts) and isinstance(args.prompts, dict)) or per_dataset_routes

    def add_dataset_name_column(self, dataset: Any, dataset_name: str | None = None) -> Any:
        """Adds a ``dataset_name`` value to every row (a transform for a Dataset, a map for an IterableDataset)."""
        from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict, Value

        if isinstance(dataset, (DatasetDict, IterableDatasetDict)):
            for name in list(dataset):
                dataset[name] = self.add_dataset_name_column(dataset[name], dataset_name=name)
            return dataset
        if dataset_name is None:
            return dataset
        if isinstance(dataset, Dataset):
            dataset.set_transform(
                partial(self.add_dataset_name_transform, dataset_name=dataset_name, **dataset._format_kwargs)
            )
            return dataset
        if isinstance(dataset, IterableDataset):
            features = dataset.features
            features["dataset_name"] = Value("string")
            return dataset.map(
                partial(self.add_dataset_name_transform, dataset_name=dataset_name), batched=True, features=features
            )
        raise ValueError(f"Unsupported dataset type {type(dataset).__name__}")

    @staticmethod
    def add_dataset_name_transform(
        batch: dict[str, list[Any]],
        dataset_name: str | None = None,
        transform: Callable[[dict[str, list[Any]]], dict[str, list[Any]]] | None = None,
        **kwargs: Any,
    ) -> dict[str, list[Any]]:
        if transform:
            batch = transform(batch)
        if not batch or not next(iter(batch.values())) or dataset_name is None:
            return batch
        batch["dataset_name"] = [dataset_name] * len(next(iter(batch.values())))
        return batch

    # -- checkpoints -----------------------------------------------------------------------------------------

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        logger.info("Saving model checkpoint to %s", output_dir)
        if hasattr(self.args, "save_safetensors"):  # transformers 5 always writes safetensors and dropped the flag
            self.model.save_pretrained(output_dir, safe_serialization=self.args.save_safetensors)
        else:
            self.model.save_pretrained(output_dir)
        if self.processing_class is not None:
            self.processing_class.save_pretrained(output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        """Loads a checkpoint folder (a model folder) and copies its weights into the model being trained."""
        target = getattr(self.model, "_orig_mod", self.model)
        loaded = type(target)(
            resume_from_checkpoint,
            device=str(target.device),
            trust_remote_code=getattr(target, "trust_remote_code", False),
        )
        target.load_state_dict(loaded.state_dict())

    def _load_best_model(self) -> None:
        checkpoint = self.state.best_model_checkpoint
        logger.info("Loading the best model from %s (score: %s).", checkpoint, self.state.best_metric)
        card_data = getattr(self.model, "model_card_data", None)
        if checkpoint and card_data is not None and hasattr(card_data, "set_best_model_step"):
            try:
                card_data.set_best_model_step(int(checkpoint.rsplit("-", 1)[-1]))
            except ValueError:
                pass
        if checkpoint is None:
            return
        try:
            self._load_from_checkpoint(checkpoint)
        except (OSError, ValueError, RuntimeError) as exc:
            logger.error("Could not load the best model from %s: %s", checkpoint, exc)

    def create_model_card(
        self,
        language: str | None = None,
        license: str | None = None,
        tags: str | list[str] | None = None,
        model_name: str | None = None,
        finetuned_from: str | None = None,
        tasks: str | list[str] | None = None,
        dataset_tags: str | list[str] | None = None,
        dataset: str | list[str] | None = None,
        dataset_args: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Writes the model card into ``args.output_dir`` (called by ``push_to_hub``)."""
        if not self.is_world_process_zero():
            return
        card_data = getattr(self.model, "model_card_data", None)
        if card_data is not None:
            if language and hasattr(card_data, "set_language"):
                card_data.set_language(language)
            if license and hasattr(card_data, "set_license"):
                card_data.set_license(license)
            if tags and hasattr(card_data, "add_tags"):
                card_data.add_tags(tags)
        if hasattr(self.model, "_create_model_card"):
            self.model._create_model_card(self.args.output_dir, model_name=model_name)

    # -- optimizer -------------------------------------------------------------------------------------------

    def get_optimizer_cls_and_kwargs(self, args: BaseTrainingArguments, model: Any = None) -> tuple[Any, Any]:  # type: ignore[override]
        """The optimizer over the loss's parameters (the model's and the loss's own), with weight decay groups as
        transformers makes them and an extra group per ``learning_rate_mapping`` pattern."""
        loss_model = nn.Sequential(OrderedDict(self.loss)) if isinstance(self.loss, dict) else self.loss
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, loss_model)  # type: ignore[arg-type]
        decay = set(self.get_decay_parameter_names(loss_model))
        named = [(n, p) for n, p in loss_model.named_parameters() if p.requires_grad]
        if not {"params", "model", "optimizer_dict"} & set(optimizer_kwargs):
            optimizer_kwargs["optimizer_dict"] = [
                {"params": [p for n, p in named if n in decay], "weight_decay": args.weight_decay},
                {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
            ]
        for pattern, lr in args.learning_rate_mapping.items():  # type: ignore[union-attr]
            key = next(iter({"params", "model", "optimizer_dict"} & set(optimizer_kwargs)), "optimizer_dict")
            matching = [(n, p) for n, p in loss_model.named_parameters() if re.search(pattern, n)]
            if not matching:
                raise ValueError(
                    f"`learning_rate_mapping` pattern {pattern!r} matches no parameter of the model or loss "
                    f"(names look like {next(iter(n for n, _ in loss_model.named_parameters()), '')!r})"
                )
            ids = {id(p) for _, p in matching}
            for group in optimizer_kwargs[key]:
                if "params" in group:
                    group["params"] = [p for p in group["params"] if id(p) not in ids]
            with_decay = [p for n, p in matching if n in decay]
            without = [p for n, p in matching if n not in decay]
            if with_decay:
                optimizer_kwargs[key].append({"params": with_decay, "lr": lr, "weight_decay": args.weight_decay})
            if without:
                optimizer_kwargs[key].append({"params": without, "lr": lr, "weight_decay": 0.0})
        return optimizer_cls, optimizer_kwargs
