"""GET /runs/{id}/events on the real stack, read by a real HTTP client as a frontend would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from stack import Stack
from testkit.dagster_stack import API_KEY, ApiClient, make_images, start_stack

pytestmark = pytest.mark.integration

STREAM_TIMEOUT = httpx.Timeout(30, read=120)  # a read waits for the run's next event


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with ExitStack() as exits:
        yield start_stack(tmp_path_factory.mktemp("events-stack"), "sqlite", exits)


@pytest.fixture
def api(stack: Stack) -> Iterator[ApiClient]:
    client = ApiClient(stack)
    yield client
    client.http.close()


def events(
    stack: Stack, run_id: str, last_event_id: str | None = None, stop_after: int | None = None
) -> list[dict[str, Any]]:
    """The stream's messages (id, event, data), read as they come, until it closes (or
    until `stop_after` events, then the connection is dropped)."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    received: list[dict[str, Any]] = []
    url = f"{stack.api_url}/runs/{run_id}/events"
    with httpx.stream("GET", url, headers=headers, timeout=STREAM_TIMEOUT) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, Any] = {}
        for text in response.iter_lines():
            if text == "":
                if "event" in fields:
                    received.append(fields)
                    if stop_after is not None and len(received) >= stop_after:
                        return received
                fields = {}
                continue
            name, _, value = text.partition(": ")
            if name:  # "" for a comment line (": keep-alive")
                fields[name] = json.loads(value) if name == "data" else value
    return received


def pipeline(folder: str) -> dict[str, Any]:
    resize = {
        "operation": "resize_image",
        "parameters": {
            "width": 32,
            "height": 24,
            "data": {"operation": "import_from_local", "parameters": {"path": folder}},
        },
    }
    return {
        "instructions": [
            {"operation": "batch_formatted_data", "parameters": {"batch_size": 2, "data": resize}}
        ]
    }


def test_a_whole_run_streams_status_instructions_progress_and_its_end(
    stack: Stack, api: ApiClient
) -> None:
    make_images(Path(stack.data_root) / "events-six", 6, size=(64, 48))
    run_id = api.execute(pipeline("events-six")).json()["run_id"]

    received = events(stack, run_id)

    names = [m["event"] for m in received]
    assert names[-1] == "end" and names.count("end") == 1
    assert received[-1]["data"]["status"] == "SUCCESS" and received[-1]["data"]["error"] is None
    statuses = [m["data"]["status"] for m in received if m["event"] == "run"]
    assert "STARTED" in statuses
    done = {(m["data"]["path"], m["data"]["kind"]) for m in received if m["event"] == "instruction"}
    for path in (
        "instructions[0]",
        "instructions[0].parameters.data",
        "instructions[0].parameters.data.parameters.data",
    ):
        assert {(path, "started"), (path, "succeeded")} <= done
    resized = [
        m["data"]
        for m in received
        if m["event"] == "progress" and "resize" in m["data"]["operation"]
    ]
    assert resized[-1]["done"] == resized[-1]["total"] == 6 and resized[-1]["unit"] == "items"
    ids = [int(m["id"]) for m in received]
    assert ids == sorted(set(ids))
    # the stream and GET /runs/{id} tell the same story
    assert api.run(run_id)["status"] == "SUCCESS"


def test_a_reconnect_with_last_event_id_continues_without_duplicates_or_gaps(
    stack: Stack, api: ApiClient
) -> None:
    make_images(Path(stack.data_root) / "events-four", 4, size=(64, 48))
    run_id = api.execute(pipeline("events-four")).json()["run_id"]

    first = events(stack, run_id, stop_after=3)  # the connection drops mid-run
    rest = events(stack, run_id, last_event_id=first[-1]["id"])
    whole = events(stack, run_id)  # the run has ended: the whole story again, then the end

    assert first + rest == whole
    assert rest[-1]["event"] == "end"


def test_a_failing_run_ends_with_failure_and_the_instruction_error(
    stack: Stack, api: ApiClient
) -> None:
    run_id = api.execute(pipeline("no-such-folder")).json()["run_id"]

    received = events(stack, run_id)

    failed = [m["data"] for m in received if m["event"] == "instruction"]
    assert failed[-1]["kind"] == "failed" and "does not exist" in failed[-1]["error"]
    end = received[-1]
    assert end["event"] == "end" and end["data"]["status"] == "FAILURE"
    assert end["data"]["error"] == api.run(run_id)["error"]
    assert "no-such-folder" in end["data"]["error"]


def test_an_unknown_run_is_404_like_the_other_run_routes(stack: Stack, api: ApiClient) -> None:
    response = api.http.get("/runs/00000000-0000-0000-0000-000000000000/events")
    assert response.status_code == 404
    assert response.json()["error"] == "run_not_found"
