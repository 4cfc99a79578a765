"""``FitMixin``: the training API of sentence-transformers v2, ``model.fit(train_objectives=[(dataloader, loss)])``.

:meth:`FitMixin.fit` keeps old training scripts running on the current trainer: it reads every DataLoader of
:class:`~sentrs.InputExample` into a ``datasets.Dataset`` (columns ``sentence_0``, ``sentence_1``, ..., ``label``),
maps the old options onto :class:`~sentrs.SentenceTransformerTrainingArguments` and a hand-built optimizer and
scheduler, and runs :class:`~sentrs.SentenceTransformerTrainer` with the datasets interleaved round-robin, one loss
each. :meth:`FitMixin.old_fit` is the v2 training loop itself, for scripts that depend on its exact behaviour.

New code should use :class:`~sentrs.SentenceTransformerTrainer` directly. This module imports nothing heavy; torch,
transformers and datasets load when a method runs.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, cast

from sentrs._lazy import lazy_module_attrs
from sentrs.base._legacy_fit import (
    DEFAULT_BATCH_SIZE,
    default_checkpoint_dir,
    get_scheduler,
    grouped_parameters,
    primary_score,
    read_examples,
)

if TYPE_CHECKING:
    from datasets import Dataset
    from torch import Tensor, nn
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LambdaLR
    from torch.utils.data import DataLoader

    from sentrs.base.evaluation import BaseEvaluator
    from sentrs.base.sampler import BatchSamplers
    from sentrs.sentence_transformer.model import SentenceTransformer
    from sentrs.sentence_transformer.readers.input_example import InputExample

__all__ = ["FitMixin"]

logger = logging.getLogger(__name__)

# The trainer callbacks fit() adds import transformers: they load on first use, under the reference's names.
__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    dict.fromkeys(("EvaluatorCallback", "OriginalCallback", "SaveModelCallback"), "sentrs.base._fit_callbacks"),
)


def _latest_trainer_checkpoint(checkpoint_path: str) -> str | None:
    """The ``checkpoint-<step>`` folder with the highest step in ``checkpoint_path``, or None (with a warning)."""
    if not os.path.isdir(checkpoint_path):
        logger.warning(f"Checkpoint directory does not exist or is not a directory: {checkpoint_path}")
        return None
    logger.info(f"Looking for checkpoints in: {checkpoint_path}")
    steps = [
        int(name.rsplit("-", 1)[1])
        for name in os.listdir(checkpoint_path)
        if name.startswith("checkpoint-") and name.rsplit("-", 1)[1].isdigit()
    ]
    if not steps:
        logger.warning(f"No checkpoints found in checkpoint directory: {checkpoint_path}")
        return None
    latest = os.path.join(checkpoint_path, f"checkpoint-{max(steps)}")
    logger.info(f"Resuming from latest checkpoint: {latest}")
    return latest


class FitMixin:
    """Adds the old training API, :meth:`fit` and :meth:`old_fit`, to :class:`~sentrs.SentenceTransformer`."""

    def fit(
        self,
        train_objectives: Iterable[tuple[DataLoader[Any], nn.Module]],
        evaluator: BaseEvaluator | None = None,
        epochs: int = 1,
        steps_per_epoch: int | None = None,
        scheduler: str = "WarmupLinear",
        warmup_steps: int = 10000,
        optimizer_class: type[Optimizer] | None = None,
        optimizer_params: dict[str, Any] = {"lr": 2e-5},  # noqa: B006 - the reference's default; never mutated
        weight_decay: float = 0.01,
        evaluation_steps: int = 0,
        output_path: str | None = None,
        save_best_model: bool = True,
        max_grad_norm: float = 1,
        use_amp: bool = False,
        callback: Callable[[float, int, int], None] | None = None,
        show_progress_bar: bool = True,
        checkpoint_path: str | None = None,
        checkpoint_save_steps: int = 500,
        checkpoint_save_total_limit: int = 0,
        resume_from_checkpoint: bool = False,
    ) -> None:
        """Trains with the v2 API on :class:`~sentrs.SentenceTransformerTrainer` (deprecated: use the trainer).

        Each ``(dataloader, loss)`` pair is one training objective. Every DataLoader (of
        :class:`~sentrs.InputExample`) is read once, up front, into a dataset with columns ``sentence_0``,
        ``sentence_1``, ... and ``label`` (left out when every label is 0); its ``collate_fn`` is replaced for that.
        The datasets are then trained round-robin, one batch of each in turn, until the smallest is used up, every
        epoch. A :class:`~sentrs.sentence_transformer.datasets.NoDuplicatesDataLoader` selects the trainer's
        ``no_duplicates`` batch sampler and a :class:`~sentrs.sentence_transformer.datasets.SentenceLabelDataset`
        its ``group_by_label`` one; the batch size is the DataLoader's (with several objectives, the last one's
        sampler and batch size apply to all). The trainer seeds itself with its default seed (42).

        Args:
            train_objectives: ``(DataLoader, loss)`` pairs; more than one for multi-task training.
            evaluator: run after every epoch and every ``evaluation_steps``; with ``output_path`` and
                ``save_best_model`` its primary metric picks the model that is saved.
            epochs: training epochs.
            steps_per_epoch: with ``epochs=1``, the number of training steps (``max_steps``); ignored, with a
                warning, for more epochs. None: the whole datasets.
            scheduler: learning-rate schedule, case-insensitive: ``constantlr``, ``warmupconstant``,
                ``warmuplinear``, ``warmupcosine`` or ``warmupcosinewithhardrestarts``.
            warmup_steps: steps of linear warm-up from 0 to the learning rate (for the ``warmup*`` schedules).
            optimizer_class: the optimizer class; None means ``torch.optim.AdamW``, the reference's default.
            optimizer_params: keyword arguments of the optimizer (the learning rate: ``{"lr": 2e-5}``).
            weight_decay: weight decay of all parameters but biases and LayerNorm weights.
            evaluation_steps: also evaluate every this many steps when positive.
            output_path: save the model here: the best one by the evaluator, or the final one without evaluator.
                Evaluation results go to ``output_path/eval``.
            save_best_model: with an evaluator, save on every improvement of its primary metric.
            max_grad_norm: gradient clipping norm.
            use_amp: mixed precision (``fp16``).
            callback: called as ``callback(score, epoch, steps)`` after each evaluation.
            show_progress_bar: show the trainer's progress bar.
            checkpoint_path: save trainer checkpoints here (default: ``checkpoints/model``, unsaved unless this is
                given).
            checkpoint_save_steps: steps between checkpoints.
            checkpoint_save_total_limit: keep at most this many checkpoints.
            resume_from_checkpoint: continue from the latest ``checkpoint-<step>`` in ``checkpoint_path``.

        Raises:
            ImportError: the ``datasets`` package is missing.
            TypeError: the model runs an exported ONNX/OpenVINO file, which cannot be trained.
            ValueError: no training objective, an unknown scheduler, or a DataLoader without examples.
        """
        from sentrs.util.environment import is_datasets_available

        if not is_datasets_available():
            raise ImportError("fit() needs the datasets package: pip install 'sentrs[train]'")
        model = cast("SentenceTransformer", self)
        model._need_torch_modules("fit()")

        import torch
        from datasets import DatasetDict
        from torch import nn

        from sentrs.base._fit_callbacks import EvaluatorCallback, OriginalCallback, SaveModelCallback
        from sentrs.base.sampler import MultiDatasetBatchSamplers
        from sentrs.sentence_transformer.trainer import SentenceTransformerTrainer
        from sentrs.sentence_transformer.training_args import SentenceTransformerTrainingArguments

        objectives = list(train_objectives)
        if not objectives:
            raise ValueError("fit() needs at least one (DataLoader, loss) training objective")
        loaders = [loader for loader, _ in objectives]
        losses = {f"_dataset_{idx}": loss for idx, (_, loss) in enumerate(objectives, start=1)}

        train_datasets, batch_size, batch_sampler = self._read_objectives(loaders)
        train_dataset = DatasetDict(train_datasets)

        max_steps = -1
        if steps_per_epoch is not None and steps_per_epoch > 0:
            if epochs == 1:
                max_steps = steps_per_epoch
            else:
                logger.warning(
                    "`steps_per_epoch` is ignored when `epochs` > 1 (as in sentence-transformers v3+): every epoch "
                    "trains on the full datasets."
                )
                steps_per_epoch = None

        args = SentenceTransformerTrainingArguments(
            output_dir=checkpoint_path or default_checkpoint_dir(),
            batch_sampler=batch_sampler,
            multi_dataset_batch_sampler=MultiDatasetBatchSamplers.ROUND_ROBIN,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            num_train_epochs=epochs,
            max_steps=max_steps,
            eval_strategy="steps" if evaluation_steps is not None and evaluation_steps > 0 else "no",
            eval_steps=evaluation_steps,
            max_grad_norm=max_grad_norm,
            fp16=use_amp,
            disable_tqdm=not show_progress_bar,
            save_strategy="steps" if checkpoint_path is not None else "no",
            save_steps=checkpoint_save_steps,
            save_total_limit=checkpoint_save_total_limit,
        )

        # The schedule's length, estimated as the old loop did: whole batches of the smallest dataset, per dataset.
        if not steps_per_epoch:
            steps_per_epoch = min(len(dataset) // batch_size for dataset in train_datasets.values())
        total_steps = max_steps if max_steps > 0 else int(steps_per_epoch * epochs) * len(losses)

        parameters = nn.ModuleDict({"model": cast("nn.Module", model), **losses}).named_parameters()
        optimizer = (optimizer_class or torch.optim.AdamW)(
            grouped_parameters(parameters, weight_decay), **optimizer_params
        )
        lr_scheduler = self._get_scheduler(
            optimizer, scheduler=scheduler, warmup_steps=warmup_steps, t_total=total_steps
        )

        callbacks: list[Any] = []
        if evaluator is not None:
            callbacks.append(EvaluatorCallback(evaluator, output_path))
            if callback is not None:
                callbacks.append(OriginalCallback(callback, evaluator))

        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=None,
            loss=losses,
            evaluator=evaluator,
            optimizers=(optimizer, lr_scheduler),
            callbacks=callbacks,
        )
        for registered in trainer.callback_handler.callbacks:
            if isinstance(registered, EvaluatorCallback):
                registered.trainer = trainer
        if output_path is not None:
            trainer.add_callback(SaveModelCallback(output_path, evaluator, save_best_model))

        resume: str | bool | None = resume_from_checkpoint
        if checkpoint_path is not None and resume_from_checkpoint:
            resume = _latest_trainer_checkpoint(checkpoint_path)
        trainer.train(resume_from_checkpoint=resume)

    @staticmethod
    def _read_objectives(loaders: Sequence[Any]) -> tuple[dict[str, Dataset], int, BatchSamplers]:
        """Reads every DataLoader of examples into a dataset named ``_dataset_<i>``; also returns the batch size and
        the batch sampler the loaders call for (the last loader that says one wins)."""
        from sentrs.base.sampler import BatchSamplers

        batch_size = DEFAULT_BATCH_SIZE
        batch_sampler = BatchSamplers.BATCH_SAMPLER
        datasets: dict[str, Dataset] = {}
        for idx, loader in enumerate(loaders, start=1):
            dataset, batch_size, loader_sampler = read_examples(loader, idx, "SentenceTransformerTrainer")
            batch_sampler = loader_sampler or batch_sampler
            datasets[f"_dataset_{idx}"] = dataset
        return datasets, batch_size, batch_sampler

    @staticmethod
    def _get_scheduler(optimizer: Optimizer, scheduler: str, warmup_steps: int, t_total: int) -> LambdaLR:
        """The transformers learning-rate schedule named ``scheduler`` (case-insensitive): ``constantlr``,
        ``warmupconstant``, ``warmuplinear``, ``warmupcosine`` or ``warmupcosinewithhardrestarts``.

        Raises:
            ValueError: an unknown name.
        """
        return get_scheduler(optimizer, scheduler, warmup_steps, t_total)

    def smart_batching_collate(self, batch: list[InputExample]) -> tuple[list[dict[str, Tensor]], Tensor]:
        """Collates a batch of examples for the old training loop: one features dict per text column
        (``model.preprocess`` of that column's texts) and the labels as a tensor (stacked when they are arrays).

        Args:
            batch: examples with the same number of texts.

        Returns:
            ``(features, labels)``; ``labels`` has shape ``(n,)``, or ``(n, dim)`` for array labels.
        """
        import numpy as np
        import torch

        model = cast("SentenceTransformer", self)
        columns = zip(*(example.texts or [] for example in batch))
        features = [model.preprocess(list(column)) for column in columns]
        labels = [example.label for example in batch]
        if labels and isinstance(labels[0], np.ndarray):
            return features, torch.from_numpy(np.stack(labels))
        return features, torch.tensor(labels)

    def old_fit(
        self,
        train_objectives: Iterable[tuple[DataLoader[Any], nn.Module]],
        evaluator: BaseEvaluator | None = None,
        epochs: int = 1,
        steps_per_epoch: int | None = None,
        scheduler: str = "WarmupLinear",
        warmup_steps: int = 10000,
        optimizer_class: type[Optimizer] | None = None,
        optimizer_params: dict[str, Any] = {"lr": 2e-5},  # noqa: B006 - the reference's default; never mutated
        weight_decay: float = 0.01,
        evaluation_steps: int = 0,
        output_path: str | None = None,
        save_best_model: bool = True,
        max_grad_norm: float = 1,
        use_amp: bool = False,
        callback: Callable[[float, int, int], None] | None = None,
        show_progress_bar: bool = True,
        checkpoint_path: str | None = None,
        checkpoint_save_steps: int = 500,
        checkpoint_save_total_limit: int = 0,
    ) -> None:
        """The training loop of sentence-transformers v2 (deprecated: use :class:`~sentrs.SentenceTransformerTrainer`,
        or :meth:`fit`). Only for scripts that depend on its exact behaviour.

        Each step takes one batch from every ``(dataloader, loss)`` objective in turn (a DataLoader that runs out
        starts again) and updates the parameters of that loss (the model's included) with the objective's own
        optimizer and scheduler. DataLoaders get :meth:`smart_batching_collate` as their ``collate_fn``. After every
        epoch, and every ``evaluation_steps`` steps, the evaluator runs; its primary metric decides whether the
        model is saved to ``output_path`` (``save_best_model``) and is passed to ``callback(score, epoch, steps)``.
        Without an evaluator the final model is saved to ``output_path``. Checkpoints are model folders named by
        step in ``checkpoint_path``.

        The arguments are those of :meth:`fit` but ``resume_from_checkpoint``; here ``steps_per_epoch`` (default:
        the number of batches of the smallest DataLoader) applies to every epoch, and checkpoints are model folders.

        Raises:
            TypeError: the model runs an exported ONNX/OpenVINO file, which cannot be trained.
            ValueError: an unknown scheduler.
        """
        import torch
        from tqdm.auto import trange

        from sentrs.base.tensors import batch_to_device

        model = cast("SentenceTransformer", self)
        model._need_torch_modules("old_fit()")
        device = model.device
        model.to(device)

        objectives = list(train_objectives)
        loaders = [loader for loader, _ in objectives]
        loss_models = [loss for _, loss in objectives]
        for loader in loaders:
            loader.collate_fn = self.smart_batching_collate
        for loss_model in loss_models:
            loss_model.to(device)

        self.best_score = -9999999.0
        if not steps_per_epoch:
            steps_per_epoch = min(len(loader) for loader in loaders)
        total_steps = int(steps_per_epoch * epochs)

        optimizers = [
            (optimizer_class or torch.optim.AdamW)(
                grouped_parameters(loss_model.named_parameters(), weight_decay), **optimizer_params
            )
            for loss_model in loss_models
        ]
        schedulers = [
            self._get_scheduler(optimizer, scheduler=scheduler, warmup_steps=warmup_steps, t_total=total_steps)
            for optimizer in optimizers
        ]
        scaler = torch.amp.GradScaler(device.type) if use_amp else None

        def next_batch(idx: int) -> Any:
            try:
                return next(iterators[idx])
            except StopIteration:
                iterators[idx] = iter(loaders[idx])
                return next(iterators[idx])

        def start_training_mode() -> None:
            for loss_model in loss_models:
                loss_model.zero_grad()
                loss_model.train()

        iterators = [iter(loader) for loader in loaders]
        global_step = 0
        skip_scheduler = False
        for epoch in trange(epochs, desc="Epoch", disable=not show_progress_bar):
            start_training_mode()
            for step_in_epoch in trange(
                1, steps_per_epoch + 1, desc="Iteration", smoothing=0.05, disable=not show_progress_bar
            ):
                for idx, (loss_model, optimizer, lr_scheduler) in enumerate(zip(loss_models, optimizers, schedulers)):
                    features, labels = next_batch(idx)
                    labels = labels.to(device)
                    features = [batch_to_device(column, device) for column in features]
                    if scaler is not None:
                        with torch.autocast(device_type=device.type):
                            loss_value = loss_model(features, labels)
                        scale_before = scaler.get_scale()
                        scaler.scale(loss_value).backward()
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(loss_model.parameters(), max_grad_norm)
                        scaler.step(optimizer)
                        scaler.update()
                        skip_scheduler = scaler.get_scale() != scale_before  # the step was skipped (inf/nan)
                    else:
                        loss_value = loss_model(features, labels)
                        loss_value.backward()
                        torch.nn.utils.clip_grad_norm_(loss_model.parameters(), max_grad_norm)
                        optimizer.step()
                    optimizer.zero_grad()
                    if not skip_scheduler:
                        lr_scheduler.step()
                global_step += 1

                if evaluation_steps > 0 and step_in_epoch % evaluation_steps == 0:
                    self._eval_during_training(evaluator, output_path, save_best_model, epoch, step_in_epoch, callback)
                    start_training_mode()
                if checkpoint_path is not None and checkpoint_save_steps and global_step % checkpoint_save_steps == 0:
                    self._save_checkpoint(checkpoint_path, checkpoint_save_total_limit, global_step)

            self._eval_during_training(evaluator, output_path, save_best_model, epoch, -1, callback)

        if evaluator is None and output_path is not None:
            model.save(output_path)
        if checkpoint_path is not None:
            self._save_checkpoint(checkpoint_path, checkpoint_save_total_limit, global_step)

    def _eval_during_training(
        self,
        evaluator: BaseEvaluator | None,
        output_path: str | None,
        save_best_model: bool,
        epoch: int,
        steps: int,
        callback: Callable[[float, int, int], None] | None,
    ) -> None:
        """One evaluation of :meth:`old_fit`: results to ``output_path/eval``; the primary score goes to
        ``callback`` and, when it beats the best so far, the model is saved to ``output_path``."""
        eval_path = output_path
        if output_path is not None:
            eval_path = os.path.join(output_path, "eval")
            os.makedirs(eval_path, exist_ok=True)
        if evaluator is None:
            return
        score = primary_score(evaluator, evaluator(self, output_path=eval_path, epoch=epoch, steps=steps))
        if callback is not None:
            callback(score, epoch, steps)
        if score > self.best_score:
            self.best_score = score
            if save_best_model and output_path is not None:
                cast("SentenceTransformer", self).save(output_path)

    def _save_checkpoint(self, checkpoint_path: str, checkpoint_save_total_limit: int | None, step: int) -> None:
        """Saves the model to ``checkpoint_path/<step>`` and removes the oldest such folder beyond the limit."""
        cast("SentenceTransformer", self).save(os.path.join(checkpoint_path, str(step)))
        if not checkpoint_save_total_limit or checkpoint_save_total_limit <= 0:
            return
        steps = sorted(int(name) for name in os.listdir(checkpoint_path) if name.isdigit())
        if len(steps) > checkpoint_save_total_limit:
            shutil.rmtree(os.path.join(checkpoint_path, str(steps[0])))
