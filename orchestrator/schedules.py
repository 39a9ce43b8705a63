"""The `saved_schedules` sensor: Dagster's daemon runs the ticks of the saved schedules.

Every 15 s the daemon evaluates it in the code location; it reads the schedules from
the saved-pipeline database and asks for one run per due tick. Exactly one run per
tick: each has the run key `SCHEDULE-ID@TICK-TIME`, and Dagster never launches a
sensor's run key twice, so a tick evaluated again after a daemon restart (the cursor
not yet saved) makes no second run.

Missed ticks: after downtime (daemon or code location down, schedule due several
times since its last tick) only the latest missed tick runs; the earlier ones are
logged as skipped. Ticks while a schedule was paused, or before it was made, never run.

A tick whose arguments no longer validate against its pipeline (a new version needs
another argument, say) starts no run: it is recorded in the database (GET
/schedules/{name} shows it with every problem's JSON path) and this evaluation
fails, so the Dagster UI shows the sensor tick red with the same problems. The next
evaluation goes on with the other schedules (their runs wait at most one interval).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy import Engine

from orchestrator.catalog.registry import Catalog
from orchestrator.catalog.validation import Limits
from orchestrator.errors import ConstellationError, InstructionsInvalid
from orchestrator.jobs import build_execute_job, generate_dynamic_job_configs
from orchestrator.operations import CATALOG
from orchestrator.saved import (
    DatabaseNotReady,
    bind,
    check_current,
    database_url,
    shared_engine,
    store,
)
from orchestrator.saved.cron import ticks_between
from orchestrator.saved.errors import PipelineNotFound
from orchestrator.saved.tags import TAG_SCHEDULE, TAG_SCHEDULED_AT, TAG_SOURCE, pipeline_tags
from orchestrator.settings import TreeLimits

SENSOR_NAME = "saved_schedules"
INTERVAL_S = 15


class ScheduledTicksInvalid(ConstellationError):
    """Ticks whose arguments no longer validate: no run was started for them."""


@dataclass
class Evaluation:
    run_requests: list[dg.RunRequest] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # new ones, recorded in the database
    notes: list[str] = field(default_factory=list)
    cursor: dict[str, float] = field(default_factory=dict)


def run_key(schedule_id: str, tick: datetime) -> str:
    return f"{schedule_id}@{tick.astimezone(UTC).isoformat()}"


def evaluate(
    engine: Engine, cursor: dict[str, float], now: datetime, catalog: Catalog, limits: Limits
) -> Evaluation:
    """The run requests of every tick due in (cursor, now], latest missed tick only."""
    result = Evaluation()
    for schedule in store.list_schedules(engine):
        last = cursor.get(schedule.id)
        if schedule.paused:
            if last is not None:
                result.cursor[schedule.id] = last
            continue
        since = max(last or 0.0, schedule.active_since.timestamp())
        due = ticks_between(
            schedule.cron, schedule.timezone, datetime.fromtimestamp(since, UTC), now
        )
        if not due:
            result.cursor[schedule.id] = since
            continue
        tick = due[-1]
        result.cursor[schedule.id] = tick.timestamp()
        if len(due) > 1:
            result.notes.append(
                f"schedule {schedule.name!r}: {len(due) - 1} missed tick(s) from "
                f"{due[0].isoformat()} skipped; only the latest, {tick.isoformat()}, runs"
            )
        at = tick.astimezone(UTC)
        if any(f.tick_at == at for f in store.failed_ticks(engine, schedule.id)):
            continue  # failed and reported before
        try:
            pipeline = store.get_pipeline(engine, schedule.pipeline, schedule.version)
            document = bind(
                pipeline.parameters, pipeline.document, schedule.arguments, catalog, limits
            )
        except (InstructionsInvalid, PipelineNotFound) as exc:
            problems = getattr(exc, "problems", [])
            message = (
                f"schedule {schedule.name!r}, tick {tick.isoformat()}: no run started, its "
                f"arguments do not validate against pipeline {schedule.pipeline!r}"
                + (f" version {schedule.version}" if schedule.version else " (latest)")
                + ": "
                + ("; ".join(str(p) for p in problems) if problems else str(exc))
            )
            error = {"message": message, "problems": [p.as_dict() for p in problems]}
            if store.record_failed_tick(engine, schedule.id, at, error):
                result.failures.append(message)
            continue
        result.run_requests.append(
            dg.RunRequest(
                run_key=run_key(schedule.id, tick),
                run_config={
                    "ops": {generate_dynamic_job_configs.name: {"config": {"raw_input": document}}}
                },
                tags={
                    **pipeline_tags(pipeline.name, pipeline.version),
                    TAG_SCHEDULE: schedule.name,
                    TAG_SCHEDULED_AT: tick.isoformat(),
                    TAG_SOURCE: "schedule",
                },
            )
        )
    return result


@dg.sensor(
    name=SENSOR_NAME,
    job_name=build_execute_job.name,  # by name: a `job=` copy warns (BetaWarning, owners)
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs the saved pipelines' cron schedules (POST /schedules, `constellation "
    "schedules`): one run per tick (run key SCHEDULE@TIME); after downtime only the latest "
    "missed tick; a tick whose arguments no longer validate fails here and starts no run.",
)
def saved_schedules(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    engine = shared_engine(database_url())
    try:
        check_current(engine)
    except DatabaseNotReady as exc:
        return dg.SensorResult(skip_reason=str(exc), cursor=context.cursor)
    cursor: dict[str, Any] = json.loads(context.cursor) if context.cursor else {}
    outcome = evaluate(engine, cursor, datetime.now(UTC), CATALOG, TreeLimits().limits)
    for note in outcome.notes:
        context.log.info(note)
    if outcome.failures:
        for failure in outcome.failures:
            context.log.error(failure)
        raise ScheduledTicksInvalid("\n".join(outcome.failures))
    if not outcome.run_requests:
        return dg.SensorResult(
            skip_reason="no schedule is due", cursor=json.dumps(outcome.cursor, sort_keys=True)
        )
    return dg.SensorResult(
        run_requests=outcome.run_requests, cursor=json.dumps(outcome.cursor, sort_keys=True)
    )
