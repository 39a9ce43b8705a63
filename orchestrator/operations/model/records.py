"""predictions.jsonl: one JSON Lines record per item, in item order.

A record is `{"name": ITEM, "outputs": {OUTPUT: VALUE}}`, VALUE being the
output for its row, or for a table a list with the output of each of its rows;
byte for byte what `json.dumps` makes of it. With labels (see `labels`), the
label, score and top labels come between name and outputs:
`{"name": ITEM, "label": "fire", "score": 0.97, "outputs": {...}}`, for a table
each a list with the value of each of its rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from itertools import chain, repeat
from typing import IO, Any

import numpy as np

from orchestrator.catalog.values import DataItem, PredictionOutput
from orchestrator.connectors.model_server import Tensor
from orchestrator.errors import OperationError
from orchestrator.operations.model.batching import Layout, RequestBatch, RunPart
from orchestrator.operations.model.labels import LabelMap

PREDICTIONS_FILE = "predictions.jsonl"


class RecordWriter:
    """Writes one JSON Lines record per item as its rows' outputs come back, in order.

    A record is what `json.dumps({"name": ..., "outputs": {...}})` makes, put
    together from pieces: each output is encoded once per request, not once
    per item (json.dumps per record would cost more than the request).
    With `labels`, each row's label is worked out once per request too; without,
    nothing of it runs.
    """

    def __init__(self, out: IO[str], items: list[DataItem], labels: LabelMap | None = None):
        self._out = out
        self._items = items
        self._labels = labels
        self._pieces: dict[str, list[Any]] = {}  # JSON output name -> rows of an open item
        self._marks: list[dict[str, Any]] = []  # the labels of an open item's rows
        self.rows = 0
        self.requests = 0
        self.outputs: tuple[PredictionOutput, ...] = ()

    def add(self, batch: RequestBatch, tensors: list[Tensor]) -> None:
        """Records every item the request completes, given its answer."""
        by_name = {tensor.name: self._rows(tensor, batch.rows) for tensor in tensors}
        arrays = {json.dumps(name): rows for name, rows in by_name.items()}
        marks = None  # each row's labels, when asked for
        if self._labels is not None:
            marks = self._labels.annotate(by_name) if batch.rows else []
        if tensors and not self.outputs:
            self.outputs = tuple(
                PredictionOutput(name=t.name, datatype=t.datatype, shape=t.shape[1:])
                for t in tensors
            )
        keys = list(arrays)
        texts: list[list[str]] | None = None  # for runs: each row's JSON text
        per_row: list[list[Any]] | None = None  # for items of several rows: each row's value
        offset = 0
        for segment in batch.segments:
            end = offset + segment.rows
            if isinstance(segment, RunPart):
                texts = texts or [_json_texts(rows) for rows in arrays.values()]
                run = self._items[segment.item : segment.item + segment.rows]
                columns = [column[offset:end] for column in texts]
                tails = None if marks is None else [_tail(mark) for mark in marks[offset:end]]
                self._out.write(_records(keys, [item.name for item in run], columns, tails))
            else:
                per_row = per_row or [rows.tolist() for rows in arrays.values()]
                for key, values in zip(keys, per_row, strict=True):
                    self._pieces.setdefault(key, []).extend(values[offset:end])
                if marks is not None:
                    self._marks.extend(marks[offset:end])
                if segment.last:
                    self._out.write(self._record(self._items[segment.item], segment.layout))
            offset = end
        self.rows += batch.rows
        self.requests += batch.rows > 0

    def _record(self, item: DataItem, layout: Layout) -> str:
        """The finished item's JSON Lines record; its rows are dropped."""
        table = layout is Layout.TABLE
        values = [[json.dumps(rows if table else rows[0])] for rows in self._pieces.values()]
        tails = None
        if self._labels is not None:
            tails = [_tail(_table_marks(self._marks) if table else self._marks[0])]
        line = _records(list(self._pieces), [item.name], values, tails)
        self._pieces, self._marks = {}, []
        return line

    @staticmethod
    def _rows(tensor: Tensor, rows: int) -> np.ndarray:
        if not tensor.shape or tensor.shape[0] != rows:
            raise OperationError(
                f"the model answered output {tensor.name!r} with shape {list(tensor.shape)} "
                f"for {rows} input rows"
            )
        try:
            return np.asarray(tensor.data).reshape(tensor.shape)
        except ValueError as exc:
            raise OperationError(
                f"output {tensor.name!r}: data does not fit shape {list(tensor.shape)}: {exc}"
            ) from exc


def _json_texts(rows: np.ndarray) -> list[str]:
    """`json.dumps` of each row's value; for rows of numbers, one call for them all (one
    C loop per request instead of a Python call per row)."""
    if rows.size and rows.ndim <= 2 and rows.dtype.kind in "biuf":
        flat = json.dumps(rows.ravel().tolist())[1:-1].split(", ")  # numbers hold no ", "
        if rows.ndim == 1:
            return flat
        width = rows.shape[1]
        if width == 1:
            return [f"[{text}]" for text in flat]
        return ["[" + ", ".join(flat[i : i + width]) + "]" for i in range(0, len(flat), width)]
    return [json.dumps(value) for value in rows.tolist()]


def _tail(mark: dict[str, Any]) -> str:
    """A row's labels as the JSON members that follow the record's name."""
    return ", " + json.dumps(mark)[1:-1]


def _table_marks(marks: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """A table's labels: each member a list with the value of each row."""
    keys = marks[0] if marks else {"label": None}
    return {key: [mark[key] for mark in marks] for key in keys}


PLAIN_TEXT = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but quote and backslash: JSON as is


def _records(
    keys: list[str], names: list[str], columns: list[list[str]], tails: list[str] | None = None
) -> str:
    """The JSON Lines records of items `names`, `columns` holding each output's JSON text
    per item: what json.dumps makes of `{"name": ..., "outputs": {KEY: ...}}` for each;
    `tails`, when given, the JSON members (labels) that follow each name.

    `keys` are the output names, JSON-encoded. The records are joined from
    pieces in one C loop; names that need no escaping are just quoted (one
    regular expression for them all, not a json.dumps each).
    """
    if tails is not None:
        start, after_name = '{"name": ', ', "outputs": {'
        names = [json.dumps(n) + tail for n, tail in zip(names, tails, strict=True)]
    elif PLAIN_TEXT.fullmatch("".join(names)):
        start, after_name = '{"name": "', '", "outputs": {'
    else:
        start, after_name, names = '{"name": ', ', "outputs": {', [json.dumps(n) for n in names]
    glue = [f"{after_name}{key}: " if i == 0 else f", {key}: " for i, key in enumerate(keys)]
    streams: list[Iterable[str]] = [repeat(start), names]
    for before, column in zip(glue, columns, strict=True):
        streams += [repeat(before), column]
    streams.append(repeat("}}\n" if keys else after_name + "}}\n"))
    return "".join(chain.from_iterable(zip(*streams, strict=False)))  # names end the repeats
