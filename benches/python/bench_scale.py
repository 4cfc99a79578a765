"""Scale-out benchmarks: one process, a multi-process pool and Ray Data on this machine; streaming encode memory.

Run from the repository root, in the project's virtualenv::

    python benches/python/bench_scale.py
    python benches/python/bench_scale.py --sections stream --stream-sizes 100000 1000000

Sections (``--sections``, default all):

* ``throughput``: ``--n`` WordNet glosses (default 100,000) embedded by all-MiniLM-L6-v2 on the CPU with sentrs in
  one process (``encode``), with a multi-process pool of ``--workers`` processes (``encode(pool=...)``, if this
  sentrs has pools), and with Ray Data (``sentrs.integrations.ray.encode_dataset`` on a local cluster of the
  machine's CPUs, ``--workers`` actors), against the reference's ``encode`` in one process on the same texts
  (texts/s and the ratio; the peak resident memory of the whole process tree of each run, measured in a child
  process). ``--model static`` uses a StaticEmbedding model instead (no transformer: shows the overheads).
* ``stream``: ``sentrs encode`` (the CLI, which streams: one chunk of texts in memory at a time) of text files of
  ``--stream-sizes`` lines (default 100,000 and 1,000,000) with a StaticEmbedding model (distilled from MiniLM by
  ``bench_static.py``, or MiniLM's input embeddings when that cache is missing), in a child process: wall time and
  peak RSS per size. The point is the memory: it must not grow with the corpus (the output ``.npy`` of 1M x 256
  float32 is 1 GB; the process never holds it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchutil

SECTIONS = ("throughput", "stream")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--n", type=int, default=100_000, help="throughput: texts (default 100000)")
    parser.add_argument("--workers", type=int, default=2, help="pool processes / Ray actors (default 2)")
    parser.add_argument("--model", choices=("minilm", "static"), default="minilm")
    parser.add_argument("--stream-sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--chunk-size", type=int, default=65536, help="stream: texts per chunk (default 65536)")
    parser.add_argument("--skip-reference", action="store_true", help="throughput: leave out the reference")
    return parser.parse_args(argv)


def static_model_dir() -> str:
    """The distilled static model of bench_static.py if cached, else MiniLM's input embeddings (built here)."""
    cache = Path.home() / ".cache" / "sentrs" / "bench"
    distilled = cache / "static-minilm-distilled"
    if (distilled / "modules.json").is_file():
        return str(distilled)
    import bench_static

    args = bench_static.parse_args(["--model", "input-embeddings"])
    return bench_static.build_model_folder(args)


def run_child(code: str, *args: str) -> dict[str, float]:
    """Runs ``code`` in a fresh interpreter and returns the JSON object it prints last (its own peak RSS in MiB
    under ``rss``, its largest child process's under ``child_rss`` where it has children)."""
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child failed:\n{proc.stderr[-4000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


THROUGHPUT_CODE = r"""
import json, sys, time
sys.path.insert(0, "benches/python")
import benchutil
mode, model_dir, n, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
texts = benchutil.wordnet_glosses(n)
if mode == "reference":
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(model_dir, device="cpu")
    start = time.perf_counter(); model.encode(texts, batch_size=64); seconds = time.perf_counter() - start
elif mode == "sentrs":
    from sentrs import SentenceTransformer
    model = SentenceTransformer(model_dir, device="cpu")
    start = time.perf_counter(); model.encode(texts, batch_size=64); seconds = time.perf_counter() - start
elif mode == "pool":
    from sentrs import SentenceTransformer
    model = SentenceTransformer(model_dir, device="cpu")
    pool = model.start_multi_process_pool(["cpu"] * workers)
    try:
        start = time.perf_counter()
        model.encode(texts, batch_size=64, pool=pool)
        seconds = time.perf_counter() - start
    finally:
        model.stop_multi_process_pool(pool)
else:
    import ray
    from sentrs.integrations.ray import encode_dataset
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    ds = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=4 * workers)
    start = time.perf_counter()
    out = encode_dataset(ds, model_dir, batch_size=1024, concurrency=workers, num_cpus=1)
    count = out.count()
    seconds = time.perf_counter() - start
    assert count == len(texts)
    ray.shutdown()
import resource
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "n": len(texts), "rss": own, "child_rss": children}))
"""


def section_throughput(args: argparse.Namespace) -> None:
    model_dir = str(benchutil.model_path()) if args.model == "minilm" else static_model_dir()
    modes = ["sentrs", "pool", "ray"] if args.skip_reference else ["reference", "sentrs", "pool", "ray"]
    rows = []
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        benchutil.progress(f"throughput: {mode}")
        try:
            results[mode] = run_child(THROUGHPUT_CODE, mode, model_dir, str(args.n), str(args.workers))
        except RuntimeError as exc:
            last = str(exc).strip().splitlines()[-1]
            rows.append([mode, "-", "-", "-", "-", f"not run: {last[:80]}"])
            continue
        r = results[mode]
        rate = r["n"] / r["seconds"]
        ratio = benchutil.speedup(results["reference"]["seconds"], r["seconds"]) if "reference" in results else "-"
        note = "driver only: actors run under the raylet" if mode == "ray" else ""
        workers_rss = f"{r['child_rss']:,.0f}" if mode == "pool" else "-"
        rows.append([mode, f"{rate:,.0f}", ratio, f"{r['rss']:,.0f}", workers_rss, note])
    label = "all-MiniLM-L6-v2" if args.model == "minilm" else Path(model_dir).name
    print(f"\nthroughput: {args.n:,} WordNet glosses, {label}, {args.workers} workers (pool / Ray)")
    print(
        benchutil.format_table(
            ["run", "texts/s", "vs reference", "peak RSS MiB", "largest worker MiB", "note"], rows, left=1
        )
    )


STREAM_CODE = r"""
import json, sys, time
from sentrs.cli import main
start = time.perf_counter()
model_dir, src, out, chunk = sys.argv[1:5]
rc = main(["encode", model_dir, src, "-o", out, "-q", "--device", "cpu", "--chunk-size", chunk, "--restart"])
import resource
print(json.dumps({"seconds": time.perf_counter() - start, "rc": rc,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def section_stream(args: argparse.Namespace) -> None:
    model_dir = static_model_dir()
    base = benchutil.wordnet_glosses(100_000)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sentrs-bench-scale-") as tmp:
        for size in args.stream_sizes:
            src = Path(tmp) / f"lines-{size}.txt"
            with open(src, "w", encoding="utf-8") as f:
                for i in range(size):
                    f.write(f"{base[i % len(base)]} ({i})\n")
            out = Path(tmp) / f"out-{size}.npy"
            benchutil.progress(f"stream: {size:,} lines")
            r = run_child(STREAM_CODE, model_dir, str(src), str(out), str(args.chunk_size))
            import numpy as np

            shape = np.load(out, mmap_mode="r").shape
            rows.append(
                [
                    f"{size:,}",
                    f"{shape}",
                    f"{out.stat().st_size / 2**20:,.0f}",
                    benchutil.fmt_seconds(r["seconds"]),
                    f"{size / r['seconds']:,.0f}",
                    f"{r['rss']:,.0f}",
                ]
            )
            out.unlink()
            src.unlink()
    print(f"\nstream: sentrs encode (CLI) with {Path(model_dir).name}, chunks of {args.chunk_size:,} texts")
    print(
        benchutil.format_table(
            ["lines", "output shape", "output MiB", "time", "texts/s", "peak RSS MiB"], rows, left=1
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for line in benchutil.machine_lines():
        print(line)
    print(benchutil.cpu_feature_line())
    start = time.perf_counter()
    if "stream" in args.sections:
        section_stream(args)
    if "throughput" in args.sections:
        section_throughput(args)
    benchutil.progress(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
