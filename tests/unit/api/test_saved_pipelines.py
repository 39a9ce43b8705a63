"""Saved pipelines and schedules through the API, on a SQLite database, Dagster faked."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.config import Settings
from api.main import create_app
from api.submissions import Submitter, raw_input_of
from orchestrator.saved import make_engine, migrate
from tests.unit.api.test_submissions import FakeDagster
from tests.unit.saved.test_definition import GOOD

KEY = "unit-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def call(tmp_path: Path) -> Any:
    """call(method, url, json=..., headers=...) against an app on a fresh database."""
    dagster = FakeDagster()
    url = f"sqlite:///{tmp_path}/saved.db"
    app = create_app(Settings(dagster_url="http://127.0.0.1:9", api_keys=[KEY], database_url=url))
    database = make_engine(url)
    migrate(database)
    app.state.database = database
    app.state.dagster = dagster
    app.state.submitter = Submitter(dagster, database)  # type: ignore[arg-type]

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                headers = {**AUTH, **kwargs.pop("headers", {})}
                return await client.request(method, path, headers=headers, **kwargs)

        return asyncio.run(go())

    call.dagster = dagster  # type: ignore[attr-defined]
    return call


def test_save_run_and_version(call: Any) -> None:
    created = call("POST", "/pipelines", json=GOOD)
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1
    assert call("POST", "/pipelines", json=GOOD).status_code == 409
    run = call("POST", "/pipelines/thumbs/runs", json={"arguments": {"folder": "photos"}})
    assert run.status_code == 201, run.text
    assert run.json()["version"] == 1
    launched = call.dagster.runs[0]
    assert launched.tags["constellation/pipeline"] == "thumbs"
    assert launched.tags["constellation/pipeline-version"] == "1"
    changed = {**GOOD, "description": "now with a description"}
    saved = call("PUT", "/pipelines/thumbs", json=changed)
    assert saved.status_code == 200 and saved.json()["version"] == 2
    again = call("PUT", "/pipelines/thumbs", json=changed)
    assert again.json()["version"] == 2  # unchanged: no new version
    assert call("GET", "/pipelines/thumbs", params={"version": 1}).json()["description"] == ""
    versions = call("GET", "/pipelines/thumbs/versions").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]


def test_bad_arguments_are_422_with_paths_and_nothing_runs(call: Any) -> None:
    call("POST", "/pipelines", json=GOOD)
    answer = call("POST", "/pipelines/thumbs/runs", json={"arguments": {"width": "x"}})
    assert answer.status_code == 422
    paths = [p["path"] for p in answer.json()["problems"]]
    assert paths == ["arguments.width", "arguments.folder"]
    assert call.dagster.runs == []
    assert call("POST", "/pipelines/nope/runs", json={}).status_code == 404


def test_an_invalid_pipeline_is_422_with_every_path(call: Any) -> None:
    body = {**GOOD, "name": "bad name", "colour": 1}
    answer = call("POST", "/pipelines", json=body)
    assert answer.status_code == 422
    paths = [p["path"] for p in answer.json()["problems"]]
    assert paths[:2] == ["colour", "name"]


def test_idempotency_key_on_pipeline_runs(call: Any) -> None:
    call("POST", "/pipelines", json=GOOD)
    body = {"arguments": {"folder": "photos"}}
    key = {"Idempotency-Key": "k-1"}
    first = call("POST", "/pipelines/thumbs/runs", json=body, headers=key)
    second = call("POST", "/pipelines/thumbs/runs", json=body, headers=key)
    assert first.json()["run_id"] == second.json()["run_id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    other = {"arguments": {"folder": "other"}}
    assert call("POST", "/pipelines/thumbs/runs", json=other, headers=key).status_code == 409
    assert raw_input_of({"ops": {}}) is None


def test_schedules_are_created_paused_resumed_and_deleted(call: Any) -> None:
    call("POST", "/pipelines", json=GOOD)
    bad = call(
        "POST",
        "/schedules",
        json={"name": "s", "pipeline": "thumbs", "cron": "61 * * * *", "timezone": "Mars/Olympus"},
    )
    assert bad.status_code == 422
    assert [p["path"] for p in bad.json()["problems"]] == ["cron", "timezone"]
    missing = call(
        "POST", "/schedules", json={"name": "s", "pipeline": "thumbs", "cron": "* * * * *"}
    )
    assert missing.status_code == 422
    assert missing.json()["problems"][0]["path"] == "arguments.folder"
    body = {
        "name": "nightly",
        "pipeline": "thumbs",
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "arguments": {"folder": "photos"},
    }
    created = call("POST", "/schedules", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "running"
    assert created.json()["next_ticks"][0].endswith("03:00:00+01:00")
    assert call("POST", "/schedules", json=body).status_code == 409
    assert call("POST", "/schedules/nightly/pause").json()["status"] == "paused"
    assert call("POST", "/schedules/nightly/resume").json()["status"] == "running"
    assert call("DELETE", "/pipelines/thumbs").status_code == 409
    assert call("DELETE", "/schedules/nightly").status_code == 204
    assert call("GET", "/schedules/nightly").status_code == 404
    assert call("DELETE", "/pipelines/thumbs").status_code == 204
    assert call("GET", "/pipelines/thumbs").status_code == 404
    again = call("POST", "/pipelines", json=GOOD)
    assert again.json()["version"] == 2  # numbering goes on: runs of version 1 stay unique


def test_the_documented_bodies_have_no_dangling_refs() -> None:
    import json

    document = create_app(Settings(allow_open_access=True)).openapi()
    text = json.dumps(document)
    assert "#/$defs/" not in text
    body = document["paths"]["/pipelines"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["parameters"]["additionalProperties"]["properties"]["type"]
