"""The FastAPI application: `create_app()` builds it, the lifespan opens the Dagster client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.celery_workers import CeleryWorkers
from api.config import Settings
from api.dagster import DagsterClient
from api.deps import require_api_key
from api.errors import SAVED_ERRORS, ApiError, InvalidRequest, RangeNotSatisfiable
from api.metrics import ERROR_CODE_STATE, Metrics, SubmissionCounter, follow_dagster
from api.openapi import add_request_schemas
from api.routes import catalog, execute, health, metrics, pipelines, results, runs, schedules
from api.submissions import Submitter
from orchestrator.artifacts import ArtifactStore
from orchestrator.errors import Problem
from orchestrator.operations import CATALOG
from orchestrator.saved import SavedError, make_engine, migrate

log = logging.getLogger("constellation.api")


def create_app(settings: Settings | None = None, artifacts: ArtifactStore | None = None) -> FastAPI:
    """The app; `artifacts` is the store results contents are read from (default: the
    store CONSTELLATION_ARTIFACT_STORE names, as the run workers see it)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Few connections, and requests wait for one: under load they queue here
        # instead of piling onto the Dagster webserver and timing out there.
        timeout = httpx.Timeout(settings.dagster_timeout_s, connect=3.0, pool=None)
        limits = httpx.Limits(max_connections=settings.dagster_max_connections)
        database = make_engine(settings.database_url.get_secret_value())
        await asyncio.to_thread(migrate, database)  # saved pipelines, schedules, keys
        app.state.database = database
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as http:
            app.state.dagster = DagsterClient(
                http,
                settings.dagster_url,
                settings.dagster_location,
                settings.dagster_repository,
                settings.dagster_job,
            )
            app.state.submitter = Submitter(app.state.dagster, database)
            broker = settings.celery_broker_url
            workers = [CeleryWorkers(broker.get_secret_value())] if broker else []
            try:
                async with follow_dagster(
                    app.state.metrics, app.state.dagster, settings.metrics_poll_s, workers
                ):
                    yield
            finally:
                database.dispose()
                for source in workers:
                    source.close()

    app = FastAPI(
        title="Constellation",
        summary="Pipelines for data and machine learning, as nested JSON instructions, on Dagster.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.catalog = CATALOG
    app.state.artifacts = artifacts  # None: made from the environment on first use
    app.state.metrics = Metrics()
    app.add_middleware(SubmissionCounter, metrics=app.state.metrics)
    build_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document, with the request body generated from the catalog."""
        if app.openapi_schema is None:
            app.openapi_schema = add_request_schemas(build_openapi(), app.state.catalog)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        setattr(request.state, ERROR_CODE_STATE, exc.code)  # for SubmissionCounter
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
        if exc.status_code == 503:
            headers["Retry-After"] = "5"
        if isinstance(exc, RangeNotSatisfiable):
            headers["Content-Range"] = f"bytes */{exc.size}"
        return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(SavedError)
    async def saved_error(request: Request, exc: SavedError) -> JSONResponse:
        return await api_error(request, SAVED_ERRORS[type(exc).__name__](exc.message))

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            Problem(
                ".".join(str(p) for p in error["loc"]),
                error["msg"],
                None,
                repr(error.get("input"))[:80],
            )
            for error in exc.errors()
        ]
        return await api_error(request, InvalidRequest("the request is invalid", problems))

    protected = [Depends(require_api_key)]
    app.include_router(health.router)
    app.include_router(execute.router, dependencies=protected)
    app.include_router(runs.router, dependencies=protected)
    app.include_router(results.router, dependencies=protected)
    app.include_router(catalog.router, dependencies=protected)
    app.include_router(metrics.router, dependencies=[] if settings.metrics_public else protected)
    app.include_router(pipelines.router, dependencies=protected)
    app.include_router(schedules.router, dependencies=protected)
    return app
