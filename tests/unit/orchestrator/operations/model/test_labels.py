"""Labels for a classifier's outputs: scores, softmax, top-k, class indices, labels files."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from orchestrator.artifacts import LocalStore
from orchestrator.connectors.model_server import TensorSpec
from orchestrator.context import OperationContext, Services
from orchestrator.errors import OperationError, PathOutsideDataRoot
from orchestrator.operations.model.labels import LabelMap, LabelParams, check_labels, label_map

FIRE = ("normal", "fire", "smoke")


def context(tmp_path: Path, data_root: Path | None) -> OperationContext:
    services = Services(artifacts=LocalStore(tmp_path / "artifacts"), data_root=data_root)
    return OperationContext("run", "instructions[0]", tmp_path, services, logging.getLogger())


def test_raw_scores_give_the_best_label_and_its_score() -> None:
    scores = np.array([[0.1, 2.5, -1.0], [3.0, 0.0, 0.5]], dtype=np.float32)
    marks = LabelMap(FIRE).annotate({"logits": scores})
    assert marks == [{"label": "fire", "score": 2.5}, {"label": "normal", "score": 3.0}]
    assert all(type(mark["score"]) is float for mark in marks)


def test_softmax_scores_are_probabilities() -> None:
    logits = np.array([[1.0, 2.0, 3.0]])
    [mark] = LabelMap(FIRE, softmax=True).annotate({"logits": logits})
    total = math.exp(1) + math.exp(2) + math.exp(3)
    assert mark == {"label": "smoke", "score": pytest.approx(math.exp(3) / total)}


def test_softmax_of_large_logits_does_not_overflow() -> None:
    [mark] = LabelMap(FIRE, softmax=True).annotate({"logits": np.array([[1000.0, 0.0, 1000.0]])})
    assert mark == {"label": "normal", "score": pytest.approx(0.5)}


def test_top_k_lists_the_best_labels_in_order() -> None:
    logits = np.array([[0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
    marks = LabelMap(FIRE, top_k=2).annotate({"logits": logits})
    assert marks[0] == {
        "label": "fire",
        "score": 0.5,
        "top": [{"label": "fire", "score": 0.5}, {"label": "smoke", "score": 0.3}],
    }
    assert [t["label"] for t in marks[1]["top"]] == ["normal", "fire"]  # a tie keeps index order


def test_top_k_beyond_the_classes_lists_them_all() -> None:
    [mark] = LabelMap(FIRE, top_k=10).annotate({"logits": np.array([[0.0, 1.0, 2.0]])})
    assert [t["label"] for t in mark["top"]] == ["smoke", "fire", "normal"]


@pytest.mark.parametrize(
    "indices",
    [np.array([2, 0, 1]), np.array([[2], [0], [1]]), np.array([[2.0], [0.0], [1.0]])],
    ids=["per-row shape []", "per-row shape [1]", "whole floats"],
)
def test_a_class_index_output_maps_to_its_label_without_score(indices: np.ndarray) -> None:
    marks = LabelMap(FIRE).annotate({"predict": indices})
    assert marks == [{"label": "smoke"}, {"label": "normal"}, {"label": "fire"}]


def test_a_class_index_beyond_the_labels_is_refused() -> None:
    with pytest.raises(OperationError) as error:
        LabelMap(FIRE).annotate({"predict": np.array([[1], [3]])})
    assert str(error.value) == (
        "output 'predict' holds class index 3, but 3 labels were given (indices 0 to 2)"
    )


def test_a_fractional_single_value_is_not_a_class_index() -> None:
    with pytest.raises(OperationError, match="not a whole number, so not a class index"):
        LabelMap(FIRE).annotate({"predict": np.array([[0.7]])})


def test_top_k_of_a_class_index_is_refused() -> None:
    with pytest.raises(OperationError) as error:
        LabelMap(FIRE, top_k=2).annotate({"predict": np.array([1])})
    assert str(error.value) == (
        "top_k 2 needs class scores, but output 'predict' holds one class index per row"
    )


def test_scores_of_another_width_than_the_labels_are_refused_naming_both() -> None:
    with pytest.raises(OperationError) as error:
        LabelMap(("normal", "fire")).annotate({"logits": np.zeros((4, 1000))})
    assert str(error.value) == (
        "output 'logits' has 1000 scores per row, but 2 labels were given: give one label per score"
    )


def test_the_output_with_one_score_per_label_is_chosen_by_default() -> None:
    outputs = {"embedding": np.zeros((1, 8)), "probs": np.array([[0.1, 0.2, 0.7]])}
    assert LabelMap(FIRE).annotate(outputs) == [{"label": "smoke", "score": 0.7}]


def test_scores_output_names_the_output() -> None:
    outputs = {"a": np.array([[0.9, 0.0, 0.1]]), "b": np.array([[0.0, 0.0, 1.0]])}
    assert LabelMap(FIRE, scores_output="b").annotate(outputs)[0]["label"] == "smoke"
    with pytest.raises(OperationError) as error:
        LabelMap(FIRE, scores_output="c").annotate(outputs)
    assert str(error.value) == "scores_output 'c' is not among the model's outputs ['a', 'b']"


def test_text_outputs_are_refused() -> None:
    with pytest.raises(OperationError, match="holds text values"):
        LabelMap(FIRE).annotate({"label": np.array(["fire"])})


def test_params_refuse_label_options_without_labels_and_two_label_sources() -> None:
    with pytest.raises(ValidationError, match="softmax, top_k need labels or labels_file"):
        LabelParams(softmax=True, top_k=3)
    with pytest.raises(ValidationError, match="give labels or labels_file, not both"):
        LabelParams(labels=["a"], labels_file="labels.txt")
    with pytest.raises(ValidationError, match=r"absolute or has a '\.\.' segment"):
        LabelParams(labels_file="../labels.txt")
    with pytest.raises(ValidationError):
        LabelParams(labels=["a"], top_k=101)


def test_label_map_of_no_labels_is_none(tmp_path: Path) -> None:
    assert label_map(LabelParams(), context(tmp_path, None)) is None
    made = label_map(LabelParams(labels=["a", "b"], softmax=True), context(tmp_path, None))
    assert made == LabelMap(("a", "b"), softmax=True)


@pytest.mark.parametrize(
    "content",
    ["normal\nfire\nsmoke\n", "\ufeffnormal\r\nfire\r\nsmoke\r\n\r\n", json.dumps(list(FIRE))],
    ids=["lines", "bom, crlf and trailing blank line", "json list"],
)
def test_labels_file_under_the_data_root(tmp_path: Path, content: str) -> None:
    root = tmp_path / "data"
    (root / "models").mkdir(parents=True)
    (root / "models" / "labels.txt").write_text(content, encoding="utf-8")
    params = LabelParams(labels_file="models/labels.txt", top_k=2)
    assert label_map(params, context(tmp_path, root)) == LabelMap(FIRE, top_k=2)


def test_labels_file_with_a_gap_is_refused(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("normal\n\nsmoke\n")
    with pytest.raises(OperationError) as error:
        label_map(LabelParams(labels_file="labels.txt"), context(tmp_path, tmp_path))
    assert str(error.value) == (
        "labels_file 'labels.txt': line 2 is empty; a label's line number is its class index, "
        "so every line needs a label"
    )


def test_labels_file_problems_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (root / "bad.json").write_text('["a", 1]')
    (tmp_path / "outside.txt").write_text("a\n")
    (root / "link.txt").symlink_to(tmp_path / "outside.txt")
    ctx = context(tmp_path, root)
    with pytest.raises(OperationError, match="must hold a non-empty JSON list of strings"):
        label_map(LabelParams(labels_file="bad.json"), ctx)
    with pytest.raises(OperationError, match=r"'missing\.txt' is not a file under the data root"):
        label_map(LabelParams(labels_file="missing.txt"), ctx)
    with pytest.raises(PathOutsideDataRoot):
        label_map(LabelParams(labels_file="link.txt"), ctx)
    with pytest.raises(OperationError, match="needs a data root"):
        label_map(LabelParams(labels_file="bad.json"), context(tmp_path, None))


def spec(name: str, shape: tuple[int, ...], datatype: str = "FP32") -> TensorSpec:
    return TensorSpec(name, datatype, shape)


def test_check_labels_refuses_a_declared_width_that_contradicts() -> None:
    with pytest.raises(OperationError) as error:
        check_labels(LabelMap(FIRE), (spec("logits", (-1, 1000)),))
    assert str(error.value) == (
        "the model declares output 'logits' with shape [-1, 1000]: 1000 scores per row, but 3 "
        "labels were given: give one label per score"
    )
    with pytest.raises(OperationError, match="declared BYTES"):
        check_labels(LabelMap(FIRE), (spec("label", (-1,), "BYTES"),))
    with pytest.raises(OperationError, match=r"'probs' is not among the model's declared outputs"):
        check_labels(LabelMap(FIRE, scores_output="probs"), (spec("logits", (-1, 3)),))


@pytest.mark.parametrize(
    "outputs",
    [
        (),  # nothing declared
        (spec("logits", (-1, 3)),),
        (spec("logits", (3,)),),  # no batch dimension
        (spec("predict", (-1, 1), "INT64"),),  # a class index
        (spec("logits", (-1, -1)),),  # width open
        (spec("embedding", (-1, 8)), spec("probs", (-1, 3))),  # the fitting one is chosen
    ],
)
def test_check_labels_accepts_declared_outputs_that_fit(outputs: tuple[TensorSpec, ...]) -> None:
    check_labels(LabelMap(FIRE), outputs)
