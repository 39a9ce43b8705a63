"""Why a run failed, read from Dagster's event log when no instruction says."""

from __future__ import annotations

from api.dagster import LogLine
from api.run_views import run_failure


def line(kind: str, message: str, error: str | None = None) -> LogLine:
    return LogLine(message=message, timestamp=0.0, step_key=None, kind=kind, error=error)


def test_a_step_error_comes_first() -> None:
    lines = [
        line("ExecutionStepFailureEvent", "step failed", error="instructions[0].operation: ..."),
        line("RunFailureEvent", "Execution of run for build_execute_job failed."),
    ]
    assert run_failure(lines) == "instructions[0].operation: ..."


def test_a_killed_worker_is_named_rather_than_the_generic_failure() -> None:
    lines = [
        line("EngineEvent", "Executing steps in process (pid: 1)"),
        line(
            "EngineEvent",
            "[DagsterApiServer] Run execution process for r was terminated by signal 9",
        ),
        line(
            "RunFailureEvent",
            "This run has been marked as failed from outside the execution context.",
        ),
    ]
    assert run_failure(lines).endswith("terminated by signal 9")


def test_the_first_canceling_reason_explains_a_forced_failure() -> None:
    lines = [
        line("RunCancelingEvent", "Canceling due to exceeding maximum runtime of 60 seconds."),
        line("RunCancelingEvent", "Sending run termination request."),
        line("EngineEvent", "Sending run termination request."),
        line("RunFailureEvent", "This job is being forcibly marked as failed. ..."),
    ]
    assert run_failure(lines) == "Canceling due to exceeding maximum runtime of 60 seconds."


def test_a_specific_run_failure_message_is_kept() -> None:
    lines = [line("RunFailureEvent", "Exceeded maximum runtime of 60 seconds.")]
    assert run_failure(lines) == "Exceeded maximum runtime of 60 seconds."
    assert run_failure([]) == "the run failed"
