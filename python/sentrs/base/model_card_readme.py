"""The layout of the ``README.md`` a saved model gets: Markdown built from the values of
:meth:`sentrs.base.model_card.BaseModelCardData.to_dict`.

The sections follow the Hugging Face model card layout the reference writes (same headings, so the Hub and readers
find things where they expect them); the model type's own sentences come from the card data class
(:meth:`~sentrs.base.model_card.BaseModelCardData.readme_summary` and ``readme_details``). Each section is one
function returning its lines, empty when it has nothing to show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentrs.base.model_card import BaseModelCardData

__all__ = ["render_model_card"]

_SBERT = "https://www.sbert.net"
_HUB = "https://huggingface.co"
_SENTRS_NOTE = (
    "The folder is in the sentence-transformers format: it loads with "
    "[sentrs](https://pypi.org/project/sentrs/) and with [Sentence Transformers](https://www.sbert.net) alike."
)


def render_model_card(card: BaseModelCardData, values: Mapping[str, Any], front_matter: str) -> str:
    """The whole README: YAML front matter, then the sections in order."""
    sections = [
        ["---", front_matter, "---"],
        _title(card, values),
        _model_details(card, values),
        _usage(values),
        _commented("Out-of-Scope Use", "What the model should not be used for.", level=3),
        _evaluation(card, values),
        _commented("Bias, Risks and Limitations", "Known or foreseeable issues and failure cases.", level=2),
        _training_details(card, values),
        _citation(values),
        _commented("Glossary", "Terms a reader may need defined.", level=2),
        _commented("Model Card Authors", "Who wrote this model card.", level=2),
        _commented("Model Card Contact", "How to reach the model card authors.", level=2),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


# ---------------------------------------------------------------------- sections
def _title(card: BaseModelCardData, values: Mapping[str, Any]) -> list[str]:
    base = values.get("base_model")
    origin = f" finetuned from [{base}]({_HUB}/{base})" if base else ""
    datasets = _named(values.get("train_datasets"))
    if datasets:
        origin += "" if base else " trained"
        if len(", ".join(str(d["name"]) for d in datasets)) > 200:
            origin += f" on {len(datasets)} datasets"
        else:
            plural = "s" if len(datasets) > 1 else ""
            origin += f" on the {_and([_dataset_link(d) for d in datasets])} dataset{plural}"
    kind = values.get("model_type") or card.model_kind
    return [
        f"# {values.get('model_name') or kind + ' model'}",
        "",
        f"This is a {kind} model{origin}, made with [sentence-transformers]({_SBERT}). {card.readme_summary(values)}",
    ]


def _model_details(card: BaseModelCardData, values: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Model Details",
        "",
        "### Model Description",
        f"- **Model Type:** {values.get('model_type') or card.model_kind}",
    ]
    base, revision = values.get("base_model"), values.get("base_model_revision")
    if base:
        lines.append(
            f"- **Base model:** [{base}]({_HUB}/{base})" + (f" <!-- at revision {revision} -->" if revision else "")
        )
    else:
        lines.append("<!-- - **Base model:** unknown -->")
    if values.get("model_max_length") is not None:
        lines.append(f"- **Maximum Sequence Length:** {values['model_max_length']} tokens")
    for key, label in (("query_length", "Query"), ("document_length", "Document")):
        if values.get(key):
            lines.append(f"    - **Maximum {label} Length:** {values[key]} tokens")
    lines += card.readme_details(values)
    modalities = values.get("supported_modalities") or []
    if modalities:
        lines.append(f"- **Supported Modalit{'ies' if len(modalities) > 1 else 'y'}:** {', '.join(modalities)}")
    datasets = _named(values.get("train_datasets"))
    if datasets:
        lines.append(f"- **Training Dataset{'s' if len(datasets) > 1 else ''}:**")
        lines += [f"    - {_dataset_link(d)}" for d in datasets]
    else:
        lines.append("<!-- - **Training Dataset:** unknown -->")
    language = values.get("language")
    if language:
        languages = [language] if isinstance(language, str) else list(language)
        lines.append(f"- **Language{'s' if len(languages) > 1 else ''}:** {', '.join(languages)}")
    else:
        lines.append("<!-- - **Language:** unknown -->")
    lines.append(f"- **License:** {values['license']}" if values.get("license") else "<!-- - **License:** unknown -->")
    lines += [
        "",
        "### Model Sources",
        "",
        f"- **Documentation:** [Sentence Transformers documentation]({_SBERT})",
        "- **Repository:** [Sentence Transformers on GitHub](https://github.com/huggingface/sentence-transformers)",
        f"- **Hugging Face:** [Sentence Transformers models on the Hub]({_HUB}/models?library=sentence-transformers)",
    ]
    if values.get("model_string"):
        lines += ["", "### Full Model Architecture", "", "```", values["model_string"], "```"]
    return lines


def _usage(values: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Usage",
        "",
        "### Direct Usage (Sentence Transformers)",
        "",
        _SENTRS_NOTE + " Install either one:",
        "",
        "```bash",
        "pip install -U sentrs  # or: pip install -U sentence-transformers",
        "```",
        "",
        "Then load the model and run it:",
    ]
    if values.get("usage_snippet"):
        lines += ["", values["usage_snippet"]]
    lines += [
        "",
        "<!--",
        "### Downstream Usage (Sentence Transformers)",
        "",
        "Fine-tune this model on your own data.",
        "-->",
    ]
    return lines


def _evaluation(card: BaseModelCardData, values: Mapping[str, Any]) -> list[str]:
    sections = values.get("eval_metrics") or []
    if not sections:
        return []
    lines = ["## Evaluation", "", "### Metrics"]
    for section in sections:
        lines += ["", f"#### {section['description']}", ""]
        names = section.get("dataset_name")
        if names:
            names = names if isinstance(names, list) else [names]
            lines.append(f"* Dataset{'s' if len(names) > 1 else ''}: " + _and([f"`{name}`" for name in names]))
        evaluated = f"* Evaluated with {_class_link(section['class_name'], card.docs_section, 'evaluation')}"
        if section.get("config_code"):
            lines += [evaluated + " with these parameters:", section["config_code"]]
        else:
            lines.append(evaluated)
        lines += ["", section["table"]]
    return lines


def _training_details(card: BaseModelCardData, values: Mapping[str, Any]) -> list[str]:
    lines = ["## Training Details"]
    for kind, key in (("Training", "train_datasets"), ("Evaluation", "eval_datasets")):
        datasets = values.get(key) or []
        if datasets:
            lines += ["", f"### {kind} Dataset{'s' if len(datasets) > 1 else ''}"]
            for dataset in datasets:
                lines += _dataset_section(card, dataset, kind.lower(), folded=len(datasets) > 3)
    lines += _hyperparameters(values)
    if values.get("eval_lines"):
        lines += ["", "### Training Logs"]
        table = [values["eval_lines"]]
        if values.get("explain_bold_in_eval"):
            table += ["", "* The bold row is the checkpoint that was saved."]
        lines += _folded(table, "Click to expand") if values.get("hide_eval_lines") else ["", *table]
    emissions = values.get("co2_eq_emissions")
    if emissions:
        lines += [
            "",
            "### Environmental Impact",
            "Carbon emissions were measured with [CodeCarbon](https://github.com/mlco2/codecarbon).",
            f"- **Energy Consumed**: {emissions['energy_consumed']:.3f} kWh",
            f"- **Carbon Emitted**: {emissions['emissions'] / 1000:.3f} kg of CO2",
            "",
            "### Training Hardware",
            f"- **On Cloud**: {'Yes' if emissions.get('on_cloud') else 'No'}",
            f"- **GPU Model**: {emissions.get('hardware_used') or 'No GPU used'}",
            f"- **CPU Model**: {emissions.get('cpu_model')}",
            f"- **RAM Size**: {float(emissions.get('ram_total_size') or 0):.2f} GB",
        ]
    if values.get("training_time") is not None:
        lines += ["", "### Training Time", f"- **Training**: {values['training_time']}"]
        if values.get("evaluation_time") is not None:
            lines += [f"- **Evaluation**: {values['evaluation_time']}", f"- **Total**: {values['total_time']}"]
    lines += ["", "### Framework Versions"]
    labels = {
        "python": "Python",
        "sentrs": "sentrs",
        "sentence_transformers": "Sentence Transformers (folder format)",
        "transformers": "Transformers",
        "torch": "PyTorch",
        "accelerate": "Accelerate",
        "datasets": "Datasets",
        "tokenizers": "Tokenizers",
    }
    versions = values.get("version") or {}
    lines += [f"- {label}: {versions[key]}" for key, label in labels.items() if versions.get(key)]
    return lines


def _dataset_section(card: BaseModelCardData, dataset: Mapping[str, Any], kind: str, folded: bool) -> list[str]:
    name = dataset.get("name") or "Unnamed Dataset"
    lines = ["", f"#### {name}", ""]
    if dataset.get("name"):
        line = f"* Dataset: {_dataset_link(dataset)}"
        if dataset.get("revision") and dataset.get("id"):
            line += f" at [{dataset['revision'][:7]}]({_HUB}/datasets/{dataset['id']}/tree/{dataset['revision']})"
        lines.append(line)
    if dataset.get("size"):
        lines.append(f"* Size: {dataset['size']:,} {kind} samples")
    if dataset.get("columns"):
        lines.append(f"* Columns: {_and(list(dataset['columns']))}")
    if dataset.get("stats_table"):
        first = min(dataset.get("size") or 100, 100)
        lines += [f"* Approximate statistics based on the first {first} samples:", dataset["stats_table"]]
    if dataset.get("examples_table"):
        lines += ["* Samples:", dataset["examples_table"]]
    loss = dataset.get("loss")
    if loss:
        line = f"* Loss: {_class_link(loss['fullname'], card.docs_section, 'losses')}"
        lines += [line + " with these parameters:", loss["config_code"]] if loss.get("config_code") else [line]
    return _folded(lines, name) if folded else lines


def _hyperparameters(values: Mapping[str, Any]) -> list[str]:
    every = values.get("all_hyperparameters") or {}
    if not every:
        return []
    lines = ["", "### Training Hyperparameters"]
    changed = values.get("non_default_hyperparameters") or {}
    if changed:
        lines += ["#### Non-Default Hyperparameters", "", *(f"- `{k}`: {v}" for k, v in changed.items())]
        lines.append("")
    lines += ["#### All Hyperparameters"]
    lines += _folded([f"- `{k}`: {v}" for k, v in every.items()], "Click to expand")
    return lines


def _citation(values: Mapping[str, Any]) -> list[str]:
    citations = values.get("citations") or {}
    if not citations:
        return []
    lines = ["## Citation", "", "### BibTeX"]
    for name, bibtex in citations.items():
        lines += ["", f"#### {name}", "```bibtex", bibtex.strip(), "```"]
    return lines


# ---------------------------------------------------------------------- small pieces
def _commented(title: str, hint: str, level: int) -> list[str]:
    """A section left for the author to fill in, hidden in an HTML comment."""
    return ["<!--", f"{'#' * level} {title}", "", f"*{hint}*", "-->"]


def _folded(lines: list[str], summary: str) -> list[str]:
    return ["", f"<details><summary>{summary}</summary>", "", *lines, "", "</details>"]


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _named(datasets: Any) -> list[Mapping[str, Any]]:
    return [d for d in datasets or [] if d.get("name")]


def _dataset_link(dataset: Mapping[str, Any]) -> str:
    name = dataset.get("name") or dataset.get("id")
    return f"[{name}]({_HUB}/datasets/{dataset['id']})" if dataset.get("id") else str(name)


def _class_link(path: str, docs_section: str, page: str) -> str:
    """A loss or evaluator class: linked to the Sentence Transformers API reference when it is one of the
    library's (a ``sentence_transformers.`` or ``sentrs.`` class), else its full path."""
    name = path.rsplit(".", 1)[-1]
    if not path.startswith(("sentence_transformers.", "sentrs.")):
        return f"<code>{path}</code>"
    reference = f"{_SBERT}/docs/package_reference/{docs_section}/{page}.html"
    anchor = name.lower() if page == "losses" else f"sentence_transformers.{docs_section}.{page}.{name}"
    return f"[<code>{name}</code>]({reference}#{anchor})"
