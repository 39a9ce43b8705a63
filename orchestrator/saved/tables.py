"""The tables of saved pipelines, their versions, schedules, their ticks and idempotency keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        datetime: DateTime(timezone=True),
    }


class Pipeline(Base):
    """A name and its latest version; `deleted_at` set once deleted (versions stay, and a
    pipeline saved again under the name goes on numbering, so a run's name+version is unique)."""

    __tablename__ = "pipelines"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class PipelineVersion(Base):
    """One saved state of a pipeline: never changed once written."""

    __tablename__ = "pipeline_versions"

    pipeline: Mapped[str] = mapped_column(ForeignKey("pipelines.name"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    parameters: Mapped[dict[str, Any]]
    document: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class Schedule(Base):
    """A cron schedule of a pipeline. `id` is new for every schedule ever made, so the run keys
    of a schedule deleted and made again under the same name never collide."""

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    pipeline: Mapped[str] = mapped_column(ForeignKey("pipelines.name"))
    version: Mapped[int | None] = mapped_column(Integer)  # None: the latest at each tick
    cron: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[dict[str, Any]]
    paused: Mapped[bool]
    active_since: Mapped[datetime]  # ticks before this (creation, last resume) are never run
    created_at: Mapped[datetime]


class ScheduleTick(Base):
    """A tick the sensor could not run (its arguments no longer validate), recorded once."""

    __tablename__ = "schedule_ticks"

    schedule_id: Mapped[str] = mapped_column(
        ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True
    )
    tick_at: Mapped[datetime] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime]


class IdempotencyKey(Base):
    """An Idempotency-Key and the run it made; the unique key is what makes one run per key
    across API processes. `run_id` is None while the process that claimed it launches."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("key", name="uq_idempotency_keys_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255))
    request_sha256: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime]
