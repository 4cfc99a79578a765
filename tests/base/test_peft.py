"""PEFT adapters on every model type, against the reference: the same LoRA weights (seeded, or loaded from a saved
adapter) give the same outputs, the same adapter folder on disk, folders that load in the other library, the same
training behaviour (only adapter weights move), and clear errors for unknown names, a missing ``peft`` and models
running in the torch-free engine.

Tolerance: 1e-5 absolute on outputs (the same torch kernels on the same weights; only the batching around them
differs between the libraries).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from packaging.version import Version

peft = pytest.importorskip("peft")

import sentence_transformers  # noqa: E402
from peft import LoraConfig  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import sentrs  # noqa: E402
from sentrs.base.model import BaseModel  # noqa: E402
from sentrs.base.peft_mixin import PeftAdapterMixin, UnknownAdapterError, load_transformer_config  # noqa: E402

ATOL = 1e-5
TEXTS = [
    "A man is eating food.",
    "",
    "Émoji 🤖 and café, naïve",
    "The quick brown fox jumps over the lazy dog. " * 8,
    "short",
]
PAIRS = [("what is a fox", "A fox is an animal."), ("capital of france", "Paris."), ("", "empty query")]
# The files transformers' save_pretrained writes for a model with adapters (no config.json, no model weights).
ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors"}


# ---------------------------------------------------------------------------------------------- environment
def _accept_installed_peft(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers 5.24 asks for peft>=0.22, which has no release yet, and refuses every adapter method but
    ``load_adapter`` below it; the installed 0.21.2 has every function transformers calls. Both libraries go
    through the same transformers check, so lowering it to the installed version changes neither side's behaviour
    otherwise."""
    import transformers.integrations.peft as integration

    installed = importlib.metadata.version("peft")
    if Version(installed) < Version(integration.MIN_PEFT_VERSION):
        monkeypatch.setattr(integration, "MIN_PEFT_VERSION", installed)


@pytest.fixture(autouse=True)
def _installed_peft_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    _accept_installed_peft(monkeypatch)


@pytest.fixture(scope="module")
def _module_peft() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _accept_installed_peft(monkeypatch)
        yield


def _lora(**overrides: Any) -> LoraConfig:
    """A LoRA config whose B matrices are random too (``init_lora_weights=False``), so the adapter changes outputs
    from the first call; seed torch before each use to get the same weights in both libraries."""
    return LoraConfig(
        **{"r": 4, "lora_alpha": 8, "target_modules": ["query", "value"], "init_lora_weights": False, **overrides}
    )


def _add_seeded(model: Any, seed: int = 7, name: str | None = None, **overrides: Any) -> None:
    torch.manual_seed(seed)
    if name is None:
        model.add_adapter(_lora(**overrides))
    else:
        model.add_adapter(_lora(**overrides), adapter_name=name)


def _dense(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return (value.to_dense() if value.is_sparse else value).detach().cpu().numpy()
    return np.asarray(value)


# ---------------------------------------------------------------------------------------------- folders
@pytest.fixture(scope="module")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A random 2-layer BERT masked LM (hidden 32) with the MiniLM tokenizer: a SparseEncoder (SPLADE) backbone."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(21)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    out = tmp_path_factory.mktemp("tiny_mlm")
    BertForMaskedLM(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def tiny_ce_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A random 2-layer BERT sequence classifier (one label), saved as a CrossEncoder by the reference."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(22)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=0.2,
        num_labels=1,
    )
    raw = tmp_path_factory.mktemp("tiny_ce_raw")
    BertForSequenceClassification(config).save_pretrained(raw)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(raw)
    out = tmp_path_factory.mktemp("tiny_ce")
    sentence_transformers.CrossEncoder(str(raw), device="cpu").save(str(out))
    return str(out)


@pytest.fixture(scope="module")
def ref_adapter_st(
    tmp_path_factory: pytest.TempPathFactory, make_tiny_st: Callable[..., str], _module_peft: None
) -> str:
    """A SentenceTransformer folder with a seeded LoRA adapter, saved by the reference."""
    model = sentence_transformers.SentenceTransformer(make_tiny_st(), device="cpu")
    _add_seeded(model)
    out = tmp_path_factory.mktemp("ref_adapter_st")
    model.save(str(out))
    return str(out)


# ---------------------------------------------------------------------------------------------- the API
@pytest.mark.parametrize(
    "cls", [sentrs.SentenceTransformer, sentrs.SparseEncoder, sentrs.CrossEncoder, sentrs.MultiVectorEncoder]
)
def test_every_model_type_has_the_reference_adapter_methods(cls: type) -> None:
    assert issubclass(cls, PeftAdapterMixin) and issubclass(cls, BaseModel)
    for name in (
        "add_adapter",
        "load_adapter",
        "set_adapter",
        "active_adapters",
        "active_adapter",
        "enable_adapters",
        "disable_adapters",
        "get_adapter_state_dict",
        "delete_adapter",
        "has_peft_compatible_model",
        "check_peft_compatible_model",
    ):
        assert callable(getattr(cls, name)), name
        assert hasattr(sentence_transformers.SentenceTransformer, name), name


def test_lora_outputs_match_the_reference(make_tiny_st: Callable[..., str]) -> None:
    path = make_tiny_st()
    ref = sentence_transformers.SentenceTransformer(path, device="cpu")
    ours = sentrs.SentenceTransformer(path, device="cpu")
    assert ours.has_peft_compatible_model() and ref.has_peft_compatible_model()
    ours.check_peft_compatible_model()
    base = ours.encode(TEXTS)

    _add_seeded(ref)
    _add_seeded(ours)
    assert ours.active_adapters() == ref.active_adapters() == ["default"]
    assert ours.active_adapter() == "default"
    adapted = ours.encode(TEXTS)
    np.testing.assert_allclose(adapted, ref.encode(TEXTS), atol=ATOL, rtol=0)
    assert np.abs(adapted - base).max() > 1e-3  # the adapter does change the embeddings

    ref.disable_adapters()
    ours.disable_adapters()
    np.testing.assert_allclose(ours.encode(TEXTS), base, atol=ATOL, rtol=0)
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL, rtol=0)
    ref.enable_adapters()
    ours.enable_adapters()
    np.testing.assert_allclose(ours.encode(TEXTS), adapted, atol=ATOL, rtol=0)

    ours_weights, ref_weights = ours.get_adapter_state_dict(), ref.get_adapter_state_dict()
    assert sorted(ours_weights) == sorted(ref_weights)
    for key, value in ref_weights.items():
        torch.testing.assert_close(ours_weights[key], value, atol=0, rtol=0)


def test_several_adapters_switch_and_delete_as_in_the_reference(make_tiny_st: Callable[..., str]) -> None:
    path = make_tiny_st()
    ref = sentence_transformers.SentenceTransformer(path, device="cpu")
    ours = sentrs.SentenceTransformer(path, device="cpu")
    for model in (ref, ours):
        _add_seeded(model, seed=1, name="first")
        with pytest.warns(UserWarning, match="multiple adapters"):  # peft's notice, the same for both
            _add_seeded(model, seed=2, name="second", r=2)
    assert ours.active_adapters() == ref.active_adapters() == ["second"]
    second = ours.encode(TEXTS)
    np.testing.assert_allclose(second, ref.encode(TEXTS), atol=ATOL, rtol=0)

    ref.set_adapter("first")
    ours.set_adapter("first")
    assert ours.active_adapters() == ref.active_adapters() == ["first"]
    first = ours.encode(TEXTS)
    np.testing.assert_allclose(first, ref.encode(TEXTS), atol=ATOL, rtol=0)
    assert np.abs(first - second).max() > 1e-3
    assert sorted(ours.get_adapter_state_dict("second")) == sorted(ref.get_adapter_state_dict("second"))

    ref.delete_adapter("second")
    ours.delete_adapter("second")
    assert ours.transformers_model.peft_config.keys() == ref.transformers_model.peft_config.keys() == {"first"}
    np.testing.assert_allclose(ours.encode(TEXTS), first, atol=ATOL, rtol=0)
    ours.delete_adapter("first")
    with pytest.raises(ValueError, match="No adapter loaded"):
        ours.active_adapters()


def test_unknown_adapter_names_are_refused_with_the_loaded_ones(make_tiny_st: Callable[..., str]) -> None:
    ours = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    with pytest.raises(ValueError, match="No adapter loaded. Please load an adapter first."):
        ours.set_adapter("default")
    _add_seeded(ours)
    with pytest.raises(ValueError, match=r"Adapter with name nope not found.*\['default'\]"):
        ours.set_adapter("nope")
    with pytest.raises(ValueError, match=r"could not be found: nope.*\['default'\]"):
        ours.set_adapter(["default", "nope"])
    with pytest.raises(
        UnknownAdapterError, match=r"not present and cannot be deleted: nope; the loaded adapters are \['default'\]"
    ):
        ours.delete_adapter(["nope"])
    # The reference lets peft's KeyError through here; ours is a KeyError and a ValueError, with the names.
    with pytest.raises(KeyError, match=r"cannot be read: nope; the loaded adapters are \['default'\]"):
        ours.get_adapter_state_dict("nope")
    with pytest.raises(ValueError, match="already exists"):
        _add_seeded(ours)
    assert ours.active_adapters() == ["default"]  # nothing changed


# ---------------------------------------------------------------------------------------------- saving, loading
def test_saved_adapter_folder_is_the_reference_one(
    make_tiny_st: Callable[..., str], ref_adapter_st: str, tmp_path: Path
) -> None:
    ours = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    _add_seeded(ours)
    out = str(tmp_path / "ours")
    ours.save(out)
    assert ADAPTER_FILES <= set(os.listdir(out))
    assert "config.json" not in os.listdir(out) and "model.safetensors" not in os.listdir(out)
    assert set(os.listdir(out)) == set(os.listdir(ref_adapter_st))
    with open(os.path.join(out, "adapter_config.json"), encoding="utf-8") as f:
        ours_config = json.load(f)
    with open(os.path.join(ref_adapter_st, "adapter_config.json"), encoding="utf-8") as f:
        ref_config = json.load(f)
    # sentrs hands the Transformer its folder as "<dir>/" (os.path.join(dir, "")), the reference as "<dir>"
    for config in (ours_config, ref_config):
        config["base_model_name_or_path"] = os.path.normpath(config["base_model_name_or_path"])
    assert ours_config == ref_config
    ours_weights = load_file(os.path.join(out, "adapter_model.safetensors"))
    ref_weights = load_file(os.path.join(ref_adapter_st, "adapter_model.safetensors"))
    assert sorted(ours_weights) == sorted(ref_weights)
    assert all(key.startswith("base_model.model.") for key in ours_weights)
    for key, value in ref_weights.items():
        torch.testing.assert_close(ours_weights[key], value, atol=0, rtol=0)


def test_load_adapter_from_a_reference_folder(make_tiny_st: Callable[..., str], ref_adapter_st: str) -> None:
    ref = sentence_transformers.SentenceTransformer(make_tiny_st(), device="cpu")
    ours = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    ref.load_adapter(ref_adapter_st, adapter_name="loaded")
    ours.load_adapter(ref_adapter_st, adapter_name="loaded")
    assert ours.active_adapters() == ref.active_adapters() == ["loaded"]
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL, rtol=0)
    saved = sentence_transformers.SentenceTransformer(ref_adapter_st, device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), saved.encode(TEXTS), atol=ATOL, rtol=0)


def test_transformer_config_of_an_adapter_folder_is_its_base_models(
    make_tiny_st: Callable[..., str], ref_adapter_st: str, tmp_path: Path
) -> None:
    config = load_transformer_config(ref_adapter_st)
    assert config.to_dict() == load_transformer_config(make_tiny_st()).to_dict()
    with pytest.raises(ValueError, match="PEFT models can currently only be loaded with the `torch` backend"):
        load_transformer_config(ref_adapter_st, backend="onnx")


def test_a_reference_adapter_folder_loads_with_the_same_outputs(ref_adapter_st: str) -> None:
    ref = sentence_transformers.SentenceTransformer(ref_adapter_st, device="cpu")
    ours = sentrs.SentenceTransformer(ref_adapter_st, device="cpu")
    assert ours.active_adapters() == ref.active_adapters() == ["default"]
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL, rtol=0)
    ours.disable_adapters()
    ref.disable_adapters()
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL, rtol=0)


def test_a_sentrs_adapter_folder_loads_in_both_libraries(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    ours = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    _add_seeded(ours, seed=11)
    expected = ours.encode(TEXTS)
    out = str(tmp_path / "ours")
    ours.save(out)
    ref = sentence_transformers.SentenceTransformer(out, device="cpu")
    np.testing.assert_allclose(ref.encode(TEXTS), expected, atol=ATOL, rtol=0)
    again = sentrs.SentenceTransformer(out, device="cpu")
    assert again.active_adapters() == ["default"]
    np.testing.assert_allclose(again.encode(TEXTS), expected, atol=ATOL, rtol=0)


def test_a_peft_adapter_folder_without_modules_loads_as_the_reference(
    make_tiny_st: Callable[..., str], tiny_bert_dir: str, tmp_path: Path
) -> None:
    """A plain transformers folder holding only an adapter (and a tokenizer), its config pointing at a local base."""
    from transformers import AutoModel, AutoTokenizer

    base = AutoModel.from_pretrained(tiny_bert_dir)
    _add_seeded(base, seed=5)
    out = str(tmp_path / "adapter_only")
    base.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(out)
    assert "config.json" not in os.listdir(out)
    ref = sentence_transformers.SentenceTransformer(out, device="cpu")
    ours = sentrs.SentenceTransformer(out, device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------------------------- other model types
def test_cross_encoder_with_an_adapter(tiny_ce_dir: str) -> None:
    ref = sentence_transformers.CrossEncoder(tiny_ce_dir, device="cpu")
    ours = sentrs.CrossEncoder(tiny_ce_dir, device="cpu")
    base = ours.predict(PAIRS)
    _add_seeded(ref, seed=3)
    _add_seeded(ours, seed=3)
    assert ours.active_adapters() == ref.active_adapters()
    adapted = ours.predict(PAIRS)
    np.testing.assert_allclose(adapted, ref.predict(PAIRS), atol=ATOL, rtol=0)
    assert np.abs(adapted - base).max() > 1e-4
    ref.disable_adapters()
    ours.disable_adapters()
    np.testing.assert_allclose(ours.predict(PAIRS), ref.predict(PAIRS), atol=ATOL, rtol=0)
    np.testing.assert_allclose(ours.predict(PAIRS), base, atol=ATOL, rtol=0)


def test_sparse_encoder_with_an_adapter(tiny_mlm_dir: str, tmp_path: Path) -> None:
    ref = sentence_transformers.SparseEncoder(tiny_mlm_dir, device="cpu")
    ours = sentrs.SparseEncoder(tiny_mlm_dir, device="cpu")
    base = _dense(ours.encode(TEXTS))
    _add_seeded(ref, seed=4)
    _add_seeded(ours, seed=4)
    assert ours.active_adapters() == ref.active_adapters()
    adapted = _dense(ours.encode(TEXTS))
    np.testing.assert_allclose(adapted, _dense(ref.encode(TEXTS)), atol=ATOL, rtol=0)
    assert np.abs(adapted - base).max() > 1e-4
    ours.save(str(tmp_path / "ours"))
    ref.save(str(tmp_path / "ref"))
    assert ADAPTER_FILES <= set(os.listdir(tmp_path / "ours"))
    assert set(os.listdir(tmp_path / "ours")) == set(os.listdir(tmp_path / "ref"))


def test_multi_vector_encoder_with_an_adapter(tiny_bert_dir: str) -> None:
    ours = sentrs.MultiVectorEncoder(tiny_bert_dir, device="cpu")
    base = [np.asarray(row) for row in ours.encode(TEXTS[:3])]
    _add_seeded(ours, seed=6)
    adapted = [np.asarray(row) for row in ours.encode(TEXTS[:3])]
    assert any(np.abs(a - b).max() > 1e-4 for a, b in zip(adapted, base))
    ours.disable_adapters()
    for row, expected in zip(ours.encode(TEXTS[:3]), base):
        np.testing.assert_allclose(np.asarray(row), expected, atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------------------------- errors
_METHOD_CALLS: list[tuple[str, Callable[[Any], Any]]] = [
    ("add_adapter", lambda m: m.add_adapter(_lora())),
    ("load_adapter", lambda m: m.load_adapter("somewhere")),
    ("set_adapter", lambda m: m.set_adapter("default")),
    ("enable_adapters", lambda m: m.enable_adapters()),
    ("disable_adapters", lambda m: m.disable_adapters()),
    ("active_adapters", lambda m: m.active_adapters()),
    ("active_adapter", lambda m: m.active_adapter()),
    ("get_adapter_state_dict", lambda m: m.get_adapter_state_dict()),
    ("delete_adapter", lambda m: m.delete_adapter("default")),
]


@pytest.mark.parametrize(("name", "call"), _METHOD_CALLS, ids=[name for name, _ in _METHOD_CALLS])
def test_without_peft_the_methods_say_how_to_install_it(
    make_tiny_st: Callable[..., str], monkeypatch: pytest.MonkeyPatch, name: str, call: Callable[[Any], Any]
) -> None:
    ours = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` now raises ImportError
    with pytest.raises(ImportError, match=rf"SentenceTransformer\.{name}\(\) requires the `peft` package; install"):
        call(ours)
    assert ours.has_peft_compatible_model()  # a question about the model, not about peft


def test_without_peft_an_adapter_folder_does_not_load(ref_adapter_st: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ImportError, match="PEFT adapter in .* requires the `peft` package; install it with"):
        load_transformer_config(ref_adapter_st)


def test_models_running_in_the_engine_need_the_torch_modules(
    make_tiny_st: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = str(tmp_path / "st")
    shutil.copytree(make_tiny_st(), folder)
    monkeypatch.setenv("SENTRS_TORCH_FREE", "0")
    sentrs.SentenceTransformer(folder, backend="onnx", device="cpu")  # exports onnx/model.onnx
    around = sentrs.SentenceTransformer(folder, backend="onnx", device="cpu")
    monkeypatch.delenv("SENTRS_TORCH_FREE")
    lite = sentrs.SentenceTransformer(folder, backend="onnx")
    assert lite.runs_in_engine and not around.runs_in_engine
    for model in (lite, around):  # the exported model takes no adapters either way, as in the reference
        assert not model.has_peft_compatible_model()
        with pytest.raises(ValueError, match="PEFT methods are only supported for Sentence Transformer models"):
            model.check_peft_compatible_model()
    for name, call in _METHOD_CALLS:
        with pytest.raises(TypeError, match=rf"{name}\(\) needs the torch modules.*backend='torch'"):
            call(lite)
    with pytest.raises(ValueError, match="PEFT methods are only supported"):
        around.add_adapter(_lora())


def test_a_model_without_a_transformer_is_not_peft_compatible() -> None:
    from sentrs.sentence_transformer.modules import Normalize

    model = sentrs.SentenceTransformer(modules=[Normalize()], device="cpu")
    assert model.transformers_model is None and not model.has_peft_compatible_model()
    with pytest.raises(ValueError, match="PEFT methods are only supported"):
        model.add_adapter(_lora())


# ---------------------------------------------------------------------------------------------- training
def test_lora_training_moves_only_the_adapter_weights(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    """The reference's trainer and ours on the same LoRA model: the same logged losses, the same embeddings after
    training, and the base weights bit-identical to before (LoRA freezes them)."""
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("accelerate")
    from tests.training_utils import assert_same_losses, run

    words = "apple banana cherry dog elephant fish grape house igloo jungle kite lemon mango nest orange pear".split()
    data = datasets.Dataset.from_dict(
        {
            "anchor": [f"the {words[i % 16]} and the {words[(i * 7) % 16]}" for i in range(32)],
            "positive": [f"a {words[(i * 7) % 16]} near a {words[i % 16]}" for i in range(32)],
        }
    )
    results = []
    for lib in (sentence_transformers, sentrs):
        model = lib.SentenceTransformer(make_tiny_st(), device="cpu")
        torch.manual_seed(9)
        model.add_adapter(LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]))
        before = {k: v.detach().clone() for k, v in model.state_dict().items()}
        trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        assert trainable and all("lora_" in name for name in trainable)
        loss = lib.sentence_transformer.losses.MultipleNegativesRankingLoss(model)
        recorder, _ = run(
            lib.SentenceTransformerTrainer,
            lib.SentenceTransformerTrainingArguments,
            model,
            str(tmp_path / lib.__name__),
            data,
            loss,
        )
        after = model.state_dict()
        changed = {k for k, v in before.items() if not torch.equal(v, after[k])}
        assert changed and all("lora_" in k for k in changed), sorted(changed)[:5]
        assert all(torch.equal(v, after[k]) for k, v in before.items() if "lora_" not in k)
        results.append((model, recorder))
    (ref, ref_log), (ours, our_log) = results
    assert_same_losses(ref_log, our_log)
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL, rtol=0)
