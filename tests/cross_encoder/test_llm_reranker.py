"""LLM rerankers: a causal LM CrossEncoder (Transformer text-generation + LogitScore) against the reference.

The folders are a tiny random Llama (2 layers, hidden 32) with a word-level tokenizer that has "yes" and "no" tokens,
one without and one with a chat template (the reference then renders each pair as a "query" and a "document"
message). Both libraries feed the model the same ids through the same torch kernels, so scores agree to atol 1e-5
(float32 rounding of the same computation; in practice they are identical).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sentence_transformers
import torch

import sentrs
from sentrs.base.modules import Transformer
from sentrs.cross_encoder.modules import LogitScore

ATOL = 1e-5

WORDS = (
    "yes no what is the capital of france paris berlin a city in germany query document relevant judge answer "
    "only cat dog river bank money"
).split()
SPECIALS = ["<unk>", "<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
# Renders every message as "<|im_start|>role : content<|im_end|>", then opens the answer (the scored position).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} : {{ m['content'] }}<|im_end|>{% endfor %}<|im_start|>answer :"
)
# A template that only knows user and system turns: a (query, document) pair renders to nothing.
USER_ONLY_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] in ['user', 'system'] %}<|im_start|>{{ m['content'] }}<|im_end|>"
    "{% endif %}{% endfor %}<|im_start|>answer :"
)
PAIRS = [
    ("what is the capital of france ?", "paris is the capital of france , a city on a river"),
    ("cat", "a dog in germany is a city"),
    ("judge", "berlin"),
    ("what is a bank", "money in the bank"),
    ("relevant ?", "yes no"),
]
PROMPT = "judge only : "


def _build(folder: Path, template: str | None = None, words: list[str] = WORDS, unk: bool = True) -> str:
    """Saves the seeded tiny causal LM and its tokenizer to ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.add_special_tokens(SPECIALS)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A </s> $B", special_tokens=[("<s>", 2), ("</s>", 3)]
    )
    special = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>"}
    if unk:
        special["unk_token"] = "<unk>"
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=64, **special)
    if template is not None:
        tokenizer.chat_template = template
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=2,
        eos_token_id=3,
        initializer_range=0.2,  # wide weights: well-separated scores, so rankings do not hinge on rounding
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def llm_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``plain``: no chat template (pairs are tokenizer pairs); ``chat``: pairs go through the chat template."""
    return {
        "plain": _build(tmp_path_factory.mktemp("llm_plain")),
        "chat": _build(tmp_path_factory.mktemp("llm_chat"), CHAT_TEMPLATE),
    }


@pytest.fixture(params=["plain", "chat"])
def folder(request: pytest.FixtureRequest, llm_folders: dict[str, str]) -> str:
    return llm_folders[request.param]


def _both(path: str, **kwargs: Any) -> tuple[Any, Any]:
    return (
        sentence_transformers.CrossEncoder(path, device="cpu", **kwargs),
        sentrs.CrossEncoder(path, device="cpu", **kwargs),
    )


# ---------------------------------------------------------------------------------------------------- loading
def test_bare_causal_folder_loads_as_transformer_and_logit_score(folder: str) -> None:
    ref, ours = _both(folder)
    assert [type(m).__name__ for m in ours] == ["Transformer", "LogitScore"]
    assert ours[0].get_config_dict() == ref[0].get_config_dict()
    assert (
        ours[1].get_config_dict()
        == ref[1].get_config_dict()
        == {
            "true_token_id": len(SPECIALS) + WORDS.index("yes"),
            "false_token_id": len(SPECIALS) + WORDS.index("no"),
            "module_input_name": "causal_logits",
        }
    )
    assert ours[0].renders_messages == ("message" in ref[0].modality_config)
    assert ours[0].tokenizer.padding_side == ref[0].tokenizer.padding_side == "left"
    assert ours.num_labels == ref.num_labels == 1
    assert type(ours.activation_fn) is type(ref.activation_fn) is torch.nn.Sigmoid
    assert ours.max_seq_length == ref.max_seq_length


def test_preprocess_gives_the_reference_ids(folder: str) -> None:
    ref, ours = _both(folder)
    for prompt in (None, PROMPT):
        expected = ref.preprocess(PAIRS, prompt=prompt)
        got = ours.preprocess(PAIRS, prompt=prompt)
        assert got["input_ids"].tolist() == expected["input_ids"].tolist()
        assert got["attention_mask"].tolist() == expected["attention_mask"].tolist()
        assert got["modality"] == expected["modality"]
        assert got["logits_to_keep"] == expected["logits_to_keep"] == 1
        assert bool(got["attention_mask"][:, -1].all())  # left padding: every row ends in a real token


# ---------------------------------------------------------------------------------------------------- scoring
@pytest.mark.parametrize("prompt", [None, PROMPT])
@pytest.mark.parametrize("max_length", [None, 18])
def test_predict_matches_reference(folder: str, prompt: str | None, max_length: int | None) -> None:
    """max_length=18 cuts the longer pairs; with a chat template the template's closing tokens are written back."""
    ref, ours = _both(folder, max_length=max_length)
    expected = ref.predict(PAIRS, prompt=prompt)
    got = ours.predict(PAIRS, prompt=prompt)
    assert got.dtype == np.float32 and got.shape == (len(PAIRS),)
    np.testing.assert_allclose(got, expected, atol=ATOL)
    assert np.ptp(got) > 1e-3  # the pairs really get different scores
    # One pair: a scalar; small batches: the same scores whatever the batch composition.
    single = ours.predict(PAIRS[0], prompt=prompt)
    assert isinstance(single, np.float32)
    np.testing.assert_allclose(single, expected[0], atol=ATOL)
    np.testing.assert_allclose(ours.predict(PAIRS, prompt=prompt, batch_size=2), expected, atol=ATOL)
    raw = ours.predict(PAIRS, prompt=prompt, activation_fn=torch.nn.Identity(), convert_to_tensor=True)
    np.testing.assert_allclose(raw.numpy(), ref.predict(PAIRS, prompt=prompt, activation_fn=torch.nn.Identity()))


def test_truncated_chat_rows_end_with_the_template(llm_folders: dict[str, str]) -> None:
    ref, ours = _both(llm_folders["chat"], max_length=12)
    ids = ours.preprocess(PAIRS)["input_ids"]
    assert ids.tolist() == ref.preprocess(PAIRS)["input_ids"].tolist()
    closing = ours.tokenizer("<|im_end|> <|im_start|> answer :", add_special_tokens=False)["input_ids"]
    assert ids[0, -len(closing) :].tolist() == closing  # the longest pair was cut, and still ends in the template


def test_rank_matches_reference(folder: str) -> None:
    ref, ours = _both(folder)
    documents = [document for _, document in PAIRS]
    for kwargs in ({}, {"top_k": 2, "return_documents": True}, {"prompt": PROMPT}):
        expected = ref.rank("what is the capital of france ?", documents, **kwargs)
        got = ours.rank("what is the capital of france ?", documents, **kwargs)
        assert [hit["corpus_id"] for hit in got] == [hit["corpus_id"] for hit in expected]
        np.testing.assert_allclose([hit["score"] for hit in got], [hit["score"] for hit in expected], atol=ATOL)
        assert [hit.get("text") for hit in got] == [hit.get("text") for hit in expected]


def test_prompts_and_default_prompt_name(folder: str) -> None:
    options = {"prompts": {"judge": PROMPT}, "default_prompt_name": "judge"}
    ref, ours = _both(folder, **options)
    np.testing.assert_allclose(ours.predict(PAIRS), ref.predict(PAIRS), atol=ATOL)
    np.testing.assert_allclose(ours.predict(PAIRS), ours.predict(PAIRS, prompt=PROMPT), atol=0)
    np.testing.assert_allclose(ours.predict(PAIRS, prompt=""), ref.predict(PAIRS, prompt=""), atol=ATOL)


def test_mixed_single_texts_and_pairs(folder: str) -> None:
    """A lone text is one user message (or one tokenizer sequence), as in the reference."""
    inputs = [("cat", "dog"), "what is paris", "berlin is a city"]
    ref, ours = _both(folder)
    np.testing.assert_allclose(ours.predict(inputs), ref.predict(inputs), atol=ATOL)


def test_modules_built_by_hand(folder: str) -> None:
    """Transformer(text-generation) + LogitScore with other settings: every position's logits, a single token."""
    yes = len(SPECIALS) + WORDS.index("yes")
    transformer = Transformer(
        folder, transformer_task="text-generation", processing_kwargs={"text": {"logits_to_keep": 0}}
    )
    ours = sentrs.CrossEncoder(modules=[transformer, LogitScore(true_token_id=yes)], device="cpu")
    ref = sentence_transformers.CrossEncoder(
        modules=[
            sentence_transformers.base.modules.Transformer(
                folder, transformer_task="text-generation", processing_kwargs={"text": {"logits_to_keep": 0}}
            ),
            sentence_transformers.cross_encoder.modules.LogitScore(true_token_id=yes),
        ],
        device="cpu",
    )
    np.testing.assert_allclose(ours.predict(PAIRS), ref.predict(PAIRS), atol=ATOL)
    features = ours.preprocess(PAIRS)
    with torch.no_grad():
        logits = ours(features)["causal_logits"]
    assert logits.shape == (len(PAIRS), features["input_ids"].shape[1], len(SPECIALS) + len(WORDS))


@pytest.mark.parametrize(
    "processing_kwargs",
    [
        {"chat_template": {"restore_suffix": False}},
        {"chat_template": {"max_length": 14}},
        {"text": {"max_length": 16}},
        {"text": {"truncation": False}},
    ],
)
def test_chat_processing_kwargs(llm_folders: dict[str, str], processing_kwargs: dict[str, Any]) -> None:
    """apply_chat_template settings, the suffix restore switch and text length settings, as in the reference."""
    kwargs = {"transformer_task": "text-generation", "max_seq_length": 12, "processing_kwargs": processing_kwargs}
    ours = Transformer(llm_folders["chat"], **kwargs)
    ref = sentence_transformers.base.modules.Transformer(llm_folders["chat"], **kwargs)
    for prompt in (None, PROMPT):
        expected = ref.preprocess(PAIRS, prompt=prompt)["input_ids"].tolist()
        assert ours.preprocess(PAIRS, prompt=prompt)["input_ids"].tolist() == expected


# ---------------------------------------------------------------------------------------------------- save / load
def _json(path: Path) -> Any:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data.pop("__version__", None)
        data.pop("transformers_version", None)
    return data


def test_saved_files_match_the_reference(folder: str, tmp_path: Path) -> None:
    ref, ours = _both(folder)
    ref.save(str(tmp_path / "ref"))
    ours.save(str(tmp_path / "ours"))
    for name in (
        "modules.json",
        "sentence_bert_config.json",
        "1_LogitScore/config.json",
        "config_sentence_transformers.json",
        "config.json",
    ):
        assert _json(tmp_path / "ours" / name) == _json(tmp_path / "ref" / name), name
    assert sorted(os.listdir(tmp_path / "ours" / "1_LogitScore")) == ["config.json"]
    assert os.path.exists(tmp_path / "ours" / "chat_template.jinja") == ("chat" in folder)


def test_saved_folders_load_both_ways(folder: str, tmp_path: Path) -> None:
    ref, ours = _both(folder)
    expected = ref.predict(PAIRS, prompt=PROMPT)
    ref.save(str(tmp_path / "ref"))
    ours.save(str(tmp_path / "ours"))
    from_ref = sentrs.CrossEncoder(str(tmp_path / "ref"), device="cpu")
    from_ours = sentence_transformers.CrossEncoder(str(tmp_path / "ours"), device="cpu")
    assert [type(m).__name__ for m in from_ref] == ["Transformer", "LogitScore"]
    np.testing.assert_allclose(from_ref.predict(PAIRS, prompt=PROMPT), expected, atol=ATOL)
    np.testing.assert_allclose(from_ours.predict(PAIRS, prompt=PROMPT), expected, atol=ATOL)
    np.testing.assert_allclose(
        sentrs.CrossEncoder(str(tmp_path / "ours"), device="cpu").predict(PAIRS, prompt=PROMPT), expected, atol=ATOL
    )


def test_text_only_config_keeps_text_inputs(llm_folders: dict[str, str], tmp_path: Path) -> None:
    """A saved Transformer config without modality_config (older releases) stays text-only, even with a chat
    template: its pairs are tokenizer pairs, as when it was saved."""
    path = tmp_path / "old"
    sentrs.CrossEncoder(llm_folders["chat"], device="cpu").save(str(path))
    config_path = path / "sentence_bert_config.json"
    config = json.loads(config_path.read_text())
    del config["modality_config"], config["module_output_name"]
    config_path.write_text(json.dumps(config))
    ref, ours = _both(str(path))
    assert not ours[0].renders_messages and ours[0].modality_config == ref[0].modality_config
    np.testing.assert_allclose(ours.predict(PAIRS), ref.predict(PAIRS), atol=ATOL)


def test_onnx_and_openvino_backends_are_refused(llm_folders: dict[str, str], tmp_path: Path) -> None:
    from sentrs.base.engine.steps import NeedsTorch, load_host_pipeline
    from sentrs.exceptions import UnsupportedFeatureError

    for path in (llm_folders["plain"], llm_folders["chat"]):
        # The engine (the exported-file path) leaves causal LMs to torch before it looks for an exported file.
        with pytest.raises(NeedsTorch):
            load_host_pipeline(path, "onnx", None, "sequence-classification")
        for backend in ("onnx", "openvino"):
            with pytest.raises(UnsupportedFeatureError, match=r"runs with backend='torch' only"):
                sentrs.CrossEncoder(path, backend=backend, device="cpu")
    saved = tmp_path / "saved"
    sentrs.CrossEncoder(llm_folders["plain"], device="cpu").save(str(saved))
    with pytest.raises(NeedsTorch):
        load_host_pipeline(str(saved), "onnx", None, "sequence-classification")
    assert not os.path.exists(saved / "onnx")


# ---------------------------------------------------------------------------------------------------- training
def test_one_training_step_matches_reference(folder: str, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("accelerate")
    import sentence_transformers.cross_encoder.losses

    import sentrs.cross_encoder.losses
    from tests.training_utils import assert_same_losses, run

    data = datasets.Dataset.from_dict(
        {
            "query": [f"what is {WORDS[i % len(WORDS)]}" for i in range(8)],
            "answer": [f"the {WORDS[(i * 5) % len(WORDS)]} in {WORDS[(i * 3) % len(WORDS)]}" for i in range(8)],
            "label": [float(i % 2) for i in range(8)],
        }
    )
    results = []
    for lib in (sentence_transformers, sentrs):
        model = lib.CrossEncoder(folder, device="cpu")
        loss = lib.cross_encoder.losses.BinaryCrossEntropyLoss(model)
        recorder, _ = run(
            lib.CrossEncoderTrainer,
            lib.CrossEncoderTrainingArguments,
            model,
            str(tmp_path / lib.__name__),
            data,
            loss,
            max_steps=1,
        )
        results.append((recorder, model.predict(PAIRS)))
    (ref_rec, ref_scores), (our_rec, our_scores) = results
    assert np.isfinite(our_rec.losses()).all()
    assert_same_losses(ref_rec, our_rec)
    np.testing.assert_allclose(our_scores, ref_scores, atol=ATOL)


# ---------------------------------------------------------------------------------------------------- errors
def test_missing_yes_no_tokens(tmp_path: Path) -> None:
    """Without "yes"/"no" and without an unknown token the default LogitScore cannot be built; with an unknown token
    both libraries silently score that token, as the reference does."""
    words = [w for w in WORDS if w not in ("yes", "no")]
    path = _build(tmp_path / "no_unk", words=words, unk=False)
    with pytest.raises(ValueError, match=r"'yes' and/or 'no'"):
        sentence_transformers.CrossEncoder(path, device="cpu")
    with pytest.raises(ValueError, match=r"has no 'yes' and/or 'no' token"):
        sentrs.CrossEncoder(path, device="cpu")
    with_unk = _build(tmp_path / "unk", words=words)
    ref, ours = _both(with_unk)
    assert ours[1].get_config_dict() == ref[1].get_config_dict()
    assert ours[1].true_token_id == ours[1].false_token_id == 0


def test_chat_template_without_pair_roles(tmp_path: Path) -> None:
    path = _build(tmp_path / "user_only", USER_ONLY_TEMPLATE)
    ref, ours = _both(path)
    with pytest.raises(ValueError, match="cannot carry a 'query'/'document' pair"):
        ref.predict(PAIRS)
    with pytest.raises(ValueError, match=r"cannot render a \(query, document\) pair: the 'query' and 'document'"):
        ours.predict(PAIRS)
    # Lone texts are user messages, which the template renders.
    texts = ["what is paris", "cat"]
    assert ours.preprocess(texts)["input_ids"].tolist() == ref.preprocess(texts)["input_ids"].tolist()


def test_padding_side_changed_after_loading(folder: str) -> None:
    ours = sentrs.CrossEncoder(folder, device="cpu")
    ours.tokenizer.padding_side = "right"
    with pytest.raises(ValueError, match=r"needs left padding.*padding_side = 'left'"):
        ours.predict(PAIRS)
    ours.tokenizer.padding_side = "left"
    assert ours.predict(PAIRS).shape == (len(PAIRS),)


def test_bad_settings(folder: str) -> None:
    transformer = Transformer(
        folder, transformer_task="text-generation", processing_kwargs={"text": {"logits_to_keep": -1}}
    )
    with pytest.raises(ValueError, match="logits_to_keep must be a non-negative integer, got -1"):
        transformer.preprocess(PAIRS)
    with pytest.raises(ValueError, match="modality_config may hold 'text' and 'message'"):
        Transformer(
            folder,
            transformer_task="text-generation",
            modality_config={"image": {"method": "forward", "method_output_name": "logits"}},
            module_output_name="causal_logits",
        )
    with pytest.raises(ValueError, match="message format must be"):
        Transformer(
            folder,
            transformer_task="text-generation",
            modality_config={"message": {"method": "forward", "method_output_name": "logits", "format": "json"}},
            module_output_name="causal_logits",
        )
    ours = sentrs.CrossEncoder(folder, device="cpu")
    with pytest.raises(sentrs.exceptions.InputTypeError):
        ours.predict([("a", 1)])


# ---------------------------------------------------------------------------------------------------- LogitScore
def test_logit_score_module(tmp_path: Path) -> None:
    logits = torch.randn(3, 2, 10)
    reference = sentence_transformers.cross_encoder.modules.LogitScore(4, 7)
    for false_token_id in (7, None):
        ours = LogitScore(4, false_token_id)
        expected = sentence_transformers.cross_encoder.modules.LogitScore(4, false_token_id)(
            {"causal_logits": logits}
        )["scores"]
        got = ours({"causal_logits": logits})["scores"]
        assert got.shape == (3, 1)
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert LogitScore.reference_type == f"{type(reference).__module__}.{type(reference).__qualname__}"
    ours = LogitScore(4, 7, module_input_name="logits")
    ours.save(str(tmp_path))
    assert json.loads((tmp_path / "config.json").read_text()) == {
        "true_token_id": 4,
        "false_token_id": 7,
        "module_input_name": "logits",
    }
    assert LogitScore.load(str(tmp_path)).get_config_dict() == ours.get_config_dict()
    with pytest.raises(ValueError, match="true_token_id must be a non-negative integer"):
        LogitScore(-1)
    with pytest.raises(ValueError, match="false_token_id must be"):
        LogitScore(1, "no")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outside the model's vocabulary of 10 tokens"):
        LogitScore(12, 1)({"causal_logits": logits})
    with pytest.raises(KeyError, match="did not write"):
        LogitScore(1, 2)({"token_embeddings": logits})


def test_logit_score_import_paths() -> None:
    import sentrs.cross_encoder.modules.logit_score as module

    assert sentrs.cross_encoder.modules.LogitScore is module.LogitScore is LogitScore


def test_quiet_loading(folder: str, caplog: pytest.LogCaptureFixture) -> None:
    """Loading and scoring log nothing at warning level (the reference's folders are this library's own)."""
    with caplog.at_level(logging.WARNING, logger="sentrs"):
        sentrs.CrossEncoder(folder, device="cpu").predict(PAIRS)
    assert not [r for r in caplog.records if r.name.startswith("sentrs")]
