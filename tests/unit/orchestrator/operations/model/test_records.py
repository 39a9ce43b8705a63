"""predictions.jsonl records: byte for byte what json.dumps makes of each item's, labels or not."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from orchestrator.catalog import DataItem
from orchestrator.connectors.model_server import Tensor
from orchestrator.errors import OperationError
from orchestrator.operations.model.batching import (
    ItemBlock,
    Layout,
    RowSpec,
    RunBlock,
    request_batches,
)
from orchestrator.operations.model.labels import LabelMap
from orchestrator.operations.model.records import RecordWriter


@pytest.mark.parametrize(
    "outputs",
    [
        np.array([0, 2, 1]),  # a class per row
        np.array([[0], [2], [1]]),  # MLServer's [rows, 1]
        np.array([[0.25, float("nan")], [float("inf"), -0.0], [1e-300, 3.0]]),
        np.array([[True], [False], [True]]),
        np.zeros((3, 0)),
        np.arange(12).reshape(3, 2, 2),
        np.array(["a, b", "c], [d", 'e"']),
    ],
)
def test_records_are_what_json_dumps_makes_of_each_item(tmp_path, outputs):
    names = ["plain.json", 'quo"te.json', "ünï.json"]
    items = [DataItem(name=n, path=n, size=1, media_type="application/json") for n in names]
    spec = RowSpec((4,), np.dtype("float64"), "item0", 10)
    batch = next(request_batches([RunBlock(0, np.zeros((3, 4)), names[0])], spec))
    datatype = "BYTES" if outputs.dtype.kind == "U" else "FP64"
    tensor = Tensor("predict", datatype, outputs.shape, outputs.ravel().tolist())
    out = io.StringIO()
    RecordWriter(out, items).add(batch, [tensor])
    expected = [
        json.dumps({"name": name, "outputs": {"predict": value}})
        for name, value in zip(names, outputs.tolist(), strict=True)
    ]
    assert out.getvalue().splitlines() == expected


def image_items(count: int) -> list[DataItem]:
    return [DataItem(name=f"{i}.jpg", path=f"{i}.jpg", size=1) for i in range(count)]


LOGITS = np.array([[0.5, 2.0], [3.0, -1.0], [0.0, 0.25]], dtype=np.float32)


def test_records_with_labels_carry_label_and_score_before_the_outputs():
    """Images are one ItemBlock each; rows of JSON files a RunBlock: both paths label."""
    items = image_items(3)
    spec = RowSpec((4,), np.dtype("float64"), "0.jpg", 10)
    blocks = {
        "items": [ItemBlock(i, np.zeros((1, 4)), item.name) for i, item in enumerate(items)],
        "run": [RunBlock(0, np.zeros((3, 4)), "0.jpg")],
    }
    labels = LabelMap(("normal", "fire"))
    for block_list in blocks.values():
        batch = next(request_batches(block_list, spec))
        out = io.StringIO()
        RecordWriter(out, items, labels).add(batch, [Tensor("logits", "FP32", (3, 2), LOGITS)])
        expected = [
            json.dumps(
                {"name": item.name, "label": label, "score": score, "outputs": {"logits": row}}
            )
            for item, label, score, row in zip(
                items, ["fire", "normal", "fire"], [2.0, 3.0, 0.25], LOGITS.tolist(), strict=True
            )
        ]
        assert out.getvalue().splitlines() == expected


def test_records_with_top_k_across_requests():
    items = image_items(3)
    spec = RowSpec((4,), np.dtype("float64"), "0.jpg", 2)  # 2 rows per request
    blocks = [ItemBlock(i, np.zeros((1, 4)), item.name) for i, item in enumerate(items)]
    out = io.StringIO()
    writer = RecordWriter(out, items, LabelMap(("normal", "fire"), softmax=True, top_k=2))
    for batch, rows in zip(request_batches(blocks, spec), [LOGITS[:2], LOGITS[2:]], strict=True):
        writer.add(batch, [Tensor("logits", "FP32", rows.shape, rows)])
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["name"] for r in records] == ["0.jpg", "1.jpg", "2.jpg"]
    assert [r["label"] for r in records] == ["fire", "normal", "fire"]
    assert records[0]["score"] == pytest.approx(1 / (1 + np.exp(-1.5)))
    assert [[t["label"] for t in r["top"]] for r in records] == [
        ["fire", "normal"],
        ["normal", "fire"],
        ["fire", "normal"],
    ]
    assert records[0]["top"][0]["score"] + records[0]["top"][1]["score"] == pytest.approx(1)


def test_a_table_item_lists_the_label_of_each_row():
    items = [DataItem(name="rows.csv", path="rows.csv", size=1)]
    spec = RowSpec((4,), np.dtype("float64"), "rows.csv", 10)
    block = ItemBlock(0, np.zeros((3, 4)), "rows.csv", layout=Layout.TABLE)
    out = io.StringIO()
    predict = Tensor("predict", "INT64", (3, 1), np.array([[1], [0], [1]]))
    RecordWriter(out, items, LabelMap(("normal", "fire"))).add(
        next(request_batches([block], spec)), [predict]
    )
    assert json.loads(out.getvalue()) == {
        "name": "rows.csv",
        "label": ["fire", "normal", "fire"],
        "outputs": {"predict": [[1], [0], [1]]},
    }


def test_records_with_labels_refuse_a_width_that_does_not_fit():
    items = image_items(3)
    batch = next(
        request_batches(
            [RunBlock(0, np.zeros((3, 4)), "0.jpg")],
            RowSpec((4,), np.dtype("float64"), "0.jpg", 10),
        )
    )
    writer = RecordWriter(io.StringIO(), items, LabelMap(("normal", "fire", "smoke")))
    with pytest.raises(OperationError, match="has 2 scores per row, but 3 labels were given"):
        writer.add(batch, [Tensor("logits", "FP32", (3, 2), LOGITS)])
