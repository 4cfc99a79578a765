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
"""

from __future__ import annotations

import argparse
import os
import sys

import benchutil

SECTIONS = ("scoring",)


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
    parser.add_argument("--threads", type=int, default=None)
    opts = parser.parse_args()
    sections = [s for s in opts.sections.split(",") if s]
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
