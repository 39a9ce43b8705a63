"""Submitter: one run per Idempotency-Key, and a lock table that holds only keys in flight."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from sqlalchemy import Engine

from api.dagster import DagsterClient, RunRecord
from api.submissions import TAG_IDEMPOTENCY_KEY, KeyedLocks, Submitter
from orchestrator.saved import make_engine, migrate


class FakeDagster:
    """Runs in memory; `launch_run` waits for `release` so duplicates queue behind it."""

    def __init__(self) -> None:
        self.runs: list[RunRecord] = []
        self.release = asyncio.Event()
        self.release.set()

    async def list_runs(self, tags: dict[str, str] | None = None, limit: int = 50) -> list[Any]:
        await asyncio.sleep(0)
        key = (tags or {}).get(TAG_IDEMPOTENCY_KEY)
        return [r for r in self.runs if r.tags.get(TAG_IDEMPOTENCY_KEY) == key][:limit]

    async def launch_run(self, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        await self.release.wait()
        run = RunRecord(f"run-{len(self.runs)}", "QUEUED", 0.0, None, None, dict(tags))
        self.runs.append(run)
        return run.run_id


DOCUMENT = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "x"}}]}


@pytest.fixture
def database(tmp_path: Any) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/saved.db")
    migrate(engine)
    return engine


def submitter(dagster: FakeDagster, database: Engine) -> Submitter:
    return Submitter(cast(DagsterClient, dagster), database)


def test_no_lock_is_kept_once_its_keys_requests_are_done(database: Engine) -> None:
    dagster = FakeDagster()
    sub = submitter(dagster, database)

    async def many() -> None:
        for index in range(200):
            await sub.submit(DOCUMENT, f"key-{index}")

    asyncio.run(many())
    assert len(dagster.runs) == 200
    assert len(sub._locks) == 0


def test_concurrent_duplicates_share_one_lock_and_make_one_run(database: Engine) -> None:
    dagster = FakeDagster()
    sub = submitter(dagster, database)

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


def test_two_submitters_on_one_database_make_one_run(database: Engine) -> None:
    """Two API processes: separate locks, one key row; the second waits for the first's run."""
    dagster = FakeDagster()
    first, second = submitter(dagster, database), submitter(dagster, database)

    async def race() -> list[tuple[str, bool]]:
        dagster.release.clear()
        tasks = [asyncio.create_task(s.submit(DOCUMENT, "shared")) for s in (first, second)]
        await asyncio.sleep(0.3)
        dagster.release.set()
        return list(await asyncio.gather(*tasks))

    results = asyncio.run(race())
    assert len(dagster.runs) == 1
    assert sorted(replayed for _, replayed in results) == [False, True]
    assert {run_id for run_id, _ in results} == {"run-0"}


def test_a_key_reused_for_another_request_is_a_conflict(database: Engine) -> None:
    from api.errors import IdempotencyConflict

    sub = submitter(FakeDagster(), database)
    asyncio.run(sub.submit(DOCUMENT, "k1"))
    with pytest.raises(IdempotencyConflict, match="was used for a different request"):
        asyncio.run(sub.submit({"instructions": []}, "k1"))


def test_a_claim_whose_process_died_is_taken_over_and_its_run_found(database: Engine) -> None:
    """A process claimed the key, launched, and died before recording the run id: after the
    lease, the next request finds that run by its tag instead of launching another."""
    from datetime import timedelta

    from sqlalchemy import update

    from api.submissions import CLAIM_LEASE, request_digest
    from orchestrator.saved import store
    from orchestrator.saved.tables import IdempotencyKey

    dagster = FakeDagster()
    digest = request_digest(DOCUMENT)
    store.claim_key(database, "orphan", digest)
    dagster.runs.append(
        RunRecord("run-lost", "SUCCESS", 0.0, None, None,
                  {TAG_IDEMPOTENCY_KEY: "orphan", "constellation/request-sha256": digest})
    )  # fmt: skip
    with database.begin() as connection:
        connection.execute(
            update(IdempotencyKey).values(claimed_at=store.now() - CLAIM_LEASE - timedelta(1))
        )
    run_id, replayed = asyncio.run(submitter(dagster, database).submit(DOCUMENT, "orphan"))
    assert (run_id, replayed) == ("run-lost", True)
    assert len(dagster.runs) == 1
    assert store.claim_key(database, "orphan", digest).run_id == "run-lost"
