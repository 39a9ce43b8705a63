"""Reading, listing and canceling runs."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import CatalogDep, DagsterDep, SettingsDep
from api.run_views import RunReports, summary_of
from api.schemas import CancelResponse, ErrorBody, RunDetail, RunList, RunResults

router = APIRouter(prefix="/runs", tags=["runs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such run"}
}
RunStatus = Literal[
    "QUEUED", "NOT_STARTED", "STARTING", "STARTED", "SUCCESS", "FAILURE", "CANCELING", "CANCELED"
]


@router.get("", response_model=RunList)
async def list_runs(
    dagster: DagsterDep,
    status: Annotated[list[RunStatus] | None, Query(description="Filter by status.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> RunList:
    """Recent pipeline runs, newest first."""
    records = await dagster.list_runs(statuses=list(status or []), limit=limit, cursor=cursor)
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


@router.get("/{run_id}/results", response_model=RunResults, responses=NOT_FOUND)
async def get_results(run_id: str, reports: RunReportsDep) -> RunResults:
    """Each top-level instruction's output: a JSON summary plus artifact references."""
    return (await reports.detail(run_id)).results()


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
