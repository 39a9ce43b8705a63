"""orchestrator/retry.py: the one backoff rule and Retry-After parser of the connectors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from orchestrator.catalog.registry import RetryPolicy
from orchestrator.errors import RetriesExhausted, TransientError
from orchestrator.retry import Retryable, Retrying, backoff, retry_after_seconds


@dataclass(frozen=True)
class Settings:
    max_attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n, 0.5, 3.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert [RetryPolicy(backoff_seconds=1.0).delay(n) for n in (1, 2, 5)] == [1.0, 2.0, 10.0]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("", None), ("3", 3.0), ("1.5", 1.5), ("-2", 0.0), ("soon", None)],
)
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 18 < (retry_after_seconds(later) or 0) <= 20
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=20), usegmt=True)
    assert retry_after_seconds(past) == 0.0


def test_attempts_until_one_succeeds_waiting_the_backoff_or_the_servers_wish() -> None:
    sleeps: list[float] = []
    faults = [Retryable("busy"), Retryable("busy", retry_after=7.0), Retryable("x", 99.0)]

    def attempt() -> str:
        if faults:
            raise faults.pop(0)
        return "done"

    assert Retrying(Settings(), sleeps.append).call(attempt) == "done"
    assert sleeps == [0.5, 7.0, 30.0]  # the backoff; Retry-After; Retry-After capped


def test_the_last_failure_says_the_attempts_once_and_keeps_the_cause() -> None:
    sleeps: list[float] = []
    calls = 0

    def attempt() -> None:
        nonlocal calls
        calls += 1
        try:
            raise ConnectionResetError("reset by peer")
        except ConnectionResetError as exc:
            raise Retryable("cannot read x: connection reset") from exc

    with pytest.raises(RetriesExhausted) as caught:
        Retrying(Settings(max_attempts=3), sleeps.append).call(attempt)
    assert str(caught.value) == "cannot read x: connection reset (after 3 attempts)"
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert not isinstance(caught.value, TransientError)  # the executor does not run it again
    assert calls == 3 and sleeps == [0.5, 1.0]


def test_other_errors_are_not_retried() -> None:
    sleeps: list[float] = []

    def attempt() -> None:
        raise TransientError("checksum mismatch")

    with pytest.raises(TransientError, match="checksum mismatch"):
        Retrying(Settings(), sleeps.append).call(attempt)
    assert sleeps == []


def test_one_attempt_is_said_in_the_singular() -> None:
    def attempt() -> None:
        raise Retryable("down")

    with pytest.raises(RetriesExhausted, match=r"^down \(after 1 attempt\)$"):
        Retrying(Settings(max_attempts=1), lambda s: None).call(attempt)
