"""Multi-process inference: the reference's pool API (``start_multi_process_pool``, ``encode(pool=...)``,
``device=[...]``, ``stop_multi_process_pool``) for every model type.

A pool is a dict ``{"input": queue, "output": queue, "processes": [...]}`` of spawned worker processes, as in the
reference, so code that builds or inspects one keeps working. The model's tensors are moved to shared memory and
sent to every worker once (``torch.multiprocessing``), the inputs are cut into chunks that the workers take from one
queue, and the results come back by chunk id and are merged in input order: the same result as one process.

CPU workers split the machine: each runs its torch, Rust-core and tokenizer threads on ``cpus // workers`` of the
CPUs this process may use (at least one), so a pool never oversubscribes the cores. A worker that dies (killed, out
of memory) makes the waiting call raise ``RuntimeError`` naming it within a second, instead of hanging; an exception
inside a worker is re-raised in the caller.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import queue
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["Pool", "available_cpus", "run_in_pool", "start_pool", "stop_pool"]

logger = logging.getLogger(__name__)

Pool = dict[str, Any]


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; cgroup quotas are not read here)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def default_devices() -> list[str]:
    """Every CUDA device when there is one, else four CPU workers (the reference's default)."""
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    logger.info("CUDA is not available. Starting 4 CPU workers")
    return ["cpu"] * 4


def start_pool(model: Any, target_devices: Sequence[str] | None = None) -> Pool:
    """Starts one worker process per entry of ``target_devices`` (``"cpu"`` may repeat) with a copy of ``model``."""
    import torch.multiprocessing as mp

    if getattr(model, "runs_in_engine", False):
        raise TypeError(
            f"start_multi_process_pool needs the torch modules; this {type(model).__name__} runs its exported "
            f"{model.backend} file in sentrs' engine, which already runs one stream per CPU core. Load it with "
            "SENTRS_TORCH_FREE=0 for a pool, or encode without one"
        )
    if target_devices is None:
        target_devices = default_devices()
    if isinstance(target_devices, str) or not isinstance(target_devices, Sequence) or not target_devices:
        raise ValueError(f"target_devices must be a non-empty list of devices, got {target_devices!r}")
    devices = [str(d) for d in target_devices]
    n_cpu_workers = sum(1 for d in devices if d == "cpu" or d.startswith("cpu:"))
    threads = max(1, available_cpus() // max(1, n_cpu_workers))
    logger.info("Starting multi-process pool on devices: %s", ", ".join(devices))
    model.to("cpu")
    model.share_memory()
    ctx = mp.get_context("spawn")
    input_queue = ctx.Queue()
    output_queue = ctx.Queue()
    processes = []
    for device in devices:
        p = ctx.Process(
            target=_worker,
            args=(device, model, input_queue, output_queue, threads),
            daemon=True,
        )
        p.start()
        processes.append(p)
    return {"input": input_queue, "output": output_queue, "processes": processes}


def stop_pool(pool: dict[str, Any]) -> None:
    """Terminates the workers and closes the queues."""
    for p in pool["processes"]:
        p.terminate()
    for p in pool["processes"]:
        p.join()
        p.close()
    pool["input"].cancel_join_thread()
    pool["input"].close()
    pool["output"].close()


def _worker(device: str, model: Any, input_queue: Any, output_queue: Any, threads: int) -> None:
    """The worker loop: chunks in, ``model._inference`` results (on the host) out, until terminated."""
    if device == "cpu" or device.startswith("cpu:"):
        os.environ["SENTRS_NUM_THREADS"] = str(threads)  # read when the Rust pool starts, on first use
        os.environ["RAYON_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)
    while True:
        chunk_id, inputs, kwargs = input_queue.get()
        try:
            kwargs = dict(kwargs)
            method = getattr(model, kwargs.pop("__method__", "_inference"))
            out = method(inputs, device=device, **kwargs)
            out = _to_host(out)
        except Exception as exc:
            logger.exception("Error in %s worker on %s for chunk %d", type(model).__name__, device, chunk_id)
            try:
                pickle.loads(pickle.dumps(exc))
            except Exception:
                exc = RuntimeError("".join(traceback.format_exception(exc)))
            output_queue.put([chunk_id, exc])
        else:
            output_queue.put([chunk_id, out])


def _to_host(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, list):
        return [_to_host(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_host(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_host(v) for k, v in value.items()}
    return value


def _next_result(pool: dict[str, Any], poll_interval: float = 1.0) -> Any:
    """One result from the workers, checking that they are alive whenever none arrives for ``poll_interval`` s."""
    while True:
        try:
            return pool["output"].get(timeout=poll_interval)
        except queue.Empty:
            pass
        dead = [p for p in pool["processes"] if not p.is_alive()]
        if dead:
            details = ", ".join(f"pid {p.pid} (exit code {p.exitcode})" for p in dead)
            raise RuntimeError(
                f"{len(dead)} multi-process pool worker(s) died unexpectedly: {details}. Stop the pool "
                "(stop_multi_process_pool) and start a new one before retrying; no partial result is returned."
            )


def run_in_pool(
    model: Any,
    inputs: Sequence[Any],
    pool: dict[str, Any] | None,
    device: Any,
    chunk_size: int | None,
    show_progress_bar: bool,
    merge: Callable[[list[Any]], Any] | None = None,
    method: str = "_inference",
    **kwargs: Any,
) -> Any:
    """Runs ``model.<method>(chunk, device=<worker device>, **kwargs)`` over ``inputs`` in ``pool`` (or a pool
    started for the device list ``device`` and stopped afterwards) and merges the chunk results in input order."""
    from tqdm.autonotebook import trange

    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    created = False
    if pool is None:
        if not isinstance(device, list) or not device:
            raise ValueError(f"device must be a non-empty list of devices for multi-process work, got {device!r}")
        pool = start_pool(model, device)
        created = True
    try:
        if not isinstance(pool, dict) or not {"input", "output", "processes"} <= set(pool):
            raise ValueError("pool must be the dict returned by start_multi_process_pool()")
        if not pool["processes"]:
            raise ValueError(
                "the multi-process pool has no worker processes; start one with start_multi_process_pool()"
            )
        if len(inputs) == 0:
            return merge([]) if merge is not None else []
        if chunk_size is None:
            chunk_size = max(1, min(math.ceil(len(inputs) / len(pool["processes"]) / 10), 5000))
        kwargs["show_progress_bar"] = False
        if method != "_inference":
            kwargs["__method__"] = method
        starts = range(0, len(inputs), chunk_size)
        for chunk_id, start in enumerate(starts):
            pool["input"].put([chunk_id, list(inputs[start : start + chunk_size]), kwargs])
        outputs: list[Any] = [None] * len(starts)
        for _ in trange(len(starts), desc="Chunks", disable=not show_progress_bar):
            chunk_id, out = _next_result(pool)
            outputs[chunk_id] = out
        for out in outputs:
            if isinstance(out, Exception):
                raise out
        return merge(outputs) if merge is not None else merge_outputs(outputs)
    finally:
        if created:
            stop_pool(pool)


def merge_outputs(outputs: list[Any]) -> Any:
    """Chunk results back into one: numpy arrays and tensors concatenated along rows, lists chained."""
    if not outputs:
        return []
    first = outputs[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(outputs, axis=0)
    import torch

    if isinstance(first, torch.Tensor):
        if first.is_sparse:
            return torch.cat([o.coalesce() for o in outputs]).coalesce()
        return torch.cat(outputs)
    return [item for out in outputs for item in out]
