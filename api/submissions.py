"""Submitting a pipeline: validate it, then launch it once per Idempotency-Key."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from api.dagster import DagsterClient
from api.errors import IdempotencyConflict, InvalidRequest
from orchestrator.catalog.registry import Catalog
from orchestrator.catalog.validation import Limits, validate
from orchestrator.errors import InstructionsInvalid, Problem
from orchestrator.plan import Plan

TAG_IDEMPOTENCY_KEY = "constellation/idempotency-key"
TAG_REQUEST_SHA256 = "constellation/request-sha256"
TAG_SOURCE = "constellation/source"
MAX_IDEMPOTENCY_KEY = 255
RAW_INPUT_OP = "generate_dynamic_job_configs"


def run_config(instructions: Any) -> dict[str, Any]:
    """The run config a launchpad user would paste for the same instructions."""
    return {"ops": {RAW_INPUT_OP: {"config": {"raw_input": instructions}}}}


def raw_input_of(config: dict[str, Any]) -> Any:
    return config.get("ops", {}).get(RAW_INPUT_OP, {}).get("config", {}).get("raw_input")


def plan_or_422(document: Any, catalog: Catalog, limits: Limits) -> Plan:
    try:
        return validate(document, catalog, limits)
    except InstructionsInvalid as exc:
        count = len(exc.problems)
        raise InvalidRequest(
            f"the instructions have {count} problem{'s' if count != 1 else ''}", exc.problems
        ) from exc


def request_digest(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class KeyedLocks:
    """One asyncio.Lock per key, kept only while a task holds it or waits for it.

    A lock per Idempotency-Key kept forever would grow by one per request; here
    the last task to leave a key's lock removes it, so the table holds only the
    keys in flight. (One event loop: no lock is needed around the table itself.)
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._locks)

    def users(self, key: str) -> int:
        """Tasks holding or waiting for `key`'s lock."""
        return self._users.get(key, 0)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]


class Submitter:
    """Launches runs; a repeated Idempotency-Key returns the run it made before.

    The key lives in the run's tags, in Dagster's storage, so it survives API
    restarts; a per-key lock makes concurrent duplicates wait for the first.
    """

    def __init__(self, dagster: DagsterClient):
        self.dagster = dagster
        self._locks = KeyedLocks()

    async def submit(self, document: Any, idempotency_key: str | None) -> tuple[str, bool]:
        """(run_id, replayed): replayed is True when the key had made the run before."""
        digest = request_digest(document)
        tags = {TAG_SOURCE: "api", TAG_REQUEST_SHA256: digest}
        if idempotency_key is None:
            return await self.dagster.launch_run(run_config(document), tags), False
        check_key(idempotency_key)
        async with self._locks.hold(idempotency_key):
            earlier = await self.dagster.list_runs(
                tags={TAG_IDEMPOTENCY_KEY: idempotency_key}, limit=1
            )
            if earlier:
                if earlier[0].tags.get(TAG_REQUEST_SHA256) != digest:
                    raise IdempotencyConflict(
                        f"Idempotency-Key {idempotency_key!r} was used for different "
                        f"instructions (run {earlier[0].run_id})"
                    )
                return earlier[0].run_id, True
            tags[TAG_IDEMPOTENCY_KEY] = idempotency_key
            return await self.dagster.launch_run(run_config(document), tags), False


def check_key(key: str) -> None:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise InvalidRequest(
            "invalid Idempotency-Key header",
            [
                Problem(
                    "headers.Idempotency-Key",
                    "invalid Idempotency-Key",
                    f"1 to {MAX_IDEMPOTENCY_KEY} printable characters",
                    f"{len(key)} characters",
                )
            ],
        )
