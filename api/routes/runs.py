"""Reading, listing and canceling runs."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.contents import check_artifacts_kept
from api.deps import CatalogDep, DagsterDep, SettingsDep
from api.errors import ApiError, DagsterError, InvalidRequest, RunNotEnded
from api.reruns import rerun
from api.run_views import RunReports, StreamEvent, order_of, summary_of
from api.schemas import (
    ArtifactsRemoval,
    CancelResponse,
    ErrorBody,
    RerunRequest,
    RerunResponse,
    RunDetail,
    RunList,
    RunResults,
)
from orchestrator.report import TERMINAL_RUN_STATUSES
from orchestrator.retention import artifacts_removed
from orchestrator.saved.tags import TAG_PIPELINE

router = APIRouter(prefix="/runs", tags=["runs"])

KEEP_ALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream
RETRY_MS = 1000  # how long an EventSource waits before it reconnects
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such run"}
}
GONE: dict[int | str, dict[str, Any]] = {
    410: {"model": ErrorBody, "description": "The run's artifacts were removed"}
}
REMOVAL_JOB = "remove_artifacts_job"
REMOVAL_WAIT_S = 120.0  # DELETE answers 202 if the removal run takes longer
REMOVAL_POLL_S = 0.5
RunStatus = Literal[
    "QUEUED", "NOT_STARTED", "STARTING", "STARTED", "SUCCESS", "FAILURE", "CANCELING", "CANCELED"
]


@router.get("", response_model=RunList)
async def list_runs(
    dagster: DagsterDep,
    status: Annotated[list[RunStatus] | None, Query(description="Filter by status.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    pipeline: Annotated[str | None, Query(description="Only runs of this saved pipeline.")] = None,
) -> RunList:
    """Recent pipeline runs, newest first."""
    tags = {TAG_PIPELINE: pipeline} if pipeline else None
    records = await dagster.list_runs(
        statuses=list(status or []), tags=tags, limit=limit, cursor=cursor
    )
    runs = [summary_of(r) for r in records]
    return RunList(runs=runs, next_cursor=runs[-1].run_id if len(runs) == limit else None)


def run_reports(
    request: Request, dagster: DagsterDep, catalog: CatalogDep, settings: SettingsDep
) -> RunReports:
    """The app's one `RunReports` (made on first use, again if the Dagster client changed)."""
    state = request.app.state
    reports: RunReports | None = getattr(state, "run_reports", None)
    if reports is None or reports.dagster is not dagster:
        reports = state.run_reports = RunReports(dagster, catalog, settings.limits)
    return reports


RunReportsDep = Annotated[RunReports, Depends(run_reports)]


@router.get("/{run_id}", response_model=RunDetail, responses=NOT_FOUND)
async def get_run(run_id: str, reports: RunReportsDep) -> Response:
    """The run's status and each instruction's status, timings and error."""
    return Response(await reports.detail_json(run_id), media_type="application/json")


@router.get("/{run_id}/results", response_model=RunResults, responses={**NOT_FOUND, **GONE})
async def get_results(run_id: str, reports: RunReportsDep) -> RunResults:
    """Each top-level instruction's output: a JSON summary plus artifact references."""
    check_artifacts_kept(await reports.check(run_id))
    return (await reports.detail(run_id)).results()


@router.delete(
    "/{run_id}/artifacts",
    response_model=ArtifactsRemoval,
    responses={
        **NOT_FOUND,
        202: {"model": ArtifactsRemoval, "description": "Removal still under way"},
        409: {"model": ErrorBody, "description": "The run has not ended"},
    },
)
async def delete_artifacts(
    run_id: str, dagster: DagsterDep, response: Response
) -> ArtifactsRemoval:
    """Remove an ended run's artifacts now (its record stays); its results then answer 410.

    The removal runs as a `remove_artifacts_job` run where the pipeline runs, so it reaches
    the artifact store in every deployment; this waits for it (202 if it takes long)."""
    record = await dagster.get_run(run_id)
    if artifacts_removed(record):
        return ArtifactsRemoval(run_id=run_id, artifacts="removed", removal_run_id=None)
    if record.status not in TERMINAL_RUN_STATUSES:
        raise RunNotEnded(
            f"run {run_id!r} is {record.status}: its artifacts can be removed once it ended "
            "(cancel it first with POST /runs/{id}/cancel)"
        )
    removal = await dagster.launch_run(
        {"ops": {"remove_artifacts": {"config": {"run_ids": [run_id]}}}},
        {"constellation/removes-artifacts-of": run_id, "dagster/priority": "100"},
        job=REMOVAL_JOB,
    )
    deadline = time.monotonic() + REMOVAL_WAIT_S
    while time.monotonic() < deadline:
        status = (await dagster.get_run(removal)).status
        if status == "SUCCESS":
            return ArtifactsRemoval(run_id=run_id, artifacts="removed", removal_run_id=removal)
        if status in TERMINAL_RUN_STATUSES:
            raise DagsterError(
                f"removing the artifacts of run {run_id!r} failed: run {removal!r} "
                f"({REMOVAL_JOB}) ended {status}; its log in the Dagster UI says why"
            )
        await asyncio.sleep(REMOVAL_POLL_S)
    response.status_code = 202
    return ArtifactsRemoval(run_id=run_id, artifacts="removing", removal_run_id=removal)


EVENTS_DESCRIPTION = """Server-Sent Events (`text/event-stream`) of the run as it goes:

- `run`: a status change, `{"run_id", "status", "at"}` (QUEUED, STARTING, STARTED, CANCELING);
- `instruction`: an instruction `started`, `succeeded` (with its output summary), `cached`
  (an earlier run's output reused, `cached_from` names that run), `failed`, `skipped` or
  `retrying`: `{"kind", "path", "operation", "root", "at", "duration_s", "error", "output",
  ...}`;
- `progress`: how far a long operation is, `{"path", "operation", "done", "total", "unit"}`,
  a few a second at most;
- `end`: the terminal status and the run's error, `{"run_id", "status", "error"}`; then the
  stream closes.

Every event has an `id`; reconnect with `Last-Event-ID: <id>` to continue after it without
duplicates or gaps (an EventSource does it by itself). A run that already ended replays its
events and ends. Comment lines (`: keep-alive`) come every 15 s while nothing happens."""


@router.get(
    "/{run_id}/events",
    responses={
        **NOT_FOUND,
        200: {"content": {"text/event-stream": {}}, "description": "The run's events"},
    },
    response_class=StreamingResponse,
    description=EVENTS_DESCRIPTION,
)
async def run_events(
    run_id: str,
    reports: RunReportsDep,
    last_event_id: Annotated[
        str | None, Header(description="The id of the last event received, to resume after it.")
    ] = None,
) -> StreamingResponse:
    """The run's status changes, instruction events and progress, live (Server-Sent Events)."""
    if last_event_id is not None:
        try:
            order_of(last_event_id)
        except ValueError as exc:
            raise InvalidRequest(
                f"Last-Event-ID {last_event_id!r} is not an id this stream sent "
                "(expected a number such as '12', or '12.end')"
            ) from exc
    await reports.check(run_id)  # an unknown run: 404 like the other /runs routes
    return StreamingResponse(
        sse(reports.stream(run_id, last_event_id)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def sse(events: AsyncIterator[StreamEvent | None]) -> AsyncIterator[bytes]:
    """The wire format: `retry:` first, each event as id/event/data lines and a blank
    line, a keep-alive comment when quiet; an error after the start as an `error` event."""
    yield f"retry: {RETRY_MS}\n\n".encode()
    written = time.monotonic()
    try:
        async for event in events:
            if event is not None:
                yield event.encode()
                written = time.monotonic()
            elif time.monotonic() - written >= KEEP_ALIVE_S:
                yield b": keep-alive\n\n"
                written = time.monotonic()
    except ApiError as exc:  # e.g. Dagster went away mid-stream: say so, then close
        yield StreamEvent("", "error", exc.body()).encode()


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    response_model=CancelResponse,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "The run already ended"}},
)
async def cancel_run(run_id: str, dagster: DagsterDep) -> CancelResponse:
    """Ask Dagster to stop the run; cleanup operations still run."""
    await dagster.terminate_run(run_id)
    record = await dagster.get_run(run_id)
    return CancelResponse(run_id=run_id, status=record.status)


@router.post(
    "/{run_id}/rerun",
    status_code=201,
    response_model=RerunResponse,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorBody, "description": "The run has not ended"},
        422: {"model": ErrorBody, "description": "Its instructions no longer validate"},
        503: {"model": ErrorBody, "description": "Dagster cannot be reached; nothing started"},
    },
)
async def rerun_run(
    run_id: str,
    response: Response,
    dagster: DagsterDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    body: RerunRequest | None = None,
) -> RerunResponse:
    """Run an ended run's instructions again as a new run tagged `constellation/rerun-of`.
    From failure (the default) each instruction the old run finished whose artifacts are
    still there is reused (`cached`); `{"from": "all"}` runs every one again. Operations
    with side effects (deploy_model, delete_model, export_to_s3) always run again."""
    mode = (body or RerunRequest()).from_
    new_run = await rerun(dagster, catalog, settings.limits, run_id, mode)
    response.headers["Location"] = f"/runs/{new_run}"
    return RerunResponse(run_id=new_run, status_url=f"/runs/{new_run}", rerun_of=run_id, from_=mode)
