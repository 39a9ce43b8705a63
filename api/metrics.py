"""Prometheus metrics of the API: submissions, runs, the queue and the workers.

Two sources, so that a scrape costs no request to Dagster:

- Submissions are counted as the API answers them (`SubmissionCounter`, an ASGI
  middleware): every answer to POST /execute and POST /pipelines/{name}/runs, by status
  code and error key, 401 and 413 included.
- Everything Dagster knows is read by one background task (`MetricsPoller`, started by
  the API's lifespan) every `metrics_poll_s`: one GraphQL request for the queue (runs
  not yet ended, by status), the daemons' heartbeats and the code locations, and one
  for the runs that ended since the previous poll; each ended run's log is read once,
  for its turnaround and its operations' durations. The load on Dagster is set by the
  interval and by the runs that end, not by how often or by how many Prometheus servers
  scrape; a scrape renders what is in memory.

Counters and histograms start at zero when the API starts (Prometheus' `rate()` and
`increase()` handle the reset). Each API replica follows every run: rates of the run
series add up over replicas, ratios and quantiles do not change.

Workers' health is one family, `constellation_worker_up{kind, name}`: the Dagster
daemons and code locations come with the instance's health; another kind of worker
(e.g. Celery workers) is a `HealthSource` handed to `follow_dagster`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.dagster import DagsterClient, InstanceHealth, RunRecord
from api.errors import ApiError
from orchestrator.events import InstructionEvent, parse_message
from orchestrator.report import TERMINAL_RUN_STATUSES

log = logging.getLogger("constellation.api.metrics")
T = TypeVar("T")

# Submission routes: (method, path pattern, the `endpoint` label).
SUBMISSION_ROUTES = (
    ("POST", re.compile(r"/execute"), "/execute"),
    ("POST", re.compile(r"/pipelines/[^/]+/runs"), "/pipelines/{name}/runs"),
)
ERROR_CODE_STATE = "error_code"  # the ApiError code the exception handler answered with
TURNAROUND_BUCKETS = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60, 120, 300, 900, 3600, 21600)
OPERATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600)
TIMED_KINDS = frozenset({"succeeded", "failed"})  # the instruction events with a duration
# Runs updated this long before the previous poll are asked for again: the poll's clock is
# the API's, a run's update time the clock of whoever wrote its end (UTC, both).
OVERLAP_S = 10.0
RUN_PAGE = 100
SEEN_RUNS = 10_000  # run ids already counted, for the overlap


@dataclass(frozen=True)
class WorkerHealth:
    """Something that runs work, and whether it is up: `kind` is `dagster_daemon`,
    `code_location`, or what another `HealthSource` reports."""

    kind: str
    name: str
    up: bool
    last_heartbeat: float | None = None


class HealthSource(Protocol):
    """More workers for `constellation_worker_up` (asked once per poll)."""

    async def workers(self) -> list[WorkerHealth]: ...


def dagster_workers(health: InstanceHealth) -> list[WorkerHealth]:
    daemons = [
        WorkerHealth("dagster_daemon", d.name, d.healthy, d.last_heartbeat) for d in health.daemons
    ]
    locations = [WorkerHealth("code_location", loc.name, loc.loaded) for loc in health.locations]
    return daemons + locations


@dataclass
class _Snapshot:
    """What the latest poll saw; None until a poll succeeded or after one failed."""

    active_runs: dict[str, int] | None = None
    workers: list[WorkerHealth] | None = None
    polled_at: float | None = None


class Metrics:
    """The API's metric families, in its own registry (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.snapshot = _Snapshot()
        r = self.registry
        self.submissions = Counter(
            "constellation_submissions",
            "Pipeline submissions by the API's answer: HTTP status and error key "
            "(created, replayed, or the error's `error`).",
            ["endpoint", "status", "answer"],
            registry=r,
        )
        self.runs = Counter(
            "constellation_runs",
            "Pipeline runs that ended since the API started, by terminal status.",
            ["status"],
            registry=r,
        )
        self.turnaround = Histogram(
            "constellation_run_turnaround_seconds",
            "Submission (the run's creation) to its end, by terminal status.",
            ["status"],
            buckets=TURNAROUND_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "constellation_run_queue_wait_seconds",
            "Submission to the run's start (queue, launch and worker start-up).",
            buckets=TURNAROUND_BUCKETS,
            registry=r,
        )
        self.operations = Histogram(
            "constellation_operation_duration_seconds",
            "Each instruction's run time in ended runs, by operation and outcome.",
            ["operation", "outcome"],
            buckets=OPERATION_BUCKETS,
            registry=r,
        )
        self.poll_errors = Counter(
            "constellation_metrics_poll_errors",
            "Polls of Dagster (or of another health source) that failed, by step.",
            ["step"],
            registry=r,
        )
        r.register(_SnapshotCollector(self.snapshot))
        ProcessCollector(registry=r)

    def count_submission(self, endpoint: str, status: int, answer: str) -> None:
        self.submissions.labels(endpoint, str(status), answer).inc()

    def observe_run(self, run: RunRecord, events: Iterable[InstructionEvent]) -> None:
        """One ended run: its outcome, turnaround, queue wait and operations' durations."""
        self.runs.labels(run.status).inc()
        if run.ended_at is not None:
            self.turnaround.labels(run.status).observe(max(0.0, run.ended_at - run.created_at))
        if run.started_at is not None:
            self.queue_wait.observe(max(0.0, run.started_at - run.created_at))
        for event in events:
            if event.kind in TIMED_KINDS and event.duration_s is not None:
                self.operations.labels(event.operation, event.kind).observe(event.duration_s)


class _SnapshotCollector(Collector):
    """The latest poll's gauges: series that vanish when what they describe does."""

    def __init__(self, snapshot: _Snapshot):
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        up = GaugeMetricFamily(
            "constellation_dagster_up", "1 if the latest poll of Dagster's GraphQL API succeeded."
        )
        up.add_metric([], 1.0 if snap.active_runs is not None else 0.0)
        yield up
        if snap.polled_at is not None:
            yield GaugeMetricFamily(
                "constellation_metrics_last_poll_timestamp_seconds",
                "When the API last polled Dagster successfully (Unix time).",
                value=snap.polled_at,
            )
        if snap.active_runs is not None:
            active = GaugeMetricFamily(
                "constellation_runs_active",
                "Runs not yet ended, by status (QUEUED: waiting for the run coordinator), "
                "every job of the instance.",
                labels=["status"],
            )
            for status, count in snap.active_runs.items():
                active.add_metric([status], count)
            yield active
        if snap.workers is not None:
            workers = GaugeMetricFamily(
                "constellation_worker_up",
                "1 if the worker is healthy (Dagster daemons: a recent heartbeat; code "
                "locations: loaded).",
                labels=["kind", "name"],
            )
            beats = GaugeMetricFamily(
                "constellation_worker_last_heartbeat_timestamp_seconds",
                "The worker's last heartbeat (Unix time), where it sends them.",
                labels=["kind", "name"],
            )
            for worker in snap.workers:
                workers.add_metric([worker.kind, worker.name], 1.0 if worker.up else 0.0)
                if worker.last_heartbeat is not None:
                    beats.add_metric([worker.kind, worker.name], worker.last_heartbeat)
            yield workers
            yield beats


class SubmissionCounter:
    """ASGI middleware: counts every answer to a submission route, whatever gave it
    (the key check, the body limit, validation, Dagster, or an unhandled error)."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = submission_endpoint(scope) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # where Request.state writes
        answered = _Answer()

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered.status = message["status"]
                answered.replayed = any(
                    name.lower() == b"idempotent-replayed" for name, _ in message["headers"]
                )
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            self.metrics.count_submission(endpoint, answered.status, answered.key(state))


@dataclass
class _Answer:
    """What the API answered a submission: 500 until a response starts (an unhandled error)."""

    status: int = 500
    replayed: bool = False

    def key(self, state: dict[str, object]) -> str:
        if self.status < 400:
            return "replayed" if self.replayed else "created"
        code = state.get(ERROR_CODE_STATE)  # set by the ApiError handler
        return str(code) if code else "internal_error" if self.status >= 500 else "error"


def submission_endpoint(scope: Scope) -> str | None:
    """The `endpoint` label of a submission request; None for any other request."""
    for method, pattern, label in SUBMISSION_ROUTES:
        if scope["method"] == method and pattern.fullmatch(scope["path"]):
            return label
    return None


class MetricsPoller:
    """Reads Dagster's state every `interval` s and each run that ended, once."""

    def __init__(
        self,
        dagster: DagsterClient,
        metrics: Metrics,
        interval: float,
        sources: Sequence[HealthSource] = (),
        clock: Callable[[], float] = time.time,
    ):
        self.dagster = dagster
        self.metrics = metrics
        self.interval = interval
        self.sources = list(sources)
        self.clock = clock
        self.watermark = clock()  # runs that ended before the API started are not counted
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._failing: set[str] = set()

    async def run(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.interval)

    async def poll(self) -> None:
        """One round: the instance's health, other sources, then the runs that ended."""
        snap = self.metrics.snapshot
        health = await self._step("health", self.dagster.instance_health())
        snap.active_runs = health.active_runs if health else None
        workers = dagster_workers(health) if health else []
        for source in self.sources:
            found = await self._step(type(source).__name__, source.workers())
            workers += found or []
        snap.workers = workers if health or workers else None
        if await self._step("runs", self.follow_runs()) is not None and health:
            snap.polled_at = self.clock()

    async def _step(self, step: str, work: Awaitable[T]) -> T | None:
        """The step's result; None (counted, logged once until it recovers) if it failed."""
        try:
            result = await work
        except ApiError as exc:
            self._failed(step, exc.message)
            return None
        except Exception as exc:  # an unexpected answer: keep polling, keep the traceback
            log.exception("metrics: polling %s failed", step)
            self._failed(step, f"{type(exc).__name__}: {exc}", logged=True)
            return None
        if step in self._failing:
            self._failing.discard(step)
            log.info("metrics: polling %s works again", step)
        return result

    def _failed(self, step: str, message: str, logged: bool = False) -> None:
        self.metrics.poll_errors.labels(step).inc()
        if step not in self._failing and not logged:
            log.warning("metrics: polling %s failed: %s", step, message)
        self._failing.add(step)

    async def follow_runs(self) -> int:
        """Observe the job's runs that ended since the previous poll; how many."""
        started = self.clock()
        since = self.watermark - OVERLAP_S
        ended: list[RunRecord] = []
        cursor: str | None = None
        while True:
            page = await self.dagster.list_runs(
                statuses=sorted(TERMINAL_RUN_STATUSES),
                updated_after=since,
                limit=RUN_PAGE,
                cursor=cursor,
            )
            ended += [
                run
                for run in page
                if run.run_id not in self._seen and (run.ended_at is None or run.ended_at >= since)
            ]
            if len(page) < RUN_PAGE:
                break
            cursor = page[-1].run_id
        for run in reversed(ended):  # oldest first
            self.metrics.observe_run(run, await self.instruction_events(run.run_id))
            self._seen[run.run_id] = None
            while len(self._seen) > SEEN_RUNS:
                self._seen.popitem(last=False)
        self.watermark = started  # only once every ended run was observed
        return len(ended)

    async def instruction_events(self, run_id: str) -> list[InstructionEvent]:
        events: list[InstructionEvent] = []
        cursor: str | None = None
        while True:
            page = await self.dagster.run_log_page(run_id, cursor)
            for line in page.lines:
                event = parse_message(line.message)
                if event is not None and event.kind in TIMED_KINDS:
                    events.append(event)
            cursor = page.cursor
            if not page.has_more:
                return events


@asynccontextmanager
async def follow_dagster(
    metrics: Metrics,
    dagster: DagsterClient,
    interval: float,
    sources: Sequence[HealthSource] = (),
) -> AsyncIterator[MetricsPoller | None]:
    """The poller running in the background while inside (none if `interval` is 0)."""
    if interval <= 0:
        yield None
        return
    poller = MetricsPoller(dagster, metrics, interval, sources)
    task = asyncio.create_task(poller.run(), name="constellation-metrics")
    try:
        yield poller
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
