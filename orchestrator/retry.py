"""Retries of one request to an outside system: the one backoff rule and Retry-After parser.

A connector (Google Drive, the model server, a broken S3 download) sends a request
again when it failed on a network fault, a timeout, 429 or a 5xx, up to
`max_attempts` in all. Before attempt n + 1 it waits `backoff_s * 2 ** (n - 1)`
seconds, or what the server's Retry-After header asks (seconds or an HTTP date);
either way at most `max_backoff_s`. When the attempts run out the connector
raises `RetriesExhausted`, which says the number of attempts once; the executor
does not run the operation again for it (an operation's `RetryPolicy` is for
faults of the whole operation, such as a download whose checksum is wrong).

S3 requests go through botocore's own retries (standard mode, the same
`max_attempts`): it retries each part of a multipart upload and each page of a
listing on its own, which no wrapper around the whole call could do.

Usage, with an injected `sleep` so tests assert the delays without waiting::

    retrying = Retrying(settings, sleep=sleeps.append)
    answer = retrying.call(one_attempt)  # one_attempt raises Retryable to be retried
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from orchestrator.errors import RetriesExhausted

T = TypeVar("T")


class RetrySettings(Protocol):
    """What a connector's resource says about retries (each resource has these fields)."""

    @property
    def max_attempts(self) -> int: ...

    @property
    def backoff_s(self) -> float: ...

    @property
    def max_backoff_s(self) -> float: ...


class Retryable(Exception):
    """Raised by one attempt whose fault may pass: `str()` says what failed, and where.

    Raise it `from` the library's exception; `retry_after` is the server's own
    wish in seconds (from `retry_after_seconds`), None when it gave none.
    """

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def backoff(attempt: int, first_s: float, cap_s: float) -> float:
    """The wait after failed attempt `attempt` (1, 2, ...): `first_s` doubling, at most `cap_s`."""
    return min(first_s * 2.0 ** (attempt - 1), cap_s)


def after_attempts(attempts: int) -> str:
    """The suffix every error that gave up carries: `(after 3 attempts)`."""
    return f"(after {attempts} attempt{'' if attempts == 1 else 's'})"


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's delay in seconds (a number or an HTTP date); None if absent or bad."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an HTTP date is GMT; the parser leaves '-0000' naive
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0)


@dataclass(frozen=True)
class Retrying:
    """Runs one attempt after another until one succeeds or the attempts run out."""

    settings: RetrySettings
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt `attempt`: the server's wish, else the backoff."""
        cap = self.settings.max_backoff_s
        if retry_after is not None:
            return min(retry_after, cap)
        return backoff(attempt, self.settings.backoff_s, cap)

    def call(self, attempt: Callable[[], T]) -> T:
        """`attempt()`'s result; a `Retryable` it raises is retried, anything else propagates.

        When the last attempt fails too: `RetriesExhausted` with the fault's message
        and the number of attempts, `from` the library's exception.
        """
        attempts = max(1, self.settings.max_attempts)
        for number in range(1, attempts + 1):
            try:
                return attempt()
            except Retryable as fault:
                if number == attempts:
                    message = f"{fault} {after_attempts(number)}"
                    raise RetriesExhausted(message) from fault.__cause__ or fault
                self.sleep(self.delay(number, fault.retry_after))
        raise AssertionError("unreachable: at least one attempt")  # pragma: no cover
