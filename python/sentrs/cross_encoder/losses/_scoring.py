"""How the cross-encoder losses check their model and inputs and turn text pairs into logits.

A cross-encoder loss gets the batch as the cross-encoder data collator hands it over: raw text columns, ``inputs[i]``
being the i-th column (a list of texts, or for the listwise losses a list of document lists), and the labels. The loss
forms (query, document) pairs, tokenizes them with ``model.preprocess`` and reads ``model(features)["scores"]``,
``(n_pairs, num_labels)`` logits.

The listwise losses take ``(queries, documents_per_query)`` with one list of labels per query; the lists may differ
in length. :func:`score_lists` scores every (query, document) pair of such a batch, ``mini_batch_size`` pairs per
forward pass, and :class:`ScoredLists` lays the flat results out as ``(batch_size, max_documents)`` matrices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from sentrs.base.tensors import batch_to_device

__all__ = ["ScoredLists", "check_cross_encoder", "check_one_label", "pair_logits", "score_lists"]

_PAIR_LOSSES_HINT = (
    "For (query, document) pairs with one label each, use BinaryCrossEntropyLoss (0/1 labels) or MSELoss (scores)."
)


def check_cross_encoder(loss: nn.Module, model: Any) -> None:
    """Raises:
    ValueError: ``model`` is not a sentrs CrossEncoder with its torch modules (a model that runs its exported ONNX
        or OpenVINO file has no parameters to train)."""
    from sentrs.cross_encoder.model import CrossEncoder

    name = type(loss).__name__
    if not isinstance(model, CrossEncoder):
        raise ValueError(f"{name} expects a model of type CrossEncoder, but got a model of type {type(model)}.")
    if model.runs_in_engine:
        raise ValueError(
            f"{name} trains the CrossEncoder's torch modules, but this model runs its exported {model.backend} file "
            "without them; load it with backend='torch' to train it."
        )


def check_one_label(loss: nn.Module, model: Any) -> None:
    """Raises:
    ValueError: the model does not give exactly one score per pair."""
    if model.num_labels != 1:
        raise ValueError(
            f"{type(loss).__name__} expects a model with 1 output label, but got a model with {model.num_labels} "
            "output labels. Load the model with num_labels=1 (the default for a new head), or use CrossEntropyLoss "
            "to train a classifier with several labels."
        )


def pair_logits(model: Any, pairs: Sequence[Any], prompt: str | None = None, task: str | None = None) -> Tensor:
    """``(len(pairs), num_labels)`` logits of ``(text, text_pair)`` pairs in one forward pass."""
    features = model.preprocess(list(pairs), prompt=prompt, task=task)
    features = batch_to_device(features, model.device)
    logits: Tensor = model(features)["scores"]
    return logits


@dataclass
class ScoredLists:
    """The scores of a listwise batch, flat in pair order (query by query, documents in input order).

    Attributes:
        logits: ``(n_pairs,)`` float32, after the loss's activation function.
        labels: ``(n_pairs,)`` float32 gold labels.
        rows: ``(n_pairs,)`` int64, the query (row) of each pair.
        columns: ``(n_pairs,)`` int64, the position of each pair's document in its query's list.
        batch_size: number of queries.
        max_documents: length of the longest list.
    """

    logits: Tensor
    labels: Tensor
    rows: Tensor
    columns: Tensor
    batch_size: int
    max_documents: int

    def padded(self, values: Tensor, fill: float) -> Tensor:
        """``(batch_size, max_documents)`` with ``values`` (flat, in pair order) at their places and ``fill`` in the
        positions past the end of each list."""
        matrix = torch.full((self.batch_size, self.max_documents), fill, dtype=values.dtype, device=values.device)
        matrix[self.rows, self.columns] = values
        return matrix

    def mask(self) -> Tensor:
        """``(batch_size, max_documents)`` bool, True where a list has a document."""
        matrix = torch.zeros((self.batch_size, self.max_documents), dtype=torch.bool, device=self.logits.device)
        matrix[self.rows, self.columns] = True
        return matrix


def _one_label_per_sample(loss_name: str, labels: Tensor) -> ValueError:
    return ValueError(
        f"{loss_name} is a listwise loss: it expects one list of labels per query ([score1, ..., scoreN] for "
        f"(query, [doc1, ..., docN]) inputs), but got a single value for each sample (labels of shape "
        f"{tuple(labels.shape)}). {_PAIR_LOSSES_HINT}"
    )


def _label_rows(loss_name: str, labels: Any, batch_size: int) -> list[Tensor]:
    """One ``(n_documents,)`` float32 tensor per query from a list of per-query labels (or a 2-D tensor).

    Raises:
        ValueError: one label per query (the labels of (query, document) pairs), or not one row per query.
    """
    if isinstance(labels, Tensor):
        if labels.ndim != 2:
            raise _one_label_per_sample(loss_name, labels)
        rows = list(labels.unbind(0))
    elif isinstance(labels, Sequence) and not isinstance(labels, str):
        rows = [torch.as_tensor(row) for row in labels]
        if rows and all(row.ndim == 0 for row in rows):
            raise _one_label_per_sample(loss_name, torch.stack(rows))
    else:
        raise ValueError(
            f"{loss_name} expects one list of labels per query (a list of tensors), but got {type(labels).__name__}."
        )
    if len(rows) != batch_size:
        raise ValueError(f"{loss_name} got {batch_size} queries but {len(rows)} lists of labels.")
    for index, row in enumerate(rows):
        if row.ndim != 1:
            raise ValueError(
                f"{loss_name} expects each query's labels as a flat list of numbers, but the labels of sample "
                f"{index} have shape {tuple(row.shape)}."
            )
    return [row.float() for row in rows]


def score_lists(
    loss: nn.Module,
    inputs: Sequence[Any],
    labels: Any,
    mini_batch_size: int | None,
    activation_fn: Callable[[Tensor], Tensor],
    prompt: str | None = None,
    task: str | None = None,
) -> ScoredLists:
    """Checks a listwise batch and scores each (query, document) pair.

    Args:
        loss: the calling loss (its ``model`` scores the pairs; its class name goes into error messages).
        inputs: ``[queries, documents_per_query]``: ``queries`` a list of texts, ``documents_per_query`` one list of
            texts per query.
        labels: one list (or 1-D tensor) of labels per query, as long as its documents list; or a
            ``(batch_size, n_documents)`` tensor.
        mini_batch_size: pairs per forward pass: None takes the number of queries, ``<= 0`` all pairs at once.
        activation_fn: applied to the float32 logits.
        prompt: passed to ``model.preprocess``.
        task: passed to ``model.preprocess``.

    Raises:
        ValueError: the batch is not ``(queries, documents_per_query)``, a query's documents are a single text, or
            the label and document counts differ.
    """
    name = type(loss).__name__
    model = loss.model
    if isinstance(labels, Tensor) and labels.ndim < 2:
        raise _one_label_per_sample(name, labels)
    if len(inputs) != 2:
        raise ValueError(
            f"{name} expects two inputs (queries, documents_list), but got {len(inputs)} inputs. A listwise loss "
            f"takes a query column and a column of document lists, (query, [doc1, ..., docN])."
        )
    queries, documents = inputs
    if len(queries) != len(documents):
        raise ValueError(f"{name} got {len(queries)} queries but {len(documents)} lists of documents.")
    for index, docs in enumerate(documents):
        if isinstance(docs, (str, bytes)) or not hasattr(docs, "__len__"):
            raise ValueError(
                f"{name} is a listwise loss: it expects a list of documents per query, (query, [doc1, ..., docN]), "
                f"but sample {index} has a single {type(docs).__name__} ({docs!r:.60}). {_PAIR_LOSSES_HINT}"
            )
    batch_size = len(queries)
    label_rows = _label_rows(name, labels, batch_size)
    docs_per_query = [len(docs) for docs in documents]
    if docs_per_query != [len(row) for row in label_rows]:
        raise ValueError(
            f"Number of documents per query in inputs ({docs_per_query}) does not match number of labels per query "
            f"({[len(row) for row in label_rows]})."
        )
    if sum(docs_per_query) == 0:
        raise ValueError(f"{name} got no documents to score: every query's documents list is empty.")

    pairs = [(query, doc) for query, docs in zip(queries, documents) for doc in docs]
    chunk = mini_batch_size or batch_size
    if chunk <= 0:
        chunk = len(pairs)
    parts = [
        pair_logits(model, pairs[begin : begin + chunk], prompt, task).view(-1)
        for begin in range(0, len(pairs), chunk)
    ]
    logits = activation_fn(torch.cat(parts).float())
    device = logits.device
    counts = torch.tensor(docs_per_query)
    rows = torch.repeat_interleave(torch.arange(batch_size), counts).to(device)
    columns = torch.cat([torch.arange(n) for n in docs_per_query]).to(device)
    return ScoredLists(
        logits=logits,
        labels=torch.cat(label_rows).to(device),
        rows=rows,
        columns=columns,
        batch_size=batch_size,
        max_documents=max(docs_per_query),
    )
