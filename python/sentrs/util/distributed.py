"""Where this process stands in a ``torch.distributed`` job, the gathers the training losses use, and evaluation that
shares the model's inference across the job's processes.

Outside of a job (no initialised process group) every helper acts for one process: rank 0 of 1, a gather returns
its input. Nothing here imports torch until a process group exists or a tensor is passed in.
"""

from __future__ import annotations

import functools
import itertools
import logging
import pickle
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from sentrs.util.environment import is_dist_initialized
from sentrs.util.misc import disable_logging

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "all_gather",
    "all_gather_padded",
    "all_gather_with_grad",
    "distributed_evaluation",
    "get_rank",
    "get_world_size",
]

logger = logging.getLogger(__name__)

_warned_not_distributed = False


def get_rank() -> int:
    """This process's rank in the process group; 0 without one."""
    return int(sys.modules["torch"].distributed.get_rank()) if is_dist_initialized() else 0


def get_world_size() -> int:
    """The number of processes in the process group; 1 without one."""
    return int(sys.modules["torch"].distributed.get_world_size()) if is_dist_initialized() else 1


def all_gather(tensor: Tensor, with_grad: bool = False) -> Tensor:
    """The ``tensor`` of every process, concatenated along the first dimension in rank order.

    Every process must pass a tensor of the same shape. The rows of this process keep their autograd history
    either way; ``with_grad=True`` also sends gradients back to the process each other row came from, which a loss
    over the gathered rows of every process needs.

    Args:
        tensor: ``(n, ...)`` rows of this process.
        with_grad: let gradients flow into the rows gathered from the other processes too.

    Returns:
        ``(world_size * n, ...)``; outside of a ``torch.distributed`` job ``tensor`` itself (logging a warning once
        per process).
    """
    if not is_dist_initialized():
        global _warned_not_distributed
        if not _warned_not_distributed:
            _warned_not_distributed = True
            logger.warning(
                "all_gather was called outside of an initialised torch.distributed process group: returning this "
                "process's tensor only. That is expected when training on one device; turn gathering off to "
                "silence this warning."
            )
        return tensor

    import torch
    import torch.distributed as dist

    if with_grad:
        gathered: Tensor = _all_gather_function().apply(tensor)
        return gathered
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    # The received copy of this process's rows has no history; the original keeps its gradient.
    parts[dist.get_rank()] = tensor
    return torch.cat(parts, dim=0)


def all_gather_with_grad(tensor: Tensor) -> Tensor:
    """:func:`all_gather` with ``with_grad=True``: gradients reach the rows of every process."""
    return all_gather(tensor, with_grad=True)


def all_gather_padded(tensor: Tensor, mask: Tensor, with_grad: bool = False) -> tuple[Tensor, Tensor]:
    """:func:`all_gather` for token embeddings and their mask, whose token axis may differ between processes.

    Each process pads its multi-vector batch to its own longest sequence, but a gather needs the same shape
    everywhere: both tensors are first padded at the end of the token axis (zero rows, mask 0 / False) to the
    longest of all processes, then gathered.

    Args:
        tensor: ``(n, tokens, dim)`` token embeddings of this process.
        mask: ``(n, tokens)`` token mask of this process.
        with_grad: let gradients flow into the embeddings gathered from the other processes too (see
            :func:`all_gather`); the mask never carries a gradient.

    Returns:
        ``(world_size * n, max tokens, dim)`` embeddings and the ``(world_size * n, max tokens)`` mask; outside of a
        ``torch.distributed`` job ``tensor`` and ``mask`` themselves (with :func:`all_gather`'s warning).
    """
    if is_dist_initialized():
        import torch
        import torch.distributed as dist

        longest = torch.tensor(tensor.shape[1], device=tensor.device)
        dist.all_reduce(longest, op=dist.ReduceOp.MAX)
        missing = int(longest.item()) - tensor.shape[1]
        if missing > 0:
            tensor = torch.nn.functional.pad(tensor, (0, 0, 0, missing))
            mask = torch.nn.functional.pad(mask, (0, missing))
    return all_gather(tensor, with_grad=with_grad), all_gather(mask)


@functools.cache
def _all_gather_function() -> Any:
    """The autograd function behind ``all_gather(with_grad=True)`` (built on first use, so that importing this module
    imports no torch).

    Forward gathers the rows of every process. Backward hands each process the sum, over all processes, of the
    gradient for its own rows: each process's loss depends on every gathered row. This is what
    ``torch.distributed.nn.all_gather`` (deprecated in recent torch) computes.
    """
    import torch
    import torch.distributed as dist

    class AllGatherWithGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, tensor: Tensor) -> Tensor:
            ctx.rank, ctx.rows = dist.get_rank(), tensor.shape[0]
            parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, tensor.contiguous())
            return torch.cat(parts, dim=0)

        @staticmethod
        def backward(ctx: Any, grad: Tensor) -> Tensor:
            grad = grad.contiguous()
            if dist.get_backend() == dist.Backend.NCCL:
                own = grad.new_empty((ctx.rows, *grad.shape[1:]))
                dist.reduce_scatter_tensor(own, grad)
                return own
            # Backends without reduce-scatter (gloo): sum everything, keep this process's rows.
            total = grad.clone()
            dist.all_reduce(total)
            return total[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]

    return AllGatherWithGrad


@contextmanager
def distributed_evaluation(model: Any, enabled: bool = True) -> Iterator[bool]:
    """Runs an evaluator once in a ``torch.distributed`` job while every process shares the model's inference.

    Yields whether this process should run the evaluator. In a job of several processes (and ``enabled``), rank 0
    runs it: each ``model.encode`` call on rank 0 is cut into one contiguous shard per process, every process embeds
    its shard, and rank 0 gets the results back in input order. The other ranks serve those shards until rank 0
    leaves the block, then get ``False``. An error on rank 0 inside the block is raised there and, as a
    ``RuntimeError`` carrying its traceback, on the other ranks. Inputs that cannot be pickled are embedded on
    rank 0 alone.

    With ``enabled=False`` or one process, every process gets ``True`` and runs the evaluator itself. Processes
    other than rank 0 drop log records below ``WARNING`` while in the block.

    Args:
        model: the model the evaluator calls; it must be the same model on every process.
        enabled: share the inference; False when the model cannot run on its own on each process (FSDP,
            DeepSpeed).
    """
    is_main = get_rank() == 0
    with nullcontext() if is_main else disable_logging(logging.INFO):
        if not enabled or get_world_size() == 1:
            yield True
            return
        inference = _ShardedInference(model)
        if not is_main:
            inference.serve()
            yield False
            return
        previous = getattr(model, "_distributed_inference", None)
        model._distributed_inference = inference
        error = None
        try:
            yield True
        except BaseException:
            error = traceback.format_exc()
            raise
        finally:
            model._distributed_inference = previous
            inference.stop(error)


class _ShardedInference:
    """Rank 0's ``model._inference`` spread over the processes of a job (see :func:`distributed_evaluation`).

    Rank 0 scatters ``(command, payload)`` messages: ``("infer", (inputs, kwargs))`` with one shard of inputs per
    rank, and ``("stop", traceback or None)`` at the end; the other ranks loop in :meth:`serve`. Each rank sends back
    ``(output, traceback or None)``, its output moved to the CPU.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.rank = get_rank()
        self.world_size = get_world_size()

    def __call__(self, inputs: list[Any], **kwargs: Any) -> Any:
        """``model._inference(inputs, **kwargs)`` on rank 0, computed by every rank; the result as if done locally."""
        kwargs["show_progress_bar"] = False
        if not inputs:
            return self.model._inference(inputs, **kwargs)
        messages = [("infer", (shard, kwargs)) for shard in _shards(inputs, self.world_size)]
        try:
            pickle.dumps(messages)
        except Exception:
            return self.model._inference(inputs, **kwargs)  # images and other unpicklable inputs stay here
        _, payload = self._scatter(messages)
        results = self._infer_and_gather(payload)
        assert results is not None  # rank 0 receives every rank's result
        failures = [f"Rank {rank}:\n{error}" for rank, (_, error) in enumerate(results) if error is not None]
        if failures:
            raise RuntimeError("Distributed evaluator inference failed:\n" + "\n".join(failures))
        return self._join([output for output, _ in results if output is not None], kwargs)

    def serve(self) -> None:
        """On ranks other than 0: embed the shards rank 0 sends until it says stop.

        Raises:
            RuntimeError: rank 0 stopped because of an error (its traceback is in the message).
        """
        while True:
            command, payload = self._scatter()
            if command == "stop":
                if payload is not None:
                    raise RuntimeError(f"Distributed evaluator failed on rank 0:\n{payload}")
                return
            self._infer_and_gather(payload)

    def stop(self, error: str | None) -> None:
        """On rank 0: releases the serving ranks; ``error`` (a traceback) makes them raise."""
        self._scatter([("stop", error)] * self.world_size)

    def _scatter(self, messages: list[tuple[str, Any]] | None = None) -> tuple[str, Any]:
        import torch
        import torch.distributed as dist

        received: list[Any] = [None]
        # Evaluators may run under inference mode, in which the collectives cannot build their buffers.
        with torch.inference_mode(False):
            dist.scatter_object_list(received, messages, src=0)
        message: tuple[str, Any] = received[0]
        return message

    def _infer_and_gather(self, payload: tuple[list[Any], dict[str, Any]]) -> list[tuple[Any, str | None]] | None:
        import torch
        import torch.distributed as dist

        from sentrs.base.tensors import _move_tensors_to_cpu

        inputs, kwargs = payload
        result: tuple[Any, str | None]
        try:
            output = _move_tensors_to_cpu(self.model._inference(inputs, **kwargs)) if inputs else None
            result = (output, None)
            pickle.dumps(result)
        except Exception:
            result = (None, traceback.format_exc())
        results: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
        with torch.inference_mode(False):
            dist.gather_object(result, results, dst=0)
        return results

    def _join(self, outputs: list[Any], kwargs: dict[str, Any]) -> Any:
        """The shards' outputs as one: arrays and tensors concatenated, lists chained; tensors back on the model's
        device unless the caller asked for host (CPU) results."""
        import numpy as np
        import torch

        first = outputs[0]
        if isinstance(first, np.ndarray):
            return np.concatenate(outputs)
        joined = torch.cat(outputs) if isinstance(first, torch.Tensor) else [item for part in outputs for item in part]
        device = getattr(self.model, "device", None)
        on_host = kwargs.get("keep_on_host") or kwargs.get("save_to_cpu")
        if device is not None and torch.device(device).type != "cpu" and not on_host:
            return _to_device(joined, device)
        return joined


def _shards(inputs: list[Any], count: int) -> list[list[Any]]:
    """``inputs`` cut into ``count`` contiguous shards whose sizes differ by at most one (the larger ones first)."""
    size, remainder = divmod(len(inputs), count)
    bounds = [rank * size + min(rank, remainder) for rank in range(count + 1)]
    return [inputs[start:end] for start, end in itertools.pairwise(bounds)]


def _to_device(value: Any, device: Any) -> Any:
    """``value`` with every tensor in it (nested in dicts, lists and tuples) moved to ``device``."""
    torch = sys.modules["torch"]
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_device(item, device) for item in value)
    return value
