"""Cron schedules of saved pipelines: create, list, read, pause, resume, delete.

The ticks are run by Dagster's daemon: the code location's `saved_schedules` sensor
reads these rows (orchestrator/schedules.py).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.body import read_json_body
from api.deps import CatalogDep, DatabaseDep, SettingsDep
from api.errors import InvalidRequest
from api.routes.pipelines import body_schema
from api.saved_schemas import ScheduleCreate, ScheduleList, SchedulePublic
from api.schemas import ErrorBody
from api.submissions import invalid
from orchestrator.catalog.validation import describe_received
from orchestrator.errors import InstructionsInvalid, Problem
from orchestrator.saved import bind, store
from orchestrator.saved.cron import check_cron, next_ticks
from orchestrator.saved.definition import check_name
from orchestrator.saved.store import ScheduleRecord

router = APIRouter(prefix="/schedules", tags=["schedules"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such schedule"}
}
CREATE_KEYS = ("name", "pipeline", "cron", "timezone", "arguments", "version", "paused")


def public(database: Any, record: ScheduleRecord) -> SchedulePublic:
    upcoming = (
        [] if record.paused else next_ticks(record.cron, record.timezone, store.now(), count=3)
    )
    return SchedulePublic.of(record, upcoming, store.failed_ticks(database, record.id, limit=5))


@router.post(
    "",
    status_code=201,
    response_model=SchedulePublic,
    openapi_extra=body_schema(ScheduleCreate),
    responses={
        404: {"model": ErrorBody, "description": "No such pipeline"},
        409: {"model": ErrorBody, "description": "The name is in use"},
        422: {"model": ErrorBody, "description": "Every problem, each with its JSON path"},
    },
)
async def create_schedule(
    request: Request,
    response: Response,
    settings: SettingsDep,
    catalog: CatalogDep,
    database: DatabaseDep,
) -> SchedulePublic:
    """Run a pipeline on a cron schedule in a timezone, with arguments (checked now and at
    every tick). After downtime only the latest missed tick runs."""
    body, _ = await read_json_body(request, settings.max_body_bytes)
    fields = check_body(body)
    record = await asyncio.to_thread(
        store.get_pipeline, database, fields["pipeline"], fields["version"]
    )
    try:
        bind(record.parameters, record.document, fields["arguments"], catalog, settings.limits)
    except InstructionsInvalid as exc:
        raise invalid(exc, "the arguments") from exc
    created = await asyncio.to_thread(lambda: store.create_schedule(database, **fields))
    response.headers["Location"] = f"/schedules/{created.name}"
    return await asyncio.to_thread(public, database, created)


def check_body(body: Any) -> dict[str, Any]:
    """The fields of a POST /schedules body, or 422 with every problem."""
    if not isinstance(body, dict):
        raise InvalidRequest(
            "the schedule is invalid",
            [Problem("$", "expected a schedule", "an object", describe_received(body))],
        )
    problems = [
        Problem(key, f"unknown key '{key}'", "one of: " + ", ".join(CREATE_KEYS), f"'{key}'")
        for key in sorted(set(body) - set(CREATE_KEYS))
    ]
    problems += check_name(body.get("name"))
    pipeline = body.get("pipeline")
    if not isinstance(pipeline, str):
        problems.append(
            Problem("pipeline", "expected a pipeline's name", "a string",
                    describe_received(pipeline))
        )  # fmt: skip
    problems += check_cron(body.get("cron"), body.get("timezone", "UTC"))
    arguments = body.get("arguments", {})
    if not isinstance(arguments, dict):
        problems.append(
            Problem("arguments", "expected an object", "{NAME: VALUE}",
                    describe_received(arguments))
        )  # fmt: skip
    version = body.get("version")
    if version is not None and (
        not isinstance(version, int) or isinstance(version, bool) or version < 1
    ):
        problems.append(
            Problem("version", "invalid version", "an integer >= 1 or null",
                    describe_received(version))
        )  # fmt: skip
    paused = body.get("paused", False)
    if not isinstance(paused, bool):
        problems.append(
            Problem("paused", "expected a boolean", "true or false", describe_received(paused))
        )
    if problems:
        raise InvalidRequest("the schedule is invalid", problems)
    return {
        "name": body["name"],
        "pipeline": pipeline,
        "version": version,
        "cron": body["cron"],
        "timezone": body.get("timezone", "UTC"),
        "arguments": arguments,
        "paused": paused,
    }


@router.get("", response_model=ScheduleList)
async def list_schedules(
    database: DatabaseDep,
    pipeline: Annotated[str | None, Query(description="Only this pipeline's.")] = None,
) -> ScheduleList:
    def read() -> ScheduleList:
        records = store.list_schedules(database, pipeline)
        return ScheduleList(schedules=[public(database, r) for r in records])

    return await asyncio.to_thread(read)


@router.get("/{name}", response_model=SchedulePublic, responses=NOT_FOUND)
async def get_schedule(name: str, database: DatabaseDep) -> SchedulePublic:
    """A schedule, its next ticks and the latest ticks that could not run."""
    return await asyncio.to_thread(lambda: public(database, store.get_schedule(database, name)))


@router.post("/{name}/pause", response_model=SchedulePublic, responses=NOT_FOUND)
async def pause_schedule(name: str, database: DatabaseDep) -> SchedulePublic:
    """Stop running ticks until resumed."""
    return await asyncio.to_thread(lambda: public(database, store.set_paused(database, name, True)))


@router.post("/{name}/resume", response_model=SchedulePublic, responses=NOT_FOUND)
async def resume_schedule(name: str, database: DatabaseDep) -> SchedulePublic:
    """Run ticks again from now on; the ticks while paused are not caught up."""
    return await asyncio.to_thread(
        lambda: public(database, store.set_paused(database, name, False))
    )


@router.delete("/{name}", status_code=204, responses=NOT_FOUND)
async def delete_schedule(name: str, database: DatabaseDep) -> Response:
    await asyncio.to_thread(store.delete_schedule, database, name)
    return Response(status_code=204)
