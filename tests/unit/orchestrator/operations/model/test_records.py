"""predictions.jsonl records: byte for byte what json.dumps makes of each item's."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from orchestrator.catalog import DataItem
from orchestrator.connectors.model_server import Tensor
from orchestrator.operations.model.batching import RowSpec, RunBlock, request_batches
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
