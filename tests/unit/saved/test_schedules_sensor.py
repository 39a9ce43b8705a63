"""The saved_schedules sensor with Dagster's test context: run keys, missed ticks, failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Engine, update

from orchestrator.catalog.validation import Limits
from orchestrator.operations import CATALOG
from orchestrator.saved import check_definition, make_engine, migrate, store
from orchestrator.saved.tables import Schedule
from orchestrator.schedules import ScheduledTicksInvalid, evaluate, saved_schedules
from tests.unit.saved.test_definition import GOOD

T0 = datetime(2026, 12, 3, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    url = f"sqlite:///{tmp_path}/saved.db"
    monkeypatch.setenv("CONSTELLATION_DATABASE_URL", url)
    engine = make_engine(url)
    migrate(engine)
    store.save_pipeline(engine, "thumbs", check_definition(GOOD, CATALOG))
    return engine


def every_minute(engine: Engine, since: datetime, **arguments: object) -> str:
    schedule = store.create_schedule(
        engine, name="minutely", pipeline="thumbs", version=None, cron="* * * * *",
        timezone="UTC", arguments={"folder": "photos", **arguments},
    )  # fmt: skip
    with engine.begin() as connection:
        connection.execute(update(Schedule).values(active_since=since))
    return schedule.id


def test_one_request_per_tick_with_a_stable_run_key(database: Engine) -> None:
    schedule_id = every_minute(database, T0)
    first = evaluate(database, {}, T0 + timedelta(seconds=45), CATALOG, Limits())
    [request] = first.run_requests
    assert request.run_key == f"{schedule_id}@2026-12-03T12:01:00+00:00"
    assert request.tags["constellation/pipeline-version"] == "1"
    # Evaluated again from the same cursor (the daemon restarted before saving it): same key.
    again = evaluate(database, {}, T0 + timedelta(seconds=50), CATALOG, Limits())
    assert [r.run_key for r in again.run_requests] == [request.run_key]
    later = evaluate(database, first.cursor, T0 + timedelta(seconds=55), CATALOG, Limits())
    assert later.run_requests == []


def test_after_downtime_only_the_latest_missed_tick_runs(database: Engine) -> None:
    schedule_id = every_minute(database, T0)
    outcome = evaluate(database, {}, T0 + timedelta(minutes=10), CATALOG, Limits())
    [request] = outcome.run_requests
    assert request.run_key == f"{schedule_id}@2026-12-03T12:10:00+00:00"
    assert "9 missed tick(s)" in outcome.notes[0]


def test_a_tick_whose_arguments_no_longer_validate_fails_once_and_starts_nothing(
    database: Engine,
) -> None:
    every_minute(database, datetime.now(UTC) - timedelta(minutes=2))
    changed = {**GOOD, "parameters": {**GOOD["parameters"], "width": {"type": "integer"}}}
    store.save_pipeline(database, "thumbs", check_definition(changed, CATALOG))
    context = dg.build_sensor_context(cursor=None)
    with pytest.raises(ScheduledTicksInvalid, match=r"arguments\.width: missing argument"):
        saved_schedules(context)
    [failed] = store.failed_ticks(database, store.get_schedule(database, "minutely").id)
    assert failed.error["problems"][0]["path"] == "arguments.width"
    # Reported once: the next evaluation skips that tick and moves its cursor on.
    result = saved_schedules(dg.build_sensor_context(cursor=None))
    assert isinstance(result, dg.SensorResult)
    assert not result.run_requests
    assert json.loads(result.cursor or "{}")


def test_the_sensor_is_in_the_definitions() -> None:
    from orchestrator.definitions import defs

    dg.Definitions.validate_loadable(defs)
    assert saved_schedules in list(defs.sensors or [])
    assert saved_schedules.job_name == "build_execute_job"
