"""The Celery task that executes one Dagster run inside a warm worker process.

It replaces dagster-celery's `execute_job` task on the worker side (same name, so the
launcher's messages reach it) with three differences: the Dagster instance is opened once
per worker process instead of once per run; SIGINT interrupts the run (Celery's pool
ignores it), so a cancel reaches Dagster's own interrupt handling and the run's cleanup;
and the pool process may start child processes (Celery marks it daemonic, which
multiprocessing refuses children), so jobs on Dagster's multiprocess executor
(remove_artifacts_job) run too.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import signal
from typing import Any

from celery import Celery, Task
from dagster import DagsterInstance
from dagster._cli.api import _execute_run_command_body
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import unpack_value
from dagster_celery.config import TASK_EXECUTE_JOB_NAME

CANCEL_SIGNAL = "SIGINT"  # what WarmRunLauncher.terminate sends to the worker process

_instance: DagsterInstance | None = None


def worker_instance() -> DagsterInstance:
    """This process's Dagster instance (DAGSTER_HOME), opened on first use after the fork."""
    global _instance
    if _instance is None:
        _instance = DagsterInstance.get()
    return _instance


# multiprocessing's own main-process class (the module deletes its name); taken when the
# worker's parent imports this module, before the pool forks.
MAIN_PROCESS = type(multiprocessing.current_process())


def allow_children() -> None:
    """Let this pool process start processes with multiprocessing.

    billiard made its own (daemonic) process object multiprocessing's current process;
    multiprocessing then refuses children, and cannot pickle billiard's authkey for
    them. A main-process object of multiprocessing's own, in its place, is what a plain
    `python` process has; billiard keeps its own object (tests/unit/workers pin this).
    """
    if type(multiprocessing.current_process()) is not MAIN_PROCESS:
        multiprocessing.process._current_process = MAIN_PROCESS()  # type: ignore[attr-defined]


def execute_run(packed_args: Any) -> int:
    """Execute the run `packed_args` (dagster's ExecuteRunArgs) to its end; 1 if it failed."""
    args = unpack_value(packed_args, as_type=ExecuteRunArgs)
    allow_children()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _execute_run_command_body(
            run_id=args.run_id,
            instance=worker_instance(),
            write_stream_fn=lambda _event: None,
            set_exit_code_on_failure=bool(args.set_exit_code_on_failure),
        )
    finally:
        signal.signal(signal.SIGINT, previous)


def register(app: Celery) -> Task:
    """The run task on `app`, under dagster-celery's task name."""

    @app.task(name=TASK_EXECUTE_JOB_NAME, track_started=True)  # type: ignore[untyped-decorator]
    def execute_job(execute_job_args_packed: Any) -> int:
        return execute_run(execute_job_args_packed)

    return execute_job
