"""A run as users see it: Dagster's run record plus the instruction events of its log."""

from __future__ import annotations

from typing import Any

import yaml

from api.dagster import LogLine, RunRecord
from api.schemas import InstructionResult, InstructionStatus, RunDetail, RunResults, StepStatus
from api.submissions import raw_input_of
from orchestrator.catalog.registry import Catalog
from orchestrator.catalog.validation import Limits, validate
from orchestrator.errors import InstructionsInvalid
from orchestrator.events import InstructionEvent, parse_message
from orchestrator.plan import Plan

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}
# What Dagster says when something outside the run failed it; the cause came just before.
GENERIC_RUN_FAILURES = (
    "marked as failed from outside the execution context",
    "being forcibly marked as failed",
)
UNFINISHED = {"pending", "running", "retrying"}


def plan_of(record: RunRecord, catalog: Catalog, limits: Limits) -> Plan | None:
    """The plan of a run, from the instructions in its run config."""
    try:
        config = yaml.safe_load(record.run_config_yaml or "") or {}
        return validate(raw_input_of(config), catalog, limits)
    except (InstructionsInvalid, yaml.YAMLError, AttributeError):
        return None  # e.g. a launchpad run with a bad config: no instructions to show


def _step(path: str, operation: str, events: list[InstructionEvent]) -> StepStatus:
    step = StepStatus(path=path, operation=operation, status="pending")
    for event in events:
        if event.kind == "started":
            step.started_at = step.started_at or event.at
            step.status = "running"
            step.attempts = max(step.attempts, 1)
        elif event.kind == "retrying":
            step.status = "retrying"
            step.attempts = event.attempt + 1
            step.error = event.error
        else:
            step.status = event.kind
            step.ended_at = event.at
            step.attempts = max(step.attempts, event.attempt)
            step.error = event.error if event.kind != "succeeded" else None
    if step.started_at and step.ended_at:
        step.duration_s = step.ended_at - step.started_at
    return step


def build_detail(record: RunRecord, lines: list[LogLine], plan: Plan | None) -> RunDetail:
    events: dict[str, list[InstructionEvent]] = {}
    for line in lines:
        event = parse_message(line.message)
        if event is not None:
            events.setdefault(event.path, []).append(event)
    roots = plan.roots if plan else []
    instructions = [_instruction(root, plan, events, record.status) for root in roots if plan]
    errors = [i.error for i in instructions if i.status == "failed" and i.error]
    if not errors and record.status == "FAILURE":
        errors = [run_failure(lines)]
        for instruction in instructions:
            if instruction.status == "running":  # the run died under it
                instruction.status = "failed"
                instruction.error = errors[0]
    return RunDetail(
        **summary_fields(record), error=errors[0] if errors else None, instructions=instructions
    )


def _instruction(
    root: str, plan: Plan, events: dict[str, list[InstructionEvent]], run_status: str
) -> InstructionStatus:
    """A top-level instruction's status, folding in the nested instructions under it."""
    nodes = plan.subtree(root)  # children first, the root last
    steps = [_step(n.id, n.operation, events.get(n.id, [])) for n in nodes]
    own = steps.pop()
    status = InstructionStatus(**own.model_dump(), steps=steps)
    started = [s.started_at for s in [own, *steps] if s.started_at]
    status.started_at = min(started) if started else None
    if status.status == "pending" and status.started_at:
        status.status = "running"
    failed = next((s for s in [*steps, own] if s.status == "failed"), None)
    if failed is not None:
        status.status = "failed"
        status.error = f"{failed.path} ({failed.operation}): {failed.error}"
        status.ended_at = failed.ended_at
    if status.status == "succeeded":
        done = [e for e in events.get(root, []) if e.kind == "succeeded"]
        status.output = done[-1].output if done else None
    if run_status == "CANCELED" and status.status in UNFINISHED:
        status.status = "canceled"
    elif run_status in TERMINAL and status.status in {"pending", "retrying"}:
        status.status = "skipped"
    if status.started_at and status.ended_at:
        status.duration_s = status.ended_at - status.started_at
    return status


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


def build_results(detail: RunDetail) -> RunResults:
    results: list[InstructionResult] = [
        InstructionResult(
            path=i.path, operation=i.operation, status=i.status, output=i.output, error=i.error
        )
        for i in detail.instructions
    ]
    return RunResults(
        run_id=detail.run_id,
        status=detail.status,
        complete=detail.status in TERMINAL,
        results=results,
    )


def summary_fields(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "status": record.status,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
    }
