"""Ground truth: item name -> label, from one CSV or JSON file.

- CSV (any of `,` `;` tab): the item's name and its label per row. A first row
  naming its columns is a header: the item column is the first headed `name`,
  `item`, `file`, `filename`, `image`, `path` or `id`, the label column the first
  headed with the label key, `label`, `class`, `truth`, `target` or `category`
  (else the first two columns). Without such a header the first column is the
  item, the second the label. An empty label cell leaves the item unlabelled.
- JSON: an object `{"item": "label", ...}`, a list of objects with those keys,
  or a list of `[item, label]` pairs. `.jsonl`: one such object per line.

An item named twice with two labels is refused: one of them would be wrong.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from orchestrator.errors import OperationError
from orchestrator.operations.compare.predicted import as_label

NAME_HEADINGS = ("name", "item", "file", "filename", "image", "path", "id")
LABEL_HEADINGS = ("label", "class", "truth", "target", "category")


def read_truth(file: Path, shown: str, label_key: str = "label") -> dict[str, str]:
    """The labels in `file` (`shown` is how messages name it)."""
    try:
        with file.open(encoding="utf-8-sig", newline="") as text:
            start = text.read(4096)
            text.seek(0)
            suffix = file.suffix.lower()
            if suffix == ".jsonl":
                pairs = _json_lines(text, shown, label_key)
            elif suffix == ".json" or (suffix != ".csv" and start.lstrip()[:1] in ("{", "[")):
                pairs = _json(text, shown, label_key)
            else:
                pairs = _csv(text, start, shown, label_key)
            return _mapping(pairs, shown)
    except UnicodeDecodeError as exc:
        raise OperationError(f"truth {shown} is not UTF-8 text: {exc}") from exc


def _mapping(pairs: Iterable[tuple[str, Any]], shown: str) -> dict[str, str]:
    truth: dict[str, str] = {}
    for name, value in pairs:
        label = as_label(value)
        if label is None or label == "":
            continue
        if truth.setdefault(name, label) != label:
            raise OperationError(
                f"truth {shown} gives item {name!r} two labels: {truth[name]!r} and {label!r}"
            )
    if not truth:
        raise OperationError(f"truth {shown} holds no labels")
    return truth


def _column(header: list[str], headings: Iterable[str], skip: int | None) -> int | None:
    lowered = [cell.strip().lower() for cell in header]
    for heading in headings:
        if heading in lowered and lowered.index(heading) != skip:
            return lowered.index(heading)
    return None


def _csv(text: Iterable[str], start: str, shown: str, label_key: str) -> Iterator[tuple[str, Any]]:
    try:
        dialect: Any = csv.Sniffer().sniff(start, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows: Iterator[list[str]] = csv.reader(text, dialect)
    header = next(rows, None)
    if header is None:
        return
    labels = (label_key.lower(), *LABEL_HEADINGS)
    name_at = _column(header, NAME_HEADINGS, None)
    label_at = _column(header, labels, name_at)
    headed = name_at is not None or label_at is not None
    if not headed:  # the first row is data
        rows = _prepend(header, rows)
    name_at = 0 if name_at is None else name_at
    label_at = label_at if label_at is not None else (1 if name_at == 0 else 0)
    for number, row in enumerate(rows, start=2 if headed else 1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(name_at, label_at):
            raise OperationError(
                f"truth {shown}, row {number}: {len(row)} column(s), the item's name and its "
                "label need two"
            )
        yield row[name_at].strip(), row[label_at].strip()


def _prepend(first: list[str], rows: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rows


def _json(text: Any, shown: str, label_key: str) -> Iterator[tuple[str, Any]]:
    try:
        document = json.load(text)
    except json.JSONDecodeError as exc:
        raise OperationError(f"truth {shown} is not valid JSON: {exc}") from exc
    if isinstance(document, dict):
        for name, label in document.items():
            yield str(name), label
    elif isinstance(document, list):
        for number, entry in enumerate(document):
            yield _entry(entry, f"truth {shown}[{number}]", label_key)
    else:
        raise OperationError(
            f"truth {shown} must be a JSON object (item -> label) or a list, not "
            f"{type(document).__name__}"
        )


def _json_lines(text: Iterable[str], shown: str, label_key: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(text, start=1):
        if line.strip():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise OperationError(f"truth {shown}, line {number}: not JSON: {exc}") from exc
            yield _entry(entry, f"truth {shown}, line {number}", label_key)


def _entry(entry: Any, where: str, label_key: str) -> tuple[str, Any]:
    if isinstance(entry, list) and len(entry) == 2:
        return str(entry[0]), entry[1]
    if isinstance(entry, dict):
        name = next((entry[k] for k in NAME_HEADINGS if k in entry), None)
        label = next((entry[k] for k in (label_key, *LABEL_HEADINGS) if k in entry), None)
        if name is not None:
            return str(name), label
    raise OperationError(
        f'{where}: expected {{"name": ITEM, "label": LABEL}} or [ITEM, LABEL], got '
        f"{json.dumps(entry)[:80]}"
    )
