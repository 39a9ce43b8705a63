"""A run as users see it: Dagster's run record plus the instruction events of its log.

This module only turns Dagster's log into events (and says why a run failed when
Dagster's log is all there is); the folding into statuses is `orchestrator.report`.

`RunReports` keeps, per run id (a bounded number of runs), the folded state and
the log cursor, so a poll of GET /runs/{id} reads only the events written since
the previous one, and a finished run's answer is kept whole. The plan comes from
the run's own log (the `constellation-plan` message `generate_dynamic_job_configs`
writes first), or, before that message is written, from the run config once.
After an API restart a run's log is read again from the start, once.

The same reading feeds GET /runs/{id}/events (`RunReports.stream`): each log line
that says something to a listener (a run status change, an instruction event,
progress) becomes a `StreamEvent` whose id is the line's position in the run's
log (1, 2, ...), the same in every API process, so a client resumes with
`Last-Event-ID` and gets neither duplicates nor gaps. Listeners of one run share
its state: the log is polled at most once per interval, whoever asks.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from api.dagster import DagsterClient, LogLine, RunRecord
from api.submissions import raw_input_of
from orchestrator.catalog.registry import Catalog
from orchestrator.catalog.validation import Limits, validate
from orchestrator.errors import InstructionsInvalid
from orchestrator.events import InstructionEvent, parse_message, parse_plan
from orchestrator.plan import Plan
from orchestrator.report import TERMINAL_RUN_STATUSES, RunDetail, RunFold, RunSummary
from orchestrator.rerun import RERUN_OF_TAG
from orchestrator.saved.tags import TAG_PIPELINE, TAG_PIPELINE_VERSION

# What Dagster says when something outside the run failed it; the cause came just before.
GENERIC_RUN_FAILURES = (
    "marked as failed from outside the execution context",
    "being forcibly marked as failed",
)
# The log lines `run_failure` reads; the others are not kept.
FAILURE_KINDS = frozenset({"RunCancelingEvent", "EngineEvent", "RunFailureEvent"})
CACHED_RUNS = 256
POLL_INTERVAL_S = 0.15  # how often a listened-to run's log is read
STATUS_CHECK_S = 2.0  # a stream with nothing new checks the run record this often
# The log lines that change a run's status, and the status each gives.
RUN_STATUS_LINES = {
    "RunEnqueuedEvent": "QUEUED",
    "RunStartingEvent": "STARTING",
    "RunStartEvent": "STARTED",
    "RunCancelingEvent": "CANCELING",
    "RunSuccessEvent": "SUCCESS",
    "RunFailureEvent": "FAILURE",
    "RunCanceledEvent": "CANCELED",
}


@dataclass(frozen=True)
class StreamEvent:
    """One Server-Sent Event of a run: `run` (a status change), `instruction` (started,
    succeeded, cached, failed, skipped, retrying), `progress`, and last `end`
    (the terminal status and the run's error)."""

    id: str
    event: str
    data: dict[str, Any]

    @property
    def order(self) -> tuple[int, int]:
        """Where it stands: its log position, and 1 for an `N.end` made after line N."""
        return order_of(self.id)

    def encode(self) -> bytes:
        text = json.dumps(self.data, separators=(",", ":"))
        data = "".join(f"data: {line}\n" for line in text.splitlines())
        head = f"id: {self.id}\n" if self.id else ""  # no id: a reconnect resumes as before
        return f"{head}event: {self.event}\n{data}\n".encode()


def order_of(event_id: str) -> tuple[int, int]:
    """The place of an event id this API sent (`12`, `12.end`); ValueError for others."""
    position, dot, rest = event_id.strip().partition(".")
    if not position.isdigit() or (dot and rest != "end"):
        raise ValueError(f"not an event id of this stream: {event_id!r}")
    return int(position), 1 if dot else 0


def plan_of(record: RunRecord, catalog: Catalog, limits: Limits) -> Plan | None:
    """The plan of a run, from the instructions in its run config (`get_run(config=True)`)."""
    try:
        config = yaml.safe_load(record.run_config_yaml or "") or {}
        return validate(raw_input_of(config), catalog, limits)
    except (InstructionsInvalid, yaml.YAMLError, AttributeError):
        return None  # e.g. a launchpad run with a bad config: no instructions to show


def summary_of(record: RunRecord) -> RunSummary:
    version = record.tags.get(TAG_PIPELINE_VERSION, "")
    return RunSummary(
        run_id=record.run_id,
        status=record.status,
        created_at=record.created_at,
        started_at=record.started_at,
        ended_at=record.ended_at,
        rerun_of=record.tags.get(RERUN_OF_TAG),
        pipeline=record.tags.get(TAG_PIPELINE),
        pipeline_version=int(version) if version.isdigit() else None,
    )


def run_failure(lines: list[LogLine]) -> str:
    """Why a run failed outside any instruction: a step's error (e.g. an invalid launchpad
    config), else what Dagster said just before failing the run (e.g. a killed run worker,
    a run over its maximum runtime), else its generic failure message."""
    step_errors = [line.error for line in lines if line.error]
    if step_errors:
        return step_errors[0]
    canceling = engine = None
    for line in lines:
        if line.kind == "RunCancelingEvent":  # e.g. "Canceling due to exceeding maximum runtime"
            canceling = canceling or line.message  # the first one gives the reason
        elif line.kind == "EngineEvent":  # e.g. "... terminated by signal 9"
            engine = line.message
        elif line.kind == "RunFailureEvent":
            generic = any(text in line.message for text in GENERIC_RUN_FAILURES)
            return (canceling or engine or line.message) if generic else line.message
    return "the run failed"


def build_detail(record: RunRecord, lines: list[LogLine], plan: Plan | None) -> RunDetail:
    """The run from its whole log at once (what GET /runs/{id} did on every poll before)."""
    fold = RunFold(plan)
    for line in lines:
        event = parse_message(line.message)
        if event is not None:
            fold.add(event)
    return fold.detail(summary_of(record), lambda: run_failure(lines))


@dataclass
class _RunState:
    """What is known of one run so far: the log up to `cursor`, folded."""

    cursor: str | None = None
    plan: Plan | None = None
    config_read: bool = False  # the run config was asked for the plan once
    fold: RunFold | None = None
    early: list[InstructionEvent] = field(default_factory=list)  # events before a plan is known
    failure_lines: list[LogLine] = field(default_factory=list)
    final: bytes | None = None  # a finished run's answer, as JSON
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    run_id: str = ""
    position: int = 0  # log lines read so far
    events: list[StreamEvent] = field(default_factory=list)  # for listeners, by position
    ended: bool = False  # the log's terminal status line was read
    polled_at: float = float("-inf")

    def add(self, line: LogLine) -> None:
        self.position += 1
        if line.error or line.kind in FAILURE_KINDS:
            self.failure_lines.append(line)
        event = parse_message(line.message)
        if event is not None:
            if self.fold is None:
                self.early.append(event)
            else:
                self.fold.add(event)
            name = "progress" if event.kind == "progress" else "instruction"
            self._publish(name, event.model_dump(mode="json", exclude_none=True))
        elif self.fold is None and (plan := parse_plan(line.message)) is not None:
            self.use_plan(plan)
        status = RUN_STATUS_LINES.get(line.kind)
        if status is not None and not self.ended:
            data: dict[str, Any] = {"run_id": self.run_id, "status": status, "at": line.timestamp}
            if status in TERMINAL_RUN_STATUSES:
                data["error"] = self.error_of(status, line.timestamp)
                self.ended = True
            self._publish("end" if self.ended else "run", data)

    def _publish(self, name: str, data: dict[str, Any], suffix: str = "") -> None:
        self.events.append(StreamEvent(f"{self.position}{suffix}", name, data))

    def end(self, record: RunRecord) -> None:
        """End the stream from the run's record: its log has no terminal status line."""
        data = {
            "run_id": self.run_id,
            "status": record.status,
            "at": record.ended_at,
            "error": self.error_of(record.status, record.ended_at or time.time()),
        }
        self._publish("end", data, suffix=".end")
        self.ended = True

    def error_of(self, status: str, at: float) -> str | None:
        """The run's error, as GET /runs/{id} would say it once the run ended so."""
        summary = RunSummary(run_id=self.run_id, status=status, created_at=at)
        lines = self.failure_lines
        fold = self.fold or RunFold(self.plan)
        return fold.detail(summary, lambda: run_failure(lines)).error

    def use_plan(self, plan: Plan | None) -> None:
        self.plan = plan
        self.fold = RunFold(plan)
        for event in self.early:
            self.fold.add(event)
        self.early.clear()


class RunReports:
    """GET /runs/{id} for many polls: each run's log read incrementally, in one process."""

    def __init__(
        self, dagster: DagsterClient, catalog: Catalog, limits: Limits, capacity: int = CACHED_RUNS
    ):
        self.dagster = dagster
        self.catalog = catalog
        self.limits = limits
        self.capacity = capacity
        self._runs: OrderedDict[str, _RunState] = OrderedDict()

    def _state(self, run_id: str) -> _RunState:
        state = self._runs.get(run_id)
        if state is None:
            state = self._runs[run_id] = _RunState(run_id=run_id)
            while len(self._runs) > self.capacity:
                self._runs.popitem(last=False)
        self._runs.move_to_end(run_id)
        return state

    async def detail_json(self, run_id: str) -> bytes:
        """The body of GET /runs/{id}, as JSON."""
        record = await self.dagster.get_run(run_id)  # also: RunNotFound for a deleted run
        state = self._state(run_id)
        async with state.lock:
            if state.final is not None:
                return state.final
            detail, read_nothing = await self._read(record, state)
            body = detail.model_dump_json().encode()
            if record.status in TERMINAL_RUN_STATUSES and read_nothing:
                # Ended, and its log read to the end after it ended: it will not change.
                state.final = body
                state.fold = None
                state.failure_lines.clear()
            return body

    async def detail(self, run_id: str) -> RunDetail:
        return RunDetail.model_validate_json(await self.detail_json(run_id))

    async def _read(self, record: RunRecord, state: _RunState) -> tuple[RunDetail, bool]:
        """Fold what the log gained since the last read; (the run, whether nothing was new)."""
        read_nothing = not await self._read_log(state)
        if state.fold is None and not state.config_read:
            # No plan in the log yet (a queued run, or one from before plans were logged).
            with_config = await self.dagster.get_run(record.run_id, config=True)
            state.config_read = True
            plan = plan_of(with_config, self.catalog, self.limits)
            if plan is not None:
                state.use_plan(plan)
        fold = state.fold or RunFold(None)
        lines = state.failure_lines
        return fold.detail(summary_of(record), lambda: run_failure(lines)), read_nothing

    async def _read_log(self, state: _RunState) -> bool:
        """Fold the lines the run's log gained since the last read; whether there were any."""
        read_any = False
        while True:
            page = await self.dagster.run_log_page(state.run_id, state.cursor)
            for line in page.lines:
                state.add(line)
            read_any = read_any or bool(page.lines)
            state.cursor = page.cursor
            if not page.has_more:
                break
        state.polled_at = time.monotonic()
        return read_any

    async def check(self, run_id: str) -> RunRecord:
        """The run's record; RunNotFound (404) before a stream starts, like GET /runs/{id}."""
        return await self.dagster.get_run(run_id)

    async def stream(
        self, run_id: str, after: str | None = None, interval: float = POLL_INTERVAL_S
    ) -> AsyncIterator[StreamEvent | None]:
        """The run's events after the event id `after` (None: from the start), as they are
        written, ending with `end`. Yields None after a poll found nothing new (keep-alives)."""
        state = self._state(run_id)
        sent = (0, 0) if after is None else order_of(after)
        checked = time.monotonic()
        while True:
            async with state.lock:
                if not state.ended and time.monotonic() - state.polled_at >= interval:
                    await self._read_log(state)
                if not state.ended and time.monotonic() - checked >= STATUS_CHECK_S:
                    # A run ended without a terminal line (e.g. deleted storage): the record says.
                    checked = time.monotonic()
                    record = await self.dagster.get_run(run_id)
                    if record.status in TERMINAL_RUN_STATUSES:
                        await self._read_log(state)
                        if not state.ended:
                            state.end(record)
                start = bisect.bisect_right(state.events, sent, key=lambda e: e.order)
                new = state.events[start:]
                ended = state.ended
            for event in new:
                sent = event.order
                yield event
            if ended:
                return
            if not new:
                yield None
            await asyncio.sleep(interval)
