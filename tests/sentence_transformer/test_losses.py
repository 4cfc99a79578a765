"""The dense training losses against the reference's: same value, same gradient on every parameter, same config.

Each case loads one reference-saved tiny BERT folder in both libraries (same weights), preprocesses the same texts with
each library's own ``model.preprocess``, and runs the reference's loss on the reference model and sentrs' loss on the
sentrs model. Both models are in eval mode so that dropout draws no random masks; gradients flow all the same.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

# Same float32 math on the same weights, but not always in the same order (a reversed logcumsumexp against the
# reference's, reductions over differently shaped matrices), so values agree to rounding: ~1e-7 relative, amplified
# by scale=20 and by backpropagation through two transformer layers. 1e-5 absolute (and 1e-4 relative for the
# gradients, whose magnitudes vary across parameters) is far below any change a real difference in the math makes.
LOSS_ATOL = 1e-5
GRAD_ATOL = 1e-5
GRAD_RTOL = 1e-4

ANCHORS = ["A man is eating food.", "A horse", "Someone rides a horse across a very wide and sunny field.", "hi"]
POSITIVES = ["A man eats something.", "A horse runs in the field today.", "Horse riding", "hello there"]
NEGATIVES = ["Nothing to see here at all.", "cars", "A plane is taking off from the airport.", "cold weather"]
COLUMNS = [ANCHORS, POSITIVES, NEGATIVES]
SCORES = torch.tensor([1.0, 0.5, 0.5, 0.0])  # with a tie, which CoSENT must not count as an ordered pair
BINARY = torch.tensor([1, 0, 1, 0])


@pytest.fixture(scope="module")
def folder(make_tiny_st: Callable[..., str]) -> str:
    return make_tiny_st()


def _models(folder: str) -> tuple[Any, Any]:
    import sentence_transformers

    import sentrs

    ref = sentence_transformers.SentenceTransformer(folder, device="cpu")
    ours = sentrs.SentenceTransformer(folder, device="cpu")
    return ref.eval(), ours.eval()


def _run(loss: nn.Module, model: Any, columns: list[list[str]], labels: torch.Tensor | None) -> tuple[float, dict]:
    features = [model.preprocess(texts) for texts in columns]
    value = loss(features, labels)
    value.backward()
    return value.item(), {name: p.grad for name, p in loss.named_parameters()}


def _compare(
    folder: str,
    make_ref: Callable[[Any], nn.Module],
    make_ours: Callable[[Any], nn.Module],
    n_columns: int,
    labels: torch.Tensor | None,
    columns: list[list[str]] | None = None,
) -> None:
    columns = COLUMNS[:n_columns] if columns is None else columns
    ref_model, our_model = _models(folder)
    ref_loss, our_loss = make_ref(ref_model), make_ours(our_model)
    # Parameters of the loss itself (a classifier, a projection) start random: give ours the reference's.
    own = {k: v for k, v in ref_loss.state_dict().items() if not k.startswith("model.")}
    if own:
        our_loss.load_state_dict(own, strict=False)
    assert our_loss.get_config_dict() == ref_loss.get_config_dict()
    assert getattr(our_loss, "citation", None) == getattr(ref_loss, "citation", None)

    ref_value, ref_grads = _run(ref_loss, ref_model, columns, labels)
    our_value, our_grads = _run(our_loss, our_model, columns, labels)
    assert our_value == pytest.approx(ref_value, abs=LOSS_ATOL)
    assert our_grads.keys() == ref_grads.keys()
    with_grad = 0
    for name, ref_grad in ref_grads.items():
        our_grad = our_grads[name]
        if ref_grad is None:  # e.g. BERT's pooler, which mean pooling never uses
            assert our_grad is None, name
            continue
        assert our_grad is not None, name
        torch.testing.assert_close(our_grad, ref_grad, atol=GRAD_ATOL, rtol=GRAD_RTOL, msg=name)
        with_grad += 1
    assert with_grad > 0


def _ref_losses() -> Any:
    import sentence_transformers.sentence_transformer.losses as losses

    return losses


def _our_losses() -> Any:
    import sentrs.sentence_transformer.losses as losses

    return losses


def _both(name: str, n_columns: int, labels: torch.Tensor | None, **kwargs: Any) -> tuple[Any, ...]:
    return name, n_columns, labels, kwargs


CASES = [
    _both("CosineSimilarityLoss", 2, SCORES),
    _both("CoSENTLoss", 2, SCORES),
    _both("CoSENTLoss", 2, SCORES, scale=5.0),
    _both("CoSENTLoss", 2, torch.tensor([True, False, True, True])),
    _both("AnglELoss", 2, SCORES),
    _both("AnglELoss", 3, None),  # (anchor, positive, negative): positives labelled 1, negatives 0
    _both("AnglELoss", 3, torch.tensor([0.9, 0.8, 1.0, 0.7])),
    _both("MultipleNegativesRankingLoss", 2, None),
    _both("MultipleNegativesRankingLoss", 3, None),  # the candidate columns share one forward pass
    _both("MultipleNegativesRankingLoss", 3, None, scale=7.0),
    _both("MultipleNegativesRankingLoss", 3, None, directions=("query_to_doc", "doc_to_query")),
    _both(
        "MultipleNegativesRankingLoss",
        3,
        None,
        directions=("query_to_doc", "doc_to_query"),
        partition_mode="per_direction",
    ),
    _both(
        "MultipleNegativesRankingLoss",
        3,
        None,
        directions=("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"),
    ),
    _both("MultipleNegativesRankingLoss", 2, None, directions=("query_to_doc", "query_to_query", "doc_to_doc")),
    _both("MultipleNegativesRankingLoss", 3, None, hardness_mode="in_batch_negatives", hardness_strength=9.0),
    _both("MultipleNegativesRankingLoss", 3, None, hardness_mode="hard_negatives", hardness_strength=5.0),
    _both("MultipleNegativesRankingLoss", 3, None, hardness_mode="all_negatives", hardness_strength=5.0),
    _both("MultipleNegativesRankingLoss", 2, None, hardness_mode="hard_negatives", hardness_strength=5.0),
    _both("MSELoss", 1, torch.randn(4, 32, generator=torch.Generator().manual_seed(0))),
    _both("MSELoss", 2, torch.randn(4, 2, 32, generator=torch.Generator().manual_seed(1))),
    _both("MSELoss", 2, torch.randn(4, 8, generator=torch.Generator().manual_seed(2)), projection_dim=8),
    _both("EmbedDistillLoss", 2, torch.randn(4, 32, generator=torch.Generator().manual_seed(3))),
    _both("EmbedDistillLoss", 1, torch.randn(4, 32, generator=torch.Generator().manual_seed(4)), distance_metric="l2"),
    _both(
        "EmbedDistillLoss",
        1,
        torch.randn(4, 8, generator=torch.Generator().manual_seed(5)),
        distance_metric="cosine",
        projection_dim=8,
    ),
    _both("ContrastiveLoss", 2, BINARY),
    _both("ContrastiveLoss", 2, BINARY, margin=2.0, size_average=False),
    _both("OnlineContrastiveLoss", 2, BINARY),
    _both("OnlineContrastiveLoss", 2, BINARY, margin=2.0),
    _both("OnlineContrastiveLoss", 2, torch.tensor([0, 0, 0, 0]), margin=2.0),  # no positives: the mean bounds
    _both("TripletLoss", 3, None),
    _both("TripletLoss", 3, None, triplet_margin=0.5),
    _both("SoftmaxLoss", 2, torch.tensor([0, 2, 1, 2]), embedding_dimension=32, num_labels=3),
    _both(
        "SoftmaxLoss",
        2,
        torch.tensor([0, 1, 1, 0]),
        embedding_dimension=32,
        num_labels=2,
        concatenation_sent_rep=False,
        concatenation_sent_multiplication=True,
    ),
]


@pytest.mark.parametrize(
    ("name", "n_columns", "labels", "kwargs"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_loss_and_gradients_match_the_reference(
    folder: str, name: str, n_columns: int, labels: torch.Tensor | None, kwargs: dict[str, Any]
) -> None:
    ref_cls, our_cls = getattr(_ref_losses(), name), getattr(_our_losses(), name)
    _compare(folder, lambda m: ref_cls(m, **kwargs), lambda m: our_cls(m, **kwargs), n_columns, labels)


@pytest.mark.parametrize("similarity", ["cos_sim", "dot_score", "euclidean_sim"])
def test_multiple_negatives_ranking_similarity_functions(folder: str, similarity: str) -> None:
    import sentence_transformers.util as ref_util

    import sentrs.util as our_util

    ref_cls, our_cls = _ref_losses().MultipleNegativesRankingLoss, _our_losses().MultipleNegativesRankingLoss
    ref_fct, our_fct = getattr(ref_util, similarity), getattr(our_util, similarity)
    _compare(
        folder,
        lambda m: ref_cls(m, scale=1.0, similarity_fct=ref_fct),
        lambda m: our_cls(m, scale=1.0, similarity_fct=our_fct),
        3,
        None,
    )


def test_multiple_negatives_ranking_gather_outside_a_distributed_job(folder: str) -> None:
    """Outside of ``torch.distributed`` the gather is this process's batch: the same loss as without it."""
    ref_cls, our_cls = _ref_losses().MultipleNegativesRankingLoss, _our_losses().MultipleNegativesRankingLoss
    _compare(
        folder,
        lambda m: ref_cls(m, gather_across_devices=True),
        lambda m: our_cls(m, gather_across_devices=True),
        3,
        None,
    )


def test_multiple_negatives_ranking_gather_in_a_process_group(folder: str, tmp_path: Any) -> None:
    """Inside a (one-process, gloo) ``torch.distributed`` group the batch goes through sentrs' autograd gather; the
    reference's goes through ``torch.distributed.nn.all_gather`` (deprecated in recent torch, hence its warning)."""
    import torch.distributed as dist

    ref_cls, our_cls = _ref_losses().MultipleNegativesRankingLoss, _our_losses().MultipleNegativesRankingLoss
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        with pytest.warns(FutureWarning, match="all_gather is deprecated"):
            _compare(
                folder,
                lambda m: ref_cls(m, gather_across_devices=True),
                lambda m: our_cls(m, gather_across_devices=True),
                3,
                None,
            )
    finally:
        dist.destroy_process_group()


def test_cosent_with_dot_product(folder: str) -> None:
    import sentence_transformers.util as ref_util

    import sentrs.util as our_util

    ref_cls, our_cls = _ref_losses().CoSENTLoss, _our_losses().CoSENTLoss
    _compare(
        folder,
        lambda m: ref_cls(m, similarity_fct=ref_util.pairwise_dot_score),
        lambda m: our_cls(m, similarity_fct=our_util.pairwise_dot_score),
        2,
        SCORES,
    )


def test_cosine_similarity_loss_with_other_functions(folder: str) -> None:
    ref_cls, our_cls = _ref_losses().CosineSimilarityLoss, _our_losses().CosineSimilarityLoss
    _compare(
        folder,
        lambda m: ref_cls(m, loss_fct=nn.L1Loss(), cos_score_transformation=nn.Tanh()),
        lambda m: our_cls(m, loss_fct=nn.L1Loss(), cos_score_transformation=nn.Tanh()),
        2,
        SCORES,
    )


@pytest.mark.parametrize("metric", ["EUCLIDEAN", "MANHATTAN", "COSINE_DISTANCE"])
@pytest.mark.parametrize("name", ["ContrastiveLoss", "OnlineContrastiveLoss"])
def test_siamese_distance_metrics(folder: str, name: str, metric: str) -> None:
    ref, ours = _ref_losses(), _our_losses()
    ref_metric = getattr(ref.SiameseDistanceMetric, metric)
    our_metric = getattr(ours.SiameseDistanceMetric, metric)
    _compare(
        folder,
        lambda m: getattr(ref, name)(m, distance_metric=ref_metric, margin=1.0),
        lambda m: getattr(ours, name)(m, distance_metric=our_metric, margin=1.0),
        2,
        BINARY,
    )


@pytest.mark.parametrize("metric", ["EUCLIDEAN", "MANHATTAN", "COSINE"])
def test_triplet_distance_metrics(folder: str, metric: str) -> None:
    ref, ours = _ref_losses(), _our_losses()
    ref_metric = getattr(ref.TripletDistanceMetric, metric)
    our_metric = getattr(ours.TripletDistanceMetric, metric)
    _compare(
        folder,
        lambda m: ref.TripletLoss(m, distance_metric=ref_metric, triplet_margin=1.0),
        lambda m: ours.TripletLoss(m, distance_metric=our_metric, triplet_margin=1.0),
        3,
        None,
    )


def test_symmetric_ranking_loss_is_deprecated_and_matches(folder: str) -> None:
    ref_cls, our_cls = (
        _ref_losses().MultipleNegativesSymmetricRankingLoss,
        _our_losses().MultipleNegativesSymmetricRankingLoss,
    )
    ours = _our_losses()

    def make_ref(model: Any) -> nn.Module:
        with pytest.warns(DeprecationWarning):
            return ref_cls(model)

    def make_ours(model: Any) -> nn.Module:
        with pytest.warns(DeprecationWarning, match="directions=\\('query_to_doc', 'doc_to_query'\\)"):
            return our_cls(model)

    _compare(folder, make_ref, make_ours, 2, None)
    assert issubclass(our_cls, ours.MultipleNegativesRankingLoss)


def test_contrastive_losses_warn_once_on_non_binary_labels(folder: str) -> None:
    _, model = _models(folder)
    ours = _our_losses()
    features = [model.preprocess(texts) for texts in COLUMNS[:2]]
    for cls in (ours.ContrastiveLoss, ours.OnlineContrastiveLoss):
        loss = cls(model)
        with pytest.warns(UserWarning, match="expects binary labels"):
            loss(features, SCORES)
        loss(features, SCORES)  # once per loss object: no second warning (warnings are errors here)


def test_softmax_loss_without_labels_returns_embeddings_and_logits(folder: str) -> None:
    _, model = _models(folder)
    loss = _our_losses().SoftmaxLoss(model, embedding_dimension=32, num_labels=3)
    embeddings, logits = loss([model.preprocess(texts) for texts in COLUMNS[:2]], None)
    assert [tuple(e.shape) for e in embeddings] == [(4, 32), (4, 32)]
    assert tuple(logits.shape) == (4, 3)


def test_softmax_loss_accepts_the_old_dimension_keyword(folder: str, caplog: pytest.LogCaptureFixture) -> None:
    _, model = _models(folder)
    loss = _our_losses().SoftmaxLoss(model, sentence_embedding_dimension=32, num_labels=3)
    assert loss.classifier.in_features == 3 * 32
    assert "`sentence_embedding_dimension` argument was renamed" in caplog.text


def test_embed_distill_projection_round_trip(folder: str, tmp_path: Any) -> None:
    _, model = _models(folder)
    losses = _our_losses()
    trained = losses.EmbedDistillLoss(model, projection_dim=8)
    trained.save_projection(tmp_path / "projection.safetensors")
    fresh = losses.EmbedDistillLoss(model)
    fresh.load_projection(tmp_path / "projection.safetensors")
    assert fresh.projection_dim == 8
    assert fresh.projection is not None and trained.projection is not None
    torch.testing.assert_close(fresh.projection.weight, trained.projection.weight, atol=0.0, rtol=0.0)
    with pytest.raises(ValueError, match="No projection layer to save"):
        losses.EmbedDistillLoss(model).save_projection(tmp_path / "none.safetensors")
    with pytest.raises(ValueError, match="does not match the configured projection shape"):
        losses.EmbedDistillLoss(model, projection_dim=4).load_projection(tmp_path / "projection.safetensors")


MNRL_BAD_ARGUMENTS = [
    ({"scale": 0.0}, "Scale must be a positive value"),
    ({"directions": ()}, "At least one direction must be specified"),
    ({"directions": ("query_to_doc", "doc_to_nowhere")}, "Invalid directions"),
    ({"directions": ("doc_to_query",)}, "'query_to_doc' direction is required"),
    ({"partition_mode": "separate"}, "partition_mode must be 'joint' or 'per_direction'"),
    (
        {"directions": ("query_to_doc", "query_to_query"), "partition_mode": "per_direction"},
        "partition_mode='per_direction' requires",
    ),
    ({"hardness_mode": "hardest"}, "hardness_mode must be one of"),
    ({"hardness_mode": "hard_negatives", "hardness_strength": -1.0}, "hardness_strength must be non-negative"),
]


@pytest.mark.parametrize(("kwargs", "message"), MNRL_BAD_ARGUMENTS)
def test_multiple_negatives_ranking_rejects_bad_arguments(folder: str, kwargs: dict[str, Any], message: str) -> None:
    ref_model, our_model = _models(folder)
    with pytest.raises(ValueError, match=message) as ours:
        _our_losses().MultipleNegativesRankingLoss(our_model, **kwargs)
    with pytest.raises(ValueError) as ref:
        _ref_losses().MultipleNegativesRankingLoss(ref_model, **kwargs)
    # The invalid-directions and invalid-hardness messages show sets, in no fixed order.
    shows_a_set = (
        kwargs.get("directions") == ("query_to_doc", "doc_to_nowhere") or kwargs.get("hardness_mode") == "hardest"
    )
    if not shows_a_set:
        assert str(ours.value) == str(ref.value)


def test_bad_inputs_fail_clearly(folder: str) -> None:
    _, model = _models(folder)
    losses = _our_losses()
    pairs = [model.preprocess(texts) for texts in COLUMNS[:2]]
    for cls in (losses.CosineSimilarityLoss, losses.CoSENTLoss, losses.ContrastiveLoss, losses.OnlineContrastiveLoss):
        with pytest.raises(ValueError, match=rf"{cls.__name__} expects 4 labels \(one per example\), but got 3"):
            cls(model)(pairs, torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="AnglELoss requires labels for datasets with pairs"):
        losses.AnglELoss(model)(pairs, None)
    with pytest.raises(ValueError, match="Expected at least 2 embeddings, got 1"):
        losses.MultipleNegativesRankingLoss(model)(pairs[:1], None)
    with pytest.raises(ValueError, match="TripletLoss expects 3 input columns"):
        losses.TripletLoss(model)(pairs, None)
    with pytest.raises(ValueError, match="SoftmaxLoss expects 2 input columns"):
        losses.SoftmaxLoss(model, 32, 3)(pairs[:1], torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="At least one of concatenation_sent_rep"):
        losses.SoftmaxLoss(model, 32, 3, concatenation_sent_rep=False, concatenation_sent_difference=False)
    with pytest.raises(ValueError, match="distance_metric must be one of 'mse', 'l2', 'cosine'"):
        losses.EmbedDistillLoss(model, distance_metric="dot")
    with pytest.raises(ValueError, match="requires pre-computed teacher embeddings"):
        losses.MSELoss(model)(pairs, None)
    with pytest.raises(ValueError, match=r"Number of label columns \(3\) does not match"):
        losses.MSELoss(model)(pairs, torch.zeros(4, 3, 32))
    with pytest.raises(ValueError, match="Expected labels to be 2D"):
        losses.MSELoss(model)(pairs, torch.zeros(4))


def test_candidate_columns_share_one_forward_pass(folder: str) -> None:
    """Candidate columns of one row count are padded and embedded together; the embeddings are those of separate
    passes (to float rounding: the padded positions are masked out). Columns that cannot merge run one by one."""
    from sentrs.sentence_transformer.losses._inputs import _merge_columns, embed_columns

    _, model = _models(folder)
    features = [model.preprocess(texts) for texts in COLUMNS]
    merged = _merge_columns(features[1:])
    assert merged is not None
    width = max(f["input_ids"].shape[1] for f in features[1:])
    assert tuple(merged["input_ids"].shape) == (8, width)
    with torch.no_grad():
        together = embed_columns(model, features)
        apart = [model(f)["sentence_embedding"] for f in features]
    for a, b in zip(together, apart):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert _merge_columns([features[1], model.preprocess(POSITIVES[:2])]) is None  # other row counts


OUR_NAMES = [
    "AnglELoss",
    "CoSENTLoss",
    "ContrastiveLoss",
    "CosineSimilarityLoss",
    "EmbedDistillLoss",
    "MSELoss",
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "OnlineContrastiveLoss",
    "SoftmaxLoss",
    "TripletLoss",
]


@pytest.mark.parametrize("name", OUR_NAMES)
def test_signatures_match_the_reference(name: str) -> None:
    """Same parameter names, order, kinds and plain defaults (default objects are compared by type)."""
    ref = inspect.signature(getattr(_ref_losses(), name).__init__).parameters
    ours = inspect.signature(getattr(_our_losses(), name).__init__).parameters
    assert list(ours) == list(ref)
    for key, parameter in ours.items():
        assert parameter.kind == ref[key].kind, key
        mine, theirs = parameter.default, ref[key].default
        if isinstance(theirs, (int, float, str, tuple, type(None))):
            assert mine == theirs, key
        elif callable(theirs) and not isinstance(theirs, nn.Module):
            if theirs.__name__ != "<lambda>":  # the distance metrics' lambdas: the config tests compare those
                assert mine.__name__ == theirs.__name__, key
        else:
            assert type(mine) is type(theirs), key


def test_old_import_paths() -> None:
    """``sentrs.losses`` (and its old one-class-per-file paths) is the dense losses package, as in the reference."""
    import sentrs.sentence_transformer.losses as losses

    with pytest.warns(DeprecationWarning, match="import 'sentrs.sentence_transformer.losses' instead"):
        sys.modules.pop("sentrs.losses", None)
        import sentrs.losses
        from sentrs.losses import CoSENTLoss, MultipleNegativesRankingLoss
    assert sentrs.losses is losses
    assert MultipleNegativesRankingLoss is losses.multiple_negatives_ranking.MultipleNegativesRankingLoss
    with pytest.warns(DeprecationWarning, match="sentrs.sentence_transformer.losses.cosent"):
        sys.modules.pop("sentrs.losses.CoSENTLoss", None)
        import sentrs.losses.CoSENTLoss
    assert sentrs.losses.CoSENTLoss is CoSENTLoss
