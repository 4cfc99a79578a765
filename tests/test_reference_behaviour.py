"""Behaviours users and libraries rely on, each checked against the reference in the same test."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs
from tests.cross_encoder.conftest import make_ce

__all__ = ["make_ce"]  # the cross-encoder folder fixture, shared here


def _both(cls_name: str, folder: str, **kwargs: Any) -> tuple[Any, Any]:
    import sentence_transformers

    ours = getattr(sentrs, cls_name)(folder, device="cpu", **kwargs)
    ref = getattr(sentence_transformers, cls_name)(folder, device="cpu", **kwargs)
    return ours, ref


def test_prompt_merging_follows_the_reference(make_tiny_st: Callable[..., str]) -> None:
    """User prompts win, a None asks for the saved prompt, "" is kept, and the saved default prompt name applies."""
    folder = make_tiny_st(prompts={"query": "query: ", "doc": "passage: "})
    for kwargs in (
        {},
        {"prompts": {"query": None}},
        {"prompts": {"query": ""}},
        {"prompts": {"query": "q: ", "other": "o: "}},
        {"prompts": {"doc": None}, "default_prompt_name": "doc"},
    ):
        ours, ref = _both("SentenceTransformer", folder, **kwargs)
        assert ours.prompts == ref.prompts, kwargs
        assert ours.default_prompt_name == ref.default_prompt_name, kwargs


def test_save_none_and_custom_module_save(tmp_path: Path, make_tiny_st: Callable[..., str]) -> None:
    ours, ref = _both("SentenceTransformer", make_tiny_st())
    assert ours.save(None) is None and ref.save(None) is None

    class OldStyle(torch.nn.Module):  # a custom module whose save() predates safe_serialization
        def forward(self, features: dict[str, Any]) -> dict[str, Any]:
            return features

        def save(self, path: str) -> None:
            Path(path, "old_style.json").write_text("{}")

    model = sentrs.SentenceTransformer(modules=[*list(ours), OldStyle()], device="cpu")
    model.save(str(tmp_path / "saved"))
    saved = json.loads((tmp_path / "saved" / "modules.json").read_text())
    assert os.path.isfile(tmp_path / "saved" / saved[-1]["path"] / "old_style.json")


def test_use_auth_token_warns_and_conflicts(make_tiny_st: Callable[..., str]) -> None:
    import sentence_transformers

    folder = make_tiny_st()
    for cls in (sentrs.SentenceTransformer, sentence_transformers.SentenceTransformer):
        with pytest.warns(FutureWarning, match="use_auth_token"):
            cls(folder, device="cpu", use_auth_token=False)
        with pytest.raises(ValueError, match="token"), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            cls(folder, device="cpu", use_auth_token="a", token="b")


def test_public_class_attributes() -> None:
    import sentence_transformers
    from sentence_transformers.sentence_transformer.modules import Pooling as RefPooling
    from sentence_transformers.sparse_encoder.modules import SpladePooling as RefSpladePooling

    for name in ("SentenceTransformer", "SparseEncoder"):
        ours = getattr(sentrs, name).SUPPORTED_SIMILARITY_FN_NAMES
        assert tuple(ours) == tuple(getattr(sentence_transformers, name).SUPPORTED_SIMILARITY_FN_NAMES)
    assert tuple(sentrs.Pooling.POOLING_MODES) == tuple(RefPooling.POOLING_MODES)
    assert tuple(sentrs.SpladePooling.SPLADE_POOLING_MODES) == tuple(RefSpladePooling.SPLADE_POOLING_MODES)


def test_encode_query_calls_encode_with_the_reference_keywords(make_tiny_st: Callable[..., str]) -> None:
    """Subclasses that override encode see the same call from encode_query/encode_document as in the reference."""
    import sentence_transformers

    folder = make_tiny_st(prompts={"query": "query: ", "document": "doc: "})
    calls: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = {"ours": [], "ref": []}

    def recording(base: type, key: str) -> type:
        class Recording(base):  # type: ignore[misc,valid-type]
            def encode(self, *args: Any, **kwargs: Any) -> Any:
                calls[key].append((args, kwargs))
                return super().encode(*args, **kwargs)

        return Recording

    ours = recording(sentrs.SentenceTransformer, "ours")(folder, device="cpu")
    ref = recording(sentence_transformers.SentenceTransformer, "ref")(folder, device="cpu")
    for model in (ours, ref):
        model.encode_query(["a query"], batch_size=4)
        model.encode_document("a document", normalize_embeddings=True)
    for (o_args, o_kwargs), (r_args, r_kwargs) in zip(calls["ours"], calls["ref"]):
        assert o_args == r_args == ()
        assert set(o_kwargs) == set(r_kwargs)
        for key in ("inputs", "prompt_name", "prompt", "batch_size", "task", "normalize_embeddings"):
            assert o_kwargs[key] == r_kwargs[key], key


@pytest.mark.parametrize("cls_name", ["SentenceTransformer", "CrossEncoder"])
def test_forward_hooks_see_every_batch(
    cls_name: str, make_tiny_st: Callable[..., str], make_ce: Callable[[int], str]
) -> None:
    """encode/predict run the model through nn.Module.__call__, so a forward hook on the model fires per batch."""
    folder = make_tiny_st() if cls_name == "SentenceTransformer" else make_ce(1)
    counts = {}
    for name, model in zip(("ours", "ref"), _both(cls_name, folder)):
        seen: list[int] = []
        model.register_forward_hook(lambda module, args, output, seen=seen: seen.append(1))
        texts = ["a", "b c", "d e f", "g"]
        if cls_name == "SentenceTransformer":
            model.encode(texts, batch_size=2)
        else:
            model.predict([(t, t) for t in texts], batch_size=2)
        counts[name] = len(seen)
    assert counts["ours"] == counts["ref"] == 2


def test_engine_and_torch_paths_agree_on_prompts(tmp_path: Path, make_tiny_st: Callable[..., str]) -> None:
    """The prompt rules hold on the engine-only path too (same merge code)."""
    folder = str(tmp_path / "st")
    shutil.copytree(make_tiny_st(prompts={"query": "query: "}), folder)
    sentrs.SentenceTransformer(folder, backend="onnx")  # exports
    engine = sentrs.SentenceTransformer(folder, backend="onnx", prompts={"query": None})
    assert engine.runs_in_engine and engine.prompts["query"] == "query: "
    np.testing.assert_allclose(engine.encode_query(["x"]), engine.encode(["x"], prompt="query: "), atol=1e-6, rtol=0)


def test_state_dict_keys_and_modalities_match(minilm_path: str, ref_minilm: Any) -> None:
    """The Transformer keeps its model as ``model`` (state_dict keys ``0.model.*``), as in the reference, so state
    dicts move between the libraries; ``auto_model``, ``config``, ``processor``, ``modalities`` and ``supports``
    answer the same."""
    ours = sentrs.SentenceTransformer(minilm_path, device="cpu")
    assert list(ours.state_dict()) == list(ref_minilm.state_dict())
    ours.load_state_dict(ref_minilm.state_dict())
    assert ours[0].auto_model is ours[0].model and ours[0].config.hidden_size == ref_minilm[0].config.hidden_size
    assert type(ours[0].processor).__name__ == type(ref_minilm[0].processor).__name__
    assert ours.modalities == ref_minilm.modalities == ours[0].modalities
    assert ours.supports("text") and ref_minilm.supports("text")


def test_dense_without_output_key_writes_to_its_input_key() -> None:
    """A Dense on a custom feature key writes back to that key when no output key is given, as in the reference."""
    from sentence_transformers.base.modules import Dense as RefDense

    torch.manual_seed(0)
    ref = RefDense(4, 4, module_input_name="token_embeddings")
    ours = sentrs.Dense(4, 4, module_input_name="token_embeddings")
    ours.load_state_dict(ref.state_dict())
    assert ours.module_output_name == ref.module_output_name == "token_embeddings"
    x = torch.randn(2, 3, 4)
    got = ours({"token_embeddings": x.clone()})
    want = ref({"token_embeddings": x.clone()})
    assert set(got) == set(want) == {"token_embeddings"}
    torch.testing.assert_close(got["token_embeddings"], want["token_embeddings"])


def test_compiled_model_encodes_like_the_reference(make_tiny_st: Callable[..., str]) -> None:
    """``model.compile()`` (torch.compile in place) runs through encode: the Rust host kernels step aside while
    dynamo traces, so the compiled graph is plain torch; embeddings equal the reference's (1e-5, torch.compile may
    fuse float ops differently)."""
    ours, ref = _both("SentenceTransformer", make_tiny_st(pooling_mode="mean", normalize=True))
    texts = ["a short one", "a somewhat longer sentence for the compiled model", ""]
    want = ref.encode(texts)
    ours.compile()
    np.testing.assert_allclose(ours.encode(texts, batch_size=2), want, atol=1e-5, rtol=0)
