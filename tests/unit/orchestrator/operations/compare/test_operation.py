"""compare_predictions as the executor calls it: truth from a data set or a file, its outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.catalog.values import Comparison, Predictions
from orchestrator.errors import OperationError, PathOutsideDataRoot
from orchestrator.operations import CATALOG
from orchestrator.operations.compare import compare_predictions
from orchestrator.testing import make_dataset, run_operation
from tests.unit.orchestrator.operations.compare.made_up import write_predictions

TRUTH_CSV = "name,label\na.jpg,fire\nb.jpg,normal\nc.jpg,fire\nd.jpg,normal\n"


def two_models(tmp_path: Path) -> list[Predictions]:
    return [
        write_predictions(
            tmp_path / "vit",
            "vit",
            {"a.jpg": "fire", "b.jpg": "normal", "c.jpg": "fire", "d.jpg": "fire"},
            seconds=2.0,
        ),
        write_predictions(
            tmp_path / "resnet", "resnet", {"a.jpg": "fire", "b.jpg": "fire", "c.jpg": "fire"}
        ),
    ]


def compare(tmp_path: Path, params: dict | None = None, **inputs: object) -> Comparison:
    value = run_operation(
        compare_predictions,
        params,
        inputs=inputs,  # type: ignore[arg-type]
        artifact_root=tmp_path / "artifacts",
        data_root=tmp_path / "data",
    )
    assert isinstance(value, Comparison)
    return value


def test_truth_from_a_data_set(tmp_path: Path) -> None:
    truth = make_dataset(tmp_path / "truth", {"labels.csv": TRUTH_CSV})
    value = compare(tmp_path, predictions=two_models(tmp_path), truth=truth)
    summary = value.summary()
    assert summary["items"] == 4 and summary["labelled"] == 4
    assert summary["models"] == [
        {
            "model": "vit",
            "items": 4,
            "missing": 0,
            "accuracy": 0.75,
            "macro_f1": pytest.approx((0.8 + 2 / 3) / 2),
            "seconds": 2.0,
            "rows_per_second": 2.0,
        },
        {
            "model": "resnet",
            "items": 3,
            "missing": 1,
            "accuracy": pytest.approx(2 / 3),
            "macro_f1": pytest.approx((0.8 + 0) / 2),
            "seconds": None,
            "rows_per_second": None,
        },
    ]
    assert summary["agreement"] == [{"models": ["vit", "resnet"], "items": 3, "rate": 2 / 3}]
    assert summary["disagreements"] == 1 and summary["more_disagreements"] == 0
    assert summary["examples"] == [
        {"name": "b.jpg", "truth": "normal", "predictions": {"vit": "normal", "resnet": "fire"}}
    ]
    table = json.loads(Path(summary["artifact"]).read_text())
    assert table["models"][1]["missing"] == ["d.jpg"]
    assert table["models"][0]["confusion"] == [[2, 0], [1, 1]]
    assert table["labels"] == ["fire", "normal"]
    assert Path(summary["report"]).read_text().startswith("<!DOCTYPE html>")


def test_truth_from_a_file_under_the_data_root(tmp_path: Path) -> None:
    (tmp_path / "data" / "truth").mkdir(parents=True)
    (tmp_path / "data" / "truth" / "labels.json").write_text(
        json.dumps({"a.jpg": "fire", "b.jpg": "normal", "c.jpg": "fire", "d.jpg": "normal"})
    )
    value = compare(tmp_path, {"truth_file": "truth/labels.json"}, predictions=two_models(tmp_path))
    assert [m.accuracy for m in value.models] == [0.75, pytest.approx(2 / 3)]


def test_without_truth_only_agreement(tmp_path: Path) -> None:
    value = compare(tmp_path, predictions=two_models(tmp_path))
    assert value.labelled == 0 and value.models[0].accuracy is None
    assert value.agreement[0].rate == pytest.approx(2 / 3)


def test_truth_problems_are_refused(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "outside.csv").write_text(TRUTH_CSV)
    (tmp_path / "data" / "link.csv").symlink_to(tmp_path / "outside.csv")
    with pytest.raises(PathOutsideDataRoot):
        compare(tmp_path, {"truth_file": "link.csv"}, predictions=two_models(tmp_path))
    with pytest.raises(OperationError, match="is not a file under the data root"):
        compare(tmp_path, {"truth_file": "none.csv"}, predictions=two_models(tmp_path / "2"))
    two = make_dataset(tmp_path / "two", {"a.csv": TRUTH_CSV, "b.csv": TRUTH_CSV})
    with pytest.raises(OperationError, match="truth holds 2 files"):
        compare(tmp_path, predictions=two_models(tmp_path / "3"), truth=two)


def test_parameters_are_checked(tmp_path: Path) -> None:
    params = CATALOG["compare_predictions"].params
    [one] = two_models(tmp_path)[:1]
    with pytest.raises(ValidationError, match="at least 2 items"):
        params.model_validate({"predictions": [one]})
    with pytest.raises(ValidationError, match="give truth or truth_file, not both"):
        truth = make_dataset(tmp_path / "t", {"t.csv": TRUTH_CSV})
        params.model_validate({"predictions": [one, one], "truth": truth, "truth_file": "t.csv"})
    with pytest.raises(ValidationError, match="absolute or has a"):
        params.model_validate({"predictions": [one, one], "truth_file": "/etc/passwd"})
