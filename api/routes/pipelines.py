"""Saved pipelines: save (a new version per change), read, list, delete, and run."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from api.body import read_json_body
from api.deps import CatalogDep, DatabaseDep, SettingsDep, SubmitterDep
from api.errors import InvalidRequest
from api.saved_schemas import (
    PipelineList,
    PipelinePublic,
    PipelineRunRequest,
    PipelineRunResponse,
    PipelineSave,
    VersionList,
    VersionSummary,
)
from api.schemas import ErrorBody
from api.submissions import invalid
from orchestrator.errors import InstructionsInvalid, Problem
from orchestrator.saved import Definition, bind, check_definition, store
from orchestrator.saved.definition import check_name
from orchestrator.saved.tags import TAG_SOURCE, pipeline_tags

router = APIRouter(prefix="/pipelines", tags=["saved pipelines"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such pipeline (or version)"}
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "Every problem, each with its JSON path"}
}


def body_schema(model: type[Any]) -> dict[str, Any]:
    """Documents a body the route reads itself (to report problems with JSON paths); the
    model's own definitions are inlined, so no `$ref` points outside the document."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(definitions[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline(schema)}},
        }
    }


def _definition(
    body: Any, settings: SettingsDep, catalog: CatalogDep, path_name: str | None
) -> Definition:
    try:
        definition = check_definition(
            body, catalog, settings.limits, name_required=path_name is None
        )
    except InstructionsInvalid as exc:
        raise invalid(exc, "the pipeline") from exc
    if path_name is not None and body.get("name", path_name) != path_name:
        raise InvalidRequest(
            "the pipeline's name differs from the one in the URL",
            [
                Problem(
                    "name", "a different name than the URL's", repr(path_name), repr(body["name"])
                )
            ],
        )
    return definition


@router.post(
    "",
    status_code=201,
    response_model=PipelinePublic,
    openapi_extra=body_schema(PipelineSave),
    responses={**INVALID, 409: {"model": ErrorBody, "description": "The name is in use"}},
)
async def create_pipeline(
    request: Request, response: Response, settings: SettingsDep, catalog: CatalogDep,
    database: DatabaseDep,
) -> PipelinePublic:  # fmt: skip
    """Save a new pipeline as version 1 (checked: every problem with its JSON path)."""
    body, _ = await read_json_body(request, settings.max_body_bytes)
    definition = _definition(body, settings, catalog, None)
    record, _ = await asyncio.to_thread(
        store.save_pipeline, database, body["name"], definition, create_only=True
    )
    response.headers["Location"] = f"/pipelines/{record.name}"
    return PipelinePublic.of(record)


@router.get("", response_model=PipelineList)
async def list_pipelines(database: DatabaseDep) -> PipelineList:
    """Every saved pipeline, at its latest version."""
    records = await asyncio.to_thread(store.list_pipelines, database)
    return PipelineList(pipelines=[PipelinePublic.of(r) for r in records])


@router.get("/{name}", response_model=PipelinePublic, responses=NOT_FOUND)
async def get_pipeline(
    name: str,
    database: DatabaseDep,
    version: Annotated[int | None, Query(ge=1, description="Default: the latest.")] = None,
) -> PipelinePublic:
    """A pipeline at its latest version, or at `version` (older versions stay readable)."""
    return PipelinePublic.of(await asyncio.to_thread(store.get_pipeline, database, name, version))


@router.get("/{name}/versions", response_model=VersionList, responses=NOT_FOUND)
async def list_versions(name: str, database: DatabaseDep) -> VersionList:
    records = await asyncio.to_thread(store.list_versions, database, name)
    return VersionList(
        name=name,
        versions=[
            VersionSummary(version=r.version, description=r.description, created_at=r.created_at)
            for r in records
        ],
    )


@router.put(
    "/{name}",
    response_model=PipelinePublic,
    openapi_extra=body_schema(PipelineSave),
    responses={**INVALID, 201: {"model": PipelinePublic, "description": "Created"}},
)
async def save_pipeline(
    name: str, request: Request, response: Response, settings: SettingsDep,
    catalog: CatalogDep, database: DatabaseDep,
) -> PipelinePublic:  # fmt: skip
    """Save a new version (or the first: 201). An unchanged pipeline keeps its version."""
    problems = check_name(name, "path.name")
    if problems:
        raise InvalidRequest("invalid pipeline name", problems)
    body, _ = await read_json_body(request, settings.max_body_bytes)
    definition = _definition(body, settings, catalog, name)
    record, changed = await asyncio.to_thread(store.save_pipeline, database, name, definition)
    if changed and record.version == 1:
        response.status_code = 201
    return PipelinePublic.of(record)


@router.delete(
    "/{name}",
    status_code=204,
    responses={**NOT_FOUND, 409: {"model": ErrorBody, "description": "Schedules run it"}},
)
async def delete_pipeline(name: str, database: DatabaseDep) -> Response:
    """Delete a pipeline: its runs keep naming their version; saving the name again goes
    on numbering versions after the last one."""
    await asyncio.to_thread(store.delete_pipeline, database, name)
    return Response(status_code=204)


@router.post(
    "/{name}/runs",
    status_code=201,
    response_model=PipelineRunResponse,
    openapi_extra=body_schema(PipelineRunRequest),
    responses={
        **NOT_FOUND,
        **INVALID,
        409: {"model": ErrorBody, "description": "The Idempotency-Key was used otherwise"},
        503: {"model": ErrorBody, "description": "Dagster cannot be reached; nothing started"},
    },
)
async def run_pipeline(
    name: str,
    request: Request,
    response: Response,
    settings: SettingsDep,
    catalog: CatalogDep,
    database: DatabaseDep,
    submitter: SubmitterDep,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="A retry with the same key and body "
               "returns the first run."),
    ] = None,
) -> PipelineRunResponse:  # fmt: skip
    """Run a saved pipeline with arguments: the run is tagged with its name and version."""
    body, _ = await read_json_body(request, settings.max_body_bytes)
    arguments, version = run_request(body)
    record = await asyncio.to_thread(store.get_pipeline, database, name, version)
    try:
        document = bind(record.parameters, record.document, arguments, catalog, settings.limits)
    except InstructionsInvalid as exc:
        raise invalid(exc, "the arguments") from exc
    tags = {**pipeline_tags(name, record.version), TAG_SOURCE: "pipeline"}
    request_key = {"pipeline": name, "version": version, "arguments": arguments}
    run_id, replayed = await submitter.submit(document, idempotency_key, tags, request_key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/runs/{run_id}"
    return PipelineRunResponse(
        run_id=run_id, status_url=f"/runs/{run_id}", pipeline=name, version=record.version
    )


def run_request(body: Any) -> tuple[Any, int | None]:
    """(arguments, version) of a run request, or 422 with the paths of its problems."""
    if body is None:
        return {}, None
    if not isinstance(body, dict):
        raise InvalidRequest(
            "the run request is invalid",
            [Problem("$", "expected an object", '{"arguments": {...}, "version": N}', repr(body))],
        )
    problems = [
        Problem(key, f"unknown key '{key}'", '"arguments" or "version"', f"'{key}'")
        for key in sorted(set(body) - {"arguments", "version"})
    ]
    version = body.get("version")
    if version is not None and (
        not isinstance(version, int) or isinstance(version, bool) or version < 1
    ):
        problems.append(Problem("version", "invalid version", "an integer >= 1", repr(version)))
    if problems:
        raise InvalidRequest("the run request is invalid", problems)
    return body.get("arguments", {}), version
