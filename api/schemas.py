"""Request and response models of the API (what /docs shows).

The run-shaped models are the orchestrator's own (`orchestrator.report`), and
`Problem` is `orchestrator.errors.Problem`: re-exported here, one owner each.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import Problem
from orchestrator.report import (
    InstructionResult,
    InstructionState,
    InstructionStatus,
    RunDetail,
    RunResults,
    RunSummary,
    StepStatus,
)

__all__ = [
    "CancelResponse",
    "ErrorBody",
    "ExecuteRequest",
    "ExecuteResponse",
    "Health",
    "InstructionResult",
    "InstructionState",
    "InstructionStatus",
    "OperationInfo",
    "OperationList",
    "PlannedInput",
    "PlannedInstruction",
    "PlannedRef",
    "Problem",
    "RerunRequest",
    "RerunResponse",
    "RunDetail",
    "RunList",
    "RunResults",
    "RunSummary",
    "StepStatus",
    "ValidateResponse",
]


class ExecuteRequest(BaseModel):
    """A pipeline: top-level instructions run in order; see GET /operations."""

    instructions: list[dict[str, Any]] = Field(
        description='Each {"operation": NAME, "parameters": {NAME: VALUE}}; a parameter '
        'value with an "operation" key is a nested instruction that runs first. An '
        'instruction may carry "id": ID, and {"ref": ID} as a parameter value elsewhere '
        "uses its output (it runs once).",
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


class ErrorBody(BaseModel):
    error: str = Field(description="A stable machine-readable code.")
    message: str
    problems: list[Problem] = []


class ExecuteResponse(BaseModel):
    run_id: str
    status_url: str


class RerunRequest(BaseModel):
    """What a rerun runs again: `failure` (reuse what the old run finished) or `all`."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Literal["failure", "all"] = Field(
        "failure",
        alias="from",
        description="failure: reuse each instruction the old run finished whose artifacts "
        "are still there, run the rest; all: run every instruction again, without the cache.",
    )


class RerunResponse(ExecuteResponse):
    rerun_of: str = Field(description="The run this one reruns.")
    from_: Literal["failure", "all"] = Field(alias="from")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class PlannedRef(BaseModel):
    """An input used through `{"ref": ID}`: the instruction is shown where it is written."""

    ref: str = Field(description="The id of the instruction whose output it uses.")
    path: str = Field(description="Where that instruction is written.")


PlannedInput = Union["PlannedInstruction", PlannedRef]


class PlannedInstruction(BaseModel):
    path: str
    operation: str
    id: str | None = None
    inputs: dict[str, PlannedInput | list[PlannedInput]] = Field(
        description="Each parameter fed by another instruction: nested here, or a ref; "
        "a list parameter by several."
    )


class ValidateResponse(BaseModel):
    valid: bool = True
    instructions: list[PlannedInstruction]


class RunList(BaseModel):
    runs: list[RunSummary]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page.")


class CancelResponse(BaseModel):
    run_id: str
    status: str


class ArtifactsRemoval(BaseModel):
    run_id: str
    artifacts: Literal["removed", "removing"]
    removal_run_id: str | None = Field(
        description="The remove_artifacts_job run that removed them (None: removed before)."
    )


class OperationInfo(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any] = Field(description="JSON Schema of the parameters.")
    inputs: dict[str, list[str]] = Field(description="Parameters fed by nested instructions.")
    output: str
    cleanup: bool
    cached: bool = Field(False, description="A later run may reuse its output (`cached`).")
    side_effects: bool = Field(False, description="It changes something outside; never cached.")
    retry: dict[str, Any]


class PluginProblemInfo(BaseModel):
    """A plug-in file (or one operation in it) that could not join the catalog."""

    file: str
    line: int | None
    message: str


class OperationList(BaseModel):
    operations: list[OperationInfo]
    problems: list[PluginProblemInfo] = Field(
        default_factory=list,
        description="Plug-ins (CONSTELLATION_PLUGINS_DIR) that could not be loaded, and why.",
    )


class NotebookInfo(BaseModel):
    """A notebook `run_notebook` can run: its name, description and declared parameters."""

    name: str = Field(description="Its file name: run_notebook's `notebook` parameter.")
    description: str
    parameters: dict[str, Any] = Field(
        description="JSON Schema of its `parameters` cell: run_notebook's `parameters`."
    )


class NotebookList(BaseModel):
    notebooks: list[NotebookInfo]
    problems: list[PluginProblemInfo] = Field(
        default_factory=list,
        description="Notebooks (CONSTELLATION_NOTEBOOKS_DIR) that cannot be run, and why.",
    )


class Health(BaseModel):
    status: str
    dagster_version: str | None = None


class ItemPublic(BaseModel):
    """One file of an instruction's output; `url` fetches its bytes."""

    name: str
    size: int
    media_type: str
    url: str


class ItemPage(BaseModel):
    run_id: str
    instruction: str = Field(description="The instruction's JSON path.")
    operation: str
    type: str = Field(description="The output's type: dataset, list, batches, predictions, ...")
    artifact: str = Field(description="The store key of the instruction's folder.")
    items: list[ItemPublic]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page.")


class PredictionPage(BaseModel):
    run_id: str
    instruction: str
    model: str | None = None
    records: list[dict[str, Any]] = Field(description="predictions.jsonl records, in order.")
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page.")
