"""Which runs retention picks, on a real (ephemeral) Dagster instance with a fixed clock."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest

from orchestrator.artifacts import LocalStore
from orchestrator.errors import OperationError
from orchestrator.jobs import build_execute_job
from orchestrator.retention import (
    EXECUTE_JOB,
    artifacts_removed,
    expired_runs,
    remove_run_artifacts,
)


def add_run(
    instance: dg.DagsterInstance, status: dg.DagsterRunStatus, job: str = EXECUTE_JOB
) -> str:
    run = instance.add_run(dg.DagsterRun(job_name=job, status=status))
    return run.run_id


def test_the_execute_job_is_the_one_retention_looks_at() -> None:
    assert build_execute_job.name == EXECUTE_JOB


def test_only_ended_pipeline_runs_past_retention_are_picked() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        ended = add_run(instance, dg.DagsterRunStatus.SUCCESS)
        failed = add_run(instance, dg.DagsterRunStatus.FAILURE)
        running = add_run(instance, dg.DagsterRunStatus.STARTED)
        starting = add_run(instance, dg.DagsterRunStatus.STARTING)
        other_job = add_run(instance, dg.DagsterRunStatus.SUCCESS, job="remove_artifacts_job")
        instance.add_run_tags(failed, {"constellation/artifacts": "removed"})

        later = expired_runs(instance, retention_days=1, now=time.time() + 2 * 86400)
        now = expired_runs(instance, retention_days=1, now=time.time())

    assert later == [ended]  # not the removed one, the running, starting or other job's
    assert now == []
    assert {running, starting, other_job}.isdisjoint(later)


def test_a_running_run_is_never_removed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        running = add_run(instance, dg.DagsterRunStatus.STARTED)
        store.run_folder(running).mkdir()
        with pytest.raises(OperationError, match=r"is STARTED: its artifacts are removed only"):
            remove_run_artifacts(instance, store, running)
        assert store.run_folder(running).is_dir()
        assert not artifacts_removed(instance.get_run_by_id(running))  # type: ignore[arg-type]


def test_removal_deletes_the_folder_and_tags_the_run(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with dg.DagsterInstance.ephemeral() as instance:
        ended = add_run(instance, dg.DagsterRunStatus.CANCELED)
        (store.run_folder(ended) / "000-x").mkdir(parents=True)
        remove_run_artifacts(instance, store, ended)
        assert not store.run_folder(ended).exists()
        assert artifacts_removed(instance.get_run_by_id(ended))  # type: ignore[arg-type]
