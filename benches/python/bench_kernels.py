"""Side-by-side microbenchmarks of the host-side kernels: sentrs against the reference, in one process.

Run from the repository root, in the project's virtualenv::

    python benches/python/bench_kernels.py
    python benches/python/bench_kernels.py --n 2000 --repeats 10 --threads 2

Three kernels, best of ``--repeats`` timed calls each after one warm-up call:

* tokenization of ``--n`` WordNet glosses, padded to the longest and truncated at 256 tokens: the model's HF
  fast tokenizer (``AutoTokenizer``) against sentrs' Rust tokenizer (``encode_texts`` then ``Encoding.pad``);
* cosine similarity of 1000 x 384 against 20000 x 384 float32: ``sentence_transformers.util.cos_sim`` on
  torch tensors against ``sentrs.util.cos_sim`` on numpy arrays (and on the same torch tensors);
* mean pooling of (32, 128, 384) token embeddings under an attention mask: the reference's ``Pooling`` module
  under ``torch.inference_mode`` against ``sentrs.ops.pool``.

Every pair of outputs is checked to agree before it is timed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import benchutil


@dataclass
class Case:
    """One kernel measured in both libraries."""

    kernel: str
    reference: Callable[[], object]
    ours: dict[str, Callable[[], object]]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--n", type=int, default=2000, help="sentences to tokenize (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per kernel (default: %(default)s)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch.set_num_threads, also SENTRS_NUM_THREADS and RAYON_NUM_THREADS (default: library defaults)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random arrays (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.repeats < 1:
        parser.error("--n and --repeats must be >= 1")
    return args


def tokenize_case(texts: list[str]) -> Case:
    import numpy as np
    from transformers import AutoTokenizer

    import sentrs

    path = str(benchutil.model_path())
    hf_tok = AutoTokenizer.from_pretrained(path)
    module = sentrs.SentenceTransformer(path, device="cpu")[0]
    if not isinstance(module, sentrs.Transformer):
        raise TypeError(f"expected the model's first module to be a Transformer, got {type(module).__name__}")

    def reference() -> Any:
        return hf_tok(texts, padding=True, truncation=True, max_length=256, return_tensors="np")

    def ours() -> Any:
        return module.encode_texts(texts).pad()

    expected, got = reference(), ours()
    for i, key in enumerate(["input_ids", "attention_mask", "token_type_ids"]):
        if not np.array_equal(np.asarray(expected[key], dtype=np.int64), got[i]):
            raise AssertionError(f"tokenization: {key} differs between HF and sentrs")
    return Case(f"tokenize {len(texts)} texts + pad", reference, {"sentrs": ours})


def cos_sim_case(rng: Any) -> Case:
    import numpy as np
    import sentence_transformers.util as st_util
    import torch

    import sentrs.util

    np_a = rng.standard_normal((1000, 384), dtype=np.float32)
    np_b = rng.standard_normal((20000, 384), dtype=np.float32)
    torch_a, torch_b = torch.from_numpy(np_a), torch.from_numpy(np_b)

    def reference() -> Any:
        return st_util.cos_sim(torch_a, torch_b)

    def ours_numpy() -> Any:
        return sentrs.util.cos_sim(np_a, np_b)

    def ours_torch() -> Any:
        return sentrs.util.cos_sim(torch_a, torch_b)

    expected = reference()
    for fn in (ours_numpy, ours_torch):
        diff = float((torch.as_tensor(fn()) - expected).abs().max())
        if diff > 1e-5:
            raise AssertionError(f"cos_sim: max abs diff {diff:.3e} between the libraries")
    return Case(
        "cos_sim 1000x384 vs 20000x384", reference, {"sentrs (numpy)": ours_numpy, "sentrs (torch)": ours_torch}
    )


def pooling_case(rng: Any) -> Case:
    import numpy as np
    import torch
    from sentence_transformers.sentence_transformer.modules import Pooling

    import sentrs.ops

    batch, seq, hidden = 32, 128, 384
    np_tokens = rng.standard_normal((batch, seq, hidden), dtype=np.float32)
    lengths = rng.integers(4, seq + 1, size=batch)
    lengths[0] = seq  # the longest row sets the padded length, as in a real batch
    np_mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int64)
    tokens, mask = torch.from_numpy(np_tokens), torch.from_numpy(np_mask)
    pooling = Pooling(hidden, pooling_mode="mean").eval()

    def reference() -> Any:
        with torch.inference_mode():
            return pooling({"token_embeddings": tokens, "attention_mask": mask})["sentence_embedding"]

    def ours() -> Any:
        return sentrs.ops.pool(np_tokens, np_mask, ["mean"])

    diff = float(np.abs(reference().numpy() - ours()).max())
    if diff > 1e-5:
        raise AssertionError(f"mean pooling: max abs diff {diff:.3e} between the libraries")
    return Case(f"mean pool ({batch}, {seq}, {hidden})", reference, {"sentrs": ours})


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    benchutil.set_threads(args.threads)  # before the Rust pools start

    import numpy as np
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    texts = benchutil.wordnet_glosses(args.n)
    cases = [tokenize_case(texts), cos_sim_case(rng), pooling_case(rng)]
    print("\n".join(benchutil.machine_lines()))
    print(f"best of {args.repeats} timed calls after one warm-up; speed-up = reference time / sentrs time\n")

    rows: list[list[str]] = []
    for case in cases:
        ref_time = benchutil.best_time(case.reference, args.repeats)
        rows.append([case.kernel, "reference", benchutil.fmt_seconds(ref_time), ""])
        for name, fn in case.ours.items():
            t = benchutil.best_time(fn, args.repeats)
            rows.append(["", name, benchutil.fmt_seconds(t), f"{ref_time / t:.2f}x"])
    print(benchutil.format_table(["kernel", "library", "best", "speed-up"], rows, left=2))


if __name__ == "__main__":
    main()
