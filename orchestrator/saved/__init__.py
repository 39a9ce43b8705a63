"""Saved, versioned, parameterised pipelines and their schedules, in a SQL database.

Shared by the API (which saves them and applies the migrations) and the code
location's `saved_schedules` sensor (which reads the schedules and runs their ticks).
"""

from orchestrator.saved.database import (
    DatabaseNotReady,
    check_current,
    database_url,
    make_engine,
    migrate,
    shared_engine,
)
from orchestrator.saved.definition import Definition, Parameter, bind, check_definition
from orchestrator.saved.errors import (
    PipelineExists,
    PipelineHasSchedules,
    PipelineNotFound,
    SavedError,
    ScheduleExists,
    ScheduleNotFound,
)
from orchestrator.saved.store import PipelineRecord, ScheduleRecord

__all__ = [
    "DatabaseNotReady",
    "Definition",
    "Parameter",
    "PipelineExists",
    "PipelineHasSchedules",
    "PipelineNotFound",
    "PipelineRecord",
    "SavedError",
    "ScheduleExists",
    "ScheduleNotFound",
    "ScheduleRecord",
    "bind",
    "check_current",
    "check_definition",
    "database_url",
    "make_engine",
    "migrate",
    "shared_engine",
]
