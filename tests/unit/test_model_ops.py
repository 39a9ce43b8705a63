"""deploy_model, model_inference and delete_model against the in-process V2 server."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.artifacts import ArtifactStore
from orchestrator.catalog import DataItem, validate
from orchestrator.connectors.model_server import Tensor
from orchestrator.context import Services
from orchestrator.errors import InstructionsInvalid, OperationError
from orchestrator.execution import RunOutcome, run_plan
from orchestrator.operations import CATALOG
from orchestrator.operations.model import (
    Block,
    RecordWriter,
    RowSpec,
    read_blocks,
    read_rows,
    request_batches,
    server_model_name,
)
from tests.fixtures.fake_model_server import FakeModelServer


def test_hub_style_names_map_slashes_to_double_dashes():
    assert server_model_name("EdBianchi/vit-fire-detection") == "EdBianchi--vit-fire-detection"
    assert server_model_name("iris") == "iris"
    assert server_model_name("org/team/model.v2") == "org--team--model.v2"
    for bad in ("", "/iris", "iris/", "a//b", "a b", "../x", "a/%2F"):
        with pytest.raises(OperationError, match="is not valid"):
            server_model_name(bad)


def test_validation_refuses_a_model_name_that_cannot_be_served():
    tree = {"instructions": [{"operation": "deploy_model", "parameters": {"model": "a b/c"}}]}
    with pytest.raises(InstructionsInvalid, match=r"instructions\[0\]\.parameters\.model"):
        validate(tree, CATALOG)


def item(path: Path, media_type: str = "application/octet-stream") -> DataItem:
    return DataItem(name=path.name, path=path.name, size=path.stat().st_size, media_type=media_type)


def test_items_become_rows_by_media_type(tmp_path):
    Image.new("RGB", (5, 3), (255, 0, 0)).save(tmp_path / "red.png")
    (tmp_path / "row.json").write_text("[1, 2.5, 3]")
    (tmp_path / "table.json").write_text("[[1, 2, 3], [4, 5, 6]]")
    (tmp_path / "t.csv").write_text("a,b,c\n1,2,3\n\n4,5,6\n")
    np.save(tmp_path / "r.npy", np.arange(3, dtype=np.float32))

    image = read_rows(tmp_path / "red.png", item(tmp_path / "red.png", "image/png"), "auto")
    assert image.rows.shape == (1, 3, 5, 3) and image.rows.dtype == np.uint8 and not image.table
    assert image.rows[0, 0, 0].tolist() == [255, 0, 0]
    as_float = read_rows(tmp_path / "red.png", item(tmp_path / "red.png", "image/png"), "FP32")
    assert as_float.rows.dtype == np.float32 and as_float.rows.max() == 255.0

    row = read_rows(tmp_path / "row.json", item(tmp_path / "row.json"), "auto")
    assert row.rows.tolist() == [[1, 2.5, 3]] and row.rows.dtype == np.float64 and not row.table
    table = read_rows(tmp_path / "table.json", item(tmp_path / "table.json"), "auto")
    assert table.rows.shape == (2, 3) and table.table
    csv = read_rows(tmp_path / "t.csv", item(tmp_path / "t.csv", "text/csv"), "auto")
    assert csv.rows.tolist() == [[1, 2, 3], [4, 5, 6]] and csv.table
    npy = read_rows(tmp_path / "r.npy", item(tmp_path / "r.npy"), "auto")
    assert npy.rows.dtype == np.float32 and npy.rows.shape == (1, 3)

    # the media type decides before the suffix: a CSV export named .txt, JSON named .dat
    (tmp_path / "export.txt").write_text("1,2\n3,4\n")
    export = read_rows(tmp_path / "export.txt", item(tmp_path / "export.txt", "text/csv"), "auto")
    assert export.rows.tolist() == [[1, 2], [3, 4]] and export.table
    (tmp_path / "row.dat").write_text("[5, 6]")
    dat = read_rows(tmp_path / "row.dat", item(tmp_path / "row.dat", "application/json"), "auto")
    assert dat.rows.tolist() == [[5, 6]]


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("ragged.json", "[[1, 2], [3]]", "is not numeric rows"),
        ("words.json", '["a", "b"]', "is not numeric rows"),
        ("cube.json", "[[[1]]]", "has 3 dimensions"),
        ("notes.txt", "hello", "expected an image, .json, .csv or .npy"),
    ],
)
def test_items_that_are_not_rows_are_refused_by_name(tmp_path, name, content, error):
    (tmp_path / name).write_text(content)
    with pytest.raises(OperationError, match=error) as caught:
        read_rows(tmp_path / name, item(tmp_path / name, "text/plain"), "auto")
    assert name in str(caught.value)


def json_items(folder: Path, contents: list[str]) -> list[DataItem]:
    for index, content in enumerate(contents):
        (folder / f"{index}.json").write_text(content)
    return [item(folder / f"{index}.json", "application/json") for index in range(len(contents))]


def test_one_row_json_files_are_read_as_one_run_with_each_files_own_row(tmp_path):
    items = json_items(tmp_path, ["[1, 2]", " [3.5,4]\n", "[5, NaN]", "[1e3, -0]"])
    [block] = read_blocks(str(tmp_path), items, first=10, group=0, datatype="auto")
    assert block.run and block.first == 10 and block.rows.dtype == np.float64
    assert block.rows[:, 0].tolist() == [1, 3.5, 5, 1000] and block.rows[1, 1] == 4
    [as_float] = read_blocks(str(tmp_path), items, first=0, group=0, datatype="FP32")
    assert as_float.rows.dtype == np.float32 and as_float.rows.shape == (4, 2)


@pytest.mark.parametrize(
    ("contents", "error"),
    [
        # joined, these two would read "[[1,2],[3,4]]": two rows, but neither file is one
        (["[1, 2], [3", "4]"], "item '0.json' is not numeric rows"),
        # each starts with "[" and ends with "]", but the first holds two rows
        (["[1, 2], [3, 4]", "[5, 6]", "[7, 8]"], "item '0.json' is not numeric rows"),
        (["[1, 2]", '["a", 2]'], "item '1.json' is not numeric rows"),
        (["[1, 2]", "[[3, 4]]", "[5, 6]"], None),  # a table among rows: read item by item
    ],
)
def test_json_files_that_are_not_one_row_each_are_read_item_by_item(tmp_path, contents, error):
    items = json_items(tmp_path, contents)
    if error:
        with pytest.raises(OperationError, match=error):
            read_blocks(str(tmp_path), items, first=0, group=0, datatype="auto")
        return
    blocks = read_blocks(str(tmp_path), items, first=0, group=0, datatype="auto")
    assert [(b.first, b.rows.tolist(), b.table, b.run) for b in blocks] == [
        (0, [[1, 2]], False, False),
        (1, [[3, 4]], True, False),
        (2, [[5, 6]], False, False),
    ]


def test_a_file_larger_than_its_manifest_says_is_read_whole(tmp_path):
    row = list(range(300_000))  # ~2 MB of JSON: more than one read
    (tmp_path / "big.json").write_text(json.dumps(row))
    stale = DataItem(name="big.json", path="big.json", size=3, media_type="application/json")
    [block] = read_blocks(str(tmp_path), [stale], first=0, group=0, datatype="auto")
    assert block.rows.tolist() == [row]


def test_an_item_missing_from_its_folder_is_named(tmp_path):
    items = json_items(tmp_path, ["[1, 2]", "[3, 4]"])
    (tmp_path / "1.json").unlink()
    with pytest.raises(OperationError, match=r"cannot read item '1\.json': No such file"):
        read_blocks(str(tmp_path), items, first=0, group=0, datatype="auto")


def spec(values: int, per_request: int) -> RowSpec:
    """Rows of `values` FP64 numbers, `per_request` to a request."""
    return RowSpec((values,), np.dtype("float64"), "item0", per_request)


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
    batch = next(request_batches([Block(0, np.zeros((3, 4)), names[0], run=True)], spec(4, 10)))
    datatype = "BYTES" if outputs.dtype.kind == "U" else "FP64"
    tensor = Tensor("predict", datatype, outputs.shape, outputs.ravel().tolist())
    out = io.StringIO()
    RecordWriter(out, items).add(batch, [tensor])
    expected = [
        json.dumps({"name": name, "outputs": {"predict": value}})
        for name, value in zip(names, outputs.tolist(), strict=True)
    ]
    assert out.getvalue().splitlines() == expected


def test_batches_hold_at_most_batch_size_rows_and_respect_group_boundaries():
    sizes = {0: 1, 1: 5, 2: 1, 3: 1}  # item index -> rows; item 1 is a table

    def block(index: int, group: int) -> Block:
        return Block(index, np.zeros((sizes[index], 2)), f"item{index}", group, table=index == 1)

    blocks = [block(0, 0), block(1, 0), block(2, 0), block(3, 1)]
    batches = list(request_batches(blocks, spec(2, 3)))
    assert [b.rows for b in batches] == [3, 3, 1, 1]
    assert [[(s.item, s.rows, s.last) for s in b.segments] for b in batches] == [
        [(0, 1, True), (1, 2, False)],
        [(1, 3, True)],
        [(2, 1, True)],
        [(3, 1, True)],
    ]


def test_a_run_of_one_row_items_is_cut_like_single_items():
    run = Block(0, np.zeros((5, 2)), "item0", run=True)  # items 0..4, one row each
    batches = list(
        request_batches([run, Block(5, np.zeros((2, 2)), "item5", table=True)], spec(2, 3))
    )
    assert [b.rows for b in batches] == [3, 3, 1]
    assert [[(s.item, s.rows, s.run) for s in b.segments] for b in batches] == [
        [(0, 3, True)],
        [(3, 2, True), (5, 1, False)],
        [(5, 1, False)],
    ]
    assert [s.last_item for s in batches[1].segments] == [4, 5]


def write_rows(folder: Path, count: int, features: int = 4) -> list[list[float]]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = np.random.default_rng(7).uniform(0, 10, (count, features)).round(3).tolist()
    for i, row in enumerate(rows):
        (folder / f"{i:04d}.json").write_text(json.dumps(row))
    return rows


def run(instructions: list[dict], services: Services) -> RunOutcome:
    plan = validate({"instructions": instructions}, CATALOG)
    return run_plan(plan, CATALOG, services, "run1")


def pipeline(model: str, data: dict, **inference: object) -> list[dict]:
    return [
        {"operation": "deploy_model", "parameters": {"model": model}},
        {"operation": "model_inference", "parameters": {"model": model, "data": data, **inference}},
        {"operation": "delete_model", "parameters": {"model": model}},
    ]


LOCAL_LIST = {
    "operation": "dict_to_list",
    "parameters": {"data": {"operation": "import_from_local", "parameters": {"path": "rows"}}},
}


@pytest.fixture
def services_for(tmp_path):
    def make(server: FakeModelServer | None) -> Services:
        return Services(
            artifacts=ArtifactStore(tmp_path / "artifacts"),
            data_root=tmp_path / "data",
            model_server=server.client() if server else None,
        )

    return make


def read_records(outcome: RunOutcome) -> list[dict]:
    predictions = outcome.values["instructions[1]"]
    return [json.loads(line) for line in predictions.file.read_text().splitlines()]


def test_deploy_infer_delete_writes_one_record_per_item(tmp_path, services_for):
    rows = write_rows(tmp_path / "data" / "rows", 10)
    server = FakeModelServer()
    outcome = run(pipeline("iris", LOCAL_LIST, batch_size=4), services_for(server))

    assert outcome.succeeded, outcome.first_error
    assert sorted(server.infer_batches) == [2, 4, 4] and server.loaded == set()
    records = read_records(outcome)
    assert [r["name"] for r in records] == [f"{i:04d}.json" for i in range(10)]
    assert [r["outputs"]["predict"] for r in records] == [[pytest.approx(sum(r))] for r in rows]
    summary = outcome.results[1].output
    assert summary["count"] == 10 and summary["requests"] == 3
    assert summary["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [1]}]
    assert outcome.results[0].output["version"] == "7"
    assert outcome.results[2].output["state"] == "unloaded"


def test_batches_input_sends_each_batch_in_its_own_requests(tmp_path, services_for):
    write_rows(tmp_path / "data" / "rows", 7)
    batched = {
        "operation": "batch_formatted_data",
        "parameters": {"batch_size": 3, "data": LOCAL_LIST},
    }
    server = FakeModelServer()
    outcome = run(pipeline("iris", batched, batch_size=64), services_for(server))
    assert outcome.succeeded, outcome.first_error
    assert sorted(server.infer_batches) == [1, 3, 3]  # sent concurrently: in any order
    assert [r["name"] for r in read_records(outcome)] == [f"{i:04d}.json" for i in range(7)]


def test_a_table_item_spanning_requests_gets_one_record(tmp_path, services_for):
    folder = tmp_path / "data" / "rows"
    folder.mkdir(parents=True)
    (folder / "table.csv").write_text("a,b,c,d\n" + "1,1,1,1\n" * 5)
    (folder / "zrow.json").write_text("[2, 2, 2, 2]")
    server = FakeModelServer()
    outcome = run(pipeline("iris", LOCAL_LIST, batch_size=2), services_for(server))
    assert outcome.succeeded, outcome.first_error
    assert server.infer_batches == [2, 2, 2]
    assert read_records(outcome) == [
        {"name": "table.csv", "outputs": {"predict": [[4.0]] * 5}},
        {"name": "zrow.json", "outputs": {"predict": [8.0]}},
    ]


def test_requests_run_concurrently_up_to_the_limit(tmp_path, services_for):
    write_rows(tmp_path / "data" / "rows", 40)
    in_flight, peak, lock = 0, 0, threading.Lock()

    def slow(request):
        nonlocal in_flight, peak
        if request.url.path.endswith("/infer"):
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.02)
            with lock:
                in_flight -= 1
        return None

    server = FakeModelServer(intercept=slow)
    outcome = run(pipeline("iris", LOCAL_LIST, batch_size=2, concurrency=3), services_for(server))
    assert outcome.succeeded, outcome.first_error
    assert peak == 3 and len(server.infer_batches) == 20

    # one table of 40 rows: its 20 requests also go 3 at a time
    peak = 0
    rows = tmp_path / "data" / "rows"
    for path in rows.iterdir():
        path.unlink()
    (rows / "table.csv").write_text("1,2,3,4\n" * 40)
    server = FakeModelServer(intercept=slow)
    outcome = run(pipeline("iris", LOCAL_LIST, batch_size=2, concurrency=3), services_for(server))
    assert outcome.succeeded, outcome.first_error
    assert peak == 3 and len(server.infer_batches) == 20
    [record] = read_records(outcome)
    assert record["outputs"]["predict"] == [[10.0]] * 40


def test_rows_of_another_shape_fail_before_they_are_sent(tmp_path, services_for):
    folder = tmp_path / "data" / "rows"
    write_rows(folder, 9)
    (folder / "0005.json").write_text("[1, 2, 3]")
    sent: list[list[int]] = []

    def record(request):
        if request.url.path.endswith("/infer"):
            sent.append(json.loads(request.content)["inputs"][0]["shape"][1:])

    server = FakeModelServer(intercept=record)
    outcome = run(pipeline("iris", LOCAL_LIST, batch_size=2), services_for(server))
    assert not outcome.succeeded and server.loaded == set()
    assert (
        "item '0005.json' has rows of shape [3] float64, the first item '0000.json' [4] "
        "float64: all rows need one shape" in outcome.first_error
    )
    assert [3] not in sent


def test_a_failed_inference_still_unloads_and_the_run_reports_the_inference(tmp_path, services_for):
    write_rows(tmp_path / "data" / "rows", 5, features=3)  # the model wants 4
    server = FakeModelServer()
    outcome = run(pipeline("iris", LOCAL_LIST), services_for(server))

    assert [r.status for r in outcome.results] == ["succeeded", "failed", "succeeded"]
    assert outcome.first_error.startswith("instructions[1] (model_inference): ")
    assert "expected 4 features per row, got shape [5, 3]" in outcome.first_error
    assert "'0000.json'..'0004.json'" in outcome.first_error
    assert server.loaded == set()
    assert server.requests[-1] == "POST /v2/repository/models/iris/unload"


def test_slash_names_are_served_under_their_mapped_name(tmp_path, services_for):
    write_rows(tmp_path / "data" / "rows", 2)
    server = FakeModelServer(repository={"EdBianchi--vit-fire-detection": 4})
    outcome = run(pipeline("EdBianchi/vit-fire-detection", LOCAL_LIST), services_for(server))
    assert outcome.succeeded, outcome.first_error
    assert "POST /v2/repository/models/EdBianchi--vit-fire-detection/load" in server.requests
    assert outcome.results[0].output["served_name"] == "EdBianchi--vit-fire-detection"


def test_inference_on_a_model_that_is_not_deployed_fails_clearly(tmp_path, services_for):
    write_rows(tmp_path / "data" / "rows", 2)
    instruction = pipeline("iris", LOCAL_LIST)[1]
    outcome = run([instruction], services_for(FakeModelServer()))
    assert "does not know this model" in outcome.first_error
    assert "run deploy_model first" in outcome.first_error


def test_without_a_model_server_only_model_operations_fail(tmp_path, services_for):
    write_rows(tmp_path / "data" / "rows", 2)
    services = services_for(None)
    assert run([LOCAL_LIST], services).succeeded
    outcome = run([pipeline("iris", LOCAL_LIST)[0]], services)
    assert "no model server is configured" in outcome.first_error
