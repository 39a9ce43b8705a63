"""WarmRunLauncher's answers to run monitoring and to cancel, on an in-memory Celery."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from billiard.exceptions import WorkerLostError
from dagster import DagsterInstance
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.test_utils import create_run_for_test
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

from workers.launcher import WarmRunLauncher


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture
def launcher(instance: DagsterInstance) -> WarmRunLauncher:
    launcher = WarmRunLauncher(
        default_queue="dagster", broker="memory://", backend="cache+memory://"
    )
    launcher.register_instance(instance)
    return launcher


def run_with_task(instance: DagsterInstance, status: DagsterRunStatus) -> tuple[DagsterRun, str]:
    """A run in `status` with a Celery task id of its own (the memory backend is global)."""
    task_id = uuid.uuid4().hex
    run = create_run_for_test(
        instance,
        job_name="build_execute_job",
        status=status,
        tags={DAGSTER_CELERY_TASK_ID_TAG: task_id},
    )
    return run, task_id


def test_a_dead_pool_process_is_named_as_the_cause(
    instance: DagsterInstance, launcher: WarmRunLauncher
) -> None:
    run, task_id = run_with_task(instance, DagsterRunStatus.STARTED)
    lost = WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 0.")
    launcher.celery.backend.mark_as_failure(task_id, lost)

    health = launcher.check_run_worker_health(run)

    assert health.status == WorkerStatus.FAILED
    assert "WorkerLostError: Worker exited prematurely: signal 9 (SIGKILL)" in health.msg


def test_a_started_run_whose_worker_does_not_answer_fails(
    instance: DagsterInstance, launcher: WarmRunLauncher
) -> None:
    run, task_id = run_with_task(instance, DagsterRunStatus.STARTED)
    info = {"pid": 4242, "hostname": "worker-9@nowhere"}
    launcher.celery.backend.store_result(task_id, info, "STARTED")

    health = launcher.check_run_worker_health(run)

    assert health.status == WorkerStatus.FAILED
    assert health.msg == "Celery worker worker-9@nowhere no longer answers a ping."


def test_a_finished_task_is_success(instance: DagsterInstance, launcher: WarmRunLauncher) -> None:
    run, task_id = run_with_task(instance, DagsterRunStatus.STARTED)
    launcher.celery.backend.mark_as_done(task_id, 0)
    assert launcher.check_run_worker_health(run).status == WorkerStatus.SUCCESS


def test_cancel_of_a_run_no_worker_took_yet_is_immediate(
    instance: DagsterInstance, launcher: WarmRunLauncher
) -> None:
    run, _ = run_with_task(instance, DagsterRunStatus.STARTING)

    assert launcher.terminate(run.run_id)

    after = instance.get_run_by_id(run.run_id)
    assert after is not None and after.status == DagsterRunStatus.CANCELED


def test_cancel_of_a_finished_run_is_refused(
    instance: DagsterInstance, launcher: WarmRunLauncher
) -> None:
    run = create_run_for_test(instance, job_name="j", status=DagsterRunStatus.SUCCESS)
    assert launcher.terminate(run.run_id) is False
