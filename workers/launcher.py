"""WarmRunLauncher: dagster-celery's CeleryRunLauncher, with cancel and health made exact.

What it changes, and why:
- `launch_run` sends the task by name (the worker registers it, workers/tasks.py)
  instead of registering dagster-celery's task function again for every run.
- `terminate` reports the run CANCELING, then interrupts its worker process with SIGINT
  (`tasks.CANCEL_SIGNAL`): Dagster's interrupt handling ends the run CANCELED and the
  operations clean up. Celery's own `revoke(terminate=True)` sends SIGTERM, which kills
  the process before Dagster can say anything. A run still waiting in the broker is
  revoked (no worker will start it) and marked CANCELED at once.
- `check_run_worker_health` (run monitoring's question) names the cause: the exception a
  dead pool process left in the result backend (e.g. "WorkerLostError: Worker exited
  prematurely: signal 9 (SIGKILL)"), or that the worker holding a STARTED run no longer
  answers a ping (the whole worker was killed).
"""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult
from dagster import _check as check
from dagster._core.launcher import CheckRunHealthResult, LaunchRunContext, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import pack_value
from dagster_celery.config import TASK_EXECUTE_JOB_NAME
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

from workers.tasks import CANCEL_SIGNAL

PING_TIMEOUT_S = 2.0
NOT_STARTED = {"PENDING", "RECEIVED", "RETRY"}


def worker_alive(app: Any, hostname: str, timeout: float = PING_TIMEOUT_S) -> bool:
    """Whether the Celery worker `hostname` answers a ping (the health check /metrics can use)."""
    replies = app.control.ping(destination=[hostname], timeout=timeout)
    return any(hostname in reply for reply in replies)


class WarmRunLauncher(CeleryRunLauncher):
    """Runs as Celery tasks on warm workers (`celery -A workers.app worker`)."""

    def result(self, run: DagsterRun) -> AsyncResult | None:
        task_id = run.tags.get(DAGSTER_CELERY_TASK_ID_TAG)
        return None if task_id is None else self.celery.AsyncResult(task_id)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        args = ExecuteRunArgs(
            job_origin=check.not_none(run.job_code_origin),
            run_id=run.run_id,
            instance_ref=self._instance.get_ref(),
            set_exit_code_on_failure=True,
        )
        signature = self.celery.signature(
            TASK_EXECUTE_JOB_NAME, kwargs={"execute_job_args_packed": pack_value(args)}
        )
        self._launch_celery_task_run(
            run=run,
            task_signature=signature,
            routing_key=TASK_EXECUTE_JOB_NAME,
        )

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        result = self.result(run)
        if result is None:  # not sent to the broker yet: nothing will run it
            self._instance.report_run_canceled(run)
            return True
        waiting = result.state in NOT_STARTED
        result.revoke(terminate=True, signal=CANCEL_SIGNAL)
        if waiting:
            self._instance.report_run_canceled(run, message="Canceled before a worker took it.")
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        result = self.result(run)
        if result is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "The run has no Celery task.")
        state = result.state
        if state == "SUCCESS":
            return CheckRunHealthResult(WorkerStatus.SUCCESS)
        if state == "FAILURE":
            error = result.result
            cause = f"{type(error).__name__}: {error}" if error is not None else "unknown"
            return CheckRunHealthResult(
                WorkerStatus.FAILED, f"Celery task failed on {result.worker}: {cause}"
            )
        if state == "STARTED":  # the worker stored {"pid": ..., "hostname": ...}
            info = result.info if isinstance(result.info, dict) else {}
            hostname = info.get("hostname")
            if hostname and not worker_alive(self.celery, hostname):
                return CheckRunHealthResult(
                    WorkerStatus.FAILED, f"Celery worker {hostname} no longer answers a ping."
                )
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        if state == "REVOKED":
            return CheckRunHealthResult(WorkerStatus.FAILED, "The Celery task was revoked.")
        return CheckRunHealthResult(WorkerStatus.UNKNOWN, f"Celery task state {state}.")
