"""The figures of a comparison, from each model's labels and the truth (when given).

- accuracy: correct / evaluated, `evaluated` being the items that have a truth
  label and a prediction from that model (its missing items are listed apart,
  not counted wrong);
- per class: precision = correct / predicted as the class (None when never
  predicted), recall = correct / truly the class (None when never true), F1
  their harmonic mean, 0 when either is None or both are 0; macro F1 the mean
  F1 over every class in the truth or the predictions (scikit-learn's
  `f1_score(average="macro", zero_division=0)`);
- the confusion matrix: rows the true label, columns the predicted one, in
  `Table.labels` order (numbers in numeric order, then text);
- agreement of two models: the share of the items both predicted on which they
  predicted the same label (with or without truth);
- a disagreement: an item for which the models that predicted it did not all
  predict the same label.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from orchestrator.catalog.values import Agreement, Disagreement
from orchestrator.operations.compare.predicted import ModelLabels


@dataclass(frozen=True)
class ClassScore:
    label: str
    support: int  # items truly of the class
    predicted: int  # items predicted as the class
    correct: int
    precision: float | None
    recall: float | None
    f1: float


@dataclass(frozen=True)
class ModelResult:
    """One model's figures; the truth-based ones are empty without truth."""

    name: str
    labels: ModelLabels = field(repr=False)
    missing: list[str]  # compared items it has no prediction for
    counts: dict[str, int]  # predicted label -> items
    evaluated: int = 0
    correct: int = 0
    classes: list[ClassScore] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.evaluated if self.evaluated else None

    @property
    def macro_f1(self) -> float | None:
        return sum(c.f1 for c in self.classes) / len(self.classes) if self.classes else None

    def as_json(self) -> dict[str, Any]:
        source = self.labels.source
        return {
            "name": self.name,
            "model": source.model,
            "served_name": source.served_name,
            "items": len(self.labels.labels),
            "missing": self.missing,
            "records_without_label": self.labels.unreadable,
            "seconds": source.seconds,
            "rows": source.rows,
            "rows_per_second": self.labels.rows_per_second,
            "predicted": self.counts,
            "evaluated": self.evaluated,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "classes": [vars(score) for score in self.classes],
            "confusion": self.confusion,
        }


@dataclass(frozen=True)
class Table:
    """Everything comparison.json holds and report.html shows."""

    models: list[ModelResult]
    items: list[str]  # predicted by at least one model, in first-seen order
    labels: list[str]  # the classes, in confusion-matrix order
    truth: dict[str, str] | None
    unlabelled: list[str]  # compared items without a truth label (with truth)
    not_predicted: list[str]  # truth items no model predicted
    agreement: list[Agreement]
    disagreements: list[Disagreement]

    @property
    def labelled(self) -> int:
        return len(self.items) - len(self.unlabelled) if self.truth is not None else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "items": len(self.items),
            "labelled": self.labelled,
            "truth": self.truth is not None,
            "labels": self.labels,
            "models": [model.as_json() for model in self.models],
            "agreement": [
                {"models": list(a.models), "items": a.items, "agreed": a.agreed, "rate": a.rate}
                for a in self.agreement
            ],
            "disagreements": [d.model_dump(mode="json") for d in self.disagreements],
            "unlabelled": self.unlabelled,
            "not_predicted": self.not_predicted,
        }


def label_order(label: str) -> tuple[int, float, str]:
    """Class indices in numeric order ("2" before "10"), then labels as text."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def class_scores(confusion: list[list[int]], labels: list[str]) -> list[ClassScore]:
    """Precision, recall and F1 of each class, from a confusion matrix (rows: truth)."""
    scores = []
    for i, label in enumerate(labels):
        correct = confusion[i][i]
        support = sum(confusion[i])
        predicted = sum(row[i] for row in confusion)
        precision = correct / predicted if predicted else None
        recall = correct / support if support else None
        f1 = 0.0
        if precision and recall:
            f1 = 2 * precision * recall / (precision + recall)
        scores.append(ClassScore(label, support, predicted, correct, precision, recall, f1))
    return scores


def compare(models: list[ModelLabels], truth: Mapping[str, str] | None) -> Table:
    """The comparison of `models` (two or more), against `truth` when given."""
    items = list(dict.fromkeys(name for m in models for name in m.labels))
    labels_seen = {label for m in models for label in m.labels.values()}
    if truth is not None:
        labels_seen.update(truth[name] for name in items if name in truth)
    labels = sorted(labels_seen, key=label_order)
    results = [_result(m, items, labels, truth) for m in models]
    names = [m.name for m in models]
    agreement = []
    for (a, left), (b, right) in combinations(zip(names, models, strict=True), 2):
        both = [name for name in left.labels if name in right.labels]
        agreed = sum(left.labels[name] == right.labels[name] for name in both)
        agreement.append(Agreement(models=(a, b), items=len(both), agreed=agreed))
    disagreements = []
    for name in items:
        predictions = tuple(m.labels.get(name) for m in models)
        if len({p for p in predictions if p is not None}) > 1:
            truth_label = truth.get(name) if truth is not None else None
            disagreements.append(
                Disagreement(name=name, truth=truth_label, predictions=predictions)
            )
    predicted = set(items)
    return Table(
        models=results,
        items=items,
        labels=labels,
        truth=dict(truth) if truth is not None else None,
        unlabelled=[name for name in items if name not in truth] if truth is not None else [],
        not_predicted=[name for name in truth if name not in predicted] if truth else [],
        agreement=agreement,
        disagreements=disagreements,
    )


def _result(
    model: ModelLabels, items: list[str], labels: list[str], truth: Mapping[str, str] | None
) -> ModelResult:
    missing = [name for name in items if name not in model.labels]
    counts = dict(sorted(Counter(model.labels.values()).items(), key=lambda c: label_order(c[0])))
    if truth is None:
        return ModelResult(model.name, model, missing, counts)
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    evaluated = correct = 0
    for name, predicted in model.labels.items():
        true = truth.get(name)
        if true is not None:
            confusion[index[true]][index[predicted]] += 1
            evaluated += 1
            correct += true == predicted
    scores = [s for s in class_scores(confusion, labels) if s.support or s.predicted]
    return ModelResult(model.name, model, missing, counts, evaluated, correct, scores, confusion)
