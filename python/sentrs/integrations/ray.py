"""Ray Data: encode a ``ray.data.Dataset`` column with any sentrs model, on one machine or a cluster.

Each Ray actor loads the model once (:class:`SentrsEncoder`, used through ``Dataset.map_batches``) and turns batches
of rows into batches with the model's output added as a column:

* dense models (``SentenceTransformer``): a ``fixed_size_list<float32>`` column (int8/uint8 for quantised
  ``precision``), one fixed-size array per row, which ``write_parquet`` stores as a plain Parquet list column;
* sparse models (``SparseEncoder``): two columns, ``<output>_indices`` (``list<int32>``) and ``<output>_values``
  (``list<float32>``), each row's active dimensions in increasing order;
* cross-encoders (``CrossEncoder``): a ``float32`` score per row of ``(query_column, document_column)``
  (``float32`` lists for models with several labels);
* multi-vector models (``MultiVectorEncoder``): a ``list<fixed_size_list<float32>>`` column of token vectors.

Every actor gets ``num_cpus`` CPUs and runs its Rust, tokenizer and torch threads on exactly that many, so actors
side by side do not oversubscribe the machine. An actor that dies mid-batch (killed, out of memory, a crash in native
code) is restarted and its batch retried, at most ``max_retries`` times per batch (3 by default); past that, or at the
first death with ``max_retries=0``, the job fails with Ray's ``RayActorError``. An exception inside a batch (a missing
column, a non-text row) is never retried and fails the job with that error: no row is ever silently missing and no
job retries forever. ``ray`` is the optional extra ``sentrs[ray]``.

Example::

    import ray
    from sentrs.integrations.ray import encode_dataset

    ds = ray.data.read_parquet("texts/")                      # a column "text"
    out = encode_dataset(ds, "path/to/model", column="text", concurrency=4, num_cpus=2)
    out.write_parquet("embeddings/")
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

__all__ = ["SentrsEncoder", "encode_dataset"]

_MODEL_TYPES = ("SentenceTransformer", "SparseEncoder", "CrossEncoder", "MultiVectorEncoder")


class SentrsEncoder:
    """A Ray Data callable class: loads a sentrs model once per actor and adds its outputs to each batch.

    Args:
        model_name_or_path: the model folder or Hub id (every actor loads it itself).
        model_type: ``SentenceTransformer``, ``SparseEncoder``, ``CrossEncoder`` or ``MultiVectorEncoder``.
        column: the text column (for a cross-encoder: the query column).
        output_column: the output column name (sparse models write ``<name>_indices`` and ``<name>_values``).
        document_column: a cross-encoder's second text column.
        model_kwargs: constructor arguments of the model (``backend``, ``device``, ``model_kwargs``, ...).
        encode_kwargs: arguments of ``encode`` (or ``predict``): ``batch_size``, ``normalize_embeddings``,
            ``prompt_name``, ``precision``, ``max_active_dims``, ...
        num_threads: the threads of this actor (default: the CPUs Ray gave it, else 1).
    """

    def __init__(
        self,
        model_name_or_path: str,
        model_type: str = "SentenceTransformer",
        column: str = "text",
        output_column: str = "embedding",
        document_column: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        encode_kwargs: dict[str, Any] | None = None,
        num_threads: int | None = None,
    ) -> None:
        if model_type not in _MODEL_TYPES:
            raise ValueError(f"model_type must be one of {list(_MODEL_TYPES)}, got {model_type!r}")
        if model_type == "CrossEncoder" and document_column is None:
            raise ValueError("a CrossEncoder scores (query, document) pairs: pass document_column=")
        threads = num_threads or _ray_cpus() or 1
        # Before sentrs' Rust pool, tokenizers or torch start their threads in this actor.
        os.environ.setdefault("SENTRS_NUM_THREADS", str(threads))
        os.environ.setdefault("RAYON_NUM_THREADS", str(threads))
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import sentrs

        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # pragma: no cover - an ONNX/OpenVINO-only install
            pass
        self.model_type = model_type
        self.model = getattr(sentrs, model_type)(model_name_or_path, **(model_kwargs or {}))
        self.column = column
        self.document_column = document_column
        self.output_column = output_column
        self.encode_kwargs = dict(encode_kwargs or {})

    def __call__(self, batch: Any) -> Any:
        """A ``pyarrow.Table`` batch in, the same rows with the output column(s) added out."""
        import pyarrow as pa

        table = batch if isinstance(batch, pa.Table) else pa.Table.from_pydict(batch)
        texts = _strings(table, self.column)
        if self.model_type == "CrossEncoder":
            docs = _strings(table, self.document_column or "")
            scores = np.asarray(
                self.model.predict(list(zip(texts, docs)), convert_to_numpy=True, **self.encode_kwargs),
                dtype=np.float32,
            )
            column = pa.array(scores) if scores.ndim == 1 else _fixed_size_lists(scores)
            return table.append_column(self.output_column, column)
        if self.model_type == "SparseEncoder":
            embeddings = self.model.encode(
                texts, convert_to_tensor=True, convert_to_sparse_tensor=True, **self.encode_kwargs
            )
            indices, values = _sparse_rows(embeddings, len(texts))
            table = table.append_column(f"{self.output_column}_indices", indices)
            return table.append_column(f"{self.output_column}_values", values)
        if self.model_type == "MultiVectorEncoder":
            tokens = self.model.encode(texts, convert_to_numpy=True, **self.encode_kwargs)
            lists = [_fixed_size_lists(np.asarray(t, dtype=np.float32)) for t in tokens]
            offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens])]).astype(np.int32)
            flat = pa.concat_arrays(lists) if lists else _fixed_size_lists(np.zeros((0, 1), np.float32))
            return table.append_column(self.output_column, pa.ListArray.from_arrays(pa.array(offsets), flat))
        embeddings = np.asarray(self.model.encode(texts, convert_to_numpy=True, **self.encode_kwargs))
        return table.append_column(self.output_column, _fixed_size_lists(embeddings))


def _ray_cpus() -> int | None:
    try:
        import ray

        if ray.is_initialized():
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
            return int(cpus) if cpus else None
    except Exception:  # outside an actor there is nothing to read
        return None
    return None


def _strings(table: Any, column: str) -> list[str]:
    if column not in table.column_names:
        raise ValueError(f"the dataset has no column {column!r}; its columns are {table.column_names}")
    values = table.column(column).to_pylist()
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(f"column {column!r} must hold texts, got a {type(value).__name__} in a batch's row {i}")
    return values


def _fixed_size_lists(matrix: np.ndarray) -> Any:
    import pyarrow as pa

    matrix = np.ascontiguousarray(matrix)
    width = int(matrix.shape[1]) if matrix.ndim == 2 else 0
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), width)


def _sparse_rows(embeddings: Any, n: int) -> tuple[Any, Any]:
    """``list<int32>`` indices and ``list<float32>`` values per row of a sparse COO tensor ``(n, vocab)``."""
    import pyarrow as pa

    coo = embeddings.coalesce()
    rows, cols = coo.indices().cpu().numpy()
    vals = coo.values().detach().cpu().float().numpy()
    order = np.lexsort((cols, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    offsets = np.searchsorted(rows, np.arange(n + 1)).astype(np.int32)
    indices = pa.ListArray.from_arrays(pa.array(offsets), pa.array(cols.astype(np.int32)))
    values = pa.ListArray.from_arrays(pa.array(offsets), pa.array(vals.astype(np.float32)))
    return indices, values


def encode_dataset(
    dataset: Any,
    model_name_or_path: str,
    *,
    model_type: str = "SentenceTransformer",
    column: str = "text",
    output_column: str = "embedding",
    document_column: str | None = None,
    model_kwargs: dict[str, Any] | None = None,
    batch_size: int = 1024,
    concurrency: int | tuple[int, int] = 1,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_retries: int = 3,
    **encode_kwargs: Any,
) -> Any:
    """``dataset`` with the model's outputs added (lazily; write it with ``write_parquet`` or iterate it).

    Args:
        dataset: a ``ray.data.Dataset`` with a text column.
        model_name_or_path: the model folder (on every node) or Hub id.
        model_type: the sentrs class to load.
        column, output_column, document_column: see :class:`SentrsEncoder`.
        model_kwargs: the model constructor's arguments (``backend="onnx"``, ``device``, ...).
        batch_size: rows per Ray batch (the model's own ``batch_size`` is an ``encode_kwargs`` entry).
        concurrency: actors (or ``(min, max)`` for autoscaling).
        num_cpus, num_gpus: resources per actor; its threads follow ``num_cpus``.
        max_retries: how many times one batch is retried after its actor died while running it (the process was
            killed, ran out of memory or crashed): Ray restarts the actor, which loads the model again, and runs the
            batch there; the output still holds every row exactly once. When a batch has used up its retries, the
            job fails with ``ray.exceptions.RayActorError`` (``ActorUnavailableError`` when the actor was being
            restarted); with ``0`` actors are not restarted either, and the first death fails the job with
            ``ray.exceptions.ActorDiedError`` naming the actor and why its process ended. Ray Data's own default
            retries without limit, so a batch that kills every actor it lands on would never let the job end. An
            exception raised inside a batch (a missing column, a non-text row) is never retried.
        encode_kwargs: ``encode``/``predict`` arguments.

    Raises:
        ValueError: a bad ``batch_size``, ``concurrency``, ``max_retries``, ``model_type`` or a cross-encoder
            without ``document_column`` (at once; errors inside actors surface when the dataset is consumed).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if model_type not in _MODEL_TYPES:
        raise ValueError(f"model_type must be one of {list(_MODEL_TYPES)}, got {model_type!r}")
    if model_type == "CrossEncoder" and document_column is None:
        raise ValueError("a CrossEncoder scores (query, document) pairs: pass document_column=")
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
    compute = _actor_pool(concurrency)
    threads = max(1, int(num_cpus))
    with warnings.catch_warnings():
        # Ray 2.60 marks map_batches' per-actor options deprecated (removal planned for 2.64) with no named
        # parameter for max_restarts / max_task_retries yet; they are still the only way to bound the retries.
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated", category=DeprecationWarning)
        return dataset.map_batches(
            SentrsEncoder,
            fn_constructor_kwargs={
                "model_name_or_path": model_name_or_path,
                "model_type": model_type,
                "column": column,
                "output_column": output_column,
                "document_column": document_column,
                "model_kwargs": model_kwargs,
                "encode_kwargs": encode_kwargs,
                "num_threads": threads,
            },
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=compute,
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            **_fault_tolerance(max_retries),
        )


def _actor_pool(concurrency: Any) -> Any:
    """``concurrency`` (``n`` actors, or ``(min, max)``) as Ray Data's ``ActorPoolStrategy``."""
    from ray.data import ActorPoolStrategy

    def is_count(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1

    if is_count(concurrency):
        return ActorPoolStrategy(size=concurrency)
    if isinstance(concurrency, tuple) and len(concurrency) == 2 and all(map(is_count, concurrency)):
        low, high = concurrency
        if low <= high:
            return ActorPoolStrategy(min_size=low, max_size=high)
    raise ValueError(
        f"concurrency must be an int >= 1 (actors) or a (min, max) tuple of them with min <= max, got {concurrency!r}"
    )


def _fault_tolerance(max_retries: int) -> dict[str, int]:
    """The actor options behind ``max_retries``: restarts without limit, each batch retried at most ``max_retries``
    times (a batch's retries bound the job, not the actor's restarts); ``0`` turns both off."""
    if max_retries == 0:
        return {"max_restarts": 0, "max_task_retries": 0}
    return {"max_restarts": -1, "max_task_retries": max_retries}
