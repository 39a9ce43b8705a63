"""Instruction events: written to the Dagster log by a run, read back by the API.

Each event is one log message: a line for people, then a marker line with JSON
for programs, so the Dagster UI and `GET /runs/{id}` tell the same story.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from orchestrator.plan import Plan

MARKER = "constellation-event: "
PLAN_MARKER = "constellation-plan: "

EventKind = Literal["started", "succeeded", "failed", "skipped", "retrying"]


class InstructionEvent(BaseModel):
    """Something that happened to one instruction (a plan node) of a run."""

    kind: EventKind
    path: str
    operation: str
    root: str  # the top-level instruction this node belongs to
    at: float
    duration_s: float | None = None
    attempt: int = 1
    error: str | None = None
    output: dict[str, Any] | None = None

    def headline(self) -> str:
        text = f"{self.path} {self.operation} {self.kind}"
        if self.duration_s is not None:
            text += f" in {self.duration_s:.3f} s"
        if self.error:
            text += f": {self.error}"
        elif self.output:
            text += f" -> {self.output.get('type', 'output')}"
        return text

    def to_message(self) -> str:
        return f"{self.headline()}\n{MARKER}{self.model_dump_json(exclude_none=True)}"


def parse_message(message: str) -> InstructionEvent | None:
    """The event carried by a log message, or None for any other message."""
    payload = _payload(message, MARKER)
    try:
        return None if payload is None else InstructionEvent.model_validate(payload)
    except ValidationError:
        return None


def _payload(message: str, marker: str) -> Any:
    """The JSON after the last `marker` in a log message; None without one or if not JSON."""
    index = message.rfind(marker)
    if index < 0:
        return None
    try:
        return json.loads(message[index + len(marker) :])
    except ValueError:
        return None


def plan_message(headline: str, plan: Plan) -> str:
    """A log message for people (`headline`) carrying the plan's outline for programs:
    the run's first Constellation message, so a reader of the log knows its instructions,
    their ids and the refs between them (`Plan.outline`)."""
    outline = json.dumps(plan.outline(), separators=(",", ":"))
    return f"{headline}\n{PLAN_MARKER}{outline}"


def parse_plan(message: str) -> Plan | None:
    """The plan carried by a `plan_message`, or None for any other message."""
    payload = _payload(message, PLAN_MARKER)
    try:
        return None if payload is None else Plan.from_outline(payload)
    except (ValueError, TypeError, KeyError, AttributeError, ValidationError):
        return None
