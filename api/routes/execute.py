"""Submitting and validating pipelines."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response

from api.body import read_json_body
from api.deps import CatalogDep, SettingsDep, SubmitterDep
from api.openapi import request_body
from api.schemas import ErrorBody, ExecuteResponse, ValidateResponse
from api.submissions import MAX_IDEMPOTENCY_KEY, plan_or_422

router = APIRouter(tags=["pipelines"])

BODY = request_body()  # the schema itself is generated from the catalog (api/openapi.py)
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or wrong API key"},
    413: {"model": ErrorBody, "description": "Body over the size limit"},
    422: {"model": ErrorBody, "description": "Every problem, each with its JSON path"},
}
EXECUTE_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    409: {"model": ErrorBody, "description": "The Idempotency-Key was used for other instructions"},
    502: {"model": ErrorBody, "description": "Dagster answered, but not as expected"},
    503: {"model": ErrorBody, "description": "Dagster cannot be reached; nothing was started"},
}


@router.post(
    "/execute",
    status_code=201,
    response_model=ExecuteResponse,
    openapi_extra=BODY,
    responses=EXECUTE_ERRORS,
)
async def execute(
    request: Request,
    response: Response,
    settings: SettingsDep,
    catalog: CatalogDep,
    submitter: SubmitterDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Printable characters; a retry with the same key and body "
            "returns the first run.",
            # Documented only: Submitter checks it, with its own message.
            json_schema_extra={
                "minLength": 1,
                "maxLength": MAX_IDEMPOTENCY_KEY,
                "pattern": "^[\\x20-\\x7e]+$",
            },
        ),
    ] = None,
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
