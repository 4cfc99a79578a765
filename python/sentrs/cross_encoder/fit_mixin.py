"""``FitMixin`` for :class:`~sentrs.CrossEncoder`: the training API from before sentence-transformers v4,
``model.fit(train_dataloader, ...)`` on a DataLoader of :class:`~sentrs.InputExample` pairs.

:meth:`FitMixin.fit` keeps old training scripts running on the current trainer: it reads the DataLoader into a
``datasets.Dataset`` (columns ``sentence_0``, ``sentence_1``, ``label``), maps the old options onto
:class:`~sentrs.CrossEncoderTrainingArguments` and a hand-built optimizer and scheduler, and runs
:class:`~sentrs.CrossEncoderTrainer`. :meth:`FitMixin.old_fit` is the old training loop itself, for scripts that
depend on its exact behaviour.

New code should use :class:`~sentrs.CrossEncoderTrainer` directly. This module imports nothing heavy; torch,
transformers and datasets load when a method runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, cast

from sentrs._lazy import lazy_module_attrs
from sentrs.base._legacy_fit import (
    default_checkpoint_dir,
    get_scheduler,
    grouped_parameters,
    primary_score,
    read_examples,
)

if TYPE_CHECKING:
    from torch import Tensor, nn
    from torch.optim import Optimizer
    from torch.utils.data import DataLoader
    from transformers import BatchEncoding

    from sentrs.base.evaluation import BaseEvaluator
    from sentrs.cross_encoder.model import CrossEncoder
    from sentrs.sentence_transformer.readers.input_example import InputExample

__all__ = ["FitMixin"]

logger = logging.getLogger(__name__)

# What fit() adds to the trainer imports torch or transformers: it loads on first use, under the reference's names.
__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    {
        "EvaluatorCallback": "sentrs.base._fit_callbacks",
        "OriginalCallback": "sentrs.base._fit_callbacks",
        # The reference's cross-encoder SaveModelCallback saves only the best model by the evaluator.
        "SaveModelCallback": "sentrs.base._fit_callbacks:SaveBestModelCallback",
        "FitMixinLoss": "sentrs.cross_encoder._fit_loss",
    },
)


class FitMixin:
    """Adds the old training API, :meth:`fit` and :meth:`old_fit`, to :class:`~sentrs.CrossEncoder`."""

    def fit(
        self,
        train_dataloader: DataLoader[Any],
        evaluator: BaseEvaluator | None = None,
        epochs: int = 1,
        loss_fct: nn.Module | None = None,
        activation_fct: nn.Module | None = None,
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
    ) -> None:
        """Trains with the pre-v4 API on :class:`~sentrs.CrossEncoderTrainer` (deprecated: use the trainer).

        The DataLoader (of :class:`~sentrs.InputExample` with two texts each) is read once, up front, into a dataset
        with columns ``sentence_0``, ``sentence_1`` and ``label`` (left out when every label is 0); its
        ``collate_fn`` is replaced for that. A
        :class:`~sentrs.sentence_transformer.datasets.NoDuplicatesDataLoader` selects the trainer's ``no_duplicates``
        batch sampler and a :class:`~sentrs.sentence_transformer.datasets.SentenceLabelDataset` its
        ``group_by_label`` one; the batch size is the DataLoader's. The trainer seeds itself with its default seed
        (42) and saves no checkpoints in its output folder (``checkpoints/model``, or the first
        ``checkpoints/model_<i>`` that is missing or empty).

        Without ``loss_fct`` the loss is :class:`~sentrs.cross_encoder.losses.BinaryCrossEntropyLoss` for a model
        with one label and :class:`~sentrs.cross_encoder.losses.CrossEntropyLoss` for several, each with
        ``activation_fct``; a ``loss_fct`` (a torch loss over logits and labels) is wrapped in
        :class:`~sentrs.cross_encoder._fit_loss.FitMixinLoss`.

        Args:
            train_dataloader: a DataLoader of examples, two texts each.
            evaluator: run after every epoch and every ``evaluation_steps``; with ``output_path`` and
                ``save_best_model`` its primary metric picks the model that is saved. Unlike the reference, the
                epoch-end evaluations also reach ``callback`` and the saving (as in ``SentenceTransformer.fit``).
            epochs: training epochs.
            loss_fct: a torch loss over ``(logits, labels)``; None for the default above.
            activation_fct: applied to the logits before the loss; None means ``nn.Identity()``, the reference's
                default.
            scheduler: learning-rate schedule, case-insensitive: ``constantlr``, ``warmupconstant``,
                ``warmuplinear``, ``warmupcosine`` or ``warmupcosinewithhardrestarts``.
            warmup_steps: steps of linear warm-up from 0 to the learning rate (for the ``warmup*`` schedules).
            optimizer_class: the optimizer class; None means ``torch.optim.AdamW``, the reference's default.
            optimizer_params: keyword arguments of the optimizer (the learning rate: ``{"lr": 2e-5}``).
            weight_decay: weight decay of all parameters but biases and LayerNorm weights.
            evaluation_steps: also evaluate every this many steps when positive.
            output_path: with an evaluator, the best model by its primary metric is saved here, and its results go
                to ``output_path/eval``. Without an evaluator nothing is saved (as in the reference: save the model
                yourself after training).
            save_best_model: with an evaluator, save on every improvement of its primary metric.
            max_grad_norm: gradient clipping norm.
            use_amp: mixed precision (``fp16``).
            callback: called as ``callback(score, epoch, steps)`` after each evaluation, with the primary metric.
            show_progress_bar: show the trainer's progress bar.

        Raises:
            ImportError: the ``datasets`` package is missing.
            TypeError: the model runs an exported ONNX/OpenVINO file, which cannot be trained.
            ValueError: an unknown scheduler, or a DataLoader without examples.
        """
        from sentrs.util.environment import is_datasets_available

        if not is_datasets_available():
            raise ImportError("fit() needs the datasets package: pip install 'sentrs[train]'")
        model = cast("CrossEncoder", self)
        model._need_torch_modules("fit()")

        import torch

        from sentrs.base._fit_callbacks import EvaluatorCallback, OriginalCallback, SaveBestModelCallback
        from sentrs.base.sampler import BatchSamplers
        from sentrs.cross_encoder.trainer import CrossEncoderTrainer
        from sentrs.cross_encoder.training_args import CrossEncoderTrainingArguments

        train_dataset, batch_size, batch_sampler = read_examples(train_dataloader, 1, "CrossEncoderTrainer")
        args = CrossEncoderTrainingArguments(
            output_dir=default_checkpoint_dir(),
            batch_sampler=batch_sampler or BatchSamplers.BATCH_SAMPLER,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=batch_size,
            num_train_epochs=epochs,
            eval_strategy="steps" if evaluation_steps is not None and evaluation_steps > 0 else "no",
            eval_steps=evaluation_steps,
            max_grad_norm=max_grad_norm,
            fp16=use_amp,
            disable_tqdm=not show_progress_bar,
            save_strategy="no",
        )

        optimizer = (optimizer_class or torch.optim.AdamW)(
            grouped_parameters(model.named_parameters(), weight_decay), **optimizer_params
        )
        # The schedule's length, counted as the old loop did: whole batches only.
        total_steps = int(len(train_dataset) // batch_size * epochs)
        lr_scheduler = get_scheduler(optimizer, scheduler=scheduler, warmup_steps=warmup_steps, t_total=total_steps)

        callbacks: list[Any] = []
        if evaluator is not None:
            callbacks.append(EvaluatorCallback(evaluator, output_path))
            if callback is not None:
                callbacks.append(OriginalCallback(callback, evaluator))

        trainer = CrossEncoderTrainer(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=None,
            loss=self._fit_loss(loss_fct, activation_fct),
            evaluator=evaluator,
            optimizers=(optimizer, lr_scheduler),
            callbacks=callbacks,
        )
        # The epoch-end evaluations reach the saving and callback hooks through the trainer (the reference leaves
        # this link out for cross-encoders, so there they only write their results).
        for registered in trainer.callback_handler.callbacks:
            if isinstance(registered, EvaluatorCallback):
                registered.trainer = trainer
        if output_path is not None:
            trainer.add_callback(SaveBestModelCallback(output_path, evaluator, save_best_model))
        trainer.train()

    def _fit_loss(self, loss_fct: nn.Module | None, activation_fct: nn.Module | None) -> nn.Module:
        """The loss :meth:`fit` trains with: ``loss_fct`` wrapped to take text pairs, or the default loss for the
        model's number of labels, each with ``activation_fct`` (None: identity)."""
        from torch import nn

        from sentrs.cross_encoder._fit_loss import FitMixinLoss
        from sentrs.cross_encoder.losses import BinaryCrossEntropyLoss, CrossEntropyLoss

        model = cast("CrossEncoder", self)
        activation = nn.Identity() if activation_fct is None else activation_fct
        if loss_fct is not None:
            return FitMixinLoss(model, loss_fct=loss_fct, activation_fn=activation)
        if model.num_labels == 1:
            return BinaryCrossEntropyLoss(model, activation_fn=activation)
        return CrossEntropyLoss(model, activation_fn=activation)

    def smart_batching_collate(self, batch: list[InputExample]) -> tuple[BatchEncoding, Tensor]:
        """Collates a batch of examples for :meth:`old_fit`: the stripped texts of each example tokenized together
        (``truncation="longest_first"``) and the labels, float for one label and int64 class ids for several, all
        on the model's device.

        Args:
            batch: examples with the same number of texts.

        Returns:
            ``(features, labels)``; ``labels`` has shape ``(n,)``.
        """
        import torch

        model = cast("CrossEncoder", self)
        columns = [[text.strip() for text in column] for column in zip(*(example.texts or [] for example in batch))]
        features = model.tokenizer(*columns, padding=True, truncation="longest_first", return_tensors="pt")
        dtype = torch.float if model.num_labels == 1 else torch.long
        labels = torch.tensor([example.label for example in batch], dtype=dtype)
        return features.to(model.model.device), labels.to(model.model.device)

    def smart_batching_collate_text_only(self, batch: list[Any]) -> BatchEncoding:
        """Tokenizes a batch of text tuples (e.g. ``(query, document)`` pairs), stripped, on the model's device.

        Args:
            batch: tuples with the same number of texts.
        """
        model = cast("CrossEncoder", self)
        columns = [[text.strip() for text in column] for column in zip(*batch)]
        features = model.tokenizer(*columns, padding=True, truncation=True, return_tensors="pt")
        return features.to(model.model.device)

    def old_fit(
        self,
        train_dataloader: DataLoader[Any],
        evaluator: BaseEvaluator | None = None,
        epochs: int = 1,
        loss_fct: nn.Module | None = None,
        activation_fct: nn.Module | None = None,
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
    ) -> None:
        """The cross-encoder training loop from before sentence-transformers v4 (deprecated: use
        :class:`~sentrs.CrossEncoderTrainer`, or :meth:`fit`). Only for scripts that depend on its exact behaviour.

        The DataLoader gets :meth:`smart_batching_collate` as its ``collate_fn``. Each batch runs through the
        transformers model; ``activation_fct`` is applied to its logits (flattened for one label) and ``loss_fct``
        (default: ``nn.BCEWithLogitsLoss`` for one label, ``nn.CrossEntropyLoss`` for several) compares them with
        the labels; only the transformers model's parameters are optimized. After every epoch, and every
        ``evaluation_steps`` steps of an epoch, the evaluator runs with its results written to ``output_path``
        itself; ``callback(result, epoch, steps)`` gets what it returned (``steps`` is -1 at the end of an epoch),
        and when its primary metric beats the best so far the model is saved to ``output_path``
        (``save_best_model``). Nothing is saved without an evaluator.

        The arguments are those of :meth:`fit`.

        Raises:
            TypeError: the model runs an exported ONNX/OpenVINO file, which cannot be trained.
            ValueError: an unknown scheduler.
        """
        import torch
        from torch import nn
        from tqdm.auto import tqdm, trange

        model = cast("CrossEncoder", self)
        model._need_torch_modules("old_fit()")
        transformer = model.model
        device = transformer.device
        one_label = model.num_labels == 1
        train_dataloader.collate_fn = self.smart_batching_collate
        scaler = torch.amp.GradScaler(device.type) if use_amp else None
        if output_path is not None:
            os.makedirs(output_path, exist_ok=True)

        self.best_score = -9999999.0
        total_steps = int(len(train_dataloader) * epochs)
        optimizer = (optimizer_class or torch.optim.AdamW)(
            grouped_parameters(transformer.named_parameters(), weight_decay), **optimizer_params
        )
        lr_scheduler = get_scheduler(optimizer, scheduler=scheduler, warmup_steps=warmup_steps, t_total=total_steps)
        if loss_fct is None:
            loss_fct = nn.BCEWithLogitsLoss() if one_label else nn.CrossEntropyLoss()
        activation = nn.Identity() if activation_fct is None else activation_fct

        skip_scheduler = False
        for epoch in trange(epochs, desc="Epoch", disable=not show_progress_bar):
            steps_in_epoch = 0
            transformer.zero_grad()
            transformer.train()
            # The bar is updated by hand: tqdm.auto's wrapper of an iterable starts the DataLoader twice, which draws
            # its shuffle from torch's generator twice and so differs from the reference's batches.
            progress = tqdm(
                total=len(train_dataloader), desc="Iteration", smoothing=0.05, disable=not show_progress_bar
            )
            for features, labels in train_dataloader:
                with torch.autocast(device_type=device.type) if scaler is not None else nullcontext():
                    logits = activation(transformer(**features, return_dict=True).logits)
                    if one_label:
                        logits = logits.view(-1)
                    loss_value = loss_fct(logits, labels)
                if scaler is not None:
                    scale_before = scaler.get_scale()
                    scaler.scale(loss_value).backward()
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(transformer.parameters(), max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    skip_scheduler = scaler.get_scale() != scale_before  # the step was skipped (inf/nan)
                else:
                    loss_value.backward()
                    torch.nn.utils.clip_grad_norm_(transformer.parameters(), max_grad_norm)
                    optimizer.step()
                optimizer.zero_grad()
                if not skip_scheduler:
                    lr_scheduler.step()
                steps_in_epoch += 1

                if evaluator is not None and evaluation_steps > 0 and steps_in_epoch % evaluation_steps == 0:
                    self._eval_during_training(
                        evaluator, output_path, save_best_model, epoch, steps_in_epoch, callback
                    )
                    transformer.zero_grad()
                    transformer.train()
                progress.update()
            progress.close()

            if evaluator is not None:
                self._eval_during_training(evaluator, output_path, save_best_model, epoch, -1, callback)

    def _eval_during_training(
        self,
        evaluator: BaseEvaluator,
        output_path: str | None,
        save_best_model: bool,
        epoch: int,
        steps: int,
        callback: Callable[[Any, int, int], None] | None,
    ) -> None:
        """One evaluation of :meth:`old_fit`: results to ``output_path``; ``callback`` gets the evaluator's result
        as it is and, when its primary metric beats the best so far, the model is saved to ``output_path``."""
        result = evaluator(self, output_path=output_path, epoch=epoch, steps=steps)
        if callback is not None:
            callback(result, epoch, steps)
        score = primary_score(evaluator, result)
        if score > self.best_score:
            self.best_score = score
            if save_best_model:
                cast("CrossEncoder", self).save(output_path)
