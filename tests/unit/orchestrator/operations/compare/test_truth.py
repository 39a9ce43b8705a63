"""True labels from CSV and JSON files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import OperationError
from orchestrator.operations.compare.truth import read_truth

EXPECTED = {"a.jpg": "fire", "b.jpg": "normal", "c d.jpg": "smoke"}


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("truth.csv", "name,label\na.jpg,fire\nb.jpg,normal\nc d.jpg,smoke\n"),
        ("truth.csv", "label,file\nfire,a.jpg\nnormal,b.jpg\nsmoke,c d.jpg\n"),
        ("truth.csv", "a.jpg,fire\nb.jpg,normal\n\nc d.jpg,smoke\n"),  # no header
        ("truth.tsv", "image\tclass\tnote\na.jpg\tfire\t\nb.jpg\tnormal\tx\nc d.jpg\tsmoke\t\n"),
        ("truth.csv", "\ufeffName;Label\na.jpg;fire\nb.jpg;normal\nc d.jpg;smoke\n"),
        ("truth.json", json.dumps(EXPECTED)),
        ("truth.json", json.dumps([{"name": k, "label": v} for k, v in EXPECTED.items()])),
        ("truth.json", json.dumps([[k, v] for k, v in EXPECTED.items()])),
        (
            "truth.jsonl",
            "".join(json.dumps({"item": k, "class": v}) + "\n" for k, v in EXPECTED.items()),
        ),
        ("labels", json.dumps(EXPECTED)),  # no suffix: read by its first character
    ],
)
def test_truth_files(tmp_path: Path, file: str, content: str) -> None:
    (tmp_path / file).write_text(content, encoding="utf-8")
    assert read_truth(tmp_path / file, repr(file)) == EXPECTED


def test_class_indices_read_as_text(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_text(json.dumps({"a": 2, "b": 0.0}))
    assert read_truth(tmp_path / "t.json", "'t.json'") == {"a": "2", "b": "0"}


def test_the_label_key_heads_the_label_column(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("name,label,species\na,x,cat\n")
    assert read_truth(tmp_path / "t.csv", "'t.csv'", label_key="species") == {"a": "cat"}


def test_two_labels_for_one_item_are_refused(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("name,label\na,fire\na,smoke\n")
    with pytest.raises(OperationError) as error:
        read_truth(tmp_path / "t.csv", "'t.csv'")
    assert str(error.value) == "truth 't.csv' gives item 'a' two labels: 'fire' and 'smoke'"


def test_a_short_row_is_refused_with_its_number(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("name,label\na,fire\nb\n")
    with pytest.raises(OperationError, match=r"truth 't\.csv', row 3: 1 column\(s\)"):
        read_truth(tmp_path / "t.csv", "'t.csv'")


def test_an_empty_or_odd_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("name,label\n")
    with pytest.raises(OperationError, match="holds no labels"):
        read_truth(tmp_path / "t.csv", "'t.csv'")
    (tmp_path / "t.json").write_text('[{"x": 1}]')
    with pytest.raises(OperationError, match=r"t\.json'\[0\]: expected"):
        read_truth(tmp_path / "t.json", "'t.json'")
