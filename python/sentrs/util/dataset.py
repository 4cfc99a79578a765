"""``resolve_ids``: a batched dataset transform that replaces ID columns by the values the IDs point to.

IR and distillation datasets often store the training rows as IDs (``query_id``, ``document_ids``, ...) beside
separate datasets that hold the texts (or images). The losses read text columns by position, so the IDs must be
joined with those datasets first; ``resolve_ids`` builds that join once, as a picklable transform for
``Dataset.set_transform`` (lazy) or ``Dataset.map(batched=True)`` (eager).

The join keeps an ``id -> row`` index per lookup dataset: sorted numpy arrays for numeric and short string IDs (a
fraction of a dict's memory, and cheap to pickle into ``DataLoader`` workers), a dict for anything else.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from sentrs.base.data_collator import DEFAULT_LABEL_COLUMNS

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = ["DEFAULT_LABEL_COLUMNS", "resolve_ids"]

logger = logging.getLogger(__name__)

OutputFormat = Literal["columns", "lists"]
OUTPUT_FORMATS: tuple[str, ...] = ("columns", "lists")

# Strings longer than this are indexed with a dict: numpy stores every string at the width of the longest one
# (4 bytes a character), which past this length costs more than the dict.
_MAX_SORTED_ID_CHARS = 32
# IDs are read from the lookup datasets in batches of this many rows (much faster than row by row, and it honours
# a dataset's indices mapping from select / shuffle / filter, which raw Arrow access would not).
_ID_READ_BATCH = 50_000
# The kinds of numpy arrays that can be compared with each other: numbers with numbers, strings with strings.
_NUMERIC_KINDS = frozenset("biuf")

_warned_duplicates: set[str] = set()


def resolve_ids(
    lookups: Mapping[str, Dataset | tuple[Dataset, str] | tuple[Dataset, str, str]],
    keep_columns: list[str] | tuple[str, ...] = DEFAULT_LABEL_COLUMNS,
    max_list_length: int | None = None,
    output_format: OutputFormat = "columns",
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A batched transform that replaces each ID column of a dataset by the values of a lookup dataset.

    A column may hold one ID per row (``positive_id: str``) or a list of IDs per row (``document_ids: list[str]``);
    which one is read from the data. The output columns are named after the input columns without their ID suffix
    (``query_id`` -> ``query``); list columns become numbered columns (``document_ids`` -> ``document_1``, ...,
    ``document_N``), or one column of lists under the plural name (``documents``) with ``output_format="lists"``.
    Columns that are neither looked up nor kept are dropped, since the losses read columns by position: list the
    anchor (query) column first in ``lookups``.

    Use the result with ``dataset.set_transform(...)``, or with ``dataset.map(..., batched=True,
    remove_columns=list(lookups))`` (``map`` keeps the input columns unless told otherwise, and hands the transform
    batches in the dataset's format: call ``with_format(None)`` first). Only the dataset being transformed may be
    streamed; the lookup datasets must be regular ``Dataset`` objects.

    Args:
        lookups: ``{input_column: lookup}`` where ``lookup`` is a ``datasets.Dataset`` (its ID column is the one
            column named ``id`` or ending in ``_id``, its value column the one other column), ``(dataset, id_col)``,
            or ``(dataset, id_col, value_col)``. Entries that share a dataset and ID column share one index.
        keep_columns: input columns passed through unchanged (list values are truncated like the ID lists); absent
            ones are ignored. Defaults to the label columns the data collators read (``label``, ``labels``,
            ``score``, ``scores``).
        max_list_length: keep the first ``max_list_length`` entries of every list column (ID lists and kept
            columns), as stored, not the best-scored ones. None keeps all.
        output_format: ``"columns"`` expands list columns into numbered columns and needs lists of one length;
            ``"lists"`` keeps them as lists (ragged rows allowed; the shape of CrossEncoder listwise losses).

    Returns:
        A picklable callable from a batch dict of the input columns to a batch dict of the resolved columns. An ID
        missing from its lookup dataset raises ``KeyError`` when a batch is read.

    Raises:
        ImportError: ``datasets`` is not installed.
        TypeError: ``keep_columns`` is a string, or a lookup is not a ``Dataset`` (a ``DatasetDict`` included).
        ValueError: a bad ``max_list_length`` or ``output_format``, a tuple lookup of the wrong length, or an ID or
            value column that is missing or cannot be inferred.

    Example::

        train.set_transform(resolve_ids({"query_id": queries, "document_ids": documents}, max_list_length=8))
        # rows of {"query": str, "document_1": str, ..., "document_8": str, "scores": list[float]}
    """
    try:
        from datasets import Dataset, DatasetDict
    except ImportError as exc:
        raise ImportError("resolve_ids needs the `datasets` package: pip install datasets") from exc

    if isinstance(keep_columns, str):
        raise TypeError(f"keep_columns must be a list or tuple of column names, got the string {keep_columns!r}")
    if max_list_length is not None and max_list_length < 1:
        raise ValueError(f"max_list_length must be a positive integer or None, got {max_list_length!r}")
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be 'columns' or 'lists', got {output_format!r}")

    indices: dict[tuple[int, str], _IdIndex] = {}
    resolutions: dict[str, _Resolution] = {}
    for input_column, spec in lookups.items():
        where = f"lookups[{input_column!r}]"
        if isinstance(spec, tuple):
            if len(spec) not in (2, 3):
                raise ValueError(
                    f"{where} must be a Dataset, (dataset, id_col) or (dataset, id_col, value_col), "
                    f"got a tuple of {len(spec)} items"
                )
            dataset, id_column, value_column = spec[0], spec[1], (spec[2] if len(spec) == 3 else None)
        else:
            dataset, id_column, value_column = spec, None, None
        if isinstance(dataset, DatasetDict):
            raise TypeError(
                f"{where} must be a Dataset, got a DatasetDict; pick a split (dataset_dict['train']) or load one "
                "with load_dataset(..., split=...)"
            )
        if not isinstance(dataset, Dataset):
            raise TypeError(f"{where} must be a Dataset, got {type(dataset).__name__}")
        # The same dataset object under several entries shares one index; with_format below makes a new object.
        index_key_dataset = id(dataset)
        # Plain Python values as keys and outputs, whatever format the caller gave the lookup dataset.
        dataset = dataset.with_format(None)
        columns = list(dataset.column_names)
        id_column = _id_column(columns, id_column, where)
        value_column = _value_column(columns, id_column, value_column, where)

        index_key = (index_key_dataset, id_column)
        if index_key not in indices:
            indices[index_key] = _IdIndex(_read_column(dataset, id_column))
            duplicates = dataset.num_rows - len(indices[index_key])
            if duplicates:
                _warn_duplicates(
                    f"{where}: {duplicates} rows repeat an earlier {id_column!r} value; "
                    "a repeated ID resolves to its last row"
                )
        resolutions[input_column] = _Resolution(
            values=dataset.select_columns([value_column]),
            index=indices[index_key],
            value_column=value_column,
            name=_base_name(input_column),
            plural_name=_plural_name(input_column),
        )
    return _ResolveIdsTransform(resolutions, tuple(keep_columns), max_list_length, output_format)


def _id_column(columns: list[str], id_column: str | None, where: str) -> str:
    """The explicit ID column (checked), or the one column named ``id`` or ending in ``_id``."""
    if id_column is not None:
        if id_column not in columns:
            raise ValueError(f"{where}: the ID column {id_column!r} is not a column of the dataset {sorted(columns)}")
        return id_column
    candidates = [column for column in columns if column == "id" or column.endswith("_id")]
    if len(candidates) != 1:
        raise ValueError(
            f"{where}: cannot infer the ID column, expected one column named 'id' or ending in '_id' among "
            f"{sorted(columns)}, got {candidates or 'none'}; pass (dataset, id_col)"
        )
    return candidates[0]


def _value_column(columns: list[str], id_column: str, value_column: str | None, where: str) -> str:
    """The explicit value column (checked), or the one column beside the ID column."""
    if value_column is not None:
        if value_column not in columns:
            raise ValueError(
                f"{where}: the value column {value_column!r} is not a column of the dataset {sorted(columns)}"
            )
        return value_column
    others = [column for column in columns if column != id_column]
    if len(others) != 1:
        raise ValueError(
            f"{where}: cannot infer the value column, expected one column beside {id_column!r}, "
            f"got {others or 'none'}; pass (dataset, id_col, value_col)"
        )
    return others[0]


def _read_column(dataset: Dataset, column: str) -> list[Any]:
    values: list[Any] = []
    for batch in dataset.select_columns([column]).iter(batch_size=_ID_READ_BATCH):
        values.extend(batch[column])
    return values


def _warn_duplicates(message: str) -> None:
    if message not in _warned_duplicates:
        _warned_duplicates.add(message)
        logger.warning(message)


def _base_name(column: str) -> str:
    """``query_id`` -> ``query``, ``document_ids`` -> ``document``, ``doc_idx`` -> ``doc``; other names unchanged."""
    for suffix in ("_ids", "_id", "_idx"):
        if column.endswith(suffix):
            return column[: -len(suffix)]
    return column


def _plural_name(column: str) -> str:
    """``document_ids`` -> ``documents``, ``query_ids`` -> ``queries``; otherwise :func:`_base_name`."""
    if column.endswith("_ids"):
        stem = column[: -len("_ids")]
        return stem[:-1] + "ies" if stem.endswith("y") else stem + "s"
    return _base_name(column)


class _IdIndex:
    """The row of each ID of a lookup dataset; a repeated ID maps to its last row (as a dict filled row by row).

    IDs that are all ints, all floats or all strings of at most ``_MAX_SORTED_ID_CHARS`` characters are kept as a
    sorted numpy array beside their rows and found by binary search; other IDs go into a dict.
    """

    __slots__ = ("_keys", "_map", "_rows")

    def __init__(self, ids: list[Any]) -> None:
        self._map: dict[Any, int] | None = None
        self._keys: npt.NDArray[Any] = np.empty(0)
        self._rows: npt.NDArray[np.intp] = np.empty(0, dtype=np.intp)
        keys = _sortable_keys(ids)
        if keys is None:
            self._map = {key: row for row, key in enumerate(ids)}
            return
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        # Equal keys stay in row order after a stable sort: keep the last of each run.
        last = np.ones(len(keys), dtype=bool)
        last[:-1] = keys[1:] != keys[:-1]
        self._keys, self._rows = keys[last], order[last]

    def __len__(self) -> int:
        return len(self._map) if self._map is not None else len(self._keys)

    def rows(self, ids: list[Any]) -> list[int]:
        """The rows of ``ids``, in order.

        Raises:
            KeyError: the first ID that has no row (its argument is the ID).
            TypeError: an ID is unhashable (dict index only).
        """
        if self._map is not None:
            return [self._map[key] for key in ids]
        queries = np.asarray(ids)
        # numpy turns [1, "a"] into strings; such a mix takes the one-at-a-time path below.
        mixed = queries.dtype.kind == "U" and not all(isinstance(key, str) for key in ids)
        if queries.ndim == 1 and not mixed and self._comparable(queries):
            at = np.minimum(np.searchsorted(self._keys, queries), len(self._keys) - 1)
            found = self._keys[at] == queries
            if not found.all():
                raise KeyError(ids[int(np.argmin(found))])
            rows: list[int] = self._rows[at].tolist()
            return rows
        # Mixed or unusual ID types: one at a time, so that the ID reported is really the one missing.
        return [self._row(key) for key in ids]

    def _row(self, key: Any) -> int:
        query = np.asarray([key])
        if query.ndim == 1 and (query.dtype.kind != "U" or isinstance(key, str)) and self._comparable(query):
            at = min(int(np.searchsorted(self._keys, query[0])), len(self._keys) - 1)
            if self._keys[at] == query[0]:
                return int(self._rows[at])
        raise KeyError(key)

    def _comparable(self, queries: npt.NDArray[Any]) -> bool:
        kinds = queries.dtype.kind + self._keys.dtype.kind
        return set(kinds) <= _NUMERIC_KINDS or kinds == "UU"


def _sortable_keys(ids: list[Any]) -> npt.NDArray[Any] | None:
    """``ids`` as a 1-d numpy array when they can be indexed by sorting (see :class:`_IdIndex`), else None."""
    if not ids:
        return None
    types = {type(key) for key in ids}
    if len(types) != 1 or next(iter(types)) not in (int, float, str):
        return None
    keys = np.asarray(ids)
    if keys.ndim != 1 or keys.dtype.kind not in "ifU":
        return None  # ints beyond int64, for one
    if keys.dtype.kind == "U" and keys.dtype.itemsize > 4 * _MAX_SORTED_ID_CHARS:
        return None
    return keys


@dataclass(frozen=True)
class _Resolution:
    """How one input column is resolved."""

    values: Dataset  # the lookup dataset's value column alone, so that reading rows decodes nothing else
    index: _IdIndex
    value_column: str
    name: str  # output name for one ID per row, and the stem of the numbered columns
    plural_name: str  # output name of a list column with output_format="lists"


class _ResolveIdsTransform:
    """The transform :func:`resolve_ids` returns: a module-level class, so that it pickles into DataLoader workers."""

    def __init__(
        self,
        resolutions: dict[str, _Resolution],
        keep_columns: tuple[str, ...],
        max_list_length: int | None,
        output_format: OutputFormat,
    ) -> None:
        self.resolutions = resolutions
        self.keep_columns = keep_columns
        self.max_list_length = max_list_length
        self.output_format = output_format

    def __repr__(self) -> str:
        return (
            f"resolve_ids(lookups={list(self.resolutions)}, keep_columns={list(self.keep_columns)}, "
            f"max_list_length={self.max_list_length}, output_format={self.output_format!r})"
        )

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Resolves one batch: ``{column: [value per row]}`` in, the resolved columns out."""
        if not isinstance(batch, Mapping):
            raise TypeError(
                f"resolve_ids expects a batch as a dict of columns, got {type(batch).__name__}: the dataset has a "
                "format (such as with_format('pandas')); call dataset.with_format(None) first"
            )
        out: dict[str, Any] = {}
        for input_column, resolution in self.resolutions.items():
            column = batch[input_column]
            if not isinstance(column, list):
                raise TypeError(
                    f"input column {input_column!r} must hold a list of IDs, got {type(column).__name__}: the "
                    "dataset has a format (such as with_format('numpy')); call dataset.with_format(None) first"
                )
            column = _decode_string_lists(column, input_column)
            if not (column and isinstance(column[0], (list, tuple))):
                _put(out, resolution.name, self._lookup(resolution, list(column), input_column))
                continue
            if self.max_list_length is not None:
                column = [row[: self.max_list_length] for row in column]
            flat = self._lookup(resolution, [key for row in column for key in row], input_column)
            if self.output_format == "lists":
                nested, start = [], 0
                for row in column:
                    nested.append(flat[start : start + len(row)])
                    start += len(row)
                _put(out, resolution.plural_name, nested)
                continue
            lengths = sorted({len(row) for row in column})
            if len(lengths) > 1:
                raise ValueError(
                    f"input column {input_column!r} holds ID lists of lengths {lengths} in one batch; "
                    "output_format='columns' makes one column per list position and needs one length. Set "
                    "max_list_length to cut the lists to a common length, or use output_format='lists' "
                    "(ragged rows allowed)"
                )
            width = lengths[0]
            if width == 0:
                raise ValueError(
                    f"input column {input_column!r} holds empty ID lists, which give no columns; "
                    "filter those rows out of the dataset"
                )
            for position in range(width):
                # The flat values are row by row, so every width-th value is one list position.
                _put(out, f"{resolution.name}_{position + 1}", flat[position::width])

        for keep_column in self.keep_columns:
            if keep_column not in batch:
                continue
            values = _decode_string_lists(batch[keep_column], keep_column)
            if self.max_list_length is not None and _holds_sequences(values):
                values = [row[: self.max_list_length] for row in values]
            _put(out, keep_column, values)
        return out

    @staticmethod
    def _lookup(resolution: _Resolution, ids: list[Any], input_column: str) -> list[Any]:
        """The values of ``ids`` (a flat list) from the lookup dataset of ``input_column``."""
        if not ids:
            return []
        try:
            rows = resolution.index.rows(ids)
        except TypeError:
            raise TypeError(
                f"input column {input_column!r} holds unhashable IDs: the dataset has a format (such as "
                "with_format('numpy')); call dataset.with_format(None) first"
            ) from None
        except KeyError as exc:
            missing = exc.args[0]
            hint = ""
            if isinstance(missing, str) and missing.lstrip().startswith("["):
                hint = "; it looks like a list written as a string, convert the column to lists first"
            raise KeyError(
                f"ID {missing!r} of input column {input_column!r} is not in its lookup dataset{hint}"
            ) from None
        values: list[Any] = resolution.values[rows][resolution.value_column]
        return values


def _put(out: dict[str, Any], name: str, values: Sequence[Any]) -> None:
    if name in out:
        raise ValueError(
            f"two inputs resolve to the output column {name!r} (two lookups with one output name, or a list column "
            "expanded onto another column); rename the input columns"
        )
    out[name] = values


def _decode_string_lists(values: Sequence[Any], column: str) -> Sequence[Any]:
    """``values`` with lists written as strings (``"[1, 2]"``, as some distillation datasets store them) parsed.

    The first value decides: a string starting with ``[`` means every value of the column is such a string.
    """
    if not (len(values) and isinstance(values[0], str) and values[0].lstrip().startswith("[")):
        return values
    parsed = []
    for value in values:
        try:
            item = ast.literal_eval(value)
        except (ValueError, SyntaxError) as exc:
            raise ValueError(
                f"column {column!r} holds lists written as strings, but {value[:100]!r} does not parse: {exc}"
            ) from None
        if not isinstance(item, (list, tuple)):
            raise ValueError(
                f"column {column!r} holds lists written as strings, but {value[:100]!r} is a "
                f"{type(item).__name__}, not a list"
            )
        parsed.append(list(item))
    return parsed


def _holds_sequences(values: Sequence[Any]) -> bool:
    """Whether the rows of a column are sequences (lists, arrays), not strings or scalars."""
    return bool(len(values)) and not isinstance(values[0], (str, bytes)) and hasattr(values[0], "__len__")
