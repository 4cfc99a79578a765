"""Running the same short training with the reference's trainer and sentrs', for the per-family trainer tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from transformers import TrainerCallback

# Arguments every parity run shares: one epoch, a log line per step, a fixed seed, no checkpoints, CPU.
BASE_ARGS: dict[str, Any] = {
    "num_train_epochs": 1,
    "per_device_train_batch_size": 8,
    "logging_steps": 1,
    "seed": 11,
    "report_to": "none",
    "save_strategy": "no",
    "learning_rate": 3e-4,
    "warmup_steps": 0.1,
    "use_cpu": True,
}


class Recorder(TrainerCallback):  # type: ignore[misc]
    """Keeps every ``logs`` dict transformers reports."""

    def __init__(self) -> None:
        self.logs: list[dict[str, float]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        self.logs.append(dict(logs or {}))

    def losses(self) -> list[float]:
        return [entry["loss"] for entry in self.logs if "loss" in entry]


def run(
    trainer_cls: Any,
    args_cls: Any,
    model: Any,
    output_dir: str,
    train_dataset: Any,
    loss: Any,
    **overrides: Any,
) -> tuple[Recorder, Any]:
    """Trains ``model`` with ``trainer_cls``; returns the log recorder and the trainer."""
    recorder = Recorder()
    args = args_cls(output_dir=output_dir, **{**BASE_ARGS, **overrides})
    trainer = trainer_cls(model=model, args=args, train_dataset=train_dataset, loss=loss, callbacks=[recorder])
    trainer.train()
    return recorder, trainer


def assert_same_losses(ref: Recorder, ours: Recorder, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """The same number of logged steps, each loss within ``rtol``/``atol`` (two processes, the same kernels)."""
    ref_losses, our_losses = ref.losses(), ours.losses()
    assert len(our_losses) == len(ref_losses) > 0
    np.testing.assert_allclose(our_losses, ref_losses, rtol=rtol, atol=atol)


def both(build: Callable[[Any], Any]) -> tuple[Any, Any]:
    """``build(module)`` for the reference's top-level module and sentrs'."""
    import sentence_transformers

    import sentrs

    return build(sentence_transformers), build(sentrs)
