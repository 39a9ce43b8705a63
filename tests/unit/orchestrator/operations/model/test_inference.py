"""deploy_model, model_inference and delete_model against the in-process V2 server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.context import Services
from orchestrator.execution import RunOutcome, run_plan
from orchestrator.operations import CATALOG
from testkit.fake_model_server import FakeModelServer


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
            artifacts=LocalStore(tmp_path / "artifacts"),
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
