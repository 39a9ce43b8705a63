"""GET /metrics: submissions counted by answer, and what the poller reads of Dagster
(ended runs once each, the queue, the workers), parsed as Prometheus parses it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, cast

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.config import Settings
from api.dagster import (
    DaemonStatus,
    DagsterClient,
    InstanceHealth,
    LocationStatus,
    LogLine,
    LogPage,
    RunRecord,
)
from api.errors import DagsterUnavailable
from api.main import create_app
from api.metrics import Metrics, MetricsPoller, WorkerHealth, follow_dagster
from orchestrator.events import EventKind, InstructionEvent
from stack import free_port

KEY = "unit-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
VALID = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "x"}}]}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, keyed by name and labels, as Prometheus reads them."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float | None:
    return samples.get((metric, frozenset(labels.items())))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


class FakeSubmitter:
    """Dagster launches at once; the second submission of a key is a replay."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    async def submit(self, document: Any, idempotency_key: str | None) -> tuple[str, bool]:
        replayed = idempotency_key in self.keys
        if idempotency_key:
            self.keys.add(idempotency_key)
        return "run-1", replayed


def scrape_after(settings: Settings, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """The answers to `calls` (POST /execute with these httpx arguments, or GET PATH)
    through the app in memory, lifespan included."""
    app = create_app(settings)

    async def run() -> list[Any]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                answers = []
                for what, kwargs in calls:
                    if what == "fake-submitter":
                        app.state.submitter = FakeSubmitter()
                    elif what == "POST":
                        answers.append(await client.post("/execute", **kwargs))
                    else:
                        answers.append(await client.get(what, **kwargs))
                return answers

    return asyncio.run(run())


def unreachable() -> Settings:
    return Settings(
        dagster_url=f"http://127.0.0.1:{free_port()}",
        api_keys=[KEY],
        max_body_bytes=10_000,
        metrics_poll_s=0,
    )


def test_every_answer_to_a_submission_is_counted_by_status_and_error_key() -> None:
    big = {
        "instructions": [{"operation": "import_from_local", "parameters": {"path": "x" * 20_000}}]
    }
    *answers, scrape = scrape_after(
        unreachable(),
        [
            ("POST", {"json": VALID}),  # no key
            ("POST", {"json": {"instructions": [{"operation": "nope"}]}, "headers": AUTH}),
            ("POST", {"json": big, "headers": AUTH}),
            ("POST", {"json": VALID, "headers": AUTH}),  # Dagster cannot be reached
            ("/validate", {"headers": AUTH}),  # not a submission (and a GET: 405)
            ("fake-submitter", {}),
            ("POST", {"json": VALID, "headers": {**AUTH, "Idempotency-Key": "k"}}),
            ("POST", {"json": VALID, "headers": {**AUTH, "Idempotency-Key": "k"}}),
            ("/metrics", {"headers": AUTH}),
        ],
    )
    assert [a.status_code for a in answers] == [401, 422, 413, 503, 405, 201, 201]
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain")
    samples = parse(scrape.text)
    counted = {
        (dict(labels)["status"], dict(labels)["answer"]): count
        for (name, labels), count in samples.items()
        if name == "constellation_submissions_total"
    }
    assert counted == {
        ("401", "unauthorized"): 1,
        ("422", "invalid_instructions"): 1,
        ("413", "body_too_large"): 1,
        ("503", "dagster_unavailable"): 1,
        ("201", "created"): 1,
        ("201", "replayed"): 1,
    }
    created = {"endpoint": "/execute", "status": "201", "answer": "created"}
    assert value(samples, "constellation_submissions_total", **created) == 1
    # Nothing was polled (metrics_poll_s=0): Dagster is not known to be up.
    assert value(samples, "constellation_dagster_up") == 0
    assert "constellation_runs_active" not in names(samples)


class BrokenSubmitter:
    async def submit(self, document: Any, idempotency_key: str | None) -> tuple[str, bool]:
        raise RuntimeError("a bug")


def test_an_unhandled_error_is_counted_as_a_500() -> None:
    app = create_app(unreachable())

    async def run() -> tuple[int, str]:
        async with app.router.lifespan_context(app):
            app.state.submitter = BrokenSubmitter()
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                failed = await client.post("/execute", json=VALID, headers=AUTH)
                return failed.status_code, (await client.get("/metrics", headers=AUTH)).text

    status, text = asyncio.run(run())
    assert status == 500
    labels = {"endpoint": "/execute", "status": "500", "answer": "internal_error"}
    assert value(parse(text), "constellation_submissions_total", **labels) == 1


def test_metrics_need_the_key_unless_made_public() -> None:
    (closed,) = scrape_after(unreachable(), [("/metrics", {})])
    assert closed.status_code == 401
    public = unreachable().model_copy(update={"metrics_public": True})
    (opened,) = scrape_after(public, [("/metrics", {})])
    assert opened.status_code == 200
    assert "constellation_dagster_up 0.0" in opened.text
    assert "process_resident_memory_bytes" in opened.text


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it() -> None:
    accept = {"Accept": "application/openmetrics-text; version=1.0.0", **AUTH}
    (scrape,) = scrape_after(unreachable(), [("/metrics", {"headers": accept})])
    assert scrape.headers["content-type"].startswith("application/openmetrics-text")
    assert scrape.text.endswith("# EOF\n")


# The poller, against Dagster in memory.


def message(
    operation: str, kind: EventKind, duration_s: float, path: str = "instructions[0]"
) -> LogLine:
    """The log line a run writes for an instruction event."""
    event = InstructionEvent(
        kind=kind, path=path, operation=operation, root=path, at=0.0, duration_s=duration_s
    )
    return LogLine(event.to_message(), 0.0, None)


class FakeDagster:
    """Runs, their logs and the instance's health, answered as DagsterClient would."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[RunRecord, float]] = {}  # run, when it was last updated
        self.logs: dict[str, list[LogLine]] = {}
        self.down = False
        self.log_reads: list[str] = []

    def end(self, run: RunRecord, updated: float, lines: list[LogLine]) -> None:
        self.runs[run.run_id] = (run, updated)
        self.logs[run.run_id] = lines

    def _check(self) -> None:
        if self.down:
            raise DagsterUnavailable("Dagster at http://dagster cannot be reached")

    async def instance_health(self) -> InstanceHealth:
        self._check()
        return InstanceHealth(
            {"QUEUED": 3, "NOT_STARTED": 0, "STARTING": 1, "STARTED": 2, "CANCELING": 0},
            [
                DaemonStatus("QUEUED_RUN_COORDINATOR", True, 99.5),
                DaemonStatus("MONITORING", False, 12.0),
            ],
            [LocationStatus("orchestrator", True)],
        )

    async def list_runs(
        self,
        statuses: list[str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        updated_after: float | None = None,
    ) -> list[RunRecord]:
        self._check()
        found = [
            run
            for run, updated in reversed(self.runs.values())
            if run.status in (statuses or [run.status])
            and (updated_after is None or updated > updated_after)
        ]
        if cursor is not None:
            found = found[[r.run_id for r in found].index(cursor) + 1 :]
        return found[:limit]

    async def run_log_page(self, run_id: str, cursor: str | None, limit: int = 2) -> LogPage:
        self._check()
        self.log_reads.append(run_id)
        start = int(cursor or 0)
        lines = self.logs[run_id][start : start + limit]
        return LogPage(lines, str(start + len(lines)), start + limit < len(self.logs[run_id]))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Celery:
    async def workers(self) -> list[WorkerHealth]:
        return [WorkerHealth("celery_worker", "celery@host-a", True, 98.0)]


@pytest.fixture
def polled() -> Iterator[tuple[FakeDagster, Metrics, MetricsPoller, Clock]]:
    dagster, metrics, clock = FakeDagster(), Metrics(), Clock(100.0)
    poller = MetricsPoller(cast(DagsterClient, dagster), metrics, 5.0, [Celery()], clock=clock)
    yield dagster, metrics, poller, clock


def scrape(metrics: Metrics) -> Samples:
    return parse(generate_latest(metrics.registry).decode())


def test_each_ended_run_is_observed_once_with_its_operations(
    polled: tuple[FakeDagster, Metrics, MetricsPoller, Clock],
) -> None:
    dagster, metrics, poller, clock = polled
    before = RunRecord("r0", "SUCCESS", 10.0, 11.0, 12.0, {})  # ended before the API started
    dagster.end(before, updated=101.0, lines=[])  # ... though updated since (a new tag)
    lines = [
        message("import_from_local", "started", 0.0),
        message("import_from_local", "succeeded", 0.02),
        message("resize_image", "succeeded", 0.3, "instructions[0].parameters.data"),
        message("dict_to_list", "failed", 0.004, "instructions[1]"),
        LogLine("Execution of run for build_execute_job failed.", 0.0, None, "RunFailureEvent"),
    ]
    dagster.end(RunRecord("r1", "FAILURE", 100.0, 100.4, 101.5, {}), 101.5, lines)
    clock.now = 102.0
    asyncio.run(poller.poll())
    clock.now = 107.0
    asyncio.run(poller.poll())  # r1 is in the overlap again: not counted twice

    samples = scrape(metrics)
    assert value(samples, "constellation_runs_total", status="FAILURE") == 1
    assert value(samples, "constellation_runs_total", status="SUCCESS") is None
    assert value(samples, "constellation_run_turnaround_seconds_count", status="FAILURE") == 1
    assert value(samples, "constellation_run_turnaround_seconds_sum", status="FAILURE") == 1.5
    assert (
        value(samples, "constellation_run_turnaround_seconds_bucket", status="FAILURE", le="1.5")
        == 1
    )
    assert (
        value(samples, "constellation_run_turnaround_seconds_bucket", status="FAILURE", le="1.0")
        == 0
    )
    assert value(samples, "constellation_run_queue_wait_seconds_sum") == pytest.approx(0.4)
    ops = {
        (dict(labels)["operation"], dict(labels)["outcome"]): count
        for (name, labels), count in samples.items()
        if name == "constellation_operation_duration_seconds_count"
    }
    assert ops == {
        ("import_from_local", "succeeded"): 1,
        ("resize_image", "succeeded"): 1,
        ("dict_to_list", "failed"): 1,
    }
    assert dagster.log_reads == ["r1", "r1", "r1"]  # its 5 lines in pages of 2, once
    assert value(samples, "constellation_metrics_last_poll_timestamp_seconds") == 107.0


def test_the_queue_and_the_workers_are_what_the_latest_poll_saw(
    polled: tuple[FakeDagster, Metrics, MetricsPoller, Clock],
) -> None:
    _, metrics, poller, _ = polled
    asyncio.run(poller.poll())
    samples = scrape(metrics)
    assert value(samples, "constellation_dagster_up") == 1
    assert value(samples, "constellation_runs_active", status="QUEUED") == 3
    assert value(samples, "constellation_runs_active", status="STARTED") == 2
    up = {
        (dict(labels)["kind"], dict(labels)["name"]): state
        for (name, labels), state in samples.items()
        if name == "constellation_worker_up"
    }
    assert up == {
        ("dagster_daemon", "QUEUED_RUN_COORDINATOR"): 1,
        ("dagster_daemon", "MONITORING"): 0,
        ("code_location", "orchestrator"): 1,
        ("celery_worker", "celery@host-a"): 1,
    }
    beat = "constellation_worker_last_heartbeat_timestamp_seconds"
    assert value(samples, beat, kind="dagster_daemon", name="QUEUED_RUN_COORDINATOR") == 99.5
    assert value(samples, beat, kind="code_location", name="orchestrator") is None


def test_a_run_that_ended_while_dagster_was_unreachable_is_counted_after(
    polled: tuple[FakeDagster, Metrics, MetricsPoller, Clock],
    caplog: pytest.LogCaptureFixture,
) -> None:
    dagster, metrics, poller, clock = polled
    asyncio.run(poller.poll())
    dagster.down = True
    for now in (110.0, 115.0, 120.0):
        clock.now = now
        asyncio.run(poller.poll())
    samples = scrape(metrics)
    assert value(samples, "constellation_dagster_up") == 0
    assert "constellation_runs_active" not in names(samples)
    assert value(samples, "constellation_metrics_poll_errors_total", step="health") == 3
    assert value(samples, "constellation_metrics_poll_errors_total", step="runs") == 3
    # The other source still answers; Dagster's workers are unknown, not down.
    assert {
        dict(labels)["kind"] for (name, labels) in samples if name == "constellation_worker_up"
    } == {"celery_worker"}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "metrics: polling health failed: Dagster at http://dagster cannot be reached",
        "metrics: polling runs failed: Dagster at http://dagster cannot be reached",
    ]  # once per outage, not once per poll

    dagster.end(RunRecord("r2", "SUCCESS", 104.0, 105.0, 108.0, {}), 108.0, [])
    dagster.down = False
    clock.now = 125.0
    asyncio.run(poller.poll())
    samples = scrape(metrics)
    assert value(samples, "constellation_runs_total", status="SUCCESS") == 1
    assert value(samples, "constellation_run_turnaround_seconds_sum", status="SUCCESS") == 4.0
    assert value(samples, "constellation_dagster_up") == 1


def test_ended_runs_are_read_page_by_page(
    polled: tuple[FakeDagster, Metrics, MetricsPoller, Clock],
) -> None:
    dagster, metrics, poller, clock = polled
    for index in range(250):
        dagster.end(RunRecord(f"r{index}", "SUCCESS", 100.0, 100.5, 101.0, {}), 101.0, [])
    clock.now = 102.0
    assert asyncio.run(poller.follow_runs()) == 250
    assert value(scrape(metrics), "constellation_runs_total", status="SUCCESS") == 250


def test_the_poller_runs_in_the_background_and_stops_with_the_app() -> None:
    dagster, metrics = FakeDagster(), Metrics()

    async def run() -> int:
        client = cast(DagsterClient, dagster)
        async with follow_dagster(metrics, client, 0.01) as poller:
            assert poller is not None
            while metrics.snapshot.polled_at is None:
                await asyncio.sleep(0.01)
        async with follow_dagster(metrics, client, 0) as none:
            assert none is None
        return len(asyncio.all_tasks())

    assert asyncio.run(run()) == 1  # only the test's own task is left
    assert value(scrape(metrics), "constellation_dagster_up") == 1
