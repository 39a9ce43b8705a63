"""Each model's predicted label per item, read from its predictions.jsonl line by line.

A record's label is its `label_key` field (what model_inference writes with
labels). A record without one falls back to its first output: a whole number,
or a list of one, is a class index (a scikit-learn classifier's `predict`);
a list of several numbers is scores, and the index of the highest is the
class (`predict_proba`, logits). Class indices then compare as text ("2"),
which is how a truth file's labels read. A record with neither counts as no
prediction for its item.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from orchestrator.catalog.values import Predictions
from orchestrator.errors import OperationError


@dataclass(frozen=True)
class ModelLabels:
    """One model's predictions: a unique display name and item name -> label, in file order."""

    name: str
    source: Predictions
    labels: dict[str, str]
    unreadable: int  # records that held no label

    @property
    def rows_per_second(self) -> float | None:
        seconds = self.source.seconds
        return self.source.rows / seconds if seconds else None


def as_label(value: Any) -> str | None:
    """A label value as text: whole numbers without a decimal point, None for no label."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return json.dumps(value, sort_keys=True)  # a table's list of labels: compared as a whole


def _numbers(value: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)


def fallback_label(outputs: Any) -> str | None:
    """The class an item's first output stands for, or None (see the module docstring)."""
    if not isinstance(outputs, dict) or not outputs:
        return None
    value = next(iter(outputs.values()))
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, int | float) and not isinstance(value, bool):
        whole = isinstance(value, int) or (math.isfinite(value) and value.is_integer())
        return as_label(value) if whole else None  # a lone score is no class
    if isinstance(value, list) and value and _numbers(value):
        return str(max(range(len(value)), key=value.__getitem__))
    return None


def read_labels(predictions: Predictions, name: str, label_key: str) -> ModelLabels:
    """The labels of one model's records, streamed from its file."""
    labels: dict[str, str] = {}
    unreadable = 0
    try:
        with predictions.file.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise OperationError(
                        f"predictions of {name!r}, line {number}: not JSON: {exc}"
                    ) from exc
                if not isinstance(record, dict) or not isinstance(record.get("name"), str):
                    raise OperationError(
                        f'predictions of {name!r}, line {number}: a record needs a "name"'
                    )
                label = as_label(record.get(label_key))
                if label is None:
                    label = fallback_label(record.get("outputs"))
                if label is None:
                    unreadable += 1
                else:
                    labels[record["name"]] = label
    except FileNotFoundError as exc:
        raise OperationError(
            f"the predictions of {name!r} are gone: {predictions.path!r} is not in the run's "
            "artifacts"
        ) from exc
    return ModelLabels(name, predictions, labels, unreadable)


def display_names(predictions: list[Predictions]) -> list[str]:
    """Each model's name, made unique with #2, #3... when one model is compared twice."""
    names: list[str] = []
    for p in predictions:
        name, n = p.model, 1
        while name in names:
            n += 1
            name = f"{p.model} #{n}"
        names.append(name)
    return names
