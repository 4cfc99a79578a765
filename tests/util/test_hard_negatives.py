"""mine_hard_negatives against the reference on the real MiniLM.

Rows, row order, columns and features must be identical for sampling_strategy="top"; scores agree within 1e-5
(the two libraries' MiniLM embeddings and their float32 GEMMs differ by ~1e-7). "random" draws from Python's
``random`` module exactly as the reference does, so a shared seed gives the same rows; without one, the checks are
on the row count and on every negative lying in its anchor's candidate window.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs
from sentrs.util import mine_hard_negatives

datasets = pytest.importorskip("datasets")

ATOL = 1e-5
SCORE_COLUMNS = ("score", "scores")

# Real sentences on related topics, so negatives are genuinely hard. Some anchors repeat with other positives,
# one (anchor, positive) pair repeats exactly, and one positive also appears in EXTRA_CORPUS.
PAIRS = [
    (
        "How do I bake sourdough bread at home?",
        "Mix flour, water and an active starter, let the dough rise overnight, then bake it in a very hot oven.",
    ),
    (
        "How do I bake sourdough bread at home?",
        "Sourdough relies on wild yeast and a long, slow fermentation to develop its sour flavour.",
    ),
    (
        "What temperature should bread be baked at?",
        "Most loaves bake at around 220 degrees Celsius for thirty to forty minutes.",
    ),
    (
        "How can I make a fluffy pancake batter?",
        "Whisk eggs, milk, flour and baking powder, and let the batter rest for ten minutes before frying.",
    ),
    (
        "How do I reverse a list in Python?",
        "Call list.reverse() to reverse in place, or use slicing with [::-1] to get a reversed copy.",
    ),
    (
        "How do I reverse a list in Python?",
        "The built-in reversed() function returns an iterator over the list in reverse order.",
    ),
    (
        "How do I reverse a list in Python?",
        "Call list.reverse() to reverse in place, or use slicing with [::-1] to get a reversed copy.",
    ),
    (
        "What is a Python decorator?",
        "A decorator is a function that wraps another function to extend its behaviour without changing its code.",
    ),
    (
        "How do I read a file line by line in Python?",
        "Open the file with a with-statement and iterate over the file object to get one line at a time.",
    ),
    (
        "Who won the football World Cup in 2014?",
        "Germany beat Argentina 1-0 in the final in Rio de Janeiro to win the 2014 World Cup.",
    ),
    (
        "How long is a football match?",
        "A professional football match lasts ninety minutes, split into two halves of forty-five minutes.",
    ),
    (
        "What is the offside rule in football?",
        "A player is offside when nearer to the opponents' goal line than both the ball and the second-last defender.",
    ),
    (
        "Why is the climate getting warmer?",
        "Burning fossil fuels releases carbon dioxide, which traps heat in the atmosphere and warms the planet.",
    ),
    (
        "Why is the climate getting warmer?",
        "Greenhouse gases such as methane and carbon dioxide are the main drivers of global warming.",
    ),
    (
        "How does sea level rise happen?",
        "Melting glaciers and the thermal expansion of warming sea water both raise the sea level.",
    ),
    ("How far away is the Moon?", "The Moon orbits the Earth at an average distance of about 384,400 kilometres."),
    (
        "What is a black hole?",
        "A black hole is a region of space where gravity is so strong that not even light can escape.",
    ),
    (
        "How many planets are in the solar system?",
        "The solar system has eight planets, from Mercury closest to the Sun out to Neptune.",
    ),
    (
        "Why do cats purr?",
        "Cats purr when they are content, but also to soothe themselves when they are stressed or hurt.",
    ),
    ("Why do cats purr?", "Purring is produced by rapid twitching of the muscles in a cat's voice box."),
    (
        "How often should I feed my kitten?",
        "Young kittens need three to four small meals a day until they are about six months old.",
    ),
    (
        "Why do dogs wag their tails?",
        "Dogs wag their tails to communicate emotions such as excitement, friendliness or nervousness.",
    ),
    (
        "How much exercise does a dog need?",
        "Most adult dogs need between thirty minutes and two hours of activity every day, depending on the breed.",
    ),
    (
        "How do I brew a good cup of coffee?",
        "Use freshly ground beans, water just off the boil and about one gram of coffee to sixteen of water.",
    ),
    (
        "How do I brew a good cup of coffee?",
        "A French press gives a full-bodied cup if you steep the grounds for four minutes.",
    ),
    ("Does green tea contain caffeine?", "Green tea contains caffeine, though usually less than a cup of coffee."),
    (
        "How do I tune a guitar?",
        "Tune the low E string to a reference pitch, then tune each following string against the one before it.",
    ),
    (
        "What are the basic guitar chords?",
        "Beginners usually learn the open chords C, G, D, A, E and their minor versions first.",
    ),
    (
        "What is a stock market index?",
        "A stock market index such as the S&P 500 tracks the combined value of a group of companies' shares.",
    ),
    (
        "What is a stock market index?",
        "Indices like the Dow Jones summarise how a basket of stocks performs over time.",
    ),
    (
        "Should I invest in bonds or stocks?",
        "Stocks offer higher long-term returns but more risk, while bonds pay steadier income.",
    ),
    (
        "How do vaccines work?",
        "Vaccines train the immune system to recognise a pathogen by exposing it to a harmless piece of it.",
    ),
    (
        "Why do some vaccines need booster shots?",
        "Immunity from some vaccines fades over time, so a booster dose restores the protection.",
    ),
    (
        "Why do volcanoes erupt?",
        "Volcanoes erupt when pressure from gas-rich magma beneath the surface forces it up through the crust.",
    ),
    ("Where is the most active volcano?", "Kilauea in Hawaii is one of the most active volcanoes in the world."),
    (
        "How do I take sharp photos?",
        "Use a fast shutter speed, hold the camera steady or use a tripod, and focus on the subject's eyes.",
    ),
    (
        "What does aperture mean in photography?",
        "The aperture is the opening in the lens; a wider aperture lets in more light and blurs the background.",
    ),
    (
        "How should I train for a marathon?",
        "Build your weekly mileage gradually over several months and include one long run each week.",
    ),
    (
        "How should I train for a marathon?",
        "A marathon plan mixes easy runs, tempo runs and rest days to avoid injury.",
    ),
    (
        "What should I eat before a long run?",
        "Eat an easily digestible meal rich in carbohydrates two to three hours before running.",
    ),
    (
        "How does a knight move in chess?",
        "A knight moves in an L shape: two squares in one direction and then one square sideways.",
    ),
    (
        "What is castling in chess?",
        "Castling moves the king two squares towards a rook and places the rook on the other side of the king.",
    ),
]
EXTRA_CORPUS = [
    "Rye bread is denser than wheat bread and often has a slightly sour taste.",
    "Java and Python are both popular programming languages for backend development.",
    "List comprehensions in Python build a new list from an existing iterable in one line.",
    "Basketball games are divided into four quarters.",
    "The Amazon rainforest absorbs large amounts of carbon dioxide every year.",
    "Mars is the fourth planet from the Sun and is often called the Red Planet.",
    "Hamsters are small rodents that are popular as pets for children.",
    "Espresso is made by forcing hot water through finely ground coffee under pressure.",
    "The violin has four strings tuned in perfect fifths.",
    "Inflation erodes the purchasing power of money over time.",
    "Antibiotics kill bacteria but have no effect on viruses.",
    "Earthquakes are caused by the sudden movement of tectonic plates.",
    "A telephoto lens makes distant subjects appear closer.",
    "Swimming is a low-impact exercise that works the whole body.",
    "The queen is the most powerful piece on the chessboard.",
    "Germany beat Argentina 1-0 in the final in Rio de Janeiro to win the 2014 World Cup.",
]


@pytest.fixture(scope="session")
def pairs_dataset() -> Any:
    return datasets.Dataset.from_dict({"query": [a for a, _ in PAIRS], "answer": [p for _, p in PAIRS]})


@pytest.fixture(scope="session")
def ce_path(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """MiniLM with a seeded one-label head, saved by the reference (as tests/cross_encoder/conftest.py does)."""
    from sentence_transformers import CrossEncoder

    torch.manual_seed(1)
    ce = CrossEncoder(minilm_path, num_labels=1, device="cpu")
    with torch.no_grad():
        ce.model.classifier.weight.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("hn_ce")
    ce.save(str(out))
    return str(out)


class _MemoEncoder:
    """Forwards to a model, memoising ``encode_query`` / ``encode_document``: the parity matrix embeds the same
    texts dozens of times, and embedding parity is tested elsewhere. Everything after encoding runs for real."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._cache: dict[Any, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def _memo(self, method: str, inputs: list[str], **kwargs: Any) -> np.ndarray:
        kwargs.pop("show_progress_bar", None)
        key = (method, tuple(inputs), tuple(sorted(kwargs.items())))
        if key not in self._cache:
            self._cache[key] = getattr(self._model, method)(inputs, **kwargs)
        return self._cache[key].copy()

    def encode_query(self, inputs: list[str], **kwargs: Any) -> np.ndarray:
        return self._memo("encode_query", inputs, **kwargs)

    def encode_document(self, inputs: list[str], **kwargs: Any) -> np.ndarray:
        return self._memo("encode_document", inputs, **kwargs)


@pytest.fixture(scope="session")
def ours_memo(our_minilm: Any) -> _MemoEncoder:
    return _MemoEncoder(our_minilm)


@pytest.fixture(scope="session")
def ref_memo(ref_minilm: Any) -> _MemoEncoder:
    return _MemoEncoder(ref_minilm)


def _ref_mine(*args: Any, **kwargs: Any) -> Any:
    from sentence_transformers.util import mine_hard_negatives as ref

    return ref(*args, **kwargs)


def _flat(values: list[Any]) -> tuple[list[int], np.ndarray]:
    """Row lengths and the flattened float values of a float or list-of-floats column."""
    if values and isinstance(values[0], list):
        return [len(v) for v in values], np.array([x for v in values for x in v], dtype=np.float64)
    return [1] * len(values), np.array(values, dtype=np.float64)


def _assert_same(ours: Any, ref: Any, atol: float = ATOL) -> None:
    assert ours.column_names == ref.column_names
    assert ours.features == ref.features
    assert ours.num_rows == ref.num_rows
    o, r = ours.to_dict(), ref.to_dict()
    for column in ours.column_names:
        if column in SCORE_COLUMNS:
            (o_len, o_val), (r_len, r_val) = _flat(o[column]), _flat(r[column])
            assert o_len == r_len, column
            np.testing.assert_allclose(o_val, r_val, atol=atol, err_msg=column)
        else:
            assert o[column] == r[column], column


PARITY_CASES: dict[str, dict[str, Any]] = {
    "triplet": {},
    "triplet-scores": {"output_scores": True},
    "n-tuple": {"output_format": "n-tuple"},
    "n-tuple-scores": {"output_format": "n-tuple", "output_scores": True},
    "labeled-pair": {"output_format": "labeled-pair"},
    "labeled-pair-scores": {"output_format": "labeled-pair", "output_scores": True},
    "labeled-list": {"output_format": "labeled-list"},
    "labeled-list-scores": {"output_format": "labeled-list", "output_scores": True},
    "corpus": {"corpus": EXTRA_CORPUS, "output_scores": True},
    "range": {"range_min": 2, "range_max": 12, "num_negatives": 4, "output_format": "n-tuple", "output_scores": True},
    "absolute-margin": {"absolute_margin": 0.05, "output_format": "labeled-list", "output_scores": True},
    "relative-margin": {"relative_margin": 0.1, "corpus": EXTRA_CORPUS, "output_scores": True},
    "max-min-score": {"max_score": 0.45, "min_score": 0.15, "output_format": "labeled-pair", "output_scores": True},
    "all-filters": {
        "absolute_margin": 0.0,
        "relative_margin": 0.05,
        "max_score": 0.5,
        "min_score": 0.1,
        "range_min": 1,
        "num_negatives": 5,
        "corpus": EXTRA_CORPUS,
        "output_format": "n-tuple",
    },
    "include-positives": {"include_positives": True, "output_scores": True},  # forced to n-tuple
    "one-negative": {"num_negatives": 1, "output_format": "labeled-pair"},
    "short-corpus-padding": {"num_negatives": 45, "range_max": 60, "output_format": "labeled-list"},
    "swapped-columns": {"anchor_column_name": "answer", "positive_column_name": "query", "output_scores": True},
    "prompts": {"query_prompt": "query: ", "corpus_prompt": "passage: ", "output_scores": True},
    "small-search-batches": {"faiss_batch_size": 7, "batch_size": 16, "output_scores": True},
    "faiss": {"use_faiss": True, "corpus": EXTRA_CORPUS, "output_format": "n-tuple", "output_scores": True},
    "deprecated-margin": {"margin": 0.02, "output_format": "n-tuple"},
    "deprecated-as-triplets": {"as_triplets": False, "output_format": "labeled-pair"},
    "deprecated-n-tuple-scores": {"output_format": "n-tuple-scores"},
}


@pytest.mark.parametrize("kwargs", PARITY_CASES.values(), ids=PARITY_CASES.keys())
def test_parity_with_reference(pairs_dataset: Any, ours_memo: Any, ref_memo: Any, kwargs: dict[str, Any]) -> None:
    if kwargs.get("use_faiss"):
        pytest.importorskip("faiss")
    ours = mine_hard_negatives(pairs_dataset, ours_memo, verbose=False, **kwargs)
    ref = _ref_mine(pairs_dataset, ref_memo, verbose=False, **kwargs)
    assert ours.num_rows > 0
    _assert_same(ours, ref)


def test_parity_unwrapped_models(pairs_dataset: Any, our_minilm: Any, ref_minilm: Any) -> None:
    """The plain models, with every embedding computed afresh."""
    kwargs = {"corpus": EXTRA_CORPUS, "relative_margin": 0.05, "output_scores": True}
    ours = mine_hard_negatives(pairs_dataset, our_minilm, verbose=False, **kwargs)
    _assert_same(ours, _ref_mine(pairs_dataset, ref_minilm, verbose=False, **kwargs))


def test_parity_with_the_reference_model(pairs_dataset: Any, ref_memo: Any) -> None:
    """With the reference's own model both functions see the same embeddings: only the search kernel differs."""
    kwargs = {"relative_margin": 0.05, "corpus": EXTRA_CORPUS, "output_format": "labeled-list", "output_scores": True}
    ours = mine_hard_negatives(pairs_dataset, ref_memo, verbose=False, **kwargs)
    _assert_same(ours, _ref_mine(pairs_dataset, ref_memo, verbose=False, **kwargs), atol=1e-6)


@pytest.mark.parametrize("similarity", ["euclidean", "dot"])
def test_parity_other_similarities(pairs_dataset: Any, our_minilm: Any, ref_minilm: Any, similarity: str) -> None:
    """Dot runs in the Rust kernel; euclidean falls back to ``model.similarity`` like the reference."""
    kwargs = {"output_format": "n-tuple", "output_scores": True, "num_negatives": 4}
    try:
        our_minilm.similarity_fn_name = ref_minilm.similarity_fn_name = similarity
        ours = mine_hard_negatives(pairs_dataset, our_minilm, verbose=False, **kwargs)
        ref = _ref_mine(pairs_dataset, ref_minilm, verbose=False, **kwargs)
    finally:
        our_minilm.similarity_fn_name = ref_minilm.similarity_fn_name = "cosine"
    _assert_same(ours, ref)


def test_cross_encoder_rescoring(pairs_dataset: Any, ours_memo: Any, ref_memo: Any, ce_path: str) -> None:
    """A score bound makes the cross-encoder rescore candidates and positives (CE scores agree within 1e-5)."""
    import sentence_transformers

    subset = pairs_dataset.select(range(16))
    kwargs = {"max_score": 0.95, "range_max": 6, "num_negatives": 2, "output_format": "n-tuple", "output_scores": True}
    ours = mine_hard_negatives(
        subset, ours_memo, cross_encoder=sentrs.CrossEncoder(ce_path, device="cpu"), verbose=False, **kwargs
    )
    ref_ce = sentence_transformers.CrossEncoder(ce_path, device="cpu")
    ref = _ref_mine(subset, ref_memo, cross_encoder=ref_ce, verbose=False, **kwargs)
    _assert_same(ours, ref)
    # the scores are the cross-encoder's (sigmoid in (0, 1)), not cosine similarities
    pos_scores = [row[0] for row in ours["scores"]]
    expected = ref_ce.predict(list(zip(ours["query"], ours["answer"])))
    np.testing.assert_allclose(pos_scores, expected, atol=ATOL)


def test_cross_encoder_unused_without_filters(pairs_dataset: Any, ours_memo: Any) -> None:
    class Unused:
        def predict(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the cross-encoder only rescores when a margin or score bound is set")

    plain = mine_hard_negatives(pairs_dataset, ours_memo, verbose=False)
    with_ce = mine_hard_negatives(pairs_dataset, ours_memo, cross_encoder=Unused(), verbose=False)  # type: ignore[arg-type]
    assert with_ce.to_dict() == plain.to_dict()


def test_random_strategy_follows_the_reference_rng(pairs_dataset: Any, ours_memo: Any, ref_memo: Any) -> None:
    kwargs = {"sampling_strategy": "random", "range_max": 10, "num_negatives": 3, "output_scores": True}
    random.seed(12)
    ours = mine_hard_negatives(pairs_dataset, ours_memo, verbose=False, **kwargs)
    random.seed(12)
    ref = _ref_mine(pairs_dataset, ref_memo, verbose=False, **kwargs)
    _assert_same(ours, ref)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"range_min": 1, "range_max": 10, "num_negatives": 3},
        {"relative_margin": 0.05, "range_max": 20, "num_negatives": 4, "corpus": EXTRA_CORPUS},
        {"max_score": 0.4, "range_max": 8, "num_negatives": 5},  # some anchors lack enough candidates
    ],
    ids=["range", "margin-corpus", "max-score"],
)
def test_random_strategy_properties(pairs_dataset: Any, ours_memo: Any, ref_memo: Any, kwargs: dict[str, Any]) -> None:
    # The candidate window of each anchor: everything "top" would return with num_negatives = the window size.
    window = {**kwargs, "num_negatives": kwargs["range_max"] - kwargs.get("range_min", 0)}
    full = mine_hard_negatives(pairs_dataset, ours_memo, output_format="labeled-list", verbose=False, **window)
    allowed = {anchor: set(docs[1:]) for anchor, docs in zip(full["query"], full["answer"])}
    positives_of: dict[str, set[str]] = {}
    for anchor, positive in PAIRS:
        positives_of.setdefault(anchor, set()).add(positive)

    random.seed(3)
    ours = mine_hard_negatives(
        pairs_dataset, ours_memo, sampling_strategy="random", output_scores=True, verbose=False, **kwargs
    )
    random.seed(4)  # another draw: only the row count must agree
    ref = _ref_mine(pairs_dataset, ref_memo, sampling_strategy="random", output_scores=True, verbose=False, **kwargs)
    assert ours.column_names == ref.column_names == ["query", "answer", "negative", "scores"]
    assert ours.num_rows == ref.num_rows
    per_pair: dict[tuple[str, str], list[str]] = {}
    for row in ours:
        assert row["negative"] in allowed[row["query"]]
        assert row["negative"] not in positives_of[row["query"]]
        per_pair.setdefault((row["query"], row["answer"]), []).append(row["negative"])
    for negatives in per_pair.values():
        assert len(negatives) == len(set(negatives)) <= kwargs["num_negatives"]


def test_n_tuple_random_negatives_sorted_best_first(pairs_dataset: Any, ours_memo: Any) -> None:
    random.seed(0)
    ours = mine_hard_negatives(
        pairs_dataset,
        ours_memo,
        sampling_strategy="random",
        range_max=15,
        num_negatives=4,
        output_format="n-tuple",
        output_scores=True,
        verbose=False,
    )
    assert ours.num_rows == len({(a, p) for a, p in PAIRS})  # every (anchor, positive) pair once
    for scores in ours["scores"]:
        assert scores[1:] == sorted(scores[1:], reverse=True)


@pytest.mark.parametrize(
    ("kwargs", "match", "reference_raises"),
    [
        ({"output_format": "quadruplet"}, "output_format must be one of", True),
        ({"sampling_strategy": "best"}, "sampling_strategy must be one of", False),
        ({"anchor_column_name": "question"}, "anchor_column_name='question' is not a column", False),
        ({"positive_column_name": "nope"}, "positive_column_name='nope' is not a column", False),
        ({"num_negatives": 0}, "num_negatives must be a positive integer, got 0", True),
        ({"range_min": -1}, re.escape("range_min must be an integer >= 0, got -1"), True),
        ({"range_min": 5, "range_max": 5}, "range_min must be smaller than range_max", True),
        ({"num_negatives": 5, "range_max": 4}, "num_negatives=5 does not fit", True),
        ({"faiss_batch_size": 0}, "faiss_batch_size must be a positive integer, got 0", True),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0", True),
    ],
)
def test_bad_arguments(
    pairs_dataset: Any, ours_memo: Any, ref_memo: Any, kwargs: dict[str, Any], match: str, reference_raises: bool
) -> None:
    with pytest.raises(ValueError, match=match):
        mine_hard_negatives(pairs_dataset, ours_memo, verbose=False, **kwargs)
    if reference_raises:  # the reference rejects these too (with its own wording)
        with pytest.raises(ValueError):
            _ref_mine(pairs_dataset.select(range(4)), ref_memo, verbose=False, **kwargs)


def test_bad_datasets(ours_memo: Any) -> None:
    with pytest.raises(ValueError, match="dataset is empty"):
        mine_hard_negatives(datasets.Dataset.from_dict({"a": [], "b": []}), ours_memo)
    with pytest.raises(ValueError, match="at least 2 columns to pick positive_column_name"):
        mine_hard_negatives(datasets.Dataset.from_dict({"a": ["x"]}), ours_memo)
    with pytest.raises(TypeError, match="dataset must be a datasets.Dataset, got dict"):
        mine_hard_negatives({"a": ["x"], "b": ["y"]}, ours_memo)  # type: ignore[arg-type]


@pytest.mark.slow  # spawns two worker interpreters
def test_multi_process_gives_the_same_rows(pairs_dataset: Any, minilm_path: str) -> None:
    import sentrs

    model = sentrs.SentenceTransformer(minilm_path, device="cpu")  # a fresh one: other tests patch the shared model
    single = mine_hard_negatives(pairs_dataset, model, num_negatives=2, output_scores=True)
    pooled = mine_hard_negatives(
        pairs_dataset, model, num_negatives=2, output_scores=True, use_multi_process=["cpu", "cpu"]
    )
    assert pooled.column_names == single.column_names
    for name in single.column_names:
        if name == "scores":
            np.testing.assert_allclose(np.array(pooled[name]), np.array(single[name]), atol=1e-5)
        else:
            assert pooled[name] == single[name], name
    with pytest.raises(ValueError, match="use_multi_process must be a bool or a list of devices"):
        mine_hard_negatives(pairs_dataset, model, use_multi_process="cpu")  # type: ignore[arg-type]


class _NoEncode:
    """Forwards everything to a model but fails on encoding: proves embeddings came from the cache."""

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        if name.startswith("encode"):
            raise AssertionError(f"{name} called although the embeddings are cached")
        return getattr(self._model, name)


def test_cache_folder(pairs_dataset: Any, our_minilm: Any, ref_minilm: Any, tmp_path: Path) -> None:
    ours_dir, ref_dir = tmp_path / "ours", tmp_path / "ref"
    kwargs = {"corpus": EXTRA_CORPUS, "output_scores": True, "verbose": False}
    first = mine_hard_negatives(pairs_dataset, our_minilm, cache_folder=str(ours_dir), **kwargs)
    ref = _ref_mine(pairs_dataset, ref_minilm, cache_folder=str(ref_dir), **kwargs)
    names = sorted(p.name for p in ours_dir.iterdir())
    assert [n.split("_")[0] for n in names] == ["corpus", "query"]
    assert names == sorted(p.name for p in ref_dir.iterdir())  # same file names: the caches are interchangeable

    again = mine_hard_negatives(pairs_dataset, _NoEncode(our_minilm), cache_folder=str(ours_dir), **kwargs)  # type: ignore[arg-type]
    assert again.to_dict() == first.to_dict()
    from_ref_cache = mine_hard_negatives(pairs_dataset, _NoEncode(our_minilm), cache_folder=str(ref_dir), **kwargs)  # type: ignore[arg-type]
    _assert_same(from_ref_cache, ref, atol=1e-6)

    # another prompt is another cache entry
    mine_hard_negatives(pairs_dataset, our_minilm, cache_folder=str(ours_dir), query_prompt="query: ", **kwargs)
    assert len(list(ours_dir.iterdir())) == 3


def _summary(text: str) -> list[tuple[str, list[float]]]:
    """The statistics table and messages as (label, numbers) per line."""
    lines = []
    for line in text.splitlines():
        numbers = [float(x.replace(",", "")) for x in re.findall(r"-?[\d,]*\.?\d+(?:e-?\d+)?", line)]
        lines.append((re.sub(r"-?[\d,]*\.?\d+", "#", line), numbers))
    return lines


def test_verbose_summary_matches_reference(
    pairs_dataset: Any, ref_memo: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same printed lines; numbers within 1e-4 (4 printed decimals; float64 vs float32 statistics)."""
    kwargs = {
        "relative_margin": 0.1,
        "max_score": 0.3,
        "min_score": 0.2,
        "range_min": 1,
        "num_negatives": 5,
        "output_format": "n-tuple",
    }
    mine_hard_negatives(pairs_dataset, ref_memo, verbose=True, **kwargs)
    ours = _summary(capsys.readouterr().out)
    _ref_mine(pairs_dataset, ref_memo, verbose=True, **kwargs)
    ref = _summary(capsys.readouterr().out)
    assert [label for label, _ in ours] == [label for label, _ in ref]
    assert any(label.startswith("Skipped") for label, _ in ours)
    assert any(label.startswith("Could not find enough negatives") for label, _ in ours)
    for (_, o), (_, r) in zip(ours, ref):
        np.testing.assert_allclose(o, r, atol=1e-4)


def test_quiet_when_not_verbose(pairs_dataset: Any, ours_memo: Any, capsys: pytest.CaptureFixture[str]) -> None:
    mine_hard_negatives(pairs_dataset, ours_memo, relative_margin=0.1, verbose=False)
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 0.1}, "margin is deprecated"),
        ({"as_triplets": True}, "as_triplets is deprecated"),
        ({"output_format": "n-tuple-scores"}, "'n-tuple-scores' is deprecated"),
        ({"include_positives": True, "output_format": "triplet"}, "output_format is set to 'n-tuple'"),
        ({"include_positives": True, "range_min": 1, "output_format": "n-tuple"}, "may still drop the positives"),
    ],
)
def test_deprecation_and_override_warnings(
    pairs_dataset: Any, ours_memo: Any, caplog: pytest.LogCaptureFixture, kwargs: dict[str, Any], message: str
) -> None:
    with caplog.at_level("WARNING", logger="sentrs.util.hard_negatives"):
        mine_hard_negatives(pairs_dataset, ours_memo, verbose=False, **kwargs)
    assert message in caplog.text


def test_exported() -> None:
    import sentrs.util

    assert "mine_hard_negatives" in sentrs.util.__all__
    assert sentrs.util.mine_hard_negatives is mine_hard_negatives


def test_missing_datasets_hint(pairs_dataset: Any, ours_memo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(ImportError, match="pip install datasets"):
        mine_hard_negatives(pairs_dataset, ours_memo)


def test_missing_faiss_hint(pairs_dataset: Any, ours_memo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        mine_hard_negatives(pairs_dataset, ours_memo, use_faiss=True)
