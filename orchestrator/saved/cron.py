"""Cron in a timezone, with Dagster's own cron semantics (what its schedules use).

Dagster is imported when first needed, so the API pays for it only on its first
schedule request.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from orchestrator.catalog.validation import close_matches, describe_received
from orchestrator.errors import Problem

CRON_WORDS = "5 fields: minute hour day-of-month month day-of-week, e.g. '0 3 * * *'"


def check_cron(cron: object, timezone: object) -> list[Problem]:
    from dagster._utils.schedules import is_valid_cron_string

    problems = []
    if not isinstance(cron, str) or not is_valid_cron_string(cron):
        problems.append(
            Problem("cron", "invalid cron expression", CRON_WORDS, describe_received(cron))
        )
    if not isinstance(timezone, str) or not _zone_exists(timezone):
        hint = (
            close_matches(timezone, sorted(available_timezones()))
            if isinstance(timezone, str)
            else ""
        )
        problems.append(
            Problem(
                "timezone",
                f"unknown timezone{hint}",
                "an IANA timezone such as 'UTC' or 'Europe/Paris'",
                describe_received(timezone),
            )
        )
    return problems


def _zone_exists(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def ticks(cron: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """The schedule's tick times strictly after `after`, ascending."""
    from dagster._utils.schedules import cron_string_iterator

    for tick in cron_string_iterator(after.timestamp(), cron, timezone):
        if tick.timestamp() > after.timestamp():
            yield tick


def ticks_between(cron: str, timezone: str, after: datetime, until: datetime) -> list[datetime]:
    """Tick times in (after, until]."""
    return list(itertools.takewhile(lambda t: t <= until, ticks(cron, timezone, after)))


def next_ticks(cron: str, timezone: str, after: datetime, count: int = 3) -> list[datetime]:
    return list(itertools.islice(ticks(cron, timezone, after), count))
