"""remove_artifacts_job and its daily schedule: artifact retention inside Dagster.

The job runs where the pipeline runs do (the code location), so it reaches the artifact
store and the instance in every topology; `DELETE /runs/{id}/artifacts` launches it for
one run, the `artifact_retention` schedule every day for the runs past retention.
"""

import time

import dagster as dg
from pydantic import Field

from orchestrator.resources import ArtifactStoreResource
from orchestrator.retention import (
    DEFAULT_RETENTION_DAYS,
    RETENTION_ENV,
    expired_runs,
    remove_run_artifacts,
)
from orchestrator.settings import env_field


class RetentionConfig(dg.Config):
    run_ids: list[str] = Field(
        default_factory=list,
        description="Remove these ended runs' artifacts now; empty: every run past retention.",
    )
    retention_days: float = env_field(
        RETENTION_ENV,
        DEFAULT_RETENTION_DAYS,
        description="Runs that ended more than this many days ago lose their artifacts.",
        gt=0,
    )
    now: float | None = Field(
        None, description="Unix time to judge ages against instead of the clock (tests)."
    )


@dg.op
def remove_artifacts(
    context: dg.OpExecutionContext, config: RetentionConfig, artifact_store: ArtifactStoreResource
) -> dg.Output[None]:
    """Remove the artifacts of the given runs, or of every run past retention."""
    run_ids = config.run_ids or expired_runs(
        context.instance, config.retention_days, config.now or time.time()
    )
    store = artifact_store.store()
    for run_id in run_ids:
        remove_run_artifacts(context.instance, store, run_id)
        context.log.info(f"removed the artifacts of run {run_id}")
    return dg.Output(None, metadata={"removed": len(run_ids), "runs": ", ".join(run_ids)})


@dg.job(
    description="Remove run artifacts: of the runs given, or of every pipeline run that "
    f"ended more than ${RETENTION_ENV} days ago. Never a run that has not ended."
)
def remove_artifacts_job() -> None:
    remove_artifacts()


artifact_retention = dg.ScheduleDefinition(
    name="artifact_retention",
    job=remove_artifacts_job,
    cron_schedule="30 3 * * *",  # daily, at night
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Daily: remove the artifacts of runs that ended more than ${RETENTION_ENV} "
    f"days ago (default {DEFAULT_RETENTION_DAYS:g}). Stop it here to keep artifacts forever.",
)
