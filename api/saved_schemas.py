"""Request and response models of saved pipelines and schedules (what /docs shows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas import ExecuteResponse, Problem
from orchestrator.saved.store import FailedTick, PipelineRecord, ScheduleRecord

ParameterType = Literal["string", "integer", "number", "boolean", "array", "object"]


class ParameterDeclaration(BaseModel):
    type: ParameterType
    default: Any = Field(None, description="Used when a run gives no argument; none: required.")
    description: str = ""


class PipelineSave(BaseModel):
    """A pipeline to save: instructions whose values may be {"param": NAME} placeholders."""

    name: str = Field(pattern="^[A-Za-z0-9_-]{1,64}$", description="Optional in PUT.")
    description: str = ""
    parameters: dict[str, ParameterDeclaration] = Field(default_factory=dict)
    instructions: list[dict[str, Any]] = Field(
        description='As POST /execute takes them; any value may be {"param": NAME}.'
    )


class PipelinePublic(BaseModel):
    name: str
    version: int = Field(description="This version; every save of a change makes a new one.")
    latest_version: int
    description: str
    parameters: dict[str, dict[str, Any]]
    instructions: list[Any]
    created_at: datetime = Field(description="When this version was saved.")

    @classmethod
    def of(cls, record: PipelineRecord) -> PipelinePublic:
        return cls(
            name=record.name,
            version=record.version,
            latest_version=record.latest_version,
            description=record.description,
            parameters=record.parameters_dict,
            instructions=record.document["instructions"],
            created_at=record.created_at,
        )


class PipelineList(BaseModel):
    pipelines: list[PipelinePublic]


class VersionSummary(BaseModel):
    version: int
    description: str
    created_at: datetime


class VersionList(BaseModel):
    name: str
    versions: list[VersionSummary]


class PipelineRunRequest(BaseModel):
    arguments: dict[str, Any] = Field(default_factory=dict, description="NAME: VALUE.")
    version: int | None = Field(None, ge=1, description="Default: the latest version.")


class PipelineRunResponse(ExecuteResponse):
    pipeline: str
    version: int


class ScheduleCreate(BaseModel):
    name: str = Field(pattern="^[A-Za-z0-9_-]{1,64}$")
    pipeline: str
    cron: str = Field(examples=["0 3 * * *"])
    timezone: str = Field("UTC", examples=["Europe/Paris"])
    arguments: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(None, ge=1, description="Pin a version; default: the latest.")
    paused: bool = False


class TickFailure(BaseModel):
    tick_at: datetime
    message: str
    problems: list[Problem] = []


class SchedulePublic(BaseModel):
    name: str
    pipeline: str
    version: int | None = Field(description="None: the pipeline's latest version at each tick.")
    cron: str
    timezone: str
    arguments: dict[str, Any]
    status: Literal["running", "paused"]
    created_at: datetime
    next_ticks: list[datetime] = Field(description="The next few tick times (none if paused).")
    failed_ticks: list[TickFailure] = Field(
        description="The latest ticks that did not run: their arguments no longer validated."
    )

    @classmethod
    def of(
        cls, record: ScheduleRecord, next_ticks: list[datetime], failed: list[FailedTick]
    ) -> SchedulePublic:
        return cls(
            name=record.name,
            pipeline=record.pipeline,
            version=record.version,
            cron=record.cron,
            timezone=record.timezone,
            arguments=record.arguments,
            status="paused" if record.paused else "running",
            created_at=record.created_at,
            next_ticks=next_ticks,
            failed_ticks=[
                TickFailure(
                    tick_at=f.tick_at,
                    message=str(f.error.get("message", "")),
                    problems=[Problem.model_validate(p) for p in f.error.get("problems", [])],
                )
                for f in failed
            ],
        )


class ScheduleList(BaseModel):
    schedules: list[SchedulePublic]
