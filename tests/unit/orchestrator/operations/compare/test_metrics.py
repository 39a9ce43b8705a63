"""The figures of a comparison, checked against values worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.catalog.values import Disagreement
from orchestrator.operations.compare.metrics import class_scores, compare, label_order
from orchestrator.operations.compare.predicted import read_labels
from tests.unit.orchestrator.operations.compare.made_up import write_predictions

TRUTH = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b2": "b", "c1": "c"}
# predicted: a a b | b c | c  ->  confusion (rows truth a, b, c; columns predicted a, b, c):
#   a: 2 1 0   b: 0 1 1   c: 0 0 1
FIRST = {"a1": "a", "a2": "a", "a3": "b", "b1": "b", "b2": "c", "c1": "c"}
SECOND = {"a1": "a", "a2": "b", "a3": "b", "b1": "b", "b2": "b", "c1": "c"}


def labels_of(tmp_path: Path, name: str, labels: dict, seconds: float | None = None):
    return read_labels(write_predictions(tmp_path / name, name, labels, seconds), name, "label")


def test_accuracy_confusion_and_per_class_scores(tmp_path: Path) -> None:
    table = compare([labels_of(tmp_path, "m1", FIRST), labels_of(tmp_path, "m2", SECOND)], TRUTH)
    first = table.models[0]
    assert table.labels == ["a", "b", "c"]
    assert first.confusion == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert (first.correct, first.evaluated, first.accuracy) == (4, 6, pytest.approx(4 / 6))
    scores = {s.label: s for s in first.classes}
    assert (scores["a"].precision, scores["a"].recall, scores["a"].f1) == (
        1.0,
        pytest.approx(2 / 3),
        pytest.approx(0.8),
    )
    assert (scores["b"].precision, scores["b"].recall, scores["b"].f1) == (0.5, 0.5, 0.5)
    assert (scores["c"].precision, scores["c"].recall) == (0.5, 1.0)
    assert scores["c"].f1 == pytest.approx(2 / 3)
    assert first.macro_f1 == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert table.models[1].accuracy == pytest.approx(4 / 6)
    assert table.models[1].confusion == [[1, 2, 0], [0, 2, 0], [0, 0, 1]]


def test_a_class_never_predicted_has_no_precision_and_scores_zero() -> None:
    [a, b] = class_scores([[2, 0], [1, 0]], ["a", "b"])  # b is never predicted
    assert (b.precision, b.recall, b.f1) == (None, 0.0, 0.0)
    assert (a.precision, a.recall) == (pytest.approx(2 / 3), 1.0)


def test_agreement_and_disagreements(tmp_path: Path) -> None:
    table = compare([labels_of(tmp_path, "m1", FIRST), labels_of(tmp_path, "m2", SECOND)], TRUTH)
    [pair] = table.agreement
    assert (pair.models, pair.items, pair.agreed, pair.rate) == (("m1", "m2"), 6, 4, 4 / 6)
    assert table.disagreements == [
        Disagreement(name="a2", truth="a", predictions=("a", "b")),
        Disagreement(name="b2", truth="b", predictions=("c", "b")),
    ]


def test_agreement_without_truth(tmp_path: Path) -> None:
    models = [
        labels_of(tmp_path, "m1", {"x": "1", "y": "2", "z": "3"}),
        labels_of(tmp_path, "m2", {"x": "1", "y": "2", "z": "4"}),
        labels_of(tmp_path, "m3", {"x": "9", "y": "2"}),
    ]
    table = compare(models, None)
    assert [(a.models, a.items, a.agreed) for a in table.agreement] == [
        (("m1", "m2"), 3, 2),
        (("m1", "m3"), 2, 1),
        (("m2", "m3"), 2, 1),
    ]
    assert [d.name for d in table.disagreements] == ["x", "z"]
    assert table.models[2].missing == ["z"]
    assert table.models[0].accuracy is None and table.models[0].confusion == []
    assert table.labelled == 0 and table.labels == ["1", "2", "3", "4", "9"]


def test_missing_items_are_reported_not_counted_wrong(tmp_path: Path) -> None:
    partial = {name: label for name, label in FIRST.items() if name != "a3"}  # a3 was wrong
    extra = {**SECOND, "new": "a"}
    table = compare([labels_of(tmp_path, "m1", partial), labels_of(tmp_path, "m2", extra)], TRUTH)
    assert table.items == [*partial, "a3", "new"]
    assert table.models[0].missing == ["a3", "new"] and table.models[1].missing == []
    assert (table.models[0].correct, table.models[0].evaluated) == (4, 5)
    assert table.unlabelled == ["new"] and table.labelled == 6
    assert table.agreement[0].items == 5


def test_truth_items_no_model_predicted_are_listed(tmp_path: Path) -> None:
    truth = {**TRUTH, "lost": "a"}
    table = compare([labels_of(tmp_path, "m1", FIRST), labels_of(tmp_path, "m2", SECOND)], truth)
    assert table.not_predicted == ["lost"]


def test_class_indices_sort_as_numbers() -> None:
    assert sorted(["10", "2", "fire", "1"], key=label_order) == ["1", "2", "10", "fire"]
