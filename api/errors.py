"""Every error the API answers with, in one place, each with its HTTP status.

ApiError
├── Unauthorized          401  missing or wrong API key
├── InvalidItemName       400  an item name that could leave its folder
├── RunNotFound           404
├── PipelineNotFound      404  no such saved pipeline (or version)
├── ScheduleNotFound      404
├── ResultNotFound        404  no such instruction, item or content in a run
├── IdempotencyConflict   409  same Idempotency-Key, different body
├── RunNotCancelable      409  the run already ended
├── RunNotEnded           409  its artifacts cannot be removed yet
├── PipelineExists        409  POST /pipelines of a name in use
├── PipelineHasSchedules  409  DELETE of a pipeline that schedules run
├── ScheduleExists        409  a schedule name in use
├── ArtifactsRemoved      410  the run's artifacts were removed (retention, DELETE)
├── BodyTooLarge          413
├── RangeNotSatisfiable   416  a Range outside the item
├── InvalidRequest        422  not JSON, or instructions that fail validation
├── DagsterError          502  Dagster answered, but not as expected
└── DagsterUnavailable    503  Dagster cannot be reached
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import Problem


class ApiError(Exception):
    status_code = 500
    code = "error"

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.problems:
            body["problems"] = [p.as_dict() for p in self.problems]
        return body


class Unauthorized(ApiError):
    status_code = 401
    code = "unauthorized"


class RunNotFound(ApiError):
    status_code = 404
    code = "run_not_found"


class IdempotencyConflict(ApiError):
    status_code = 409
    code = "idempotency_conflict"


class RunNotCancelable(ApiError):
    status_code = 409
    code = "run_not_cancelable"


class RunNotEnded(ApiError):
    status_code = 409
    code = "run_not_ended"


class ArtifactsRemoved(ApiError):
    status_code = 410
    code = "artifacts_removed"


class BodyTooLarge(ApiError):
    status_code = 413
    code = "body_too_large"


class InvalidRequest(ApiError):
    status_code = 422
    code = "invalid_instructions"


class DagsterError(ApiError):
    status_code = 502
    code = "dagster_error"


class DagsterUnavailable(ApiError):
    status_code = 503
    code = "dagster_unavailable"


class InvalidItemName(ApiError):
    status_code = 400
    code = "invalid_item_name"


class ResultNotFound(ApiError):
    status_code = 404
    code = "result_not_found"


class RangeNotSatisfiable(ApiError):
    status_code = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, size: int):
        super().__init__(message)
        self.size = size


class PipelineNotFound(ApiError):
    status_code = 404
    code = "pipeline_not_found"


class ScheduleNotFound(ApiError):
    status_code = 404
    code = "schedule_not_found"


class PipelineExists(ApiError):
    status_code = 409
    code = "pipeline_exists"


class PipelineHasSchedules(ApiError):
    status_code = 409
    code = "pipeline_has_schedules"


class ScheduleExists(ApiError):
    status_code = 409
    code = "schedule_exists"


# The saved store's errors (orchestrator/saved/errors.py), by class name.
SAVED_ERRORS: dict[str, type[ApiError]] = {
    cls.__name__: cls
    for cls in (
        PipelineNotFound,
        ScheduleNotFound,
        PipelineExists,
        PipelineHasSchedules,
        ScheduleExists,
    )
}
