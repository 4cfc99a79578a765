"""End-to-end ``CrossEncoder`` benchmark: sentrs against sentence-transformers, reranking WordNet passages.

Run from the repository root, in the project's virtualenv::

    python benches/python/bench_rerank.py
    python benches/python/bench_rerank.py --queries 50 --candidates 20 --repeats 5 --threads 2

No pretrained cross-encoder is available offline, so one is built: the bundled all-MiniLM-L6-v2 is loaded with
the reference's ``CrossEncoder(num_labels=1)`` after ``torch.manual_seed(--seed)`` (a
BertForSequenceClassification with a random one-label head), saved to a temporary folder, and that folder is
loaded by both libraries on CPU in one process.

The pairs are real text: each query is an example sentence of a WordNet 3.0 gloss (the quoted part) and its
candidates are the definition of its own gloss plus ``--candidates - 1`` other definitions, drawn and shuffled
deterministically (``--queries 50 --candidates 20``: 1,000 pairs). Two workloads are timed, alternately (the
order flips every round), best of ``--repeats`` rounds each:

* rank: ``model.rank(query, passages, batch_size=...)`` for every query, the realistic reranking loop;
* predict: one ``model.predict(all_pairs, batch_size=...)`` call.

One extra ``predict`` run per library with the transformer's ``forward`` wrapped in a timer gives the host-side
overhead: the fraction of ``predict`` spent outside the forward pass (tokenization, batching, padding,
activation, conversions). Finally the libraries' predict scores and rank orders are compared.

Run it on an otherwise idle machine: when other processes hold cores, torch's spinning thread pool makes
timings erratic (several times slower at random); ``--threads`` below the number of free cores avoids that.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from collections.abc import Callable
from typing import Any

import benchutil

#: A quoted example sentence inside a WordNet gloss.
_EXAMPLE = re.compile(r'"([^"]+)"')


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--queries", type=int, default=50, help="number of queries (default: %(default)s)")
    parser.add_argument("--candidates", type=int, default=20, help="passages ranked per query (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per library (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="rank/predict batch size (default: %(default)s)")
    parser.add_argument(
        "--pool", type=int, default=10000, help="WordNet glosses to draw pairs from (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random head and of the pair draw (default: %(default)s)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads, also SENTRS_NUM_THREADS and RAYON_NUM_THREADS (default: library defaults)",
    )
    args = parser.parse_args(argv)
    if min(args.queries, args.candidates, args.repeats, args.batch_size) < 1:
        parser.error("--queries, --candidates, --repeats and --batch-size must be >= 1")
    if args.pool < args.candidates:
        parser.error("--pool must be >= --candidates")
    return args


def build_pairs(n_queries: int, n_candidates: int, pool: int, seed: int) -> list[tuple[str, list[str], int]]:
    """``(query, passages, index of the query's own gloss in passages)`` for each query, deterministic.

    Queries are the first example sentences of glosses spread evenly over the first ``pool`` WordNet glosses that
    have one; passages are gloss definitions: the query's own and ``n_candidates - 1`` others, shuffled.
    """
    glosses = benchutil.wordnet_glosses(pool)
    definitions = [g.split('; "', 1)[0].strip() for g in glosses]
    with_example = [(i, m.group(1).strip()) for i, g in enumerate(glosses) if (m := _EXAMPLE.search(g))]
    if len(with_example) < n_queries:
        raise ValueError(
            f"only {len(with_example)} of the first {pool} glosses have an example sentence; "
            f"raise --pool for {n_queries} queries"
        )
    step = len(with_example) / n_queries
    chosen = [with_example[int(k * step)] for k in range(n_queries)]
    rng = random.Random(seed)
    out: list[tuple[str, list[str], int]] = []
    for own, query in chosen:
        others: list[str] = []
        seen = {definitions[own]}
        while len(others) < n_candidates - 1:
            text = definitions[rng.randrange(len(definitions))]
            if text not in seen:
                seen.add(text)
                others.append(text)
        passages = [definitions[own], *others]
        rng.shuffle(passages)
        out.append((query, passages, passages.index(definitions[own])))
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    benchutil.set_threads(args.threads)  # before the Rust pools start

    import numpy as np
    import sentence_transformers
    import torch

    import sentrs

    if args.threads is not None:
        torch.set_num_threads(args.threads)

    path = str(benchutil.model_path())
    queries = build_pairs(args.queries, args.candidates, args.pool, args.seed)
    all_pairs = [(query, passage) for query, passages, _ in queries for passage in passages]
    n_pairs = len(all_pairs)
    query_words = sum(len(q.split()) for q, _, _ in queries) / len(queries)
    passage_words = sum(len(p.split()) for _, p in all_pairs) / n_pairs
    print("\n".join(benchutil.machine_lines()))
    print(f"sentence-transformers {sentence_transformers.__version__}, sentrs {sentrs.__version__}")
    print(f"base model: {path} (random one-label head, torch.manual_seed({args.seed}))")
    print(
        f"pairs: {len(queries)} WordNet example sentences x {args.candidates} gloss definitions = {n_pairs}, "
        f"{query_words:.1f} / {passage_words:.1f} words on average (query / passage), "
        f"batch_size={args.batch_size}, repeats={args.repeats}"
    )

    with tempfile.TemporaryDirectory(prefix="bench_rerank_") as folder:
        torch.manual_seed(args.seed)
        builder = sentence_transformers.CrossEncoder(path, num_labels=1, device="cpu")
        builder.save(folder)
        del builder
        models: dict[str, Any] = {
            "sentence-transformers": sentence_transformers.CrossEncoder(folder, device="cpu"),
            "sentrs": sentrs.CrossEncoder(folder, device="cpu"),
        }

    def ranker(name: str) -> Callable[[], list[list[dict[str, Any]]]]:
        model = models[name]
        return lambda: [model.rank(q, passages, batch_size=args.batch_size) for q, passages, _ in queries]

    def predictor(name: str) -> Callable[[], np.ndarray]:
        model = models[name]
        return lambda: model.predict(all_pairs, batch_size=args.batch_size)

    workloads: dict[str, dict[str, Callable[[], Any]]] = {
        "rank": {name: ranker(name) for name in models},
        "predict": {name: predictor(name) for name in models},
    }
    # Warm-up, also kept for the agreement check.
    rankings = {name: fn() for name, fn in workloads["rank"].items()}
    scores = {name: np.asarray(fn(), dtype=np.float64) for name, fn in workloads["predict"].items()}

    names = list(models)
    best = {work: dict.fromkeys(names, float("inf")) for work in workloads}
    for round_ in range(args.repeats):
        for work, fns in workloads.items():
            for name in names if round_ % 2 == 0 else names[::-1]:
                start = time.perf_counter()
                fns[name]()
                best[work][name] = min(best[work][name], time.perf_counter() - start)

    for work, label in (
        ("rank", f"rank: {len(queries)} x model.rank(query, {args.candidates} passages)"),
        ("predict", f"predict: one model.predict({n_pairs} pairs)"),
    ):
        reference = best[work]["sentence-transformers"]
        rows = [
            [name, f"{seconds:.3f}", f"{n_pairs / seconds:,.1f}", f"{reference / seconds:.2f}x"]
            for name, seconds in best[work].items()
        ]
        print(f"\n{label}")
        print(benchutil.format_table(["library", "best s", "pairs/s", "speed-up"], rows))

    print()
    for name in names:
        total, forward = benchutil.forward_share(models[name], workloads["predict"][name])
        print(
            f"{name}: predict {total:.3f} s, transformer forward {forward:.3f} s, "
            f"host-side overhead {1 - forward / total:.1%} ({total - forward:.3f} s)"
        )

    ref_scores, our_scores = scores["sentence-transformers"], scores["sentrs"]
    if ref_scores.shape != our_scores.shape:
        print(f"\nSHAPE MISMATCH: reference {ref_scores.shape}, sentrs {our_scores.shape}")
        raise SystemExit(1)
    diff = np.abs(ref_scores - our_scores)
    orders = {name: [[hit["corpus_id"] for hit in hits] for hits in rankings[name]] for name in names}
    disagree = [i for i, (a, b) in enumerate(zip(*orders.values())) if a != b]
    own_top = sum(order[0] == own for order, (_, _, own) in zip(orders["sentrs"], queries))
    print(
        f"\npredict scores {our_scores.shape}: max abs diff {diff.max():.3e}, mean abs diff {diff.mean():.3e}; "
        f"score range {ref_scores.min():.4f} .. {ref_scores.max():.4f} (reference)"
    )
    print(
        f"rank orders: {'all agree' if not disagree else 'DIFFER'} "
        f"({len(queries) - len(disagree)}/{len(queries)} queries identical)"
        + (f", first differing queries {disagree[:5]}" if disagree else "")
    )
    print(f"own gloss ranked first by sentrs for {own_top}/{len(queries)} queries (random head: chance level)")


if __name__ == "__main__":
    main()
