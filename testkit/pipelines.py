"""Run instructions the way a Dagster run does: validate with the catalog, then `run_plan`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.context import Services
from orchestrator.events import InstructionEvent
from orchestrator.execution import RunOutcome, run_plan
from orchestrator.operations import CATALOG


def run_pipeline(
    instructions: list[dict[str, Any]],
    artifacts: Path,
    events: list[InstructionEvent] | None = None,
    **connectors: Any,
) -> RunOutcome:
    """Validate and execute `instructions` with the given connectors (s3=..., drive=...)."""
    plan = validate({"instructions": instructions}, CATALOG)
    services = Services(artifacts=LocalStore(artifacts), **connectors)
    sink = events if events is not None else []
    return run_plan(plan, CATALOG, services, "test-run", emit=sink.append)
