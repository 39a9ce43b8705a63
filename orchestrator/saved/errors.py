"""Every error of the saved-pipeline store, in one place (the API maps each to a status).

SavedError
├── PipelineNotFound       no such pipeline, or no such version of it
├── PipelineExists         POST of a name that is taken
├── PipelineHasSchedules   DELETE of a pipeline that schedules still run
├── ScheduleNotFound
└── ScheduleExists         a schedule name that is taken
"""

from __future__ import annotations


class SavedError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PipelineNotFound(SavedError):
    pass


class PipelineExists(SavedError):
    pass


class PipelineHasSchedules(SavedError):
    pass


class ScheduleNotFound(SavedError):
    pass


class ScheduleExists(SavedError):
    pass
