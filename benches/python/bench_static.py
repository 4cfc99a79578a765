"""StaticEmbedding: sentrs' Rust path against sentence-transformers on the same static model, in one process.

Run from the repository root, in the project's virtualenv::

    python benches/python/bench_static.py
    python benches/python/bench_static.py --n 20000 --repeats 1 --model input-embeddings

The static model (``--model``):

* ``distilled`` (default): model2vec's distillation of the bundled all-MiniLM-L6-v2 (``StaticEmbedding
  .from_distillation``, PCA to 256 dimensions; needs ``model2vec[distill]``), built once (a few minutes on 2 cores)
  and cached in ``--cache`` (default ``~/.cache/sentrs/bench/static-minilm-distilled``);
* ``input-embeddings``: MiniLM's own vocabulary and input token embeddings (384-d), no distillation.

Sections:

* ``encode``: ``SentenceTransformer.encode`` of ``--n`` WordNet glosses (default 100,000) with the model loaded
  from the same folder in both libraries, ``batch_size`` 32 (the default) and 1024, timed alternately, best of
  ``--repeats`` after one warm-up call each (target: >= 10x at the default batch size). The outputs are compared
  (max abs difference).
* ``quality``: the WordNet retrieval task of FIXTURES.md (``--docs`` noun definitions, ``--queries`` example
  sentences whose gold document is their synset's definition), MRR@10 and recall@10 by cosine similarity, for the
  static model and for all-MiniLM-L6-v2, with each model's encode time of the task's texts in sentrs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import benchutil

SECTIONS = ("encode", "quality")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="texts to encode (default 100000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per library (default 3)")
    parser.add_argument("--model", choices=("distilled", "input-embeddings"), default="distilled")
    parser.add_argument(
        "--cache", type=Path, default=Path.home() / ".cache" / "sentrs" / "bench" / "static-minilm-distilled"
    )
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--docs", type=int, default=20_000, help="quality: documents (default 20000)")
    parser.add_argument("--queries", type=int, default=2_000, help="quality: queries (default 2000)")
    parser.add_argument("--threads", type=int, default=None, help="cap the Rust, tokenizers and torch threads")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.docs < 10 or args.queries < 1:
        parser.error("--n, --repeats, --queries must be >= 1 and --docs >= 10")
    return args


def build_model_folder(args: argparse.Namespace) -> str:
    """The static model's folder (saved by sentrs in the reference's format), built on first use."""
    import sentrs
    from sentrs.sentence_transformer.modules import StaticEmbedding

    if args.model == "input-embeddings":
        folder = args.cache.parent / "static-minilm-input-embeddings"
        if not (folder / "modules.json").is_file():
            from safetensors.torch import load_file
            from tokenizers import Tokenizer

            base = benchutil.model_path()
            weights = load_file(str(base / "model.safetensors"))
            key = next(k for k in weights if k.endswith("word_embeddings.weight"))
            tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
            static = StaticEmbedding(tokenizer, embedding_weights=weights[key].float())
            sentrs.SentenceTransformer(modules=[static]).save(str(folder))
        return str(folder)
    folder = args.cache
    if not (folder / "modules.json").is_file():
        benchutil.progress(f"distilling all-MiniLM-L6-v2 into a static model (cached in {folder}); a few minutes")
        static = StaticEmbedding.from_distillation(str(benchutil.model_path()), device="cpu", pca_dims=256)
        sentrs.SentenceTransformer(modules=[static]).save(str(folder))
    return str(folder)


def encode_section(folder: str, args: argparse.Namespace) -> None:
    import numpy as np
    import sentence_transformers as st

    import sentrs

    texts = benchutil.wordnet_glosses(args.n)
    ref = st.SentenceTransformer(folder, device="cpu")
    ours = sentrs.SentenceTransformer(folder, device="cpu")
    rows = []
    for batch_size in (32, 1024):
        outputs: dict[str, Any] = {}
        times = {"ref": float("inf"), "ours": float("inf")}
        models = {"ref": ref, "ours": ours}
        for name in ("ref", "ours"):
            outputs[name] = models[name].encode(texts, batch_size=batch_size)  # warm-up, kept for the comparison
        for round_ in range(args.repeats):
            order = ("ref", "ours") if round_ % 2 == 0 else ("ours", "ref")
            for name in order:
                start = time.perf_counter()
                models[name].encode(texts, batch_size=batch_size)
                times[name] = min(times[name], time.perf_counter() - start)
        diff = float(np.abs(outputs["ref"] - outputs["ours"]).max())
        rows.append(
            [
                str(batch_size),
                f"{len(texts) / times['ref']:,.0f}",
                f"{len(texts) / times['ours']:,.0f}",
                benchutil.speedup(times["ref"], times["ours"]),
                f"{diff:.1e}",
            ]
        )
    print(
        f"\nencode: {len(texts):,} WordNet glosses, static model {Path(folder).name} (texts/s, best of {args.repeats})"
    )
    print(
        benchutil.format_table(
            ["batch_size", "sentence-transformers", "sentrs", "speed-up", "max |diff|"], rows, left=1
        )
    )


def wordnet_task(n_docs: int, n_queries: int) -> tuple[list[str], list[tuple[str, int]]]:
    """Documents are noun definitions; each query is an example sentence whose gold document is its definition."""
    quoted = re.compile(r'"([^"]+)"')
    docs: list[str] = []
    queries: list[tuple[str, int]] = []
    with open(benchutil.wordnet_dir() / "data.noun", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("  ") or "| " not in line:
                continue
            gloss = line.split("| ", 1)[1].strip()
            examples = quoted.findall(gloss)
            if examples and len(queries) < n_queries:
                queries.append((examples[0], len(docs)))
            docs.append(gloss.split('; "', 1)[0].strip())
            if len(docs) >= n_docs:
                break
    return docs, queries


def quality_section(folder: str, args: argparse.Namespace) -> None:
    import numpy as np

    import sentrs

    docs, queries = wordnet_task(args.docs, args.queries)
    rows = []
    for label, path in (
        ("static (" + Path(folder).name + ")", folder),
        ("all-MiniLM-L6-v2", str(benchutil.model_path())),
    ):
        model = sentrs.SentenceTransformer(path, device="cpu")
        start = time.perf_counter()
        d = model.encode(docs, normalize_embeddings=True, batch_size=64)
        q = model.encode([t for t, _ in queries], normalize_embeddings=True, batch_size=64)
        seconds = time.perf_counter() - start
        top = np.argsort(-(q @ d.T), axis=1, kind="stable")[:, :10]
        mrr = recall = 0.0
        for row, (_, gold) in enumerate(queries):
            hits = list(top[row])
            if gold in hits:
                mrr += 1.0 / (hits.index(gold) + 1)
                recall += 1.0
        n_texts = len(docs) + len(queries)
        rows.append(
            [
                label,
                f"{mrr / len(queries):.4f}",
                f"{recall / len(queries):.4f}",
                f"{n_texts / seconds:,.0f}",
            ]
        )
    print(f"\nquality: WordNet task, {len(queries):,} queries against {len(docs):,} definitions (cosine)")
    print(benchutil.format_table(["model", "MRR@10", "recall@10", "sentrs texts/s"], rows, left=1))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    benchutil.import_libraries(args.threads)
    for line in benchutil.machine_lines():
        print(line)
    print(benchutil.cpu_feature_line())
    folder = build_model_folder(args)
    if "encode" in args.sections:
        encode_section(folder, args)
    if "quality" in args.sections:
        quality_section(folder, args)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
