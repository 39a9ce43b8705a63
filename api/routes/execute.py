"""Submitting and validating pipelines."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from api.body import read_json_body
from api.deps import CatalogDep, SettingsDep, SubmitterDep
from api.schemas import ErrorBody, ExecuteRequest, ExecuteResponse, ValidateResponse
from api.submissions import plan_or_422

router = APIRouter(tags=["pipelines"])

BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": ExecuteRequest.model_json_schema()}},
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "Body over the size limit"},
    422: {"model": ErrorBody, "description": "Every problem, each with its JSON path"},
    503: {"model": ErrorBody, "description": "Dagster cannot be reached; nothing was started"},
}


@router.post(
    "/execute",
    status_code=201,
    response_model=ExecuteResponse,
    openapi_extra=BODY,
    responses=ERRORS,
)
async def execute(
    request: Request,
    response: Response,
    settings: SettingsDep,
    catalog: CatalogDep,
    submitter: SubmitterDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ExecuteResponse:
    """Validate the instructions and start a run. A repeated Idempotency-Key returns
    the run it started before (header `Idempotent-Replayed: true`)."""
    document, _ = await read_json_body(request, settings.max_body_bytes)
    plan_or_422(document, catalog, settings.limits)
    run_id, replayed = await submitter.submit(document, idempotency_key)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    response.headers["Location"] = f"/runs/{run_id}"
    return ExecuteResponse(run_id=run_id, status_url=f"/runs/{run_id}")


@router.post("/validate", response_model=ValidateResponse, openapi_extra=BODY, responses=ERRORS)
async def validate_instructions(
    request: Request, settings: SettingsDep, catalog: CatalogDep
) -> ValidateResponse:
    """Validate and plan the instructions without running anything."""
    document, _ = await read_json_body(request, settings.max_body_bytes)
    plan = plan_or_422(document, catalog, settings.limits)
    return ValidateResponse.model_validate({"instructions": plan.describe()})
