"""What the old ``model.fit`` APIs of :class:`~sentrs.SentenceTransformer` and :class:`~sentrs.CrossEncoder` share:
reading a DataLoader of :class:`~sentrs.InputExample` into a ``datasets.Dataset``, the optimizer's two parameter
groups, the named learning-rate schedules, the default checkpoint folder and the score an evaluation ranks by.

Nothing heavy is imported here: torch, transformers and datasets load when a function runs, so the model classes
(which import their fit mixins) stay torch-free.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datasets import Dataset
    from torch import nn
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LambdaLR

    from sentrs.base.sampler import BatchSamplers

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "default_checkpoint_dir",
    "get_scheduler",
    "grouped_parameters",
    "keep_examples",
    "primary_score",
    "read_examples",
]

logger = logging.getLogger(__name__)

#: The batch size of a DataLoader that does not say one.
DEFAULT_BATCH_SIZE = 8
# Parameters whose name contains one of these get no weight decay (as in the old training loops).
_NO_DECAY = ("bias", "LayerNorm.bias", "LayerNorm.weight")


def keep_examples(batch: list[Any]) -> list[Any]:
    """A collate function that leaves a batch of examples as it is."""
    return batch


def grouped_parameters(
    named_parameters: Iterable[tuple[str, nn.Parameter]], weight_decay: float
) -> list[dict[str, Any]]:
    """Two optimizer groups: parameters with ``weight_decay``, and those named like a bias or LayerNorm without."""
    named = list(named_parameters)
    return [
        {"params": [p for n, p in named if not any(nd in n for nd in _NO_DECAY)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if any(nd in n for nd in _NO_DECAY)], "weight_decay": 0.0},
    ]


def default_checkpoint_dir() -> str:
    """``checkpoints/model``, or ``checkpoints/model_<i>`` for the first one that is missing or empty."""
    candidate, index = "checkpoints/model", 1
    while Path(candidate).exists() and any(Path(candidate).iterdir()):
        candidate, index = f"checkpoints/model_{index}", index + 1
    return candidate


def primary_score(evaluator: Any, result: Any) -> float:
    """The single score of an evaluation: the result itself, or the primary metric of a dict of metrics.

    Raises:
        ValueError: a dict without the evaluator's primary metric.
    """
    if not isinstance(result, dict):
        return float(result)
    key = getattr(evaluator, "primary_metric", None)
    if key in result:
        return float(result[key])
    for name, value in result.items():
        if key and name.endswith(key):
            return float(value)
    raise ValueError(
        f"{type(evaluator).__name__} returned no primary metric {key!r} to rank models by; got {sorted(result)}"
    )


def get_scheduler(optimizer: Optimizer, scheduler: str, warmup_steps: int, t_total: int) -> LambdaLR:
    """The transformers learning-rate schedule named ``scheduler`` (case-insensitive): ``constantlr``,
    ``warmupconstant``, ``warmuplinear``, ``warmupcosine`` or ``warmupcosinewithhardrestarts``.

    Raises:
        ValueError: an unknown name.
    """
    import transformers

    name = scheduler.lower()
    if name == "constantlr":
        return transformers.get_constant_schedule(optimizer)
    if name == "warmupconstant":
        return transformers.get_constant_schedule_with_warmup(optimizer, num_warmup_steps=warmup_steps)
    with_decay: dict[str, Callable[..., LambdaLR]] = {
        "warmuplinear": transformers.get_linear_schedule_with_warmup,
        "warmupcosine": transformers.get_cosine_schedule_with_warmup,
        "warmupcosinewithhardrestarts": transformers.get_cosine_with_hard_restarts_schedule_with_warmup,
    }
    if name not in with_decay:
        raise ValueError(
            f"Unknown scheduler {scheduler!r}; choose constantlr, warmupconstant, warmuplinear, warmupcosine or "
            "warmupcosinewithhardrestarts"
        )
    return with_decay[name](optimizer, num_warmup_steps=warmup_steps, num_training_steps=t_total)


def read_examples(loader: Any, idx: int, trainer_name: str) -> tuple[Dataset, int, BatchSamplers | None]:
    """Reads every example of a DataLoader of :class:`~sentrs.InputExample` once, into a dataset with columns
    ``sentence_0``, ``sentence_1``, ... and ``label`` (left out when every label is 0, the example's default).

    The loader's ``collate_fn`` is replaced by :func:`keep_examples` for that. Also returns the loader's batch size
    (for a custom ``batch_sampler``, that sampler's, with a warning that its grouping is lost) and the batch sampler
    it calls for: ``no_duplicates`` for a ``NoDuplicatesDataLoader``, ``group_by_label`` over a
    ``SentenceLabelDataset``, otherwise None.

    Args:
        loader: a DataLoader of examples.
        idx: the loader's training objective, counted from 1 (for messages).
        trainer_name: the trainer that runs the training (for messages).

    Raises:
        ValueError: the loader yields no examples.
    """
    from datasets import Dataset

    from sentrs.base.sampler import BatchSamplers
    from sentrs.sentence_transformer.datasets.no_duplicates_dataloader import NoDuplicatesDataLoader
    from sentrs.sentence_transformer.datasets.sentence_label import SentenceLabelDataset

    loader.collate_fn = keep_examples
    batch_sampler: BatchSamplers | None = None
    if isinstance(loader, NoDuplicatesDataLoader):
        batch_sampler = BatchSamplers.NO_DUPLICATES
    elif isinstance(getattr(loader, "dataset", None), SentenceLabelDataset):
        batch_sampler = BatchSamplers.GROUP_BY_LABEL

    batch_size = getattr(loader, "batch_size", DEFAULT_BATCH_SIZE)
    if batch_size is None:  # torch's DataLoader given a batch_sampler
        batch_size = getattr(loader.batch_sampler, "batch_size", None) or DEFAULT_BATCH_SIZE
        logger.warning(
            f"The DataLoader of training objective {idx} has a custom `batch_sampler`, whose grouping of examples "
            f"into batches fit() does not keep. Use {trainer_name}, or old_fit() to keep the old training loop."
        )

    texts: list[list[str]] = []
    labels: list[Any] = []
    for batch in loader:
        for example in batch:
            texts.append(example.texts)
            labels.append(example.label)
    if not texts:
        raise ValueError(f"the DataLoader of training objective {idx} yielded no examples")
    dataset = Dataset.from_dict({f"sentence_{col}": list(column) for col, column in enumerate(zip(*texts))})
    try:
        all_default = set(labels) == {0}
    except TypeError:  # unhashable labels (e.g. embeddings): keep them
        all_default = False
    if not all_default:
        dataset = dataset.add_column("label", labels)
    return dataset, batch_size, batch_sampler
