"""Run a pipeline in this Python process, without Dagster or the API.

For notebooks, scripts and tests of new operations::

    from orchestrator.local_run import run_instructions

    run = run_instructions(
        {"instructions": [{"operation": "import_from_local", "parameters": {"path": "photos"}}]},
        data_root="data",
        artifact_root="var/artifacts",
    )
    run.results.model_dump()   # the body GET /runs/{id}/results would answer
    run.values["instructions[0]"]  # the output itself, e.g. a Dataset

The instructions are validated by the same catalog and executed by the same
`run_plan` as a Dagster run, and reported by the same `orchestrator.report`
fold of the same instruction events, so their shape is the API's.
`on_event` gets every event as it happens, "progress" events included (a few a
second per long operation: `OperationContext.progress`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.catalog.registry import Catalog, Operation
from orchestrator.catalog.validation import validate
from orchestrator.catalog.values import Value
from orchestrator.context import Services
from orchestrator.events import InstructionEvent
from orchestrator.execution import run_plan
from orchestrator.operations import CATALOG
from orchestrator.report import RunDetail, RunResults
from orchestrator.settings import OrchestratorSettings


@dataclass(frozen=True)
class LocalRun:
    """A finished in-process run: what the API would show, plus the outputs themselves."""

    run_id: str
    detail: RunDetail  # the body of GET /runs/{id}
    results: RunResults  # the body of GET /runs/{id}/results
    values: dict[str, Value]  # each succeeded top-level instruction's output, by JSON path
    events: list[InstructionEvent]

    @property
    def status(self) -> str:
        """SUCCESS or FAILURE, as Dagster names a run's end."""
        return self.detail.status

    @property
    def succeeded(self) -> bool:
        return self.detail.status == "SUCCESS"

    @property
    def error(self) -> str | None:
        """The first error, as GET /runs/{id} reports it."""
        return self.detail.error


def catalog_with(operations: Iterable[Operation], base: Catalog = CATALOG) -> Catalog:
    """`base` plus `operations` (e.g. one you are writing and have not registered yet)."""
    return Catalog([*(base[name] for name in base.names), *operations])


def run_instructions(
    instructions: Any,
    *,
    data_root: Path | str | None = None,
    artifact_root: Path | str | None = None,
    operations: Iterable[Operation] = (),
    services: Services | None = None,
    on_event: Callable[[InstructionEvent], None] | None = None,
    run_id: str | None = None,
    rerun_of: str | None = None,
    use_cache: bool = True,
) -> LocalRun:
    """Validate and run `instructions` (the document POST /execute takes) in this process.

    `data_root` and `artifact_root` default to CONSTELLATION_DATA_ROOT and
    CONSTELLATION_ARTIFACT_ROOT, like a Dagster run; S3, Drive and the model
    server are configured from the environment too, unless `services` is given.
    `operations` are added to the catalog for this run. Invalid instructions
    raise `InstructionsInvalid` with every problem; a failing instruction does
    not raise: the run's `status` is FAILURE and `error` says why. `rerun_of` reuses
    what that earlier run (of the same instructions) finished; `use_cache=False` reads
    no earlier output from the cache (orchestrator/rerun.py, orchestrator/cache.py).
    """
    settings = OrchestratorSettings()
    catalog = catalog_with(operations)
    plan = validate(instructions, catalog, settings.limits)
    run_id = run_id or f"local-{uuid.uuid4().hex}"
    own_services = services is None
    if services is None:
        services = services_from_settings(settings, data_root, artifact_root)
    events: list[InstructionEvent] = []
    lock = threading.Lock()

    def record(event: InstructionEvent) -> None:
        with lock:
            events.append(event)
        if on_event is not None:
            on_event(event)

    with ExitStack() as closing:
        if own_services:  # the caller's services stay open for the caller
            closing.enter_context(services)
        outcome = run_plan(
            plan,
            catalog,
            services,
            run_id,
            emit=record,
            max_parallel=settings.max_parallel,
            rerun_of=rerun_of,
            use_cache=use_cache and settings.cache,
        )
    detail = outcome.detail
    return LocalRun(run_id, detail, detail.results(), dict(outcome.values), events)


def services_from_settings(
    settings: OrchestratorSettings,
    data_root: Path | str | None = None,
    artifact_root: Path | str | None = None,
) -> Services:
    """The services a Dagster run would get from its resources left at their defaults."""
    from orchestrator.resources import (
        ArtifactStoreResource,
        DataRootResource,
        services_from_resources,
    )

    return services_from_resources(
        settings,
        ArtifactStoreResource(root=str(artifact_root)) if artifact_root else None,
        DataRootResource(root=str(data_root)) if data_root is not None else None,
    )
