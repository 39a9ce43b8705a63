"""Class labels for a model's outputs, so a prediction reads `{"label": "fire", "score": 0.97}`.

`LabelParams` are the parameters (model_inference inherits them); `label_map`
turns them into a `LabelMap`, reading a labels file under the data root;
`check_labels` holds a map against the model's declared outputs before anything
is sent; `LabelMap.annotate` labels the rows of an answer.

Which output holds the classes: `scores_output` when given, else the first
output with one score per label per row, else the first output. That output is
either
- scores, one per class (per-row shape `[k]`, `k == len(labels)`): the label
  of the highest score, its score (the softmax probability with `softmax`, the
  raw value without) and, with `top_k > 1`, the best `top_k` as
  `"top": [{"label", "score"}, ...]`; or
- a class index (per-row shape `()` or `[1]`, whole numbers, as a scikit-learn
  classifier answers): its label, and no score, since the model gave none
  (`softmax` and `top_k > 1` are refused there: there is nothing to rank).
A one-label list with a one-wide output counts as scores.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, model_validator

from orchestrator.connectors.model_server import TensorSpec
from orchestrator.context import OperationContext
from orchestrator.errors import OperationError
from orchestrator.operations.local import DataRootPath, resolve_under

MAX_LABELS_FILE_BYTES = 4 * 2**20  # 4 MiB: ImageNet-21k's names fit, a mistaken file does not


class LabelParams(BaseModel):
    """Parameters that map a classifier's outputs to labels (a mixin of model_inference's)."""

    labels: list[str] | None = Field(
        None,
        min_length=1,
        max_length=100_000,
        description='Class names by output index, e.g. ["normal", "fire"].',
    )
    labels_file: DataRootPath | None = Field(
        None,
        description="A file under the data root (CONSTELLATION_DATA_ROOT) holding the class "
        "names: one per line, or a JSON list. Relative, without '..'.",
    )
    softmax: bool = Field(
        False, description="Score = softmax probability of the class (for models that give logits)."
    )
    top_k: int = Field(
        1, ge=1, le=100, description='With more than 1: the best top_k labels in "top".'
    )
    scores_output: str | None = Field(
        None,
        min_length=1,
        description="The output holding the class scores (or class index); default: the first "
        "output with one score per label, else the first output.",
    )

    @model_validator(mode="after")
    def _labels_once(self) -> LabelParams:
        if self.labels is not None and self.labels_file is not None:
            raise ValueError("give labels or labels_file, not both")
        if self.labels is None and self.labels_file is None:
            asked = [
                name
                for name, unset in (
                    ("softmax", not self.softmax),
                    ("top_k", self.top_k == 1),
                    ("scores_output", self.scores_output is None),
                )
                if not unset
            ]
            if asked:
                raise ValueError(f"{', '.join(asked)} need labels or labels_file")
        return self


@dataclass(frozen=True)
class LabelMap:
    """Labels by class index, and how to read them out of an answer."""

    labels: tuple[str, ...]
    softmax: bool = False
    top_k: int = 1
    scores_output: str | None = None

    def choose(self, shapes: Mapping[str, tuple[int, ...]]) -> str:
        """The output that holds the classes, given each output's per-row shape."""
        if self.scores_output is not None:
            if self.scores_output not in shapes:
                raise OperationError(
                    f"scores_output {self.scores_output!r} is not among the model's outputs "
                    f"{list(shapes)}"
                )
            return self.scores_output
        width = len(self.labels)
        return next((n for n, s in shapes.items() if s == (width,)), next(iter(shapes)))

    def annotate(self, outputs: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
        """Each row's `{"label", "score"[, "top"]}` (or `{"label"}` for a class index),
        given every output of one answer as an array whose first axis is the rows."""
        if not outputs:
            raise OperationError("labels were given, but the model answered no outputs")
        name = self.choose({key: array.shape[1:] for key, array in outputs.items()})
        array = outputs[name]
        row_shape = array.shape[1:]
        if array.dtype.kind not in "biuf":
            kind = "text" if array.dtype.kind in "USO" else str(array.dtype)
            raise OperationError(
                f"output {name!r} holds {kind} values: labels map class scores or class "
                "indices (numbers)"
            )
        if row_shape == () or (row_shape == (1,) and len(self.labels) != 1):
            return self._indices(name, array.reshape(len(array)))
        if len(row_shape) != 1:
            raise OperationError(
                f"output {name!r} has per-row shape {list(row_shape)}: labels need one score "
                f"per class (shape [{len(self.labels)}]) or a class index (shape [] or [1])"
            )
        self._fit(name, row_shape[0])
        return self._ranked(array.astype(np.float64, copy=False))

    def _fit(self, name: str, width: int) -> None:
        if width != len(self.labels):
            raise OperationError(
                f"output {name!r} has {width} scores per row, but {len(self.labels)} labels "
                "were given: give one label per score"
            )

    def _indices(self, name: str, values: np.ndarray) -> list[dict[str, Any]]:
        if self.softmax or self.top_k > 1:
            asked = "softmax" if self.softmax else f"top_k {self.top_k}"
            raise OperationError(
                f"{asked} needs class scores, but output {name!r} holds one class index per row"
            )
        whole = values.astype(np.int64)
        if values.dtype.kind == "f" and not np.array_equal(whole, values):
            raise OperationError(
                f"output {name!r} holds one value per row that is not a whole number, so not a "
                f"class index, and {len(self.labels)} labels were given: name the scores output "
                "(scores_output) or give one label"
            )
        outside = whole[(whole < 0) | (whole >= len(self.labels))]
        if outside.size:
            raise OperationError(
                f"output {name!r} holds class index {int(outside[0])}, but {len(self.labels)} "
                f"labels were given (indices 0 to {len(self.labels) - 1})"
            )
        labels = self.labels
        return [{"label": labels[i]} for i in whole.tolist()]

    def _ranked(self, scores: np.ndarray) -> list[dict[str, Any]]:
        if self.softmax:
            shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
            scores = shifted / shifted.sum(axis=1, keepdims=True)
        labels = self.labels
        if self.top_k == 1:
            best = scores.argmax(axis=1)
            values = scores[np.arange(len(scores)), best]
            return [
                {"label": labels[i], "score": s}
                for i, s in zip(best.tolist(), values.tolist(), strict=True)
            ]
        take = min(self.top_k, scores.shape[1])
        order = np.argsort(-scores, axis=1, kind="stable")[:, :take]
        ranked = np.take_along_axis(scores, order, axis=1)
        records = []
        for indices, values in zip(order.tolist(), ranked.tolist(), strict=True):
            top = [{"label": labels[i], "score": s} for i, s in zip(indices, values, strict=True)]
            records.append({"label": top[0]["label"], "score": top[0]["score"], "top": top})
        return records


def label_map(params: LabelParams, ctx: OperationContext) -> LabelMap | None:
    """The labels asked for by `params` (the file read from the data root), or None."""
    if params.labels is not None:
        labels: Sequence[str] = params.labels
    elif params.labels_file is not None:
        labels = read_labels_file(params.labels_file, ctx)
    else:
        return None
    return LabelMap(tuple(labels), params.softmax, params.top_k, params.scores_output)


def read_labels_file(path: str, ctx: OperationContext) -> list[str]:
    """The labels in a file under the data root: a JSON list, or one label per line."""
    root = ctx.services.data_root
    if root is None:
        raise OperationError("labels_file needs a data root (set CONSTELLATION_DATA_ROOT)")
    file = resolve_under(root, path)
    if not file.is_file():
        raise OperationError(f"labels_file {path!r} is not a file under the data root")
    size = file.stat().st_size
    if size > MAX_LABELS_FILE_BYTES:
        raise OperationError(
            f"labels_file {path!r} is {size} bytes, more than {MAX_LABELS_FILE_BYTES}"
        )
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OperationError(f"labels_file {path!r} is not UTF-8 text: {exc}") from exc
    if text.lstrip().startswith("["):
        return _json_labels(path, text)
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise OperationError(f"labels_file {path!r} holds no labels")
    if "" in lines:
        raise OperationError(
            f"labels_file {path!r}: line {lines.index('') + 1} is empty; a label's line number "
            "is its class index, so every line needs a label"
        )
    return lines


def _json_labels(path: str, text: str) -> list[str]:
    try:
        labels = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OperationError(f"labels_file {path!r} is not valid JSON: {exc}") from exc
    if not labels or not all(isinstance(label, str) for label in labels):
        raise OperationError(f"labels_file {path!r} must hold a non-empty JSON list of strings")
    return list(labels)


def check_labels(labels: LabelMap, outputs: Sequence[TensorSpec]) -> None:
    """Refuse, before the first request, labels that the declared outputs contradict.

    Declared shapes count the batch dimension or not (servers differ), so only
    the last dimension is held against the labels; -1 or no shape says nothing.
    """
    if not outputs:
        return
    names = [spec.name for spec in outputs]
    if labels.scores_output is not None and labels.scores_output not in names:
        raise OperationError(
            f"scores_output {labels.scores_output!r} is not among the model's declared "
            f"outputs {names}"
        )
    width = len(labels.labels)
    spec = next(
        (s for s in outputs if s.name == labels.scores_output),
        next((s for s in outputs if s.shape and s.shape[-1] == width), outputs[0]),
    )
    if spec.datatype == "BYTES":
        raise OperationError(
            f"output {spec.name!r} is declared BYTES: labels map class scores or class "
            "indices (numbers)"
        )
    last = spec.shape[-1] if spec.shape else -1
    if last not in (-1, 1, width):
        raise OperationError(
            f"the model declares output {spec.name!r} with shape {list(spec.shape)}: {last} "
            f"scores per row, but {width} labels were given: give one label per score"
        )
