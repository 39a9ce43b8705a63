"""The warm run workers' health for /metrics: which Celery workers answer a ping.

A worker that answered once and stops answering stays listed as down (until the API
restarts), so `constellation_worker_up{kind="celery_worker"} == 0` can alert on it.
The ping is the one run monitoring makes (workers.launcher.worker_alive): a broadcast
on the run launcher's broker (DAGSTER_CELERY_BROKER_URL), which needs no code loaded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from api.metrics import WorkerHealth

log = logging.getLogger("constellation.api")

KIND = "celery_worker"
PING_TIMEOUT_S = 1.0


class CeleryWorkers:
    """A `HealthSource`: every Celery worker seen on `broker_url`, and whether it is up."""

    def __init__(self, broker_url: str, timeout: float = PING_TIMEOUT_S):
        from celery import Celery

        self.app: Any = Celery("constellation-api", broker=broker_url)
        self.app.conf.broker_connection_timeout = 2.0
        self.timeout = timeout
        self.last_seen: dict[str, float] = {}
        self.unreachable = False

    def ping(self) -> list[str]:
        """The names of the workers that answered within the timeout; none when the
        broker cannot be reached (then every worker seen before is down)."""
        try:
            replies = self.app.control.ping(timeout=self.timeout) or []
        except Exception as exc:  # kombu's OperationalError, OSError: the broker is down
            if not self.unreachable:
                log.warning("metrics: the run workers' broker cannot be reached: %s", exc)
            self.unreachable = True
            return []
        self.unreachable = False
        return sorted(name for reply in replies for name in reply)

    async def workers(self) -> list[WorkerHealth]:
        answered = set(await asyncio.to_thread(self.ping))
        now = time.time()
        for name in answered:
            self.last_seen[name] = now
        return [
            WorkerHealth(KIND, name, name in answered, seen)
            for name, seen in sorted(self.last_seen.items())
        ]

    def close(self) -> None:
        self.app.close()
