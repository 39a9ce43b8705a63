"""Instruction events: written to the Dagster log by a run, read back by the API.

Each event is one log message: a sentence for people first (what the Dagster UI
shows on the event's row), then a marker line with JSON for programs, so the
Dagster UI and `GET /runs/{id}` tell the same story.

Why the payload stays in the message (Dagster 1.13): the run's event log keeps a
log call's message only; `extra=` reaches custom @loggers, not the stored event,
and `context.log_event(AssetObservation/ExpectationResult)` is buffered until the
op returns, so it could not report an instruction while the op runs. The whole
run's outcome is also attached as the op's output metadata (`jobs.py`).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from orchestrator.plan import Plan

MARKER = "constellation-event: "
PLAN_MARKER = "constellation-plan: "

# "progress" carries done/total/unit and changes no status; "cached": an earlier run's output
# was reused (orchestrator/cache.py), `cached_from` names that run.
EventKind = Literal["started", "succeeded", "failed", "skipped", "retrying", "progress", "cached"]


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
    # kind "progress": how far the operation is (`OperationContext.progress`)
    done: int | None = None
    total: int | None = None
    unit: str | None = None
    cached_from: str | None = None  # kind "cached": the run whose output was reused

    def headline(self) -> str:
        """One sentence, e.g. `instructions[1] model_inference succeeded in 2.31 s:
        40 items, 40 rows in 1 request`."""
        if self.kind == "progress":
            of = f" of {self.total}" if self.total is not None else ""
            return f"{self.path} {self.operation}: {self.done}{of} {self.unit or 'items'} done"
        text = f"{self.path} {self.operation} {self.kind}"
        if self.attempt > 1:
            text += f" (attempt {self.attempt})"
        if self.duration_s is not None:
            text += f" in {self.duration_s:.2f} s"
        if self.cached_from is not None:
            text += f" (the output of run {self.cached_from})"
        if self.error:
            text += f": {self.error}"
        elif self.output:
            text += f": {output_words(self.output)}"
        return text

    def to_message(self) -> str:
        return f"{self.headline()}\n{MARKER}{self.model_dump_json(exclude_none=True)}"


def _plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def output_words(output: dict[str, Any]) -> str:
    """An output summary in a few words: `40 items, 1.2 MB`, `40 rows in 1 request`."""
    kind = str(output.get("type", "output"))
    words: list[str] = []
    count, items, rows = output.get("count"), output.get("items"), output.get("rows")
    if kind == "batches" and isinstance(count, int):
        words.append(_plural(count, "batch", "batches"))
        if isinstance(items, int):
            words.append(_plural(items, "item"))
    elif isinstance(count, int):
        words.append(_plural(count, "key" if "bucket" in output else "item"))
    if isinstance(rows, int):
        requests = output.get("requests")
        sent = f" in {_plural(requests, 'request')}" if isinstance(requests, int) else ""
        words.append(f"{_plural(rows, 'row')}{sent}")
    size = output.get("bytes")
    if isinstance(size, int) and size > 0:
        words.append(_size(size))
    if "model" in output and not words:
        words.append(f"model {output['model']}")
    return f"{kind}, " + ", ".join(words) if words else kind


def _size(size: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} B"  # not reached


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
