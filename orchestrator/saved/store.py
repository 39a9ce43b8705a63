"""Reading and writing saved pipelines, schedules, failed ticks and idempotency keys.

Plain functions over an Engine, each in its own transaction; what they return is a
frozen record, never a live ORM object.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.saved.definition import Definition, Parameter, parameters_from_dicts
from orchestrator.saved.errors import (
    PipelineExists,
    PipelineHasSchedules,
    PipelineNotFound,
    ScheduleExists,
    ScheduleNotFound,
)
from orchestrator.saved.tables import (
    IdempotencyKey,
    Pipeline,
    PipelineVersion,
    Schedule,
    ScheduleTick,
)

SAVE_ATTEMPTS = 3  # two saves of one name at once: the loser numbers again


def utc(moment: datetime) -> datetime:
    """SQLite gives back naive datetimes; every one stored here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PipelineRecord:
    name: str
    version: int
    latest_version: int
    description: str
    parameters: dict[str, Parameter]
    document: dict[str, Any]
    created_at: datetime  # of this version
    deleted: bool = False

    @property
    def parameters_dict(self) -> dict[str, Any]:
        return {name: p.as_dict() for name, p in self.parameters.items()}


@dataclass(frozen=True)
class ScheduleRecord:
    id: str
    name: str
    pipeline: str
    version: int | None
    cron: str
    timezone: str
    arguments: dict[str, Any]
    paused: bool
    active_since: datetime
    created_at: datetime


@dataclass(frozen=True)
class FailedTick:
    schedule_id: str
    tick_at: datetime
    error: dict[str, Any]


def _pipeline_record(row: PipelineVersion, head: Pipeline) -> PipelineRecord:
    return PipelineRecord(
        name=row.pipeline,
        version=row.version,
        latest_version=head.latest_version,
        description=row.description,
        parameters=parameters_from_dicts(row.parameters),
        document=row.document,
        created_at=utc(row.created_at),
        deleted=head.deleted_at is not None,
    )


def _same(row: PipelineVersion, definition: Definition) -> bool:
    return (
        row.description == definition.description
        and row.parameters == definition.parameters_dict()
        and row.document == definition.document
    )


def save_pipeline(
    engine: Engine, name: str, definition: Definition, *, create_only: bool = False
) -> tuple[PipelineRecord, bool]:
    """Save a new version (version 1 for a new name); (record, changed). An unchanged
    definition makes no version; `create_only` refuses a name that is in use."""
    for attempt in range(SAVE_ATTEMPTS):
        try:
            return _save(engine, name, definition, create_only)
        except IntegrityError:
            if attempt == SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _save(
    engine: Engine, name: str, definition: Definition, create_only: bool
) -> tuple[PipelineRecord, bool]:
    moment = now()
    with Session(engine) as session, session.begin():
        head = session.get(Pipeline, name, with_for_update=True)
        if head is not None and head.deleted_at is None:
            if create_only:
                raise PipelineExists(
                    f"a pipeline named {name!r} exists (version {head.latest_version}); "
                    f"PUT /pipelines/{name} saves a new version of it"
                )
            latest = session.get(PipelineVersion, (name, head.latest_version))
            if latest is not None and _same(latest, definition):
                return _pipeline_record(latest, head), False
        version = 1 if head is None else head.latest_version + 1
        if head is None:
            head = Pipeline(
                name=name, latest_version=1, created_at=moment, updated_at=moment, deleted_at=None
            )
            session.add(head)
            session.flush()
        else:
            head.latest_version = version
            head.updated_at = moment
            head.deleted_at = None
        row = PipelineVersion(
            pipeline=name,
            version=version,
            description=definition.description,
            parameters=definition.parameters_dict(),
            document=definition.document,
            created_at=moment,
        )
        session.add(row)
        session.flush()
        return _pipeline_record(row, head), True


def get_pipeline(engine: Engine, name: str, version: int | None = None) -> PipelineRecord:
    """The latest version, or `version`; old versions stay readable, also once deleted."""
    with Session(engine) as session:
        head = session.get(Pipeline, name)
        if head is None or (head.deleted_at is not None and version is None):
            raise PipelineNotFound(f"no pipeline named {name!r} (GET /pipelines lists them)")
        row = session.get(PipelineVersion, (name, version or head.latest_version))
        if row is None:
            raise PipelineNotFound(
                f"pipeline {name!r} has no version {version} (its versions are 1 to "
                f"{head.latest_version})"
            )
        return _pipeline_record(row, head)


def list_pipelines(engine: Engine) -> list[PipelineRecord]:
    """The latest version of every pipeline that is not deleted, by name."""
    with Session(engine) as session:
        rows = session.execute(
            select(PipelineVersion, Pipeline)
            .join(Pipeline, PipelineVersion.pipeline == Pipeline.name)
            .where(PipelineVersion.version == Pipeline.latest_version)
            .where(Pipeline.deleted_at.is_(None))
            .order_by(Pipeline.name)
        ).all()
        return [_pipeline_record(row, head) for row, head in rows]


def list_versions(engine: Engine, name: str) -> list[PipelineRecord]:
    with Session(engine) as session:
        head = session.get(Pipeline, name)
        if head is None or head.deleted_at is not None:
            raise PipelineNotFound(f"no pipeline named {name!r} (GET /pipelines lists them)")
        rows = session.scalars(
            select(PipelineVersion)
            .where(PipelineVersion.pipeline == name)
            .order_by(PipelineVersion.version)
        ).all()
        return [_pipeline_record(row, head) for row in rows]


def delete_pipeline(engine: Engine, name: str) -> None:
    """Mark it deleted; its versions stay (runs name them), its name can be saved again."""
    with Session(engine) as session, session.begin():
        head = session.get(Pipeline, name, with_for_update=True)
        if head is None or head.deleted_at is not None:
            raise PipelineNotFound(f"no pipeline named {name!r} (GET /pipelines lists them)")
        schedules = session.scalars(select(Schedule.name).where(Schedule.pipeline == name)).all()
        if schedules:
            raise PipelineHasSchedules(
                f"pipeline {name!r} is run by schedule(s) {', '.join(sorted(schedules))}: "
                "delete them first (DELETE /schedules/{name})"
            )
        head.deleted_at = now()


def _schedule_record(row: Schedule) -> ScheduleRecord:
    return ScheduleRecord(
        id=row.id,
        name=row.name,
        pipeline=row.pipeline,
        version=row.version,
        cron=row.cron,
        timezone=row.timezone,
        arguments=row.arguments,
        paused=row.paused,
        active_since=utc(row.active_since),
        created_at=utc(row.created_at),
    )


def create_schedule(
    engine: Engine,
    *,
    name: str,
    pipeline: str,
    version: int | None,
    cron: str,
    timezone: str,
    arguments: dict[str, Any],
    paused: bool = False,
) -> ScheduleRecord:
    moment = now()
    row = Schedule(
        id=str(uuid.uuid4()),
        name=name,
        pipeline=pipeline,
        version=version,
        cron=cron,
        timezone=timezone,
        arguments=arguments,
        paused=paused,
        active_since=moment,
        created_at=moment,
    )
    try:
        with Session(engine) as session, session.begin():
            session.add(row)
            session.flush()
            return _schedule_record(row)
    except IntegrityError as exc:
        raise ScheduleExists(
            f"a schedule named {name!r} exists: delete it first, or choose another name"
        ) from exc


def list_schedules(engine: Engine, pipeline: str | None = None) -> list[ScheduleRecord]:
    with Session(engine) as session:
        query = select(Schedule).order_by(Schedule.name)
        if pipeline is not None:
            query = query.where(Schedule.pipeline == pipeline)
        return [_schedule_record(row) for row in session.scalars(query).all()]


def get_schedule(engine: Engine, name: str) -> ScheduleRecord:
    with Session(engine) as session:
        row = session.scalars(select(Schedule).where(Schedule.name == name)).first()
        if row is None:
            raise ScheduleNotFound(f"no schedule named {name!r} (GET /schedules lists them)")
        return _schedule_record(row)


def set_paused(engine: Engine, name: str, paused: bool) -> ScheduleRecord:
    """Pause or resume; a resumed schedule runs the ticks after now, none missed meanwhile."""
    with Session(engine) as session, session.begin():
        row = session.scalars(
            select(Schedule).where(Schedule.name == name).with_for_update()
        ).first()
        if row is None:
            raise ScheduleNotFound(f"no schedule named {name!r} (GET /schedules lists them)")
        if row.paused and not paused:
            row.active_since = now()
        row.paused = paused
        session.flush()
        return _schedule_record(row)


def delete_schedule(engine: Engine, name: str) -> None:
    with Session(engine) as session, session.begin():
        row = session.scalars(select(Schedule).where(Schedule.name == name)).first()
        if row is None:
            raise ScheduleNotFound(f"no schedule named {name!r} (GET /schedules lists them)")
        session.execute(delete(ScheduleTick).where(ScheduleTick.schedule_id == row.id))
        session.delete(row)


def record_failed_tick(
    engine: Engine, schedule_id: str, tick_at: datetime, error: dict[str, Any]
) -> bool:
    """Record that a tick could not run; False if it was recorded before."""
    try:
        with Session(engine) as session, session.begin():
            session.add(
                ScheduleTick(
                    schedule_id=schedule_id,
                    tick_at=tick_at,
                    status="failed",
                    error=error,
                    recorded_at=now(),
                )
            )
    except IntegrityError:
        return False
    return True


def failed_ticks(engine: Engine, schedule_id: str, limit: int = 10) -> list[FailedTick]:
    """The schedule's most recent failed ticks, newest first."""
    with Session(engine) as session:
        rows = session.scalars(
            select(ScheduleTick)
            .where(ScheduleTick.schedule_id == schedule_id)
            .order_by(ScheduleTick.tick_at.desc())
            .limit(limit)
        ).all()
        return [FailedTick(r.schedule_id, utc(r.tick_at), r.error) for r in rows]


@dataclass(frozen=True)
class KeyClaim:
    """An Idempotency-Key's row: `mine` when this call inserted it."""

    mine: bool
    request_sha256: str
    run_id: str | None
    claimed_at: datetime


def claim_key(engine: Engine, key: str, digest: str) -> KeyClaim:
    """Insert the key (the unique constraint lets one caller win), or read the winner's row."""
    moment = now()
    try:
        with Session(engine) as session, session.begin():
            session.add(
                IdempotencyKey(key=key, request_sha256=digest, run_id=None, claimed_at=moment)
            )
        return KeyClaim(True, digest, None, moment)
    except IntegrityError:
        pass
    with Session(engine) as session:
        row = session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == key)).first()
        if row is None:  # released meanwhile: the caller tries again
            return KeyClaim(False, digest, None, datetime.min.replace(tzinfo=UTC))
        return KeyClaim(False, row.request_sha256, row.run_id, utc(row.claimed_at))


def record_key_run(engine: Engine, key: str, run_id: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(IdempotencyKey).where(IdempotencyKey.key == key).values(run_id=run_id)
        )


def release_key(engine: Engine, key: str) -> None:
    """Forget a claim whose launch failed, so a retry may launch."""
    with Session(engine) as session, session.begin():
        session.execute(
            delete(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .where(IdempotencyKey.run_id.is_(None))
        )


def take_over_key(engine: Engine, key: str, claimed_at: datetime) -> bool:
    """Claim a key whose claimer vanished (it claimed at `claimed_at`, never finished);
    one compare-and-set, so of two callers taking over at once one wins."""
    with Session(engine) as session, session.begin():
        result = session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == key)
            .where(IdempotencyKey.run_id.is_(None))
            .where(IdempotencyKey.claimed_at == claimed_at)
            .values(claimed_at=now())
        )
        return bool(getattr(result, "rowcount", 0) == 1)
