"""Streaming encode: inputs of any size embedded chunk by chunk to disk, with memory bounded by the chunk.

:func:`encode_to_disk` reads texts lazily (a text file with one text per line, JSONL, a Parquet column, or any
iterable of strings), encodes ``chunk_size`` of them at a time and writes each chunk straight to its place on disk:

* ``output_format="npy"``: one ``.npy`` file, written in place with positioned writes (no memory map, so the resident
  memory does not grow with the output either). The number of texts must be known up front: files are counted in a
  first streaming pass; an iterable without ``len()`` needs ``total=``.
* ``output_format="npy-shards"`` / ``"parquet-shards"``: a folder of ``part-00000.npy`` (or ``.parquet``, a column
  ``embedding`` of fixed-size lists) files, one per chunk, each written to a temporary name and renamed when complete.

An interrupted run resumes where it stopped: a ``<output>.progress.json`` file (beside the ``.npy``; in the shard
folder) records the finished chunks with a fingerprint of the input, the model and the options; a later call with the
same arguments skips those chunks and gives a byte-identical result. Anything that does not match starts over.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["count_inputs", "encode_to_disk", "iter_inputs"]

InputFormat = Literal["auto", "lines", "jsonl", "parquet"]
OutputFormat = Literal["npy", "npy-shards", "parquet-shards"]
_PROGRESS_VERSION = 1


def _detect_format(path: Path, input_format: str) -> str:
    if input_format != "auto":
        if input_format not in ("lines", "jsonl", "parquet"):
            raise ValueError(f"input_format must be 'auto', 'lines', 'jsonl' or 'parquet', got {input_format!r}")
        return input_format
    name = path.name.lower()
    if name.endswith((".jsonl", ".ndjson", ".jsonl.gz")):
        return "jsonl"
    if name.endswith(".parquet") or path.is_dir():
        return "parquet"
    return "lines"


# The longest input line read (64 MiB): memory stays bounded on a file without newlines.
MAX_LINE_BYTES = 1 << 26


def iter_inputs(
    source: str | os.PathLike[str], input_format: InputFormat = "auto", field: str = "text"
) -> Iterator[str]:
    """The texts of a file, one at a time: lines (trailing newline removed), JSONL (``field`` of each object, or a
    bare JSON string per line; blank lines skipped) or a Parquet file or folder (the column ``field``)."""
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    fmt = _detect_format(path, input_format)
    if fmt == "parquet":
        yield from _iter_parquet(path, field)
        return
    with open(path, "rb") as f:  # lines end at "\n" only (as count_inputs counts them); "\r\n" is stripped
        for lineno, raw in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):  # read no further into an endless line
                raise ValueError(
                    f"{path}:{lineno}: a line longer than {MAX_LINE_BYTES} bytes; one text per line is expected "
                    "(is this a text file?)"
                )
            try:
                line = raw.decode("utf-8").rstrip("\n").rstrip("\r")
            except UnicodeDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid UTF-8 ({exc.reason})") from exc
            if fmt == "lines":
                yield line
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON: {exc.msg}") from exc
            if isinstance(record, str):
                yield record
            elif isinstance(record, dict) and isinstance(record.get(field), str):
                yield record[field]
            else:
                raise ValueError(
                    f"{path}:{lineno}: expected an object with a string field {field!r} (or a JSON string)"
                )


def _parquet_dataset(path: Path) -> Any:
    try:
        import pyarrow.dataset as ds
    except ImportError as exc:
        raise ImportError("reading Parquet needs pyarrow: pip install pyarrow") from exc
    return ds.dataset(str(path), format="parquet")


def _iter_parquet(path: Path, field: str) -> Iterator[str]:
    dataset = _parquet_dataset(path)
    if field not in dataset.schema.names:
        raise ValueError(f"{path} has no column {field!r}; its columns are {dataset.schema.names}")
    for batch in dataset.to_batches(columns=[field], batch_size=8192):
        for i, value in enumerate(batch.column(0).to_pylist()):
            if not isinstance(value, str):
                raise ValueError(f"{path}: column {field!r} holds a {type(value).__name__} at a row ({i} of a batch)")
            yield value


def count_inputs(source: str | os.PathLike[str], input_format: InputFormat = "auto", field: str = "text") -> int:
    """How many texts :func:`iter_inputs` yields, in one streaming pass (Parquet: from the metadata)."""
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    fmt = _detect_format(path, input_format)
    if fmt == "parquet":
        return int(_parquet_dataset(path).count_rows())
    if fmt == "lines":
        count = 0
        last = b"\n"
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                count += block.count(b"\n")
                last = block[-1:]
        return count + (0 if last == b"\n" else 1)
    return sum(1 for _ in iter_inputs(path, "jsonl", field))


def _chunks(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"encode_to_disk encodes texts, got a {type(text).__name__} in the inputs")
        chunk.append(text)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _fingerprint(source: Any, settings: dict[str, Any]) -> str:
    """What a resumed run must share with the interrupted one: the input file (path, size, mtime), the model and
    every option that changes the bytes written."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).resolve()
        stat = path.stat()
        h.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def _model_id(model: Any) -> str:
    return "|".join(
        str(x)
        for x in (
            type(model).__name__,
            getattr(model, "_model_dir", None) or getattr(model.model_card_data, "base_model", None) or "",
            getattr(model, "backend", ""),
            sum(int(p.numel()) for p in model.parameters()) if hasattr(model, "parameters") else "",
        )
    )


class _Progress:
    """The resume record: which chunks are finished, for which input and options."""

    def __init__(self, path: Path, fingerprint: str, extra: dict[str, Any]) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self.extra = extra
        self.done: set[int] = set()

    def load(self) -> bool:
        """Reads a matching record; False (and nothing done) when there is none or it belongs to another run."""
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if (
            not isinstance(record, dict)
            or record.get("version") != _PROGRESS_VERSION
            or record.get("fingerprint") != self.fingerprint
            or record.get("extra") != self.extra
        ):
            return False
        self.done = {int(i) for i in record.get("done", [])}
        return True

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        record = {
            "version": _PROGRESS_VERSION,
            "fingerprint": self.fingerprint,
            "extra": self.extra,
            "done": sorted(self.done),
        }
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, self.path)


def _npy_header(path: Path, shape: tuple[int, int], dtype: np.dtype[Any]) -> int:
    """Creates ``path`` as a ``.npy`` of ``shape`` (sparse: the data is not written) and returns the data offset."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        )
        offset = f.tell()
        f.truncate(offset + shape[0] * shape[1] * dtype.itemsize)
    return offset


def _npy_offset(path: Path) -> int:
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{path}: unexpected .npy format version {version}")
        return f.tell()


def encode_to_disk(
    model: Any,
    inputs: str | os.PathLike[str] | Iterable[str],
    output: str | os.PathLike[str],
    *,
    output_format: OutputFormat = "npy",
    input_format: InputFormat = "auto",
    field: str = "text",
    chunk_size: int = 65536,
    total: int | None = None,
    resume: bool = True,
    show_progress_bar: bool = True,
    **encode_kwargs: Any,
) -> Path:
    """Encodes every input with ``model.encode`` in chunks of ``chunk_size`` texts, writing each chunk to disk.

    Args:
        model: a ``SentenceTransformer`` (any model whose ``encode`` returns a 2-D numpy array).
        inputs: a text file (``lines``), a JSONL file, a Parquet file or folder, or an iterable of strings.
        output: the ``.npy`` file, or the shard folder.
        output_format: ``npy`` (one file), ``npy-shards`` or ``parquet-shards``.
        input_format: ``auto`` decides by the file name (``.jsonl``/``.ndjson``, ``.parquet`` or a folder, else
            lines).
        field: the JSONL key or Parquet column of the texts.
        chunk_size: texts per chunk; memory is bounded by one chunk's texts and embeddings.
        total: the number of texts of an iterable without ``len()`` (needed for ``npy``; shown in the progress bar).
        resume: continue an interrupted run with the same arguments (else start over).
        show_progress_bar: one bar over all texts, with rate and ETA.
        encode_kwargs: passed to ``model.encode`` (``batch_size``, ``prompt_name``, ``normalize_embeddings``,
            ``precision``, ``truncate_dim``, ...).

    Returns:
        The output path.
    """
    from tqdm.autonotebook import tqdm

    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    if output_format not in ("npy", "npy-shards", "parquet-shards"):
        raise ValueError(f"output_format must be 'npy', 'npy-shards' or 'parquet-shards', got {output_format!r}")
    for key in ("convert_to_tensor", "convert_to_numpy", "output_value"):
        if key in encode_kwargs:
            raise ValueError(f"encode_to_disk writes numpy arrays of sentence embeddings; {key}= is not accepted")
    out = Path(output)
    is_path = isinstance(inputs, (str, os.PathLike))
    if is_path:
        n = count_inputs(inputs, input_format, field)  # type: ignore[arg-type]
        texts: Iterable[str] = iter_inputs(inputs, input_format, field)  # type: ignore[arg-type]
    else:
        if isinstance(inputs, str):
            raise TypeError("inputs must be a file path or an iterable of texts")
        texts = inputs  # type: ignore[assignment]
        n = total if total is not None else (len(inputs) if hasattr(inputs, "__len__") else -1)  # type: ignore[arg-type]
    if output_format == "npy" and n < 0:
        raise ValueError("output_format='npy' needs the number of texts: pass total= for an iterable without len()")

    settings = {
        "model": _model_id(model),
        "chunk_size": chunk_size,
        "output_format": output_format,
        "input_format": input_format,
        "field": field,
        "encode": {k: encode_kwargs[k] for k in sorted(encode_kwargs)},
        "n": n,
    }
    fingerprint = _fingerprint(inputs if is_path else None, settings)
    if output_format == "npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        progress = _Progress(out.with_name(out.name + ".progress.json"), fingerprint, {"n": n})
    else:
        out.mkdir(parents=True, exist_ok=True)
        partial = out
        progress = _Progress(out / "progress.json", fingerprint, {"n": n})
    resumed = resume and is_path and progress.load()
    if not resumed:
        progress.done = set()

    probe_dim: int | None = None
    offset = 0
    if output_format == "npy" and resumed and partial.is_file():
        offset = _npy_offset(partial)
    elif output_format == "npy":
        resumed = False
        progress.done = set()

    bar = tqdm(total=n if n >= 0 else None, unit="texts", disable=not show_progress_bar, desc="Encoding")
    try:
        for index, chunk in enumerate(_chunks(texts, chunk_size)):
            if index in progress.done and (output_format == "npy" or _shard_path(out, index, output_format).is_file()):
                bar.update(len(chunk))
                continue
            embeddings = np.asarray(
                model.encode(chunk, convert_to_numpy=True, show_progress_bar=False, **encode_kwargs)
            )
            if embeddings.ndim != 2 or embeddings.shape[0] != len(chunk):
                raise ValueError(
                    f"model.encode returned shape {embeddings.shape} for {len(chunk)} texts; encode_to_disk writes "
                    "one row per text"
                )
            embeddings = np.ascontiguousarray(embeddings)
            if output_format == "npy":
                row_bytes = embeddings.shape[1] * embeddings.dtype.itemsize
                if probe_dim is None and not (resumed and partial.is_file()):
                    offset = _npy_header(partial, (n, embeddings.shape[1]), embeddings.dtype)
                probe_dim = embeddings.shape[1]
                fd = os.open(partial, os.O_WRONLY)
                try:
                    os.pwrite(fd, embeddings.tobytes(), offset + index * chunk_size * row_bytes)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            else:
                _write_shard(out, index, embeddings, output_format)
            progress.done.add(index)
            progress.save()
            bar.update(len(chunk))
    finally:
        bar.close()
    if output_format == "npy":
        if probe_dim is None and not (resumed and partial.is_file()):
            # No texts: an empty (0, 0) float32 array, as encode returns for an empty input.
            _npy_header(partial, (0, 0), np.dtype(np.float32))
        os.replace(partial, out)
    progress.path.unlink(missing_ok=True)
    return out


def _shard_path(folder: Path, index: int, output_format: str) -> Path:
    return folder / (f"part-{index:05d}" + (".npy" if output_format == "npy-shards" else ".parquet"))


def _write_shard(folder: Path, index: int, embeddings: np.ndarray, output_format: str) -> None:
    final = _shard_path(folder, index, output_format)
    tmp = folder / f".{final.name}.tmp"
    if output_format == "npy-shards":
        with open(tmp, "wb") as f:
            np.save(f, embeddings)
    else:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ImportError("parquet-shards output needs pyarrow: pip install pyarrow") from exc
        flat = pa.array(embeddings.reshape(-1))
        column = pa.FixedSizeListArray.from_arrays(flat, embeddings.shape[1])
        pq.write_table(pa.table({"embedding": column}), tmp)
    os.replace(tmp, final)
