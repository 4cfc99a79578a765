"""The cross-encoder training losses against the reference's: same value, same gradient on every parameter, same
config, citation and signature; and clear errors for inputs a loss cannot take.

Each case loads one reference-saved tiny BERT classifier in both libraries (same weights), gives both losses the same
raw text columns and labels (each loss tokenizes its pairs with its own library's ``model.preprocess``) and compares.
The models are in eval mode so that dropout draws no masks (a few cases run in train mode, where both libraries must
draw the same masks); gradients flow all the same. Where a loss samples (the in-batch negatives of
MultipleNegativesRankingLoss), torch's generator is seeded identically before each run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
from torch import nn

# Same float32 math on the same weights, not always in the same order (reductions over differently shaped matrices,
# a reversed logcumsumexp), so values agree to ~1e-7 relative. 1e-5 relative on the loss and 1e-4 relative on the
# gradients (plus an absolute floor of 1e-4 of the largest gradient, for entries that are ~0) are far below what a
# real difference in the math would change.
LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-4

QUERIES = ["What are pandas?", "capital of France", "How do plants make food from sunlight?", "bread"]
POSITIVES = [
    "Pandas are bears that live in China.",
    "Paris is the capital of France.",
    "Photosynthesis turns light into chemical energy.",
    "Bread is baked from flour and water.",
]
NEGATIVES = ["A fish swims.", "Berlin is in Germany, far from the sea.", "Cars need fuel.", "It is cold"]
NEGATIVES_2 = ["Trains", "The moon orbits the earth every month.", "A plant", "Flour is a powder."]
DOCUMENTS = [  # lists of different lengths, most relevant first
    ["Pandas are bears.", "Pandas eat bamboo.", "Pandas are fish.", "Bamboo is a grass."],
    ["Paris is the capital of France."],
    ["Plants use photosynthesis.", "Leaves are green.", "Sunlight is bright today."],
    ["Bread is baked.", "Bakers bake bread every morning.", "Stones", "Flour", "A song about bread"],
]
GRADED = [  # graded labels with ties, in the documents' order
    torch.tensor([3.0, 2.0, 0.0, 1.0]),
    torch.tensor([1.0]),
    torch.tensor([2.0, 2.0, 0.0]),
    torch.tensor([1.0, 1.0, 0.0, 0.0, 0.5]),
]
BINARY = torch.tensor([1, 0, 1, 0])


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from torch's intra-op threads, and on a busy 2-core machine those threads spin
    against other processes (ten times slower here). Values do not depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _ref_losses() -> Any:
    import sentence_transformers.cross_encoder.losses as losses

    return losses


def _our_losses() -> Any:
    import sentrs.cross_encoder.losses as losses

    return losses


@pytest.fixture(scope="module")
def models(make_tiny_ce: Callable[[int], str]) -> dict[int, tuple[Any, Any]]:
    """num_labels -> (reference model, sentrs model), both in eval mode."""
    import sentence_transformers

    import sentrs

    pairs = {}
    for num_labels in (1, 3):
        folder = make_tiny_ce(num_labels)
        ref = sentence_transformers.CrossEncoder(folder, device="cpu").eval()
        ours = sentrs.CrossEncoder(folder, device="cpu").eval()
        pairs[num_labels] = (ref, ours)
    return pairs


def _run(
    loss: nn.Module, inputs: list[Any], labels: Any, seed: int, prompt: str | None
) -> tuple[float, dict[str, torch.Tensor | None]]:
    loss.model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    value = loss(inputs, labels, prompt=prompt) if prompt else loss(inputs, labels)
    value.backward()
    return value.item(), {name: p.grad for name, p in loss.model.named_parameters()}


def _ours_config(config: dict[str, Any]) -> dict[str, Any]:
    """The reference's config with its class paths where sentrs defines the class."""
    return {
        key: value.replace("sentence_transformers.", "sentrs.") if isinstance(value, str) else value
        for key, value in config.items()
    }


def _assert_same(
    ref_loss: nn.Module, our_loss: nn.Module, inputs: list[Any], labels: Any, prompt: str | None = None
) -> None:
    assert hasattr(our_loss, "get_config_dict") == hasattr(ref_loss, "get_config_dict")
    if hasattr(ref_loss, "get_config_dict"):
        assert our_loss.get_config_dict() == _ours_config(ref_loss.get_config_dict())
    assert getattr(our_loss, "citation", None) == getattr(ref_loss, "citation", None)

    ref_value, ref_grads = _run(ref_loss, inputs, labels, seed=7, prompt=prompt)
    our_value, our_grads = _run(our_loss, inputs, labels, seed=7, prompt=prompt)
    assert our_value == pytest.approx(ref_value, rel=LOSS_RTOL, abs=1e-7)
    assert our_grads.keys() == ref_grads.keys()
    largest = max(float(g.abs().max()) for g in ref_grads.values() if g is not None)
    with_grad = 0
    for name, ref_grad in ref_grads.items():
        our_grad = our_grads[name]
        if ref_grad is None:  # BERT's pooler in models that never reach it
            assert our_grad is None, name
            continue
        assert our_grad is not None, name
        torch.testing.assert_close(our_grad, ref_grad, rtol=GRAD_RTOL, atol=GRAD_RTOL * largest, msg=name)
        with_grad += 1
    assert with_grad > 0


def _case(name: str, inputs: list[Any], labels: Any, num_labels: int = 1, **kwargs: Any) -> Any:
    kwarg_text = ",".join(
        f"{k}={v if isinstance(v, (int, float, str, type(None))) else type(v).__name__}" for k, v in kwargs.items()
    )
    return pytest.param(name, inputs, labels, num_labels, kwargs, id=f"{name}({kwarg_text})")


def _reference_kwargs(kwargs: dict[str, Any], module: Any) -> dict[str, Any]:
    """Arguments that name a class of the loss package (``weighting_scheme=("NDCGLoss2Scheme", {})``) are built from
    that library's package."""
    built = {}
    for key, value in kwargs.items():
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            built[key] = getattr(module, value[0])(**value[1])
        else:
            built[key] = value
    return built


def _discount(mask: torch.Tensor) -> torch.Tensor:
    ranks = mask.cumsum(dim=-1)
    return (1.0 / torch.log1p(ranks.float())).masked_fill(~mask, 0)


PAIRS = [QUERIES, POSITIVES]
LISTS = [QUERIES, DOCUMENTS]

CASES = [
    _case("BinaryCrossEntropyLoss", PAIRS, BINARY),
    _case("BinaryCrossEntropyLoss", PAIRS, torch.tensor([0.9, 0.2, 0.7, 0.0]), pos_weight=torch.tensor(3.0)),
    _case("BinaryCrossEntropyLoss", PAIRS, BINARY.view(-1, 1), activation_fn=nn.Tanh()),
    _case("BinaryCrossEntropyLoss", PAIRS, BINARY, prompt="Query: "),
    _case("MSELoss", PAIRS, torch.tensor([0.8, -0.4, 1.5, 0.0])),
    _case("MSELoss", PAIRS, torch.tensor([0.9, 0.1, 0.7, 0.3]), activation_fn=nn.Sigmoid()),
    _case("CrossEntropyLoss", PAIRS, torch.tensor([0, 2, 1, 2]), num_labels=3),
    _case("CrossEntropyLoss", PAIRS, torch.tensor([[0], [2], [1], [1]]), num_labels=3, label_smoothing=0.1),
    _case("CrossEntropyLoss", PAIRS, torch.tensor([[0.7, 0.2, 0.1]] * 4), num_labels=3),
    _case("MarginMSELoss", [QUERIES, POSITIVES, NEGATIVES], torch.tensor([2.0, 0.5, 1.0, -0.3])),
    _case(
        "MarginMSELoss",
        [QUERIES, POSITIVES, NEGATIVES, NEGATIVES_2],
        [torch.tensor([3.0, 1.0, 0.5]), torch.tensor([2.0, 2.5, 0.0]), torch.tensor([1.0, 0.0, 0.2]), torch.zeros(3)],
        activation_fn=nn.Sigmoid(),
    ),
    _case("MultipleNegativesRankingLoss", PAIRS, None),  # 4 sampled in-batch negatives of 3 available: all
    _case("MultipleNegativesRankingLoss", PAIRS, None, num_negatives=2),  # sampled (seeded)
    _case("MultipleNegativesRankingLoss", [QUERIES, POSITIVES, NEGATIVES], None, num_negatives=3, scale=5.0),
    _case("MultipleNegativesRankingLoss", [QUERIES, POSITIVES, NEGATIVES], None, num_negatives=None),
    _case("MultipleNegativesRankingLoss", PAIRS, None, activation_fn=None, scale=0),
    _case("CachedMultipleNegativesRankingLoss", [QUERIES, POSITIVES, NEGATIVES], None, mini_batch_size=3),
    _case("CachedMultipleNegativesRankingLoss", PAIRS, None, num_negatives=2, mini_batch_size=5, scale=20.0),
    _case("ListNetLoss", LISTS, GRADED),
    _case("ListNetLoss", LISTS, GRADED, activation_fn=nn.Sigmoid(), mini_batch_size=3),
    _case("ListMLELoss", LISTS, GRADED),
    _case("ListMLELoss", LISTS, GRADED, respect_input_order=False, mini_batch_size=-1),
    _case("PListMLELoss", LISTS, GRADED),
    _case("PListMLELoss", LISTS, GRADED, respect_input_order=False, mini_batch_size=2),
    _case("PListMLELoss", LISTS, GRADED, lambda_weight=None),
    _case("PListMLELoss", LISTS, GRADED, lambda_weight=("PListMLELambdaWeight", {"rank_discount_fn": _discount})),
    _case("LambdaLoss", LISTS, GRADED),
    _case("LambdaLoss", LISTS, GRADED, prompt="Rank: "),
    _case("LambdaLoss", LISTS, GRADED, weighting_scheme=("NoWeightingScheme", {})),
    _case("LambdaLoss", LISTS, GRADED, weighting_scheme=("NDCGLoss1Scheme", {})),
    _case("LambdaLoss", LISTS, GRADED, weighting_scheme=("NDCGLoss2Scheme", {}), k=2),
    _case("LambdaLoss", LISTS, GRADED, weighting_scheme=("LambdaRankScheme", {}), reduction_log="natural"),
    _case("LambdaLoss", LISTS, GRADED, weighting_scheme=("NDCGLoss2PPScheme", {"mu": 3.0}), sigma=2.0),
    _case("LambdaLoss", LISTS, GRADED, weighting_scheme=None, mini_batch_size=4, activation_fn=nn.Sigmoid()),
    _case("RankNetLoss", LISTS, GRADED),
    _case("RankNetLoss", LISTS, GRADED, k=1, sigma=0.5, reduction_log="natural"),
    _case("ADRMSELoss", LISTS, GRADED),
    _case("ADRMSELoss", LISTS, GRADED, alpha=3.0, mini_batch_size=0),
]


@pytest.mark.parametrize(("name", "inputs", "labels", "num_labels", "kwargs"), CASES)
def test_loss_matches_reference(
    models: dict[int, tuple[Any, Any]],
    name: str,
    inputs: list[Any],
    labels: Any,
    num_labels: int,
    kwargs: dict[str, Any],
) -> None:
    ref_model, our_model = models[num_labels]
    kwargs = dict(kwargs)
    prompt = kwargs.pop("prompt", None)  # a forward argument (the collator's per-dataset prompt)
    ref_loss = getattr(_ref_losses(), name)(ref_model, **_reference_kwargs(kwargs, _ref_losses()))
    our_loss = getattr(_our_losses(), name)(our_model, **_reference_kwargs(kwargs, _our_losses()))
    _assert_same(ref_loss, our_loss, inputs, labels, prompt)


@pytest.mark.parametrize(
    ("name", "inputs", "labels", "kwargs"),
    [
        ("MultipleNegativesRankingLoss", PAIRS, None, {"num_negatives": 2}),
        ("MultipleNegativesRankingLoss", [QUERIES, POSITIVES, NEGATIVES], None, {}),
        ("CachedMultipleNegativesRankingLoss", [QUERIES, POSITIVES, NEGATIVES], None, {"num_negatives": 2}),
        ("MarginMSELoss", [QUERIES, POSITIVES, NEGATIVES], torch.tensor([2.0, 0.5, 1.0, -0.3]), {}),
        ("LambdaLoss", LISTS, GRADED, {"mini_batch_size": 3}),
    ],
)
def test_train_mode_matches_reference(
    make_tiny_ce: Callable[[int], str], name: str, inputs: list[Any], labels: Any, kwargs: dict[str, Any]
) -> None:
    """With dropout on, the same seed gives the reference's loss and gradients: each loss runs the reference's
    forward passes in the reference's order (so the same masks, and the same sampled negatives), and the cached loss's
    replay draws the masks of its first pass."""
    import sentence_transformers

    import sentrs

    folder = make_tiny_ce(1)
    ref = sentence_transformers.CrossEncoder(folder, device="cpu").train()
    ours = sentrs.CrossEncoder(folder, device="cpu").train()
    _assert_same(
        getattr(_ref_losses(), name)(ref, **kwargs), getattr(_our_losses(), name)(ours, **kwargs), inputs, labels
    )


def test_cached_mnrl_without_gradients_is_the_plain_loss(models: dict[int, tuple[Any, Any]]) -> None:
    model = models[1][1]
    inputs = [QUERIES, POSITIVES, NEGATIVES]
    with torch.no_grad():
        torch.manual_seed(3)
        cached = _our_losses().CachedMultipleNegativesRankingLoss(model, num_negatives=2, mini_batch_size=4)(inputs)
        torch.manual_seed(3)
        plain = _our_losses().MultipleNegativesRankingLoss(model, num_negatives=2)(inputs, None)
    assert cached.item() == pytest.approx(plain.item(), rel=LOSS_RTOL)


def test_minilm_cross_encoder(make_ce: Callable[[int], str]) -> None:
    """One listwise loss on the real MiniLM backbone (6 layers, 22M parameters) with a seeded head."""
    import sentence_transformers

    import sentrs

    folder = make_ce(1)
    ref = sentence_transformers.CrossEncoder(folder, device="cpu").eval()
    ours = sentrs.CrossEncoder(folder, device="cpu").eval()
    labels = GRADED[:3]
    inputs = [QUERIES[:3], DOCUMENTS[:3]]
    _assert_same(_ref_losses().LambdaLoss(ref, k=3), _our_losses().LambdaLoss(ours, k=3), inputs, labels)


def _public_classes(module: Any) -> Iterator[tuple[str, Any]]:
    for name in module.__all__:
        yield name, getattr(module, name)


def test_names_and_signatures_match_reference() -> None:
    ref_module, our_module = _ref_losses(), _our_losses()
    assert sorted(our_module.__all__) == sorted(ref_module.__all__)
    for name, ref_cls in _public_classes(ref_module):
        ours = inspect.signature(getattr(our_module, name))
        theirs = inspect.signature(ref_cls)
        if name in ("NoWeightingScheme", "NDCGLoss1Scheme", "NDCGLoss2Scheme", "LambdaRankScheme"):
            continue  # the reference's take (*args, **kwargs) they cannot use; ours take nothing
        assert list(ours.parameters) == list(theirs.parameters), name
        for param, ref_param in zip(ours.parameters.values(), theirs.parameters.values()):
            assert param.kind == ref_param.kind, (name, param.name)
            assert repr(param.default) == repr(ref_param.default), (name, param.name)
        if hasattr(ref_cls, "forward") and name.endswith("Loss"):
            ours_forward = inspect.signature(getattr(our_module, name).forward)
            theirs_forward = inspect.signature(ref_cls.forward)
            assert list(ours_forward.parameters) == list(theirs_forward.parameters), name
            assert [p.default for p in ours_forward.parameters.values()] == [
                p.default for p in theirs_forward.parameters.values()
            ], name
    assert issubclass(our_module.CachedMultipleNegativesRankingLoss, our_module.MultipleNegativesRankingLoss)
    assert issubclass(our_module.RankNetLoss, our_module.LambdaLoss)
    assert issubclass(our_module.ListMLELoss, our_module.PListMLELoss)


def test_old_class_file_paths_import() -> None:
    """``sentence_transformers.cross_encoder.losses.LambdaLoss`` as a module path (old releases) resolves."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = importlib.import_module("sentrs.cross_encoder.losses.LambdaLoss")
    assert module.__name__ == "sentrs.cross_encoder.losses.lambda_loss"


# ------------------------------------------------------------------ errors


def _error_cases() -> list[Any]:
    listwise = ["ListNetLoss", "ListMLELoss", "PListMLELoss", "LambdaLoss", "RankNetLoss", "ADRMSELoss"]
    cases = []
    for name in listwise:
        cases += [
            pytest.param(
                name,
                PAIRS,
                BINARY,
                r"is a listwise loss: .* got a single value for each sample \(labels of shape "
                r"\(4,\)\)\. For \(query, document\) pairs .* BinaryCrossEntropyLoss",
                id=f"{name}-pair-labels",
            ),
            pytest.param(
                name,
                PAIRS,
                [torch.tensor([1.0])] * 4,
                r"sample 0 has a single str \('Pandas are bears",
                id=f"{name}-pair-texts",
            ),
            pytest.param(
                name,
                [QUERIES, DOCUMENTS, DOCUMENTS],
                GRADED,
                r"expects two inputs \(queries, documents_list\), but "
                r"got 3 inputs",
                id=f"{name}-three-columns",
            ),
            pytest.param(
                name,
                LISTS,
                [*GRADED[:3], torch.tensor([1.0])],
                r"Number of documents per query in inputs "
                r"\(\[4, 1, 3, 5\]\) does not match number of labels per query \(\[4, 1, 3, 1\]\)",
                id=f"{name}-label-count",
            ),
        ]
    cases += [
        pytest.param(
            "ListNetLoss", LISTS, [1, 0, 1, 0], r"a single value for each sample \(labels of shape \(4,\)\)", id="list"
        ),
        pytest.param(
            "LambdaLoss", [QUERIES, DOCUMENTS[:2]], GRADED, "got 4 queries but 2 lists of documents", id="rows"
        ),
        pytest.param(
            "LambdaLoss", [QUERIES, [[], [], [], []]], [torch.zeros(0)] * 4, "got no documents", id="no-docs"
        ),
    ]
    return cases


@pytest.mark.parametrize(("name", "inputs", "labels", "match"), _error_cases())
def test_listwise_losses_refuse_other_inputs(
    models: dict[int, tuple[Any, Any]], name: str, inputs: list[Any], labels: Any, match: str
) -> None:
    loss = getattr(_our_losses(), name)(models[1][1])
    with pytest.raises(ValueError, match=match):
        loss(inputs, labels)


@pytest.mark.parametrize(
    "name",
    [
        "BinaryCrossEntropyLoss",
        "MSELoss",
        "MarginMSELoss",
        "MultipleNegativesRankingLoss",
        "CachedMultipleNegativesRankingLoss",
        "ListNetLoss",
        "ListMLELoss",
        "PListMLELoss",
        "LambdaLoss",
        "RankNetLoss",
        "ADRMSELoss",
    ],
)
def test_one_label_losses_refuse_a_three_label_model(models: dict[int, tuple[Any, Any]], name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name} expects a model with 1 output label, but got a model with 3 "):
        getattr(_our_losses(), name)(models[3][1])


def test_pair_losses_refuse_bad_inputs(models: dict[int, tuple[Any, Any]]) -> None:
    losses = _our_losses()
    one, three = models[1][1], models[3][1]
    with pytest.raises(ValueError, match=r"CrossEntropyLoss expects a model with one output label per class .* got "):
        losses.CrossEntropyLoss(one)
    cross_entropy = losses.CrossEntropyLoss(three)
    with pytest.raises(ValueError, match=r"got class labels \[3, 5\], but the model has 3 output labels, so class "):
        cross_entropy(PAIRS, torch.tensor([0, 3, 5, 1]))
    cross_entropy_ignore = losses.CrossEntropyLoss(three, ignore_index=-1)
    assert cross_entropy_ignore(PAIRS, torch.tensor([0, -1, 2, 1])).item() > 0  # ignored labels are not errors
    with pytest.raises(ValueError, match=r"float labels of shape \(4,\)"):
        cross_entropy(PAIRS, torch.tensor([0.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="two non-label columns, but got a dataset with 3 columns"):
        cross_entropy([QUERIES, POSITIVES, NEGATIVES], BINARY)
    with pytest.raises(
        ValueError, match=r"expects 4 labels \(one per example\), but got 8 labels with shape \(4, 2\)"
    ):
        losses.BinaryCrossEntropyLoss(one)(PAIRS, torch.ones(4, 2))
    with pytest.raises(ValueError, match="expects 4 labels"):
        losses.MSELoss(one)(PAIRS, torch.ones(3))
    with pytest.raises(ValueError, match=r"at least 3, but got a dataset with 2 columns.*use MSELoss"):
        losses.MarginMSELoss(one)(PAIRS, BINARY)
    with pytest.raises(
        ValueError, match=r"Labels shape torch.Size\(\[4, 3\]\) does not match expected shape \(4, 1\)"
    ):
        losses.MarginMSELoss(one)([QUERIES, POSITIVES, NEGATIVES], torch.ones(4, 3))
    with pytest.raises(ValueError, match="at least 2, but got a dataset with 1 columns"):
        losses.MultipleNegativesRankingLoss(one)([QUERIES], None)
    with pytest.raises(ValueError, match="mini_batch_size must be a positive integer, got 0"):
        losses.CachedMultipleNegativesRankingLoss(one, mini_batch_size=0)
    with pytest.raises(
        ValueError, match="expects a model of type CrossEncoder, but got a model of type <class 'str'>"
    ):
        losses.LambdaLoss("not a model")


def test_importing_the_losses_package_imports_no_torch() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import sentrs.cross_encoder.losses as losses, sentrs.cross_encoder.evaluation as evaluation\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert set(losses.__all__) <= set(dir(losses)) and set(evaluation.__all__) <= set(dir(evaluation))\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
