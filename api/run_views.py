"""A run as users see it: Dagster's run record plus the instruction events of its log.

This module only turns Dagster's log into events (and says why a run failed when
Dagster's log is all there is); the folding into statuses is `orchestrator.report`.

`RunReports` keeps, per run id (a bounded number of runs), the folded state and
the log cursor, so a poll of GET /runs/{id} reads only the events written since
the previous one, and a finished run's answer is kept whole. The plan comes from
the run's own log (the `constellation-plan` message `generate_dynamic_job_configs`
writes first), or, before that message is written, from the run config once.
After an API restart a run's log is read again from the start, once.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

import yaml

from api.dagster import DagsterClient, LogLine, RunRecord
from api.submissions import raw_input_of
from orchestrator.catalog.registry import Catalog
from orchestrator.catalog.validation import Limits, validate
from orchestrator.errors import InstructionsInvalid
from orchestrator.events import InstructionEvent, parse_message, parse_plan
from orchestrator.plan import Plan
from orchestrator.report import TERMINAL_RUN_STATUSES, RunDetail, RunFold, RunSummary

# What Dagster says when something outside the run failed it; the cause came just before.
GENERIC_RUN_FAILURES = (
    "marked as failed from outside the execution context",
    "being forcibly marked as failed",
)
# The log lines `run_failure` reads; the others are not kept.
FAILURE_KINDS = frozenset({"RunCancelingEvent", "EngineEvent", "RunFailureEvent"})
CACHED_RUNS = 256


def plan_of(record: RunRecord, catalog: Catalog, limits: Limits) -> Plan | None:
    """The plan of a run, from the instructions in its run config (`get_run(config=True)`)."""
    try:
        config = yaml.safe_load(record.run_config_yaml or "") or {}
        return validate(raw_input_of(config), catalog, limits)
    except (InstructionsInvalid, yaml.YAMLError, AttributeError):
        return None  # e.g. a launchpad run with a bad config: no instructions to show


def summary_of(record: RunRecord) -> RunSummary:
    return RunSummary(
        run_id=record.run_id,
        status=record.status,
        created_at=record.created_at,
        started_at=record.started_at,
        ended_at=record.ended_at,
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

    def add(self, line: LogLine) -> None:
        if line.error or line.kind in FAILURE_KINDS:
            self.failure_lines.append(line)
        event = parse_message(line.message)
        if event is not None:
            if self.fold is None:
                self.early.append(event)
            else:
                self.fold.add(event)
        elif self.fold is None and (plan := parse_plan(line.message)) is not None:
            self.use_plan(plan)

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
            state = self._runs[run_id] = _RunState()
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
        read_nothing = True
        while True:
            page = await self.dagster.run_log_page(record.run_id, state.cursor)
            for line in page.lines:
                state.add(line)
            read_nothing = read_nothing and not page.lines
            state.cursor = page.cursor
            if not page.has_more:
                break
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
