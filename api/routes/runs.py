"""Reading, listing and canceling runs."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import CatalogDep, DagsterDep, SettingsDep
from api.run_views import build_detail, build_results, plan_of, summary_fields
from api.schemas import CancelResponse, ErrorBody, RunDetail, RunList, RunResults, RunSummary

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
    runs = [RunSummary(**summary_fields(r)) for r in records]
    return RunList(runs=runs, next_cursor=runs[-1].run_id if len(runs) == limit else None)


@router.get("/{run_id}", response_model=RunDetail, responses=NOT_FOUND)
async def get_run(
    run_id: str, dagster: DagsterDep, catalog: CatalogDep, settings: SettingsDep
) -> RunDetail:
    """The run's status and each instruction's status, timings and error."""
    record = await dagster.get_run(run_id)
    lines = await dagster.run_logs(run_id)
    return build_detail(record, lines, plan_of(record, catalog, settings.limits))


@router.get("/{run_id}/results", response_model=RunResults, responses=NOT_FOUND)
async def get_results(
    run_id: str, dagster: DagsterDep, catalog: CatalogDep, settings: SettingsDep
) -> RunResults:
    """Each top-level instruction's output: a JSON summary plus artifact references."""
    return build_results(await get_run(run_id, dagster, catalog, settings))


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
