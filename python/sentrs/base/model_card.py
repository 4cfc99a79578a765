"""Model card data: what a model, and a training run, record for the ``README.md`` that ``save`` writes.

Every model holds a :class:`BaseModelCardData` subclass in ``model.model_card_data`` (the reference's classes, with
the same fields and method names). The trainer's model-card callback (:class:`BaseModelCardCallback`, see
:mod:`sentrs.base.model_card_callback`) and the evaluators fill it during training; :func:`generate_model_card`
turns it into the README (:mod:`sentrs.base.model_card_readme`) when the model is saved.

This module imports neither torch nor transformers: a model that runs its exported file without torch builds its
card data too. The callbacks subclass ``transformers.TrainerCallback``, so they load on first use.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import random
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from huggingface_hub import CardData

from sentrs._lazy import lazy_module_attrs
from sentrs.base.registry import fullname

if TYPE_CHECKING:
    from sentrs.base.model_card_callback import BaseModelCardCallback

__all__ = [
    "BaseModelCardCallback",
    "BaseModelCardData",
    "format_score_matrix",
    "generate_model_card",
    "get_losses",
    "get_versions",
    "hub_snapshot",
    "markdown_table",
]

logger = logging.getLogger(__name__)

__getattr__, __dir__ = lazy_module_attrs(__name__, {"BaseModelCardCallback": "sentrs.base.model_card_callback"})

#: The keys of the README's YAML front matter, in the order they are written.
YAML_KEYS = (
    "language",
    "license",
    "library_name",
    "tags",
    "datasets",
    "metrics",
    "pipeline_tag",
    "widget",
    "model-index",
    "co2_eq_emissions",
    "base_model",
)
# Fields that to_dict() leaves out: objects, caches and bookkeeping the README does not show.
_PRIVATE_FIELDS = (
    "model",
    "eval_results_dict",
    "save_dir",
    "code_carbon_callback",
    "template_path",
    "_cached_dict",
    "_training_start_time",
    "evaluation_duration",
    "snippet_output",
)
#: How many rows the dataset statistics read (as in the reference: "the first 100 samples").
STATS_ROWS = 100
#: How many rows the README shows from each dataset.
SAMPLE_ROWS = 3

_SBERT_CITATION = """
@inproceedings{reimers-2019-sentence-bert,
    title = "Sentence-BERT: Sentence Embeddings using Siamese BERT-Networks",
    author = "Reimers, Nils and Gurevych, Iryna",
    booktitle = "Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing",
    month = "11",
    year = "2019",
    publisher = "Association for Computational Linguistics",
    url = "https://arxiv.org/abs/1908.10084",
}
"""

# The distributions listed under "Framework Versions", by the key the reference's ``version`` dict uses.
_VERSION_DISTRIBUTIONS = {
    "sentrs": "sentrs",
    "transformers": "transformers",
    "torch": "torch",
    "accelerate": "accelerate",
    "datasets": "datasets",
    "tokenizers": "tokenizers",
}


def get_versions() -> dict[str, str]:
    """The versions of Python and the libraries a saved model depends on (read from the installed metadata, so
    nothing is imported); ``sentence_transformers`` is the folder format version sentrs writes."""
    from sentrs.base.model import REFERENCE_FORMAT_VERSION

    versions = {"python": platform.python_version(), "sentence_transformers": REFERENCE_FORMAT_VERSION}
    for key, distribution in _VERSION_DISTRIBUTIONS.items():
        try:
            versions[key] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def format_duration(seconds: float) -> str:
    """``42.0 seconds``, ``3.5 minutes``, ``1.2 hours`` or ``2.0 days``."""
    for unit, size, limit in (("seconds", 1, 60), ("minutes", 60, 3600), ("hours", 3600, 86400)):
        if seconds < limit:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds / 86400:.1f} days"


def get_losses(loss: Any) -> list[Any]:
    """The loss modules of a run: the values of a per-dataset dict, plus the losses they wrap (``.loss`` of
    Matryoshka and similar wrappers, the regularizers of sparse losses), each once."""
    losses = list(loss.values()) if isinstance(loss, Mapping) else [loss]
    for current in losses:  # grows while it is walked: wrapped losses are visited too
        for attribute in ("loss", "document_regularizer", "query_regularizer"):
            inner = getattr(current, attribute, None)
            if inner is not None and not any(inner is seen for seen in losses):
                losses.append(inner)
    return losses


def hub_snapshot(folder: str) -> tuple[str, str] | None:
    """``(repo_id, commit)`` of a Hugging Face cache snapshot folder (``.../models--org--name/snapshots/<commit>``),
    or None for any other folder."""
    parts = os.path.normpath(folder).split(os.sep)
    if len(parts) < 3 or parts[-2] != "snapshots" or not parts[-3].startswith("models--"):
        return None
    if not re.fullmatch(r"[0-9a-f]{40}", parts[-1]):
        return None
    return parts[-3][len("models--") :].replace("--", "/"), parts[-1]


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
    return flag or bool(constants.HF_HUB_OFFLINE)


def _rounded(value: Any) -> Any:
    """Floats at 4 decimals for tables; anything else as it is."""
    return round(value, 4) if isinstance(value, float) else value


def _as_python(value: Any) -> Any:
    """A numpy or torch scalar as a Python number; anything else unchanged."""
    item = getattr(value, "item", None)
    if item is not None and getattr(value, "ndim", 0) == 0:
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def _as_float(value: Any) -> float | None:
    """A metric as a float for the model index (``"0.5 (+- 0.1)"`` reads 0.5), or None."""
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    if isinstance(value, str) and value.split():
        try:
            return float(value.split()[0])
        except ValueError:
            return None
    return None


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table whose columns are the keys of ``rows`` in first-seen order; missing cells are empty."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(":--" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(row.get(column, "")) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def _html_list(items: Mapping[str, Any]) -> str:
    return "<ul>" + "".join(f"<li>{key}: {value}</li>" for key, value in items.items()) + "</ul>" if items else ""


def _example_cell(value: Any) -> str:
    """A dataset value as one Markdown table cell: long texts and lists cut, newlines and pipes escaped."""
    if isinstance(value, list) and len(value) > 5:
        text = str(value[:5])[:-1] + ", ...]"
    elif isinstance(value, str) and len(value) > 1000:
        text = value[:1000] + "..."
    else:
        text = str(value)
    return "<code>" + text.replace("\n", "<br>").replace("|", "\\|") + "</code>"


def format_score_matrix(matrix: Any) -> str:
    """A 2-d score matrix as ``print(tensor)`` shows it: ``tensor([[1.0000, 0.6660], ...])`` at 4 decimals."""
    values = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    cells = [[f"{value:.4f}" for value in row] for row in values]
    width = max((len(cell) for row in cells for cell in row), default=0)
    rows = ["[" + ", ".join(cell.rjust(width) for cell in row) + "]" for row in cells]
    return "tensor([" + (",\n" + " " * 8).join(rows) + "])"


def _to_numpy(value: Any) -> Any:
    """A torch tensor (dense or sparse, on any device) or an array-like as a numpy array."""
    if hasattr(value, "detach"):
        if str(value.layout) != "torch.strided":
            value = value.to_dense()
        value = value.detach().cpu().float().numpy()
    return np.asarray(value)


class _RunningStats:
    """Min, mean and max of a stream of numbers."""

    def __init__(self) -> None:
        self.low = float("inf")
        self.high = float("-inf")
        self.total = 0.0
        self.count = 0

    def extend(self, values: Iterable[float]) -> None:
        for value in values:
            self.low = min(self.low, value)
            self.high = max(self.high, value)
            self.total += value
            self.count += 1

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


def _is_dataset(value: Any, *names: str) -> bool:
    """Whether ``value`` is one of the ``datasets`` classes ``names`` (False when datasets is not imported)."""
    module = sys.modules.get("datasets")
    return module is not None and isinstance(value, tuple(getattr(module, name) for name in names))


@dataclass
class BaseModelCardData(CardData):
    """What the model card shows: set by the user, filled in by training, rendered into ``README.md`` on save.

    Args:
        language: the model's language(s), e.g. ``"en"`` or ``["en", "de"]``.
        license: e.g. ``"apache-2.0"``.
        model_name: the card's title (default: "<ModelClass> based on <base model>").
        model_id: the Hub id the model will have (``"user/name"``), used in the usage snippet.
        train_datasets: ``[{"name": ..., "id": ..., "revision": ...}]``, the training datasets; ``id`` is a Hub
            dataset id (checked on the Hub unless offline or ``local_files_only``).
        eval_datasets: the evaluation datasets, in the same form.
        task_name: what the model is for, in words ("semantic search, ...").
        tags: the Hub tags.
        local_files_only: never ask the Hub about datasets or the base model.
        generate_widget_examples: run the model at save time on example texts, for the usage snippet's output.
    """

    # Set by the user
    language: str | list[str] | None = field(default_factory=list)
    license: str | None = None
    model_name: str | None = None
    model_id: str | None = None
    train_datasets: list[dict[str, Any]] = field(default_factory=list)
    eval_datasets: list[dict[str, Any]] = field(default_factory=list)
    task_name: str | None = "retrieval"
    tags: list[str] = field(
        default_factory=lambda: ["sentence-transformers", "sentence-similarity", "feature-extraction"]
    )
    local_files_only: bool = False
    generate_widget_examples: bool = True

    # Filled in by loading, the trainer's callback and the evaluators
    base_model: str | None = field(default=None, init=False)
    base_model_revision: str | None = field(default=None, init=False)
    non_default_hyperparameters: dict[str, Any] = field(default_factory=dict, init=False)
    all_hyperparameters: dict[str, Any] = field(default_factory=dict, init=False)
    eval_results_dict: dict[Any, dict[str, Any]] = field(default_factory=dict, init=False)
    training_logs: list[dict[str, Any]] = field(default_factory=list, init=False)
    widget: list[dict[str, Any]] = field(default_factory=list, init=False)
    usage_examples: list[Any] | None = field(default=None, init=False)
    label_example_list: list[dict[str, str]] = field(default_factory=list, init=False)
    code_carbon_callback: Any = field(default=None, init=False)
    _training_start_time: float | None = field(default=None, init=False)
    evaluation_duration: float = field(default=0.0, init=False)
    citations: dict[str, str] = field(default_factory=dict, init=False)
    best_model_step: int | None = field(default=None, init=False)
    ir_model: bool | None = field(default=None, init=False, repr=False)
    datasets: list[str] = field(default_factory=list, init=False, repr=False)
    similarities: str | None = field(default=None, init=False, repr=False)
    #: What the usage snippet prints, computed by running the model at save time (``{"shape": "(3, 384)"}``).
    snippet_output: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    # Bookkeeping
    first_save: bool = field(default=True, init=False)
    widget_step: int = field(default=-1, init=False)
    save_dir: str | None = field(default=None, init=False, repr=False)
    _cached_dict: dict[str, Any] | None = field(default=None, init=False, repr=False)

    # Fixed per model type
    pipeline_tag: str | None = field(default="sentence-similarity", init=False)
    library_name: str = field(default="sentence-transformers", init=False)
    version: dict[str, str] = field(default_factory=dict, init=False)
    #: A Jinja2 template to render instead of sentrs' own README layout (it gets :meth:`to_dict`'s values).
    template_path: str | os.PathLike[str] | None = field(default=None, init=False, repr=False)

    # Set by register_model
    model: Any = field(default=None, init=False, repr=False)

    # How the README names this model type, and where the reference's documentation describes it.
    model_kind: ClassVar[str] = "Sentence Transformer"
    docs_section: ClassVar[str] = "sentence_transformer"
    _snippet_model_class: ClassVar[str] = "SentenceTransformer"
    _snippet_default_model_id: ClassVar[str] = "sentence_transformers_model_id"

    def __post_init__(self) -> None:
        if isinstance(self.language, str):
            self.language = [self.language]
        elif self.language is None:
            self.language = []
        self.train_datasets = self.validate_datasets(self.train_datasets)
        self.eval_datasets = self.validate_datasets(self.eval_datasets)
        if self.model_id and self.model_id.count("/") != 1:
            logger.warning(
                "model_id %r should be 'organization/name' (e.g. 'sentence-transformers/all-MiniLM-L6-v2'); "
                "ignoring it",
                self.model_id,
            )
            self.model_id = None

    # ------------------------------------------------------------------ simple setters
    def set_model_id(self, model_id: str) -> None:
        self.model_id = model_id

    def set_best_model_step(self, step: int) -> None:
        """The step of the checkpoint kept at the end of training (its row is bold in the training logs)."""
        self.best_model_step = step

    def set_language(self, language: str | list[str]) -> None:
        self.language = [language] if isinstance(language, str) else list(language)

    def set_license(self, license: str) -> None:
        self.license = license

    def add_tags(self, tags: str | Iterable[str]) -> None:
        """Adds tags that are not there yet, in order."""
        for tag in [tags] if isinstance(tags, str) else tags:
            if tag not in self.tags:
                self.tags.append(tag)

    # ------------------------------------------------------------------ the model and its base model
    def register_model(self, model: Any) -> None:
        """Attaches the model the card describes; a Router module or query/document prompts mark it as a
        retrieval (IR) model, whose usage snippet encodes queries and documents separately."""
        self.model = model
        if self.ir_model is not None:
            return
        if any(type(module).__name__ == "Router" for module in _model_modules(model)):
            self.ir_model = True
            return
        prompts = getattr(model, "prompts", None) or {}
        if any(prompts.get(name) for name in ("query", "document", "passage", "corpus")):
            self.ir_model = True

    def set_base_model(self, model_id: str, revision: str | None = None) -> bool:
        """Records ``model_id`` as the base model when the Hub knows it; True when it was recorded.

        A ``revision`` that is a commit hash (the snapshot a Hub download resolved to) is taken as is, without
        asking the Hub. Nothing is asked with ``local_files_only`` or ``HF_HUB_OFFLINE``.
        """
        if self.local_files_only:
            return False
        if revision is not None and re.fullmatch(r"[0-9a-f]{40}", revision):
            self.base_model, self.base_model_revision = model_id, revision
            return True
        if _offline():
            return False
        try:
            from huggingface_hub import model_info

            info = model_info(model_id)
        except Exception:  # no such model, no network, a Hub outage: the card just has no base model
            return False
        self.base_model = info.id
        self.base_model_revision = info.sha if revision in (None, "main") else revision
        return True

    def try_to_set_base_model(self) -> None:
        """Guesses the base model from the transformers config's ``_name_or_path`` (a Hub id, or a cache folder
        whose name holds one: ``.../sentence-transformers_all-MiniLM-L6-v2``)."""
        transformers_model = getattr(self.model, "transformers_model", None)
        config = getattr(transformers_model, "config", None)
        name = config.get("_name_or_path") if isinstance(config, dict) else getattr(config, "_name_or_path", None)
        if not name:
            return
        parts = [part for part in re.split(r"[\\/]", str(name)) if part]
        candidates = ["/".join(parts[-2:])]
        pieces = parts[-1].split("_") if parts else []
        candidates += ["_".join(pieces[:i]) + "/" + "_".join(pieces[i:]) for i in range(1, len(pieces))]
        for candidate in dict.fromkeys(candidates):
            if self.set_base_model(candidate):
                return

    def get_default_model_name(self) -> str:
        name = type(self.model).__name__ if self.model is not None else self._snippet_model_class
        return f"{name} based on {self.base_model}" if self.base_model else name

    # ------------------------------------------------------------------ datasets
    def validate_datasets(
        self, dataset_list: list[dict[str, Any]], infer_languages: bool | None = None
    ) -> list[dict[str, Any]]:
        """Checks each dataset's Hub ``id`` (dropping ids the Hub does not know, with a warning), names unnamed
        datasets after their id, and takes the model's languages from the datasets' cards when it has none.

        Offline or with ``local_files_only`` nothing is checked: given ids are kept and listed in the metadata.
        """
        if infer_languages is None:
            infer_languages = not self.language
        checked = []
        for dataset in dataset_list:
            if not isinstance(dataset, Mapping):
                raise TypeError(
                    f"datasets must be given as dicts with 'name' and/or 'id' keys, got {type(dataset).__name__}"
                )
            dataset = dict(dataset)
            if "name" not in dataset and "id" in dataset:
                dataset["name"] = dataset["id"]
            if dataset.get("id"):
                self._check_dataset_id(dataset, infer_languages)
            checked.append(dataset)
        return checked

    def _check_dataset_id(self, dataset: dict[str, Any], infer_languages: bool) -> None:
        if self.local_files_only or _offline():
            if dataset["id"] not in self.datasets:
                self.datasets.append(dataset["id"])
            return
        try:
            from huggingface_hub import dataset_info

            info = dataset_info(dataset["id"])
        except Exception:
            logger.warning("Dataset id %r was not found on the Hugging Face Hub; leaving it out", dataset["id"])
            del dataset["id"]
            return
        card = info.card_data
        languages = card.get("language") if card is not None and infer_languages else None
        if isinstance(languages, str):
            languages = [languages]
        assert isinstance(self.language, list)
        for language in languages or []:
            if language not in self.language:
                self.language.append(language)
        if info.id not in self.datasets:
            self.datasets.append(info.id)

    def infer_datasets(self, dataset: Any, dataset_name: str | None = None) -> list[dict[str, Any]]:
        """Name, split, size, Hub id and revision of a ``datasets`` dataset (one entry per part of a dict)."""
        if isinstance(dataset, Mapping):
            return [entry for name, part in dataset.items() for entry in self.infer_datasets(part, name)]
        if dataset_name and re.fullmatch(r"_dataset_\d+", dataset_name):
            dataset_name = None  # the names the old fit() API gives its datasets mean nothing to a reader
        info = getattr(dataset, "info", None)
        split = getattr(dataset, "split", None)
        entry: dict[str, Any] = {"name": dataset_name or getattr(info, "dataset_name", None), "split": str(split)}
        splits = getattr(info, "splits", None)
        if splits and split in splits:
            entry["size"] = splits[split].num_examples
        checksums = getattr(dataset, "download_checksums", None) or {}
        source = next(iter(checksums), "")
        match = re.match(r"hf://datasets/([^@]+)@([^/]+)/", source)
        if match:
            entry["id"] = match.group(1)
            if re.fullmatch(r"[0-9a-f]{40}", match.group(2)):
                entry["revision"] = match.group(2)
        return [entry]

    def compute_dataset_metrics(
        self,
        dataset: Any,
        dataset_info: dict[str, Any],
        loss: Any,
        router_mapping: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Adds to ``dataset_info`` what the README shows of a dataset: size, columns, statistics of the first
        :data:`STATS_ROWS` rows (tokens per text column, label shares, number ranges), the first rows, and the loss
        with its configuration. ``router_mapping`` gives the task each column is tokenized for."""
        if dataset is None:
            return dataset_info
        in_memory = _is_dataset(dataset, "Dataset")
        if in_memory:
            dataset_info["size"] = len(dataset)
            columns = [c for c in (dataset[0].keys() if len(dataset) else dataset.column_names) if c != "dataset_name"]
        else:
            columns = [c for c in (getattr(dataset, "column_names", None) or []) if c != "dataset_name"]
        dataset_info["columns"] = [f"<code>{column}</code>" for column in columns]
        if in_memory and len(dataset):
            stats = {
                column: self._column_stats(dataset, column, (router_mapping or {}).get(column)) for column in columns
            }
            dataset_info["stats"] = stats
            dataset_info["stats_table"] = _indent(
                markdown_table(
                    [
                        {"": "type", **{column: stat["dtype"] for column, stat in stats.items()}},
                        {"": "details", **{column: _html_list(stat["data"]) for column, stat in stats.items()}},
                    ]
                )
            )
            head = dataset[: min(SAMPLE_ROWS, len(dataset))]
            dataset_info["examples"] = head
            rows = [
                {column: _example_cell(head[column][i]) for column in columns}
                for i in range(len(head[columns[0]]) if columns else 0)
            ]
            dataset_info["examples_table"] = _indent(markdown_table(rows)) if rows else ""
        dataset_info["loss"] = _describe_loss(loss)
        return dataset_info

    def _column_stats(self, dataset: Any, column: str, task: str | None) -> dict[str, Any]:
        """Statistics of one column over the first rows; the column's type decides which."""
        values = dataset[: min(STATS_ROWS, len(dataset))][column]
        first = values[0]
        if isinstance(first, str):
            counts, unit = self._text_lengths(values, task)
            stats = _RunningStats()
            stats.extend(counts)
            return {
                "dtype": "string",
                "data": {
                    "min": f"{round(stats.low, 2)} {unit}",
                    "mean": f"{round(stats.mean, 2)} {unit}",
                    "max": f"{round(stats.high, 2)} {unit}",
                },
            }
        if isinstance(first, (bool, int)):
            counter = Counter(values)
            approx = "~" if len(counter) > 1 else ""
            return {
                "dtype": type(first).__name__,
                "data": {key: f"{approx}{counter[key] / len(values):.2%}" for key in sorted(counter)},
            }
        if isinstance(first, float):
            stats = _RunningStats()
            stats.extend(values)
            return {
                "dtype": "float",
                "data": {"min": round(stats.low, 2), "mean": round(stats.mean, 2), "max": round(stats.high, 2)},
            }
        if isinstance(first, list):
            stats = _RunningStats()
            stats.extend(len(value) for value in values)
            if stats.low == stats.high:
                return {"dtype": "list", "data": {"size": f"{int(stats.low)} elements"}}
            return {
                "dtype": "list",
                "data": {
                    "min": f"{int(stats.low)} elements",
                    "mean": f"{stats.mean:.2f} elements",
                    "max": f"{int(stats.high)} elements",
                },
            }
        return {"dtype": fullname(first), "data": {}}

    def _text_lengths(self, texts: list[str], task: str | None) -> tuple[list[int], str]:
        """Token counts of ``texts`` with the model's tokenizer (truncation included), or character counts when
        the model cannot tokenize single texts."""
        preprocess = getattr(self.model, "preprocess", None)
        if preprocess is not None:
            try:
                features = preprocess(texts, task=task) if task else preprocess(texts)
                mask = features["attention_mask"]
                return [int(n) for n in _to_numpy(mask).sum(axis=1)], "tokens"
            except Exception as exc:  # a cross-encoder tokenizes pairs; the engine path has no preprocess()
                logger.debug("Counting characters instead of tokens for the model card: %s", exc)
        return [len(text) for text in texts], "characters"

    def extract_dataset_metadata(
        self,
        dataset: Any,
        dataset_metadata: list[dict[str, Any]],
        loss: Any,
        dataset_type: Literal["train", "eval"],
        router_mapping: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """The card's entries for a trainer's train or eval dataset (a dataset or a dict of them).

        User-given entries are kept when there is one per dataset (else dropped, with a warning) and completed
        with :meth:`compute_dataset_metrics`; ``router_mapping`` may be per dataset (a dict of dicts).
        """
        router_mapping = router_mapping or {}
        if dataset:
            parts = dict(dataset) if isinstance(dataset, Mapping) else None
            expected = len(parts) if parts is not None else 1
            if dataset_metadata and len(dataset_metadata) != expected:
                logger.warning(
                    "%d %s_datasets are given in the model card data, but the trainer has %d; ignoring them",
                    len(dataset_metadata),
                    dataset_type,
                    expected,
                )
                dataset_metadata = []
            if not dataset_metadata:
                dataset_metadata = self.infer_datasets(dataset)
            per_dataset = isinstance(next(iter(router_mapping.values()), None), Mapping)
            if parts is not None:
                dataset_metadata = [
                    self.compute_dataset_metrics(
                        part,
                        info,
                        loss[name] if isinstance(loss, Mapping) else loss,
                        router_mapping.get(name, {}) if per_dataset else router_mapping,
                    )
                    for (name, part), info in zip(parts.items(), dataset_metadata)
                ]
            else:
                dataset_metadata = [self.compute_dataset_metrics(dataset, dataset_metadata[0], loss, router_mapping)]
        if dataset_type == "train":
            size = sum(entry.get("size") or 0 for entry in dataset_metadata)
            if size:
                self.add_tags(f"dataset_size:{size}")
            if dataset and self.ir_model is None:
                parts_list = list(dataset.values()) if isinstance(dataset, Mapping) else [dataset]
                names = {column for part in parts_list for column in (getattr(part, "column_names", None) or [])}
                if names & {"query", "question"}:
                    self.ir_model = True
        return self.validate_datasets(dataset_metadata)

    def set_widget_examples(self, dataset: Any) -> None:
        """Picks short rows of the (train or eval) dataset as Hub widget examples and usage-snippet texts."""
        if _is_dataset(dataset, "IterableDataset", "IterableDatasetDict"):
            return  # reading rows would consume the stream
        parts = list(dataset.values()) if isinstance(dataset, Mapping) else [dataset]
        parts = [part for part in parts if part is not None and not _is_dataset(part, "IterableDataset")]
        if not parts:
            return
        self.widget = []
        for part, count in Counter(random.choices(range(len(parts)), k=5)).items():
            rows = _short_text_rows(parts[part])
            if not rows:
                continue
            spare = rows[count:]
            for row in rows[:count]:
                texts = list(row)
                while len(texts) < 4 and spare:
                    extra = spare.pop()
                    texts.append(extra[1] if len(extra) > 1 else extra[0])  # a second column is rarely a query
                if len(texts) < 4:
                    continue
                if self.pipeline_tag == "sentence-similarity":
                    self.widget.append(
                        {"source_sentence": texts[0], "sentences": random.sample(texts[1:], k=len(texts) - 1)}
                    )
                else:
                    self.widget.append({"text": random.choice(texts)})
                self.usage_examples = texts[:4]

    # ------------------------------------------------------------------ losses and evaluation
    def set_losses(self, losses: list[Any]) -> None:
        """Records the BibTeX of each loss (one entry per distinct citation) and tags the card ``loss:<Name>``."""
        by_citation: dict[str, list[str]] = defaultdict(list)
        by_citation[_SBERT_CITATION].append("Sentence Transformers")
        for loss in losses:
            try:
                citation = loss.citation
            except Exception:  # a loss without a citation, or one whose property fails
                continue
            name = type(loss).__name__
            if isinstance(citation, str) and citation.strip() and name not in by_citation[citation]:
                by_citation[citation].append(name)
        self.citations = {_join_names(names): citation for citation, names in by_citation.items()}
        self.add_tags([f"loss:{name}" for name in dict.fromkeys(type(loss).__name__ for loss in losses)])

    def set_evaluation_metrics(self, evaluator: Any, metrics: dict[str, Any], epoch: float = 0, step: int = 0) -> None:
        """Keeps an evaluator's latest metrics (for the Evaluation section and the model index) and adds its
        primary metric(s) to the training-log row of ``step``."""
        self.eval_results_dict[evaluator] = dict(metrics)
        primary = getattr(evaluator, "primary_metric", None)
        if not primary:
            return
        sub_evaluators = getattr(evaluator, "evaluators", None)
        if type(evaluator).__name__ == "SequentialEvaluator" and sub_evaluators is not None:
            keys = {getattr(sub, "primary_metric", None) for sub in sub_evaluators}
        else:
            keys = {primary} if isinstance(primary, str) else set(primary)
        self._log_row(epoch, step).update({key: value for key, value in metrics.items() if key in keys})

    def _log_row(self, epoch: float | None, step: int) -> dict[str, Any]:
        """The training-log row of ``step`` (the last row when it is that step, else a new one)."""
        if self.training_logs and self.training_logs[-1]["Step"] == step:
            return self.training_logs[-1]
        self.training_logs.append({"Epoch": epoch, "Step": step})
        return self.training_logs[-1]

    def try_to_set_ir_model_from_evaluators(self) -> None:
        """A retrieval evaluator among the results marks the model as an IR model."""
        retrieval = {"InformationRetrievalEvaluator", "NanoBEIREvaluator", "SparseInformationRetrievalEvaluator"}
        retrieval |= {"SparseNanoBEIREvaluator"}
        for evaluator in self.eval_results_dict:
            for sub in getattr(evaluator, "evaluators", None) or [evaluator]:
                if type(sub).__name__ in retrieval:
                    self.ir_model = True
                    return

    def format_eval_metrics(self) -> dict[str, Any]:
        """The Evaluation section (``eval_metrics``: one table per evaluator, evaluators of the same class and
        metrics side by side), the metadata's ``metrics`` list and its ``model-index``."""
        from huggingface_hub import EvalResult
        from huggingface_hub.repocard_data import eval_results_to_model_index

        sections: list[dict[str, Any]] = []
        all_metrics: dict[str, Any] = {}
        results: list[EvalResult] = []
        for evaluator, raw in self.eval_results_dict.items():
            name = getattr(evaluator, "name", None) or None
            primary = getattr(evaluator, "primary_metric", None)
            metrics = {key: _as_python(value) for key, value in raw.items()}
            if name and metrics and all(key.startswith(f"{name}_") for key in metrics):
                metrics = {key[len(name) + 1 :]: value for key, value in metrics.items()}
                if isinstance(primary, str) and primary.startswith(f"{name}_"):
                    primary = primary[len(name) + 1 :]
            description = getattr(evaluator, "description", None) or type(evaluator).__name__
            config = evaluator.get_config_dict() if hasattr(evaluator, "get_config_dict") else {}
            section = {
                "class_name": fullname(evaluator),
                "description": description,
                "dataset_name": name,
                "values": {key: (value, key == primary) for key, value in metrics.items()},
                "config_code": _json_block(config) if config else "",
            }
            _merge_or_append(sections, section)
            for key, value in metrics.items():
                number = _as_float(value)
                if number is None:
                    continue
                results.append(
                    EvalResult(
                        task_name=description,
                        task_type=description.lower().replace(" ", "-"),
                        dataset_type=name or "unknown",
                        dataset_name=name.replace("_", " ").replace("-", " ") if name else "Unknown",
                        metric_name=key.replace("_", " ").title(),
                        metric_type=key,
                        metric_value=number,
                    )
                )
            all_metrics.update(metrics)
        for section in sections:
            del section["values"]
            section["table"] = _metric_rows(section)
        return {
            "eval_metrics": sections,
            "metrics": list(all_metrics),
            "model-index": eval_results_to_model_index(self.model_name or "model", results) if results else [],
        }

    def format_training_logs(self) -> dict[str, Any]:
        """The training-log table: Epoch, Step, Training Loss, Validation Loss, other losses, then metrics in the
        order they first appeared; the row of the kept checkpoint is bold."""
        seen = list(dict.fromkeys(key for row in self.training_logs for key in row))
        fixed = {"Epoch": 0, "Step": 1, "Training Loss": 2, "Validation Loss": 3}

        def rank(key: str) -> tuple[int, int]:
            if key in fixed:
                return fixed[key], 0
            return (4, seen.index(key)) if key.endswith("loss") else (5, seen.index(key))

        columns = sorted(seen, key=rank)
        rows = []
        for row in self.training_logs:
            bold = self.best_model_step is not None and row.get("Step") == self.best_model_step
            cells = {}
            for column in columns:
                text = str(_rounded(row[column])) if column in row and row[column] is not None else "-"
                cells[column] = f"**{text}**" if bold else text
            rows.append(cells)
        table = markdown_table(rows)
        return {"eval_lines": table, "explain_bold_in_eval": "**" in table}

    # ------------------------------------------------------------------ hyperparameters, time, emissions
    def get_codecarbon_data(self) -> dict[str, Any]:
        """The ``co2_eq_emissions`` metadata from a codecarbon callback that tracked the run (empty without)."""
        tracker = getattr(self.code_carbon_callback, "tracker", None)
        if tracker is None or getattr(tracker, "_start_time", None) is None:
            return {}
        try:
            data = tracker._prepare_emissions_data()
        except Exception as exc:
            logger.warning("Could not read the codecarbon emissions for the model card: %s", exc)
            return {}
        emissions: dict[str, Any] = {
            "emissions": float(data.emissions) * 1000,  # kg -> g, the unit the Hub expects
            "energy_consumed": float(data.energy_consumed),
            "source": "codecarbon",
            "training_type": "fine-tuning",
            "on_cloud": data.on_cloud == "Y",
            "cpu_model": data.cpu_model,
            "ram_total_size": data.ram_total_size,
        }
        if data.gpu_model:
            emissions["hardware_used"] = data.gpu_model
        return {"co2_eq_emissions": emissions}

    def get_training_duration_data(self) -> dict[str, str | None]:
        """Training, evaluation and total time of the run, in words (None before training)."""
        if self._training_start_time is None:
            return {"training_time": None, "evaluation_time": None, "total_time": None}
        total = time.time() - self._training_start_time
        evaluated = self.evaluation_duration
        return {
            "training_time": format_duration(max(total - evaluated, 0.0)),
            "evaluation_time": format_duration(evaluated) if evaluated else None,
            "total_time": format_duration(total) if evaluated else None,
        }

    # ------------------------------------------------------------------ usage snippet
    def _default_usage_examples(self) -> list[Any]:
        return ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]

    def run_usage_snippet(self) -> None:
        """Runs the model on the usage examples and keeps what the snippet prints (subclasses run the model)."""
        if self.usage_examples is None:
            self.usage_examples = self._default_usage_examples()

    def generate_usage_snippet(self) -> str:
        """The Python code block of the Usage section: encode the examples, compare them."""
        examples = self.usage_examples or self._default_usage_examples()
        dim = self._output_dimension()
        lines = self._snippet_head("sentences", examples)
        lines += [
            "embeddings = model.encode(sentences)",
            "print(embeddings.shape)",
            f"# {self.snippet_output.get('shape') or (len(examples), dim)}",
            "",
            "# Similarity of every sentence with every other one",
            "similarities = model.similarity(embeddings, embeddings)",
        ]
        lines += self._similarity_lines(f"[{len(examples)}, {len(examples)}]")
        return _code_block(lines)

    def _snippet_head(self, variable: str, examples: list[Any]) -> list[str]:
        model_class = self._snippet_model_class
        return [
            f"from sentrs import {model_class}  # or: from sentence_transformers import {model_class}",
            "",
            "# Download from the Hugging Face Hub",
            f'model = {model_class}("{self.model_id or self._snippet_default_model_id}")',
            f"{variable} = [",
            *(f"    {example!r}," for example in examples),
            "]",
        ]

    def _similarity_lines(self, shape: str) -> list[str]:
        if self.similarities:
            return ["print(similarities)", self.similarities]
        return ["print(similarities.shape)", f"# {shape}"]

    def _output_dimension(self) -> int | str:
        try:
            dim = self.model.get_embedding_dimension()
        except Exception:
            return "?"
        return dim if dim is not None else "?"

    # ------------------------------------------------------------------ what the README shows of the model
    def get_model_specific_metadata(self) -> dict[str, Any]:
        """Facts read from the model itself: sequence length, architecture, modalities, query/document lengths."""
        if self.model is None:
            return {}
        transformer = next(
            (module for module in _model_modules(self.model) if type(module).__name__.endswith("Transformer")), None
        )
        modalities = getattr(self.model, "modalities", None) or ["text"]
        return {
            "model_max_length": self.model.max_seq_length,
            "model_string": _model_repr(self.model),
            "supported_modalities": [str(m).title() for m in modalities if isinstance(m, str)],
            "query_length": getattr(transformer, "query_length", None),
            "document_length": getattr(transformer, "document_length", None),
        }

    def readme_summary(self, values: Mapping[str, Any]) -> str:
        """What the model does, after "This is a ... model finetuned from ...": one sentence."""
        dim = values.get("output_dimensionality")
        return f"It maps inputs to a {dim}-dimensional dense vector space and can be used for {self.task_name}."

    def readme_details(self, values: Mapping[str, Any]) -> list[str]:
        """The type-specific lines of "Model Description" (Markdown list items)."""
        return [
            f"- **Output Dimensionality:** {values.get('output_dimensionality')} dimensions",
            f"- **Similarity Function:** {values.get('similarity_fn_name')}",
        ]

    # ------------------------------------------------------------------ export
    def to_dict(self) -> dict[str, Any]:
        """Every value the README needs. Runs the model on the usage examples (failures are logged, never raised)
        and, on the first save, looks for the base model on the Hub."""
        if self.first_save and not self.base_model and self.model is not None:
            try:
                self.try_to_set_base_model()
            except Exception as exc:
                logger.debug("Could not find the base model for the model card: %s", exc)
        if not self.model_name:
            self.model_name = self.get_default_model_name()
        if self.ir_model is None and self.eval_results_dict:
            self.try_to_set_ir_model_from_evaluators()
        if not self.version:
            self.version = get_versions()
        try:
            self.run_usage_snippet()
        except Exception as exc:
            logger.warning("Error while computing usage snippet output: %s", exc)

        values: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        try:
            values["usage_snippet"] = self.generate_usage_snippet()
        except Exception as exc:
            logger.warning("Error while generating the usage snippet: %s", exc)
            values["usage_snippet"] = ""
        if self.eval_results_dict:
            try:
                values.update(self.format_eval_metrics())
            except Exception as exc:
                logger.warning("Error while formatting the evaluation metrics: %s", exc)
        if self.training_logs:
            try:
                values.update(self.format_training_logs())
            except Exception as exc:
                logger.warning("Error while formatting the training logs: %s", exc)
        values["hide_eval_lines"] = len(self.training_logs) > 100
        values.update(self.get_codecarbon_data())
        values.update(self.get_training_duration_data())
        try:
            values.update(self.get_model_specific_metadata())
        except Exception as exc:
            logger.warning("Error while reading the model for the model card: %s", exc)
        self.first_save = False
        for key in _PRIVATE_FIELDS:
            values.pop(key, None)
        self._cached_dict = values  # to_yaml() right after reuses it instead of running the model again
        return values

    def to_yaml(self, line_break: str | None = None, original_order: list[str] | None = None) -> str:
        """The README's YAML front matter: the metadata keys (:data:`YAML_KEYS`) that have a value."""
        from huggingface_hub.utils import yaml_dump

        values, self._cached_dict = self._cached_dict, None
        if values is None:
            values = self.to_dict()
            self._cached_dict = None
        metadata = {key: values[key] for key in YAML_KEYS if values.get(key) not in (None, [], {}, "")}
        return str(yaml_dump(metadata, sort_keys=False, line_break=line_break)).strip()


def generate_model_card(model: Any) -> str:
    """The README of ``model``: sentrs' own layout, or the Jinja2 template at ``template_path`` when set."""
    card: BaseModelCardData = model.model_card_data
    if card.template_path is not None:
        from huggingface_hub import ModelCard

        template = str(card.template_path)
        return str(ModelCard.from_template(card_data=card, template_path=template).content)  # type: ignore[arg-type]
    from sentrs.base.model_card_readme import render_model_card

    values = card.to_dict()
    front_matter = card.to_yaml()
    return render_model_card(card, values, front_matter)


# ---------------------------------------------------------------------- helpers of the methods above
def _model_modules(model: Any) -> list[Any]:
    """The top-level modules of a model (its host steps on the engine path), or [] for a stand-in object."""
    try:
        return list(model)
    except TypeError:
        return []


def _model_repr(model: Any) -> str:
    """``repr(model)``; on the engine path (no torch modules) the steps the engine runs, in the same shape."""
    if getattr(model, "runs_in_engine", False):
        steps = "\n".join(f"  ({i}): {step!r}" for i, step in enumerate(_model_modules(model)))
        return f"{type(model).__name__}(\n{steps}\n)"
    return repr(model)


def _short_text_rows(dataset: Any, candidates: int = 1000) -> list[list[str]]:
    """Up to ``candidates`` random rows of the dataset's text columns, without empty texts, shortest first."""
    try:
        size = len(dataset)
        features = getattr(dataset, "features", None) or {}
        text_columns = [
            column
            for column, feature in features.items()
            if column != "dataset_name" and getattr(feature, "dtype", None) in ("string", "large_string")
        ]
        if not size or not text_columns:
            return []
        picked = dataset.select(random.sample(range(size), k=min(candidates, size))).select_columns(text_columns)
        rows = [[row[column] for column in text_columns] for row in picked]
    except Exception as exc:  # a custom transform, an odd dataset type: no widget examples then
        logger.debug("No widget examples from this dataset: %s", exc)
        return []
    rows = [row for row in rows if all(isinstance(text, str) and text for text in row)]
    return sorted(rows, key=lambda row: sum(len(text) for text in row))


def _describe_loss(loss: Any) -> dict[str, Any]:
    """The loss's class path and, when it has one, its configuration as an indented JSON block."""
    described: dict[str, Any] = {"fullname": fullname(loss)}
    get_config = getattr(loss, "get_config_dict", None)
    if get_config is None:
        return described
    config = {key: _config_value(value) for key, value in get_config().items()}
    described["config_code"] = _json_block(config)
    return described


def _config_value(value: Any) -> Any:
    """A loss setting for the card: a model as ``Class('base/model')``, an inner loss as ``Class(k=v, ...)``."""
    if not _is_torch_module(value):
        return value
    args = []
    card = getattr(value, "model_card_data", None)
    if card is not None and getattr(card, "base_model", None):
        args.append(repr(card.base_model))
    if getattr(value, "trust_remote_code", False):
        args.append("trust_remote_code=True")
    if hasattr(value, "get_config_dict"):
        args += [f"{key}={inner!r}" for key, inner in value.get_config_dict().items()]
    return f"{type(value).__name__}({', '.join(args)})" if args else type(value).__name__


def _is_torch_module(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def _json_block(config: Mapping[str, Any]) -> str:
    """``config`` as an indented ```json block (``repr`` for values JSON cannot hold)."""
    try:
        text = json.dumps(config, indent=4)
    except TypeError:
        text = json.dumps({key: _json_safe(value) for key, value in config.items()}, indent=4)
    return _indent(f"```json\n{text}\n```")


def _json_safe(value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value


def _join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _merge_or_append(sections: list[dict[str, Any]], section: dict[str, Any]) -> None:
    """Puts an evaluator's results beside an earlier one's when both are the same class with the same metrics and
    settings on another dataset (one table, a column per dataset); otherwise adds a section."""
    for other in sections:
        names = other["dataset_name"] if isinstance(other["dataset_name"], list) else [other["dataset_name"]]
        if (
            other["class_name"] == section["class_name"]
            and other["config_code"] == section["config_code"]
            and set(other["columns"][0]) == set(section["values"])
            and section["dataset_name"] not in names
        ):
            other["dataset_name"] = [*names, section["dataset_name"]]
            other["columns"].append(section["values"])
            return
    section["columns"] = [section["values"]]
    sections.append(section)


def _metric_rows(section: dict[str, Any]) -> str:
    """``| Metric | Value |``, or a column per dataset for merged sections; the primary metric in bold."""
    columns: list[dict[str, tuple[Any, bool]]] = section.pop("columns")
    names = section["dataset_name"]
    headers = names if isinstance(names, list) else ["Value"]
    rows = []
    for metric in columns[0]:
        primary = any(column[metric][1] for column in columns)
        row = {"Metric": f"**{metric}**" if primary else metric}
        for header, column in zip(headers, columns):
            value = _rounded(column[metric][0])
            row[str(header)] = f"**{value}**" if column[metric][1] else str(value)
        rows.append(row)
    return markdown_table(rows)


def _code_block(lines: list[str]) -> str:
    return "```python\n" + "\n".join(lines) + "\n```"
