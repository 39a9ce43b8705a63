"""Artifact retention: which runs' artifacts to remove, removing them, and the marker.

A run's artifacts are removed once it ended more than CONSTELLATION_ARTIFACT_RETENTION_DAYS
ago (the daily `artifact_retention` schedule) or when asked (`DELETE /runs/{id}/artifacts`);
never while the run is not in a terminal state; the cache entries it recorded go first.
Removal tags the run in the Dagster instance (`constellation/artifacts=removed`), which
every reader of a run can see whatever the store, so the results endpoints answer 410 Gone
rather than a missing file.

Dagster is imported inside the functions: the API imports `artifacts_removed` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from orchestrator.errors import OperationError
from orchestrator.report import TERMINAL_RUN_STATUSES

if TYPE_CHECKING:
    from dagster import DagsterInstance

ARTIFACTS_TAG = "constellation/artifacts"
REMOVED = "removed"
RETENTION_ENV = "CONSTELLATION_ARTIFACT_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30.0
EXECUTE_JOB = "build_execute_job"  # the only job whose runs have artifacts
DAY_S = 86_400.0
PAGE = 500


class Tagged(Protocol):
    """A run as Dagster (`DagsterRun`) or the API (`RunRecord`) holds it."""

    @property
    def tags(self) -> Mapping[str, str]: ...


class RunArtifacts(Protocol):
    """What retention needs of the artifact store."""

    def delete_run(self, run_id: str) -> None: ...


def artifacts_removed(run: Tagged) -> bool:
    """Whether the run's artifacts were removed (by retention or on request)."""
    return run.tags.get(ARTIFACTS_TAG) == REMOVED


def expired_runs(instance: DagsterInstance, retention_days: float, now: float) -> list[str]:
    """Ids of the pipeline runs that ended before `now - retention_days` and still have
    their artifacts, oldest first. Runs not in a terminal state are never listed."""
    import dagster as dg

    cutoff = now - retention_days * DAY_S
    filters = dg.RunsFilter(
        job_name=EXECUTE_JOB,
        statuses=[dg.DagsterRunStatus(status) for status in sorted(TERMINAL_RUN_STATUSES)],
        created_before=datetime.fromtimestamp(cutoff, UTC),  # it ended later than it began
    )
    expired: list[str] = []
    cursor = None
    while True:
        records = instance.get_run_records(filters, limit=PAGE, cursor=cursor)
        for record in records:
            ended = record.end_time
            if ended is None:  # failed before it started: its last update is its end
                ended = record.update_timestamp.timestamp()
            if ended < cutoff and not artifacts_removed(record.dagster_run):
                expired.append(record.dagster_run.run_id)
        if len(records) < PAGE:
            return expired[::-1]
        cursor = records[-1].dagster_run.run_id


def remove_run_artifacts(instance: DagsterInstance, store: RunArtifacts, run_id: str) -> None:
    """Remove one ended pipeline run's artifacts and tag the run; OperationError for a run
    that does not exist, is not a pipeline run, or has not ended."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise OperationError(f"no run with id {run_id!r}")
    if run.job_name != EXECUTE_JOB:
        raise OperationError(f"run {run_id!r} is a {run.job_name} run, which has no artifacts")
    if run.status.value not in TERMINAL_RUN_STATUSES:
        raise OperationError(
            f"run {run_id!r} is {run.status.value}: its artifacts are removed only once it ended"
        )
    forget_cached(store, run_id)
    store.delete_run(run_id)
    instance.add_run_tags(run_id, {ARTIFACTS_TAG: REMOVED})


def forget_cached(store: RunArtifacts, run_id: str) -> None:
    """Cache entries go with the artifacts: drop those the run recorded (orchestrator/cache.py),
    so no later run is offered its outputs. A hit checks the artifact anyway."""
    from orchestrator.artifacts import ArtifactStore
    from orchestrator.cache import CacheIndex

    if isinstance(store, ArtifactStore):
        CacheIndex(store).forget_run(run_id)
