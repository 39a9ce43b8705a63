"""Each model's label per item: the label field, else the first output."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import OperationError
from orchestrator.operations.compare.predicted import display_names, read_labels
from tests.unit.orchestrator.operations.compare.made_up import write_predictions


def test_records_without_a_label_fall_back_to_the_first_output(tmp_path: Path) -> None:
    records = {
        "index.json": {"predict": [2]},  # a classifier's [rows, 1] class index
        "scalar.json": {"predict": 1.0},
        "scores.json": {"proba": [0.1, 0.7, 0.2], "other": [9]},
        "text.json": {"predict": ["fire"]},  # neither: no prediction
        "empty.json": {},
    }
    labels = read_labels(write_predictions(tmp_path / "m", "m", records), "m", "label")
    assert labels.labels == {"index.json": "2", "scalar.json": "1", "scores.json": "1"}
    assert labels.unreadable == 2


def test_label_key_names_the_field(tmp_path: Path) -> None:
    predictions = write_predictions(tmp_path / "m", "m", {"a": "fire"}, label_key="class")
    assert read_labels(predictions, "m", "class").labels == {"a": "fire"}
    other = read_labels(predictions, "m", "label")  # its output is a lone score: no class
    assert (other.labels, other.unreadable) == ({}, 1)


def test_a_broken_predictions_file_is_refused_with_its_line(tmp_path: Path) -> None:
    predictions = write_predictions(tmp_path / "m", "m", {"a": "fire"})
    with predictions.file.open("a") as out:
        out.write("{not json\n")
    with pytest.raises(OperationError, match="predictions of 'm', line 2: not JSON"):
        read_labels(predictions, "m", "label")


def test_a_model_compared_twice_gets_numbered(tmp_path: Path) -> None:
    made = [write_predictions(tmp_path / str(i), "vit", {"a": "x"}) for i in range(3)]
    made.append(write_predictions(tmp_path / "r", "resnet", {"a": "x"}))
    assert display_names(made) == ["vit", "vit #2", "vit #3", "resnet"]
