"""Request and response models of the API (what /docs shows)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

InstructionState = Literal[
    "pending", "running", "succeeded", "failed", "skipped", "canceled", "retrying"
]


class ExecuteRequest(BaseModel):
    """A pipeline: top-level instructions run in order; see GET /operations."""

    instructions: list[dict[str, Any]] = Field(
        description='Each {"operation": NAME, "parameters": {NAME: VALUE}}; a parameter '
        'value with an "operation" key is a nested instruction that runs first.',
        examples=[
            [
                {
                    "operation": "dict_to_list",
                    "parameters": {
                        "data": {
                            "operation": "import_from_local",
                            "parameters": {"path": "examples"},
                        }
                    },
                }
            ]
        ],
    )


class Problem(BaseModel):
    path: str = Field(description="JSON path of the problem, e.g. instructions[1].parameters.data")
    message: str
    expected: str | None = None
    received: str | None = None


class ErrorBody(BaseModel):
    error: str = Field(description="A stable machine-readable code.")
    message: str
    problems: list[Problem] = []


class ExecuteResponse(BaseModel):
    run_id: str
    status_url: str


class PlannedInstruction(BaseModel):
    path: str
    operation: str
    inputs: dict[str, PlannedInstruction]


class ValidateResponse(BaseModel):
    valid: bool = True
    instructions: list[PlannedInstruction]


class StepStatus(BaseModel):
    path: str
    operation: str
    status: InstructionState
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    attempts: int = 0
    error: str | None = None


class InstructionStatus(StepStatus):
    output: dict[str, Any] | None = Field(None, description="JSON summary and artifact reference.")
    steps: list[StepStatus] = Field(default_factory=list, description="Nested instructions.")


class RunSummary(BaseModel):
    run_id: str
    status: str = Field(description="Dagster's run status: QUEUED, STARTED, SUCCESS, FAILURE, ...")
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None


class RunDetail(RunSummary):
    error: str | None = None
    instructions: list[InstructionStatus]


class RunList(BaseModel):
    runs: list[RunSummary]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page.")


class InstructionResult(BaseModel):
    path: str
    operation: str
    status: InstructionState
    output: dict[str, Any] | None = None
    error: str | None = None


class RunResults(BaseModel):
    run_id: str
    status: str
    complete: bool = Field(description="True once the run has ended.")
    results: list[InstructionResult]


class CancelResponse(BaseModel):
    run_id: str
    status: str


class OperationInfo(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="JSON Schema of the parameters.")
    inputs: dict[str, list[str]] = Field(description="Parameters fed by nested instructions.")
    output: str
    cleanup: bool
    retry: dict[str, Any]


class OperationList(BaseModel):
    operations: list[OperationInfo]


class Health(BaseModel):
    status: str
    dagster_version: str | None = None
