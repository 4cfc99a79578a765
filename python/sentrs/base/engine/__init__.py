"""The inference engine every model type and backend runs through.

::

    inputs -> tokenize once (Rust) -> plan batches by token count (Rust) -> pad a batch (Rust)
           -> forward (torch modules, or the exported model in ONNX Runtime / OpenVINO)
           -> host steps (Rust pooling, normalisation; numpy Dense) -> rows back in input order

:func:`run_batches` owns the scheduling: length-sorted batches, and for a backend that runs several single-threaded
streams (one per core), batches side by side on that many threads. The model classes own argument handling and
output conversion; :mod:`~sentrs.base.engine.steps` builds the torch-free pipeline of an exported model folder and
:mod:`~sentrs.base.engine.tokenizer` its tokenizer from the folder's files alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from sentrs import ops

__all__ = ["plan_units", "run_batches"]

T = TypeVar("T")
Rows = npt.NDArray[np.int64]


def plan_units(lengths: npt.NDArray[Any], batch_size: int, streams: int = 1) -> list[Rows]:
    """Input rows per batch, sorted by token count; with several streams, a call with fewer batches than streams is
    split so that every stream gets work."""
    _, batches = ops.plan_batches(lengths, batch_size)
    units: list[Rows] = list(batches)
    if streams > 1 and 0 < len(units) < streams:
        pieces = -(-streams // len(units))
        units = [part for rows in units for part in np.array_split(rows, min(pieces, len(rows)))]
    return units


def run_batches(
    units: list[Rows], run: Callable[[Rows], T], streams: int = 1, show_progress_bar: bool = False
) -> Iterator[tuple[Rows, T]]:
    """Yields ``(rows, run(rows))`` per unit. With ``streams > 1`` units run on that many threads and come back as
    they finish (callers place results by row); otherwise in order on the calling thread."""
    from tqdm.autonotebook import tqdm

    with tqdm(total=len(units), desc="Batches", disable=not show_progress_bar) as bar:
        if streams <= 1 or len(units) <= 1:
            for rows in units:
                yield rows, run(rows)
                bar.update(1)
            return
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        def job(rows: Rows) -> tuple[Rows, T]:
            return rows, run(rows)

        pending: set[Future[tuple[Rows, T]]] = set()
        todo = iter(units)
        with ThreadPoolExecutor(max_workers=streams, thread_name_prefix="sentrs-stream") as pool:
            for rows in itertools.islice(todo, 2 * streams):
                pending.add(pool.submit(job, rows))
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    bar.update(1)
                    nxt = next(todo, None)
                    if nxt is not None:
                        pending.add(pool.submit(job, nxt))
