"""GET /runs/{id}/events: a run's log as Server-Sent Events, resumable by event id."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

import api.run_views
from api.config import Settings
from api.dagster import LogLine, RunRecord
from api.main import create_app
from api.run_views import RunReports, StreamEvent, order_of
from tests.unit.api.test_run_views import FakeDagster, finished_run, line, reports_for

__all__ = ["finished_run"]  # the fixture, used by name

KEY = "unit-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


def collect(reports: RunReports, after: str | None = None) -> list[StreamEvent]:
    async def read() -> list[StreamEvent]:
        return [e async for e in reports.stream("r1", after, interval=0) if e is not None]

    return asyncio.run(read())


def test_a_finished_run_replays_its_events_and_ends_with_its_status_and_error(
    finished_run: tuple[RunRecord, list[LogLine]],
) -> None:
    record, lines = finished_run
    events = collect(reports_for(FakeDagster(record, lines)))

    assert [e.event for e in events[-1:]] == ["end"]
    end = events[-1].data
    assert end["status"] == "FAILURE" and end["run_id"] == "r1"
    assert end["error"] == (
        "instructions[1] (import_from_local): path 'no-such-folder' does not exist under the "
        "data root"
    )
    kinds = [(e.data["path"], e.data["kind"]) for e in events if e.event == "instruction"]
    assert kinds[:2] == [("instructions[0]", "started"), ("instructions[0]", "succeeded")]
    assert ("instructions[1]", "failed") in kinds and ("instructions[2]", "skipped") in kinds
    progress = [e.data for e in events if e.event == "progress"]
    assert progress and progress[0]["done"] == progress[0]["total"] == 1
    positions = [order_of(e.id)[0] for e in events]
    assert positions == sorted(set(positions)), "ids are log positions: ordered, unique"
    assert positions[-1] == len(lines), "the end is the log's last line"


def test_a_reconnect_continues_after_its_last_event_without_duplicates_or_gaps(
    finished_run: tuple[RunRecord, list[LogLine]],
) -> None:
    record, lines = finished_run
    whole = collect(reports_for(FakeDagster(record, lines)))
    cut = whole[3].id
    again = collect(reports_for(FakeDagster(record, lines)), after=cut)  # another API process
    assert whole[:4] + again == whole


def test_a_live_run_streams_lines_as_they_are_written(
    finished_run: tuple[RunRecord, list[LogLine]],
) -> None:
    record, lines = finished_run
    started = [line("RunStartEvent", "Started execution of run for build_execute_job.")]
    dagster = FakeDagster(replace(record, status="STARTED", ended_at=None), started)
    reports = reports_for(dagster)

    async def listen() -> list[StreamEvent]:
        seen: list[StreamEvent] = []
        async for event in reports.stream("r1", interval=0):
            if event is None:  # nothing new: the run writes its next line
                written = len(dagster.lines)
                if written > len(lines):
                    raise AssertionError("the stream did not end")
                dagster.lines = [*started, *lines[: written - len(started) + 1]]
                continue
            seen.append(event)
        return seen

    seen = asyncio.run(listen())
    assert seen[0].event == "run" and seen[0].data["status"] == "STARTED"
    assert seen[-1].event == "end" and seen[-1].data["status"] == "FAILURE"
    replayed = collect(reports_for(FakeDagster(record, [*started, *lines])))
    assert seen == replayed, "live or replayed, the same events with the same ids"


def test_a_run_that_ended_without_a_terminal_line_ends_from_its_record(
    finished_run: tuple[RunRecord, list[LogLine]], monkeypatch: pytest.MonkeyPatch
) -> None:
    record, lines = finished_run
    monkeypatch.setattr(api.run_views, "STATUS_CHECK_S", 0.0)
    canceled = replace(record, status="CANCELED")
    events = collect(reports_for(FakeDagster(canceled, lines[:3])))
    assert events[-1].event == "end" and events[-1].id == "3.end"
    assert events[-1].data["status"] == "CANCELED"
    assert collect(reports_for(FakeDagster(canceled, lines[:3])), after="3") == events[-1:]


def test_an_event_is_written_as_id_event_and_data_lines_then_a_blank_line() -> None:
    event = StreamEvent("7", "progress", {"done": 3, "total": 10})
    assert event.encode() == b'id: 7\nevent: progress\ndata: {"done":3,"total":10}\n\n'
    assert StreamEvent("", "error", {"x": 1}).encode() == b'event: error\ndata: {"x":1}\n\n'
    assert order_of("12") < order_of("12.end") < order_of("13")
    for bad in ("", "x", "-1", "1.2", "1.end.x"):
        with pytest.raises(ValueError):
            order_of(bad)


def sse_messages(body: str) -> list[dict[str, Any]]:
    """The messages of an event stream, each as its fields (data parsed as JSON)."""
    messages = []
    for block in body.split("\n\n"):
        fields: dict[str, Any] = {}
        for text in block.splitlines():
            name, _, value = text.partition(": ")
            if name:
                fields[name] = json.loads(value) if name == "data" else value
        if fields:
            messages.append(fields)
    return messages


def route_client(dagster: FakeDagster) -> httpx.AsyncClient:
    app = create_app(Settings(dagster_url="http://127.0.0.1:9", api_keys=[KEY]))
    app.state.dagster = dagster
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://api", headers=AUTH)


def test_the_route_streams_a_run_and_answers_errors_like_the_other_run_routes(
    finished_run: tuple[RunRecord, list[LogLine]],
) -> None:
    record, lines = finished_run

    async def calls() -> tuple[httpx.Response, ...]:
        async with route_client(FakeDagster(record, lines)) as client:
            whole = await client.get("/runs/r1/events")
            resumed = await client.get("/runs/r1/events", headers={"Last-Event-ID": "4"})
            missing = await client.get("/runs/nope/events")
            bad_id = await client.get("/runs/r1/events", headers={"Last-Event-ID": "soon"})
            no_key = await client.get("/runs/r1/events", headers={"Authorization": ""})
            return whole, resumed, missing, bad_id, no_key

    whole, resumed, missing, bad_id, no_key = asyncio.run(calls())
    assert whole.status_code == 200
    assert whole.headers["content-type"].startswith("text/event-stream")
    assert whole.text.startswith("retry: 1000\n\n")
    messages = sse_messages(whole.text)[1:]
    assert messages[-1]["event"] == "end" and messages[-1]["data"]["status"] == "FAILURE"
    after = [m for m in messages if int(m["id"]) > 4]
    assert sse_messages(resumed.text)[1:] == after
    assert missing.status_code == 404
    assert missing.json() == {"error": "run_not_found", "message": "no run with id 'nope'"}
    assert bad_id.status_code == 422 and "Last-Event-ID 'soon'" in bad_id.json()["message"]
    assert no_key.status_code == 401
