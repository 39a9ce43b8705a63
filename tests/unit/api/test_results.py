"""Results contents through the API, from a local store and from an S3 store on moto:
items paged, bytes streamed with Range, predictions paged, hostile names, 410 after removal."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import yaml

from api.config import Settings
from api.dagster import RunRecord
from api.main import create_app
from api.submissions import run_config
from orchestrator.artifacts import ArtifactStore, LocalCache, LocalStore, S3Store
from orchestrator.catalog.validation import validate
from orchestrator.context import Services
from orchestrator.events import InstructionEvent, plan_message
from orchestrator.execution import run_plan
from orchestrator.operations import CATALOG
from orchestrator.resources import S3Resource
from orchestrator.retention import ARTIFACTS_TAG, REMOVED
from testkit.moto_server import MotoServer
from tests.unit.api.test_run_views import FakeDagster, line

KEY = "unit-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
PHOTOS = {f"p{i:02d}.txt": f"photo {i} ".encode() * (i + 1) for i in range(25)}
DOCUMENT = {
    "instructions": [
        {"operation": "import_from_local", "parameters": {"path": "photos"}, "id": "photos"},
        {"operation": "dict_to_list", "parameters": {"data": {"ref": "photos"}}},
    ]
}


def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> ArtifactStore:
    if kind == "local":
        return LocalStore(tmp_path / "artifacts")
    moto: MotoServer = request.getfixturevalue("moto")
    boto3.client("s3", endpoint_url=moto.url).create_bucket(Bucket="runs")
    client = S3Resource(endpoint_url=moto.url).client()
    return S3Store(client, "s3://runs/constellation", LocalCache(tmp_path / "cache", 2**20))


@pytest.fixture(params=["local", "s3"])
def finished(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[FakeDagster, ArtifactStore]:
    """A SUCCESS run of DOCUMENT written to the store, and its Dagster log."""
    for name, data in PHOTOS.items():
        (tmp_path / "data" / "photos").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / "photos" / name).write_bytes(data)
    store = make_store(request.param, tmp_path, request)
    plan = validate(DOCUMENT, CATALOG)
    events: list[InstructionEvent] = []
    run_plan(plan, CATALOG, Services(store, data_root=tmp_path / "data"), "r1", emit=events.append)
    lines = [line("LogMessageEvent", plan_message("planned", plan))]
    lines += [line("LogMessageEvent", event.to_message()) for event in events]
    config = yaml.safe_dump(run_config(DOCUMENT))
    record = RunRecord("r1", "SUCCESS", 1.0, 1.0, 2.0, {}, run_config_yaml=config)
    return FakeDagster(record, lines), store


def calls(
    finished: tuple[FakeDagster, ArtifactStore], *requests: tuple[str, dict[str, str]]
) -> list[httpx.Response]:
    dagster, store = finished
    app = create_app(Settings(dagster_url="http://127.0.0.1:9", api_keys=[KEY]), artifacts=store)
    app.state.dagster = dagster

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=AUTH) as c:
            return [await c.get(url, headers=headers) for url, headers in requests]

    return asyncio.run(run())


def test_items_are_paged_by_index_path_or_id_and_name_no_local_path(
    finished: tuple[FakeDagster, ArtifactStore], tmp_path: Path
) -> None:
    first, second, by_path, by_id, listed, results = calls(
        finished,
        ("/runs/r1/results/0/items?limit=10", {}),
        ("/runs/r1/results/0/items?limit=10&cursor=10", {}),
        ("/runs/r1/results/instructions[0]/items?limit=100", {}),
        ("/runs/r1/results/photos/items?limit=100", {}),
        ("/runs/r1/results/1/items?limit=100", {}),
        ("/runs/r1/results", {}),
    )
    page = first.json()
    assert first.status_code == 200 and page["type"] == "dataset"
    assert [i["name"] for i in page["items"]] == sorted(PHOTOS)[:10]
    assert page["items"][0] == {
        "name": "p00.txt",
        "size": len(PHOTOS["p00.txt"]),
        "media_type": "text/plain",
        "url": "/runs/r1/results/0/items/p00.txt",
    }
    assert page["next_cursor"] == "10" and page["artifact"] == "r1/000-import_from_local"
    assert [i["name"] for i in second.json()["items"]] == sorted(PHOTOS)[10:20]
    names = [(i["name"], i["size"]) for i in by_path.json()["items"]]
    assert names == [(i["name"], i["size"]) for i in by_id.json()["items"]]
    assert len(by_id.json()["items"]) == 25 and by_id.json()["next_cursor"] is None
    assert listed.json()["type"] == "list" and len(listed.json()["items"]) == 25
    for response in (first, listed, results):
        assert str(tmp_path) not in response.text, "no path of the worker's machine"
    assert results.json()["results"][0]["output"]["artifact"] == "r1/000-import_from_local"


def test_item_bytes_whole_and_by_range(finished: tuple[FakeDagster, ArtifactStore]) -> None:
    data = PHOTOS["p24.txt"]
    url = "/runs/r1/results/1/items/p24.txt"
    whole, part, tail, open_end, outside, reversed_ = calls(
        finished,
        (url, {}),
        (url, {"Range": "bytes=2-9"}),
        (url, {"Range": "bytes=-5"}),
        (url, {"Range": "bytes=100-"}),
        (url, {"Range": f"bytes={len(data)}-"}),
        (url, {"Range": "bytes=9-2"}),
    )
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"].startswith("text/plain")
    assert whole.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206 and part.content == data[2:10]
    assert part.headers["content-range"] == f"bytes 2-9/{len(data)}"
    assert tail.status_code == 206 and tail.content == data[-5:]
    assert open_end.status_code == 206 and open_end.content == data[100:]
    for refused in (outside, reversed_):
        assert refused.status_code == 416
        assert refused.headers["content-range"] == f"bytes */{len(data)}"
        assert refused.json()["error"] == "range_not_satisfiable"


@pytest.mark.parametrize(
    "name", ["%2e%2e/manifest.json", "%2E%2E%2Fmanifest.json", "/etc/passwd", "a%2F..%2F..%2Fx"]
)
def test_hostile_names_are_refused(finished: tuple[FakeDagster, ArtifactStore], name: str) -> None:
    """Names a client sends percent-encoded so that no URL normalisation removes the `..`."""
    (response,) = calls(finished, (f"/runs/r1/results/0/items/{name}", {}))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_item_name"
    assert "is refused" in response.json()["message"]


def test_hostile_names_encoded_are_refused_with_400(
    finished: tuple[FakeDagster, ArtifactStore],
) -> None:
    (dotted, encoded) = calls(
        finished,
        ("/runs/r1/results/0/items/a/..%2F..%2Fmanifest.json", {}),
        ("/runs/r1/results/0/items/%252e%252e%252fmanifest.json", {}),
    )
    assert dotted.status_code == 400 and dotted.json()["error"] == "invalid_item_name"
    assert encoded.status_code == 400 and encoded.json()["error"] == "invalid_item_name"


def test_unknown_run_instruction_or_item_and_wrong_kind_are_404(
    finished: tuple[FakeDagster, ArtifactStore],
) -> None:
    run, instruction, item, predictions = calls(
        finished,
        ("/runs/nope/results/0/items", {}),
        ("/runs/r1/results/7/items", {}),
        ("/runs/r1/results/0/items/missing.txt", {}),
        ("/runs/r1/results/0/predictions", {}),
    )
    assert run.status_code == 404 and run.json()["error"] == "run_not_found"
    assert instruction.status_code == 404
    assert instruction.json()["message"] == (
        "run 'r1' has no instruction '7': expected an index 0 to 1, a path such as "
        "'instructions[0]', or an id ('photos')"
    )
    assert item.status_code == 404 and "no item 'missing.txt'" in item.json()["message"]
    assert predictions.status_code == 404
    assert predictions.json()["message"] == (
        "instructions[0] (import_from_local) is a dataset, not a predictions"
    )


def test_removed_artifacts_answer_410(finished: tuple[FakeDagster, ArtifactStore]) -> None:
    finished[1].delete_run("r1")  # what remove_run_artifacts does: delete, then tag the run
    finished[0].record.tags[ARTIFACTS_TAG] = REMOVED
    items, item = calls(
        finished, ("/runs/r1/results/0/items", {}), ("/runs/r1/results/0/items/p00.txt", {})
    )
    for response in (items, item):
        assert response.status_code == 410
        assert response.json()["error"] == "artifacts_removed"
        assert "were removed" in response.json()["message"]


def test_predictions_are_paged_json_records(tmp_path: Path) -> None:
    from api.contents import Item, RunContents

    store = LocalStore(tmp_path)
    records = [{"name": f"x{i}", "label": "fire" if i % 2 else "none"} for i in range(7)]
    body = "".join(json.dumps(r) + "\n" for r in records).encode()
    store.write_bytes("r1/001-model_inference/predictions.jsonl", body)
    item = Item(
        "predictions.jsonl",
        len(body),
        "application/x-ndjson",
        "r1/001-model_inference/predictions.jsonl",
    )
    contents = RunContents(store, None)  # type: ignore[arg-type]
    seen: list[Any] = []
    cursor: int | None = 0
    pages = 0
    while cursor is not None:
        page, cursor = contents.records(item, cursor, 3)
        seen += page
        pages += 1
    assert seen == records and pages == 3
