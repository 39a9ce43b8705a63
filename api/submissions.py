"""Submitting a pipeline: validate it, then launch it once per Idempotency-Key.

The key is claimed in the database under a unique constraint before the launch, so of
concurrent duplicates reaching several API processes exactly one launches; the others
wait for its run id (or take over a claim whose process vanished, after checking
Dagster for a run tagged with the key). Within one process, duplicates queue on a
per-key lock instead of polling the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from api.dagster import DagsterClient
from api.errors import DagsterUnavailable, IdempotencyConflict, InvalidRequest
from orchestrator.catalog.registry import Catalog
from orchestrator.catalog.validation import Limits, validate
from orchestrator.errors import InstructionsInvalid, Problem
from orchestrator.plan import Plan
from orchestrator.saved import store
from orchestrator.saved.tags import TAG_SOURCE

TAG_IDEMPOTENCY_KEY = "constellation/idempotency-key"
TAG_REQUEST_SHA256 = "constellation/request-sha256"
MAX_IDEMPOTENCY_KEY = 255
RAW_INPUT_OP = "generate_dynamic_job_configs"
CLAIM_POLL_S = 0.05
# A claim older than this whose run id never came: its process died mid-launch.
CLAIM_LEASE = timedelta(seconds=120)


def run_config(instructions: Any) -> dict[str, Any]:
    """The run config a launchpad user would paste for the same instructions."""
    return {"ops": {RAW_INPUT_OP: {"config": {"raw_input": instructions}}}}


def raw_input_of(config: dict[str, Any]) -> Any:
    return config.get("ops", {}).get(RAW_INPUT_OP, {}).get("config", {}).get("raw_input")


def invalid(exc: InstructionsInvalid, what: str = "the instructions") -> InvalidRequest:
    count = len(exc.problems)
    return InvalidRequest(f"{what} have {count} problem{'s' if count != 1 else ''}", exc.problems)


def plan_or_422(document: Any, catalog: Catalog, limits: Limits) -> Plan:
    try:
        return validate(document, catalog, limits)
    except InstructionsInvalid as exc:
        raise invalid(exc) from exc


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
    """Launches runs; a repeated Idempotency-Key returns the run it made before."""

    def __init__(self, dagster: DagsterClient, database: Engine, claim_wait_s: float = 60.0):
        self.dagster = dagster
        self.database = database
        self.claim_wait_s = claim_wait_s
        self._locks = KeyedLocks()

    async def submit(
        self,
        document: Any,
        idempotency_key: str | None,
        tags: dict[str, str] | None = None,
        request: Any = None,
    ) -> tuple[str, bool]:
        """(run_id, replayed): replayed is True when the key had made the run before.

        `request` is what a retry must repeat to be the same request (default: the
        document); `tags` are added to the run's."""
        digest = request_digest(document if request is None else request)
        run_tags = {TAG_SOURCE: "api", **(tags or {}), TAG_REQUEST_SHA256: digest}
        if idempotency_key is None:
            return await self.dagster.launch_run(run_config(document), run_tags), False
        check_key(idempotency_key)
        run_tags[TAG_IDEMPOTENCY_KEY] = idempotency_key
        async with self._locks.hold(idempotency_key):
            return await self._once(idempotency_key, digest, document, run_tags)

    async def _once(
        self, key: str, digest: str, document: Any, tags: dict[str, str]
    ) -> tuple[str, bool]:
        deadline = time.monotonic() + self.claim_wait_s
        while True:
            claim = await asyncio.to_thread(store.claim_key, self.database, key, digest)
            if claim.request_sha256 != digest:
                raise IdempotencyConflict(
                    f"Idempotency-Key {key!r} was used for a different request"
                    + (f" (run {claim.run_id})" if claim.run_id else "")
                )
            if claim.run_id is not None:
                return claim.run_id, True
            if claim.mine:
                return await self._launch(key, digest, document, tags)
            if store.now() - claim.claimed_at > CLAIM_LEASE and await asyncio.to_thread(
                store.take_over_key, self.database, key, claim.claimed_at
            ):
                return await self._launch(key, digest, document, tags)
            if time.monotonic() > deadline:
                raise DagsterUnavailable(
                    f"another request with Idempotency-Key {key!r} is still launching its "
                    "run; retry with the same key shortly"
                )
            await asyncio.sleep(CLAIM_POLL_S)

    async def _launch(
        self, key: str, digest: str, document: Any, tags: dict[str, str]
    ) -> tuple[str, bool]:
        """Launch under a claim: first a run already tagged with the key (a process that
        died after launching, or a key from before the database held them)."""
        try:
            earlier = await self.dagster.list_runs(tags={TAG_IDEMPOTENCY_KEY: key}, limit=1)
            if earlier and earlier[0].tags.get(TAG_REQUEST_SHA256) != digest:
                raise IdempotencyConflict(
                    f"Idempotency-Key {key!r} was used for a different request "
                    f"(run {earlier[0].run_id})"
                )
            replayed = bool(earlier)
            run_id = (
                earlier[0].run_id
                if earlier
                else await self.dagster.launch_run(run_config(document), tags)
            )
        except BaseException:
            await asyncio.to_thread(store.release_key, self.database, key)
            raise
        await asyncio.to_thread(store.record_key_run, self.database, key, run_id)
        return run_id, replayed


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
