"""Multi-vector (late-interaction) benchmarks: sentrs against sentence-transformers on the same inputs, in one process.

Run from the repository root, in the project's virtualenv::

    python benches/python/bench_multi_vector.py
    python benches/python/bench_multi_vector.py --queries 200 --docs 200 --repeats 1   # quicker

Sections (``--sections``):

* ``scoring``: ``util.maxsim`` of ``--queries`` queries (``--query-tokens`` tokens each) against ``--docs`` documents
  (token counts drawn uniformly from ``--min-doc-tokens`` to ``--max-doc-tokens``), ``--dim``-dimensional
  L2-normalised random token vectors, float32 tensors on the CPU, given as lists of ``(tokens, dim)`` tensors (the
  layout a MultiVectorEncoder's ``encode`` returns). The reference pads chunks and scores them with one einsum per
  chunk; sentrs scores the ragged buffers in Rust, a GEMM per block of tokens reduced at once to the per-token
  maxima. Best of ``--repeats`` after one warm-up call; agreement: the largest absolute score difference.
  Target: >= 5x. ``maxsim_pairwise`` over ``--queries`` pairs is timed the same way.
* ``search``: late-interaction retrieval over ``--corpus`` WordNet definitions encoded by a MultiVectorEncoder
  (``--model``, default: the bundled MiniLM with a seeded 128-wide projection), ``--search-queries`` WordNet example
  sentences as queries. The reference scores the corpus chunk by chunk (``util.maxsim`` on ``--chunk`` documents,
  then ``torch.topk`` merged across chunks: its exact search); sentrs' ``maxsim_search`` (exact, Rust, a block of
  documents per thread) and ``MultiVectorIndex.search`` (PLAID-style candidates, rescored exactly) at the
  ``--nprobe`` / ``--candidates`` settings. Reported: time, speed-up, recall@10 against the exact top 10. Targets:
  exact >= 5x, index >= 20x at recall@10 >= 0.95. The encoded corpus is cached in ``~/.cache/sentrs/bench``.
"""

from __future__ import annotations

import argparse
import os
import sys

import benchutil

SECTIONS = ("scoring", "search")


def _tokens(lengths: list[int], dim: int, seed: int) -> list[object]:
    import torch

    g = torch.Generator().manual_seed(seed)
    return [torch.nn.functional.normalize(torch.randn(n, dim, generator=g), dim=-1) for n in lengths]


def section_scoring(opts: argparse.Namespace) -> None:
    import torch
    from sentence_transformers import util as ref_util

    from sentrs import util as our_util

    g = torch.Generator().manual_seed(0)
    doc_lengths = torch.randint(opts.min_doc_tokens, opts.max_doc_tokens + 1, (opts.docs,), generator=g).tolist()
    queries = _tokens([opts.query_tokens] * opts.queries, opts.dim, 1)
    docs = _tokens(doc_lengths, opts.dim, 2)
    rows = []
    worst = {}
    for name, n_docs, call in (
        ("maxsim", opts.docs, "maxsim"),
        ("maxsim_pairwise", opts.queries, "maxsim_pairwise"),
    ):
        d = docs if call == "maxsim" else (docs * (opts.queries // max(opts.docs, 1) + 1))[: opts.queries]
        benchutil.progress(f"{name}: sentence-transformers")
        ref_fn = getattr(ref_util, call)
        our_fn = getattr(our_util, call)
        want = ref_fn(queries, d)
        ref_time = benchutil.best_time(lambda f=ref_fn, d=d: f(queries, d), opts.repeats, warmup=0)
        benchutil.progress(f"{name}: sentrs")
        got = our_fn(queries, d)
        our_time = benchutil.best_time(lambda f=our_fn, d=d: f(queries, d), opts.repeats, warmup=0)
        worst[name] = float((got - want).abs().max())
        rows.append(
            [
                f"{name}, {opts.queries} x {n_docs if call == 'maxsim' else 1}",
                benchutil.fmt_seconds(ref_time),
                benchutil.fmt_seconds(our_time),
                benchutil.speedup(ref_time, our_time),
                f"{worst[name]:.1e}",
            ]
        )
    mean_tokens = sum(doc_lengths) / max(len(doc_lengths), 1)
    print(
        f"\n## MaxSim scoring: {opts.queries} queries x {opts.query_tokens} tokens, {opts.docs} documents of "
        f"{opts.min_doc_tokens}-{opts.max_doc_tokens} tokens (mean {mean_tokens:.0f}), dim {opts.dim}, float32, CPU"
    )
    print(benchutil.format_table(["call", "sentence-transformers", "sentrs", "speed-up", "max abs diff"], rows))


def _wordnet_queries_and_corpus(n_queries: int, n_docs: int) -> tuple[list[str], list[str]]:
    import re

    quoted = re.compile(r'"([^"]+)"')
    full = benchutil.wordnet_glosses(n_docs)
    corpus = [g.split('; "', 1)[0].strip() for g in full]
    # Queries: example sentences of every 97th gloss that has one (their definitions are in the corpus).
    queries = [m[0] for g in full[::97] if (m := quoted.findall(g))][:n_queries]
    return queries, corpus


def _encoded(opts: argparse.Namespace) -> tuple[list[object], list[object]]:
    import hashlib
    from pathlib import Path

    import numpy as np
    import torch

    from sentrs import MultiVectorEncoder

    path = opts.model or str(benchutil.model_path())
    queries, corpus = _wordnet_queries_and_corpus(opts.search_queries, opts.corpus)
    key = hashlib.sha1(f"{path}|{len(corpus)}|{opts.search_queries}".encode()).hexdigest()[:12]
    cache = Path.home() / ".cache" / "sentrs" / "bench" / f"multi_vector_{key}.npz"
    torch.manual_seed(0)  # the projection of a model built from a dense folder
    model = MultiVectorEncoder(path, device="cpu")
    q = model.encode_query(queries, batch_size=128, convert_to_numpy=True)
    if cache.exists():
        stored = np.load(cache)
        tokens, offsets = stored["tokens"], stored["offsets"]
        docs = [tokens[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    else:
        benchutil.progress(f"encoding {len(corpus)} documents (cached in {cache})")
        docs = model.encode_document(corpus, batch_size=128, convert_to_numpy=True, show_progress_bar=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])])
        np.savez(cache, tokens=np.concatenate(docs), offsets=offsets)
    return q, docs


def section_search(opts: argparse.Namespace) -> None:
    import time

    import numpy as np
    import torch
    from sentence_transformers import util as ref_util

    from sentrs.multi_vector_encoder import MultiVectorIndex, maxsim_search

    queries, docs = _encoded(opts)
    k = 10
    q_t = [torch.from_numpy(np.asarray(x)) for x in queries]
    d_t = [torch.from_numpy(np.asarray(x)) for x in docs]

    def reference_search() -> tuple[np.ndarray, np.ndarray]:
        best_scores = torch.full((len(q_t), k), -float("inf"))
        best_ids = torch.full((len(q_t), k), -1, dtype=torch.long)
        for start in range(0, len(d_t), opts.chunk):
            scores = ref_util.maxsim(q_t, d_t[start : start + opts.chunk])
            ids = torch.arange(start, start + scores.shape[1]).expand_as(scores)
            merged_scores = torch.cat([best_scores, scores], dim=1)
            merged_ids = torch.cat([best_ids, ids], dim=1)
            best_scores, order = torch.topk(merged_scores, k, dim=1)
            best_ids = torch.gather(merged_ids, 1, order)
        return best_ids.numpy(), best_scores.numpy()

    tokens = sum(len(d) for d in docs)
    benchutil.progress(f"search: sentence-transformers, chunked exact scoring over {len(docs)} documents")
    start = time.perf_counter()
    ref_ids, ref_scores = reference_search()
    ref_time = time.perf_counter() - start
    benchutil.progress("search: sentrs maxsim_search")
    exact_time = benchutil.best_time(lambda: maxsim_search(queries, docs, top_k=k), opts.repeats, warmup=0)
    exact = maxsim_search(queries, docs, top_k=k)
    our_ids, our_scores = benchutil.to_arrays(exact, k)
    score_diff = float(np.abs(our_scores - ref_scores).max())
    benchutil.progress("search: building the candidate index")
    start = time.perf_counter()
    index = MultiVectorIndex(docs, seed=0)
    build_time = time.perf_counter() - start
    rows = [
        ["reference: util.maxsim per chunk + topk", benchutil.fmt_seconds(ref_time), "1.00x", "1.000", "-"],
        [
            "sentrs maxsim_search (exact)",
            benchutil.fmt_seconds(exact_time),
            benchutil.speedup(ref_time, exact_time),
            f"{_recall(our_ids, ref_ids):.3f}",
            f"{score_diff:.1e}",
        ],
    ]
    for nprobe, candidates in opts.index_settings:
        benchutil.progress(f"search: MultiVectorIndex nprobe={nprobe} candidates={candidates}")

        def run(nprobe: int = nprobe, candidates: int = candidates) -> object:
            return index.search(queries, top_k=k, nprobe=nprobe, candidates=candidates)

        index_time = benchutil.best_time(run, opts.repeats, warmup=1)
        found_ids, _ = benchutil.to_arrays(run(), k)  # type: ignore[arg-type]
        rows.append(
            [
                f"sentrs MultiVectorIndex nprobe={nprobe}, candidates={candidates}",
                benchutil.fmt_seconds(index_time),
                benchutil.speedup(ref_time, index_time),
                f"{_recall(found_ids, our_ids):.3f}",
                "exact scores",
            ]
        )
    print(
        f"\n## Late-interaction search: {len(queries)} queries x {len(docs)} documents ({tokens} tokens, "
        f"dim {docs[0].shape[1]}), top-{k}; index: {len(index.centroids)} centroids, built in "
        f"{benchutil.fmt_seconds(build_time)}"
    )
    print(benchutil.format_table(["search", "time", "speed-up", "recall@10 vs exact", "max score diff"], rows))


def _recall(found: object, exact: object) -> float:
    import numpy as np

    found, exact = np.asarray(found), np.asarray(exact)
    hits = [len(set(f[f >= 0]) & set(e[e >= 0])) / max((e >= 0).sum(), 1) for f, e in zip(found, exact)]
    return float(np.mean(hits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--query-tokens", type=int, default=32)
    parser.add_argument("--min-doc-tokens", type=int, default=120)
    parser.add_argument("--max-doc-tokens", type=int, default=240)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default=None, help="multi-vector model folder for the search section")
    parser.add_argument("--corpus", type=int, default=100_000, help="documents of the search section")
    parser.add_argument("--search-queries", type=int, default=100)
    parser.add_argument("--chunk", type=int, default=5000, help="documents per reference scoring chunk")
    parser.add_argument(
        "--index-settings",
        default="8:256,8:1024,32:4096",
        help="nprobe:candidates pairs of the candidate index, comma separated",
    )
    parser.add_argument("--threads", type=int, default=None)
    opts = parser.parse_args()
    sections = [s for s in opts.sections.split(",") if s]
    opts.index_settings = [tuple(int(v) for v in pair.split(":")) for pair in opts.index_settings.split(",") if pair]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    benchutil.import_libraries(opts.threads)
    for line in benchutil.machine_lines():
        print(line)
    print(benchutil.cpu_feature_line())
    for section in sections:
        globals()[f"section_{section}"](opts)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
