"""Liveness (the process) and readiness (Dagster reachable, job loaded)."""

from importlib.metadata import version

from fastapi import APIRouter, Request

from api.deps import DagsterDep
from api.schemas import Health

router = APIRouter(tags=["health"])

LIBRARY_VERSION = version("dagster")  # what this API was installed with (constraints.txt)


@router.get("/healthz", response_model=Health)
async def healthz(request: Request) -> Health:
    """The API process is up. Without asking Dagster, `dagster_version` is the version
    /readyz last saw on the webserver, or before any check the Dagster library's."""
    known = getattr(request.app.state, "dagster_version", None)
    return Health(status="ok", dagster_version=known or LIBRARY_VERSION)


@router.get(
    "/readyz", response_model=Health, responses={503: {"description": "Dagster unreachable"}}
)
async def readyz(request: Request, dagster: DagsterDep) -> Health:
    """Dagster is reachable and the pipeline job is loaded."""
    request.app.state.dagster_version = await dagster.check_ready()
    return Health(status="ready", dagster_version=request.app.state.dagster_version)
