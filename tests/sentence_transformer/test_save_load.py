"""Two-way folder compatibility: sentrs saves load in the reference with identical outputs, and the reverse."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import TEXTS

ATOL = 1e-5


def test_sentrs_save_loads_in_reference(tmp_path: Path, make_tiny_st: Callable[..., str]) -> None:
    import sentence_transformers

    import sentrs

    src = make_tiny_st(("cls", "mean"), dense=True, normalize=True, prompts={"query": "q: "})
    ours = sentrs.SentenceTransformer(src, device="cpu", similarity_fn_name="dot", truncate_dim=8)
    out = tmp_path / "saved"
    ours.save(str(out))
    ref = sentence_transformers.SentenceTransformer(str(out), device="cpu")
    assert ref.similarity_fn_name == "dot" and ref.truncate_dim == 8 and ref.prompts["query"] == "q: "
    np.testing.assert_allclose(ref.encode(TEXTS), ours.encode(TEXTS), atol=ATOL)
    modules = json.loads((out / "modules.json").read_text())
    assert [m["type"] for m in modules] == [
        "sentence_transformers.base.modules.transformer.Transformer",
        "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
        "sentence_transformers.base.modules.dense.Dense",
        "sentence_transformers.base.modules.normalize.Normalize",
    ]
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Dense", "3_Normalize"]


def test_saved_files_match_reference_layout(
    tmp_path: Path, minilm_path: str, ref_minilm: Any, our_minilm: Any
) -> None:
    ref_dir, our_dir = tmp_path / "ref", tmp_path / "ours"
    ref_minilm.save(str(ref_dir))
    our_minilm.save(str(our_dir))
    ref_files = {str(p.relative_to(ref_dir)) for p in ref_dir.rglob("*")}
    our_files = {str(p.relative_to(our_dir)) for p in our_dir.rglob("*")}
    assert ref_files == our_files
    for name in ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "2_Normalize/config.json"):
        assert json.loads((our_dir / name).read_text()) == json.loads((ref_dir / name).read_text()), name
    ours_cfg = json.loads((our_dir / "config_sentence_transformers.json").read_text())
    ref_cfg = json.loads((ref_dir / "config_sentence_transformers.json").read_text())
    assert {k: v for k, v in ours_cfg.items() if k != "__version__"} == {
        k: v for k, v in ref_cfg.items() if k != "__version__"
    }
    assert ours_cfg["__version__"]["sentence_transformers"] == "6.2.0"


def test_reference_save_loads_in_sentrs(tmp_path: Path, ref_minilm: Any) -> None:
    import sentrs

    out = tmp_path / "ref_saved"
    ref_minilm.save(str(out))
    ours = sentrs.SentenceTransformer(str(out), device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), ref_minilm.encode(TEXTS), atol=ATOL)


def test_roundtrip_keeps_everything(tmp_path: Path, our_minilm: Any) -> None:
    import sentrs

    our_minilm.save(str(tmp_path / "a"))
    again = sentrs.SentenceTransformer(str(tmp_path / "a"), device="cpu")
    np.testing.assert_allclose(again.encode(TEXTS), our_minilm.encode(TEXTS), atol=1e-6)
    assert again.max_seq_length == our_minilm.max_seq_length


def test_save_over_existing_folder_keeps_other_files(tmp_path: Path, make_tiny_st: Callable[..., str]) -> None:
    import sentrs

    model = sentrs.SentenceTransformer(make_tiny_st("mean"), device="cpu")
    out = tmp_path / "m"
    model.save(str(out))
    (out / "onnx").mkdir()
    (out / "onnx" / "model.onnx").write_text("keep me")
    model.save(str(out))
    assert (out / "onnx" / "model.onnx").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_failed_save_leaves_old_folder_intact(
    tmp_path: Path, make_tiny_st: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sentrs
    from sentrs.sentence_transformer.modules import Pooling

    model = sentrs.SentenceTransformer(make_tiny_st("mean"), device="cpu")
    out = tmp_path / "m"
    model.save(str(out))
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))

    def broken_save(self: Any, output_path: str, safe_serialization: bool = True) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Pooling, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        model.save(str(out))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    sentrs.SentenceTransformer(str(out), device="cpu")  # still loads


def test_legacy_module_types_and_pooling_keys(
    tmp_path: Path, minilm_path: str, copy_dir: Callable[[str], str]
) -> None:
    """The bundled MiniLM uses the legacy `sentence_transformers.models.*` types and boolean pooling keys and has
    no 2_Normalize folder; a legacy Dense config with only four keys loads too."""
    import sentrs

    folder = copy_dir(minilm_path)
    assert not os.path.exists(os.path.join(folder, "2_Normalize"))
    model = sentrs.SentenceTransformer(folder, device="cpu")
    assert [type(m).__name__ for m in model] == ["Transformer", "Pooling", "Normalize"]


def test_modules_list_construction(tiny_bert_dir: str) -> None:
    """SentenceTransformer(modules=[...]) built from the same parts as the reference gives the same output."""
    import sentence_transformers
    from sentence_transformers import models as ref_models

    import sentrs
    from sentrs import models

    ours = sentrs.SentenceTransformer(
        modules=[models.Transformer(tiny_bert_dir), models.Pooling(32, pooling_mode="max")], device="cpu"
    )
    ref = sentence_transformers.SentenceTransformer(
        modules=[ref_models.Transformer(tiny_bert_dir), ref_models.Pooling(32, pooling_mode="max")], device="cpu"
    )
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL)


def test_hub_id_resolves_from_local_cache(tmp_path: Path, make_tiny_st: Callable[..., str]) -> None:
    """A Hub id is served from a Hugging Face cache folder without network (HF_HUB_OFFLINE is set in tests);
    a bare name gets the sentence-transformers organisation, as in the reference."""
    import shutil

    import sentrs

    cache = tmp_path / "hub"
    repo = cache / "models--sentence-transformers--tiny-test"
    snapshot = repo / "snapshots" / ("a" * 40)
    shutil.copytree(make_tiny_st("mean"), snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("a" * 40)
    by_id = sentrs.SentenceTransformer("sentence-transformers/tiny-test", cache_folder=str(cache), device="cpu")
    by_name = sentrs.SentenceTransformer("tiny-test", cache_folder=str(cache), device="cpu")
    np.testing.assert_allclose(by_id.encode(TEXTS[:2]), by_name.encode(TEXTS[:2]), atol=0)


def test_push_to_hub_offline_gives_the_hub_error(make_tiny_st: Callable[..., str], monkeypatch: Any) -> None:
    """push_to_hub exists with the reference's signature; offline, huggingface_hub's own error reaches the user."""
    import inspect

    import huggingface_hub
    import sentence_transformers

    import sentrs

    ours = inspect.signature(sentrs.SentenceTransformer.push_to_hub).parameters
    assert list(ours) == list(inspect.signature(sentence_transformers.SentenceTransformer.push_to_hub).parameters)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    model = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    with pytest.raises(Exception, match="(?i)offline"):
        model.push_to_hub("someone/tiny", token="hf_not_a_token")
    with pytest.raises(ValueError, match="repo_id"):
        model.push_to_hub("")


def test_save_to_hub_is_the_deprecated_push(make_tiny_st: Callable[..., str], monkeypatch: Any) -> None:
    """save_to_hub keeps the reference's signature and its `organization` rules, then pushes (offline: the hub's
    error)."""
    import inspect

    import huggingface_hub
    import sentence_transformers

    import sentrs

    ours = inspect.signature(sentrs.SentenceTransformer.save_to_hub).parameters
    assert list(ours) == list(inspect.signature(sentence_transformers.SentenceTransformer.save_to_hub).parameters)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    model = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    with pytest.raises(ValueError, match="does not match the organization"):
        model.save_to_hub("org-a/tiny", organization="org-b")
    with pytest.raises(Exception, match="(?i)offline"):
        model.save_to_hub("tiny", organization="someone", token="hf_not_a_token")
