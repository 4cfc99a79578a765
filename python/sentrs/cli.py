"""The ``sentrs`` command line: ``encode`` texts to ``.npy``, ``search`` them, ``rerank`` passages for a query."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

__all__ = ["main"]


# The longest input line read (64 Mi characters): memory stays bounded on a file without newlines.
_MAX_LINE_CHARS = 1 << 26


def _bounded_lines(stream: TextIO, name: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of ``stream``; SystemExit naming ``name`` for a line longer than ``_MAX_LINE_CHARS``
    (read no further into it)."""
    for lineno, line in enumerate(iter(lambda: stream.readline(_MAX_LINE_CHARS + 1), ""), start=1):
        if len(line) > _MAX_LINE_CHARS and not line.endswith("\n"):
            raise SystemExit(f"sentrs: {name}:{lineno}: a line longer than {_MAX_LINE_CHARS} characters")
        yield lineno, line


def _read_texts(stream: TextIO, name: str, field: str) -> list[str]:
    """One text per line, or one JSON object per line (``.jsonl``) with the text under ``field``."""
    texts: list[str] = []
    is_jsonl = name.endswith((".jsonl", ".ndjson"))
    for lineno, line in _bounded_lines(stream, name):
        line = line.rstrip("\n").rstrip("\r")
        if is_jsonl:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"sentrs encode: {name}:{lineno}: not valid JSON: {exc.msg}") from exc
            if isinstance(record, str):
                texts.append(record)
                continue
            if not isinstance(record, dict) or not isinstance(record.get(field), str):
                raise SystemExit(f"sentrs encode: {name}:{lineno}: expected an object with a string field {field!r}")
            texts.append(record[field])
        else:
            texts.append(line)
    return texts


def _encode(args: argparse.Namespace) -> int:
    """Streams the input to disk in chunks (see :func:`sentrs.streaming.encode_to_disk`); stdin is read whole."""
    from pathlib import Path

    import numpy as np

    from sentrs import SentenceTransformer
    from sentrs.streaming import encode_to_disk

    input_format = "jsonl" if args.jsonl else args.input_format
    source: Any
    if args.input == "-":
        source = _read_texts(sys.stdin, "<stdin>.jsonl" if input_format == "jsonl" else "<stdin>", args.field)
    elif not Path(args.input).exists():
        print(f"sentrs encode: input file not found: {args.input}", file=sys.stderr)
        return 2
    else:
        source = args.input
    model = SentenceTransformer(args.model, device=args.device, trust_remote_code=False, **_backend_kwargs(args))
    start = time.perf_counter()
    try:
        out = encode_to_disk(
            model,
            source,
            args.output,
            output_format=args.format,
            input_format=input_format,  # type: ignore[arg-type]  # argparse choices
            field=args.field,
            chunk_size=args.chunk_size,
            resume=not args.restart,
            show_progress_bar=not args.quiet,
            batch_size=args.batch_size,
            prompt_name=args.prompt_name,
            prompt=args.prompt,
            normalize_embeddings=args.normalize,
            precision=args.precision,
            truncate_dim=args.truncate_dim,
        )
    except ValueError as exc:
        raise SystemExit(f"sentrs encode: {exc}") from exc
    seconds = time.perf_counter() - start
    if not args.quiet:
        if args.format == "npy":
            result = np.load(out, mmap_mode="r")
            n, what = len(result), f"{tuple(result.shape)} {result.dtype}"
        else:
            n, what = -1, "shards"
        rate = f" ({n / seconds:.0f} texts/s)" if n >= 0 and seconds > 0 else ""
        print(f"encoded {'' if n < 0 else n} texts -> {out} {what} in {seconds:.2f}s{rate}", file=sys.stderr)
    return 0


def _search(args: argparse.Namespace) -> int:
    import numpy as np

    from sentrs import SentenceTransformer
    from sentrs.util import semantic_search

    try:
        corpus = np.load(args.corpus, mmap_mode="r")
    except FileNotFoundError:
        print(f"sentrs search: corpus embeddings not found: {args.corpus}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"sentrs search: {args.corpus} is not a .npy array: {exc}", file=sys.stderr)
        return 2
    if corpus.ndim != 2 or corpus.dtype.kind != "f":
        print(
            f"sentrs search: {args.corpus} must hold a 2-D float array of embeddings, got {corpus.dtype} "
            f"{corpus.shape}",
            file=sys.stderr,
        )
        return 2
    texts: list[str] | None = None
    if args.texts:
        with open(args.texts, encoding="utf-8") as f:
            texts = _read_texts(f, args.texts, args.field)
        if len(texts) != corpus.shape[0]:
            print(
                f"sentrs search: {args.texts} has {len(texts)} texts but the corpus has {corpus.shape[0]} rows",
                file=sys.stderr,
            )
            return 2
    queries = list(args.query or [])
    if args.queries_file:
        with open(args.queries_file, encoding="utf-8") as f:
            queries += [line.rstrip("\n") for _, line in _bounded_lines(f, args.queries_file) if line.strip()]
    if not queries:
        print("sentrs search: give at least one --query or a --queries-file", file=sys.stderr)
        return 2
    model = SentenceTransformer(args.model, device=args.device, **_backend_kwargs(args))
    query_emb = model.encode_query(queries, batch_size=args.batch_size, prompt_name=args.prompt_name)
    if query_emb.shape[1] != corpus.shape[1]:
        print(
            f"sentrs search: the model makes {query_emb.shape[1]}-d embeddings but the corpus has "
            f"{corpus.shape[1]}-d rows",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    hits = semantic_search(query_emb, np.ascontiguousarray(corpus, dtype=np.float32), top_k=args.top_k)
    seconds = time.perf_counter() - start
    for query, query_hits in zip(queries, hits):
        print(f"query: {query}")
        for rank, hit in enumerate(query_hits, start=1):
            line = f"  {rank:2d}. {hit['score']:.4f}  #{hit['corpus_id']}"
            if texts is not None:
                line += f"  {texts[int(hit['corpus_id'])]}"
            print(line)
    print(f"searched {len(queries)} queries over {corpus.shape[0]} rows in {seconds * 1000:.1f} ms", file=sys.stderr)
    return 0


def _rerank(args: argparse.Namespace) -> int:
    from sentrs import CrossEncoder

    try:
        with open(args.passages, encoding="utf-8") as f:
            passages = _read_texts(f, ".jsonl" if args.jsonl else args.passages, args.field)
    except FileNotFoundError:
        print(f"sentrs rerank: passages file not found: {args.passages}", file=sys.stderr)
        return 2
    passages = [p for p in passages if p.strip()]
    if not passages:
        print(f"sentrs rerank: {args.passages} holds no passages", file=sys.stderr)
        return 2
    model = CrossEncoder(args.model, device=args.device, **_backend_kwargs(args))
    if model.num_labels != 1:
        print(
            f"sentrs rerank: the model has {model.num_labels} labels; ranking needs a one-label model", file=sys.stderr
        )
        return 2
    start = time.perf_counter()
    ranking = model.rank(
        args.query, passages, top_k=args.top_k, batch_size=args.batch_size, show_progress_bar=not args.quiet
    )
    seconds = time.perf_counter() - start
    print(f"query: {args.query}")
    for rank, hit in enumerate(ranking, start=1):
        print(f"  {rank:2d}. {hit['score']:.4f}  #{hit['corpus_id']}  {passages[int(hit['corpus_id'])]}")
    if not args.quiet:
        print(f"scored {len(passages)} passages in {seconds * 1000:.1f} ms", file=sys.stderr)
    return 0


def _backend_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``backend=`` and, for an exported file other than the default, ``model_kwargs={"file_name": ...}``."""
    kwargs: dict[str, Any] = {"backend": args.backend}
    if args.file_name is not None:
        if args.backend == "torch":
            raise SystemExit("--file-name needs --backend onnx or --backend openvino")
        kwargs["model_kwargs"] = {"file_name": args.file_name}
    return kwargs


def _add_backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend", default="torch", choices=["torch", "onnx", "openvino"], help="forward pass (default: torch)"
    )
    parser.add_argument(
        "--file-name", default=None, help="exported model file, e.g. onnx/model_qint8_avx512_vnni.onnx"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentrs", description="Rust-accelerated sentence embeddings.")
    sub = parser.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encode", help="embed texts (one per line, or JSONL) into a .npy file")
    enc.add_argument("model", help="model folder or Hugging Face Hub id")
    enc.add_argument("input", help="text file with one text per line, a .jsonl file, or - for stdin")
    enc.add_argument("-o", "--output", required=True, help="output .npy path (or folder, for the shard formats)")
    enc.add_argument(
        "--format",
        default="npy",
        choices=["npy", "npy-shards", "parquet-shards"],
        help="one .npy file (default), or a folder with one .npy or .parquet file per chunk",
    )
    enc.add_argument("--jsonl", action="store_true", help="treat the input as JSONL whatever its name")
    enc.add_argument(
        "--input-format",
        default="auto",
        choices=["auto", "lines", "jsonl", "parquet"],
        help="auto: .jsonl/.ndjson is JSONL, .parquet or a folder is Parquet, anything else one text per line",
    )
    enc.add_argument("--field", default="text", help="JSONL field or Parquet column holding the text (default: text)")
    enc.add_argument(
        "--chunk-size", type=int, default=65536, help="texts encoded and written at a time (bounds the memory)"
    )
    enc.add_argument(
        "--restart", action="store_true", help="start over instead of resuming an interrupted run of the same job"
    )
    enc.add_argument("--batch-size", type=int, default=32)
    enc.add_argument("--device", default=None, help="cpu, cuda, ... (default: auto)")
    enc.add_argument("--prompt-name", default=None)
    enc.add_argument("--prompt", default=None)
    enc.add_argument("--normalize", action="store_true", help="L2-normalise the embeddings")
    enc.add_argument("--truncate-dim", type=int, default=None)
    enc.add_argument("--precision", default="float32", choices=["float32", "int8", "uint8", "binary", "ubinary"])
    enc.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    _add_backend_options(enc)
    enc.set_defaults(func=_encode)

    srch = sub.add_parser("search", help="answer text queries against a .npy file of corpus embeddings")
    srch.add_argument("model", help="model folder or Hugging Face Hub id (the one that encoded the corpus)")
    srch.add_argument("corpus", help=".npy file of corpus embeddings (from `sentrs encode`)")
    srch.add_argument("-q", "--query", action="append", help="a query text (repeatable)")
    srch.add_argument("--queries-file", default=None, help="a file with one query per line")
    srch.add_argument("--texts", default=None, help="the corpus texts (lines or .jsonl), to print with the hits")
    srch.add_argument("--field", default="text", help="JSONL field of --texts (default: text)")
    srch.add_argument("-k", "--top-k", type=int, default=5)
    srch.add_argument("--batch-size", type=int, default=32)
    srch.add_argument("--device", default=None)
    _add_backend_options(srch)
    srch.add_argument("--prompt-name", default=None, help="prompt for the queries (default: the model's query prompt)")
    srch.set_defaults(func=_search)

    rr = sub.add_parser("rerank", help="rank passages for a query with a cross-encoder")
    rr.add_argument("model", help="cross-encoder folder or Hugging Face Hub id")
    rr.add_argument("query", help="the query text")
    rr.add_argument("passages", help="passages, one per line, or a .jsonl file")
    rr.add_argument("--jsonl", action="store_true", help="treat the passages file as JSONL whatever its name")
    rr.add_argument("--field", default="text", help="JSONL field holding the passage (default: text)")
    rr.add_argument("-k", "--top-k", type=int, default=None, help="show only the best k (default: all)")
    rr.add_argument("--batch-size", type=int, default=32)
    rr.add_argument("--device", default=None)
    rr.add_argument("-q", "--quiet", action="store_true", help="no progress bar or timing")
    _add_backend_options(rr)
    rr.set_defaults(func=_rerank)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sentrs`` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
