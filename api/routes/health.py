"""Liveness (the process) and readiness (Dagster reachable, job loaded)."""

from fastapi import APIRouter

from api.deps import DagsterDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The API process is up."""
    return Health(status="ok")


@router.get(
    "/readyz", response_model=Health, responses={503: {"description": "Dagster unreachable"}}
)
async def readyz(dagster: DagsterDep) -> Health:
    """Dagster is reachable and the pipeline job is loaded."""
    return Health(status="ready", dagster_version=await dagster.check_ready())
