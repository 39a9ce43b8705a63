"""Submitter: one run per Idempotency-Key, and a lock table that holds only keys in flight."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from api.dagster import DagsterClient, RunRecord
from api.submissions import TAG_IDEMPOTENCY_KEY, KeyedLocks, Submitter


class FakeDagster:
    """Runs in memory; `launch_run` waits for `release` so duplicates queue behind it."""

    def __init__(self) -> None:
        self.runs: list[RunRecord] = []
        self.release = asyncio.Event()
        self.release.set()

    async def list_runs(self, tags: dict[str, str] | None = None, limit: int = 50) -> list[Any]:
        key = (tags or {}).get(TAG_IDEMPOTENCY_KEY)
        return [r for r in self.runs if r.tags.get(TAG_IDEMPOTENCY_KEY) == key][:limit]

    async def launch_run(self, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        await self.release.wait()
        run = RunRecord(f"run-{len(self.runs)}", "QUEUED", 0.0, None, None, dict(tags))
        self.runs.append(run)
        return run.run_id


DOCUMENT = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "x"}}]}


def submitter(dagster: FakeDagster) -> Submitter:
    return Submitter(cast(DagsterClient, dagster))


def test_no_lock_is_kept_once_its_keys_requests_are_done() -> None:
    dagster = FakeDagster()
    sub = submitter(dagster)

    async def many() -> None:
        for index in range(1000):
            await sub.submit(DOCUMENT, f"key-{index}")

    asyncio.run(many())
    assert len(dagster.runs) == 1000
    assert len(sub._locks) == 0


def test_concurrent_duplicates_share_one_lock_and_make_one_run() -> None:
    dagster = FakeDagster()
    sub = submitter(dagster)

    async def duplicates() -> tuple[list[tuple[str, bool]], int]:
        dagster.release.clear()
        tasks = [asyncio.create_task(sub.submit(DOCUMENT, "same")) for _ in range(5)]
        while sub._locks.users("same") != 5:  # every task holds the lock or waits for it
            await asyncio.sleep(0)
        in_flight = len(sub._locks)
        dagster.release.set()
        return list(await asyncio.gather(*tasks)), in_flight

    results, in_flight = asyncio.run(duplicates())
    assert in_flight == 1
    assert [replayed for _, replayed in results] == [False, True, True, True, True]
    assert {run_id for run_id, _ in results} == {"run-0"}
    assert len(sub._locks) == 0


def test_a_failed_submission_releases_its_lock() -> None:
    locks = KeyedLocks()

    async def fail() -> None:
        async with locks.hold("k"):
            raise RuntimeError("Dagster down")

    with pytest.raises(RuntimeError):
        asyncio.run(fail())
    assert len(locks) == 0
