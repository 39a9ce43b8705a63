"""Saved pipelines and Idempotency-Keys: their costs, each beside its baseline.

(a) an Idempotency-Key claimed in the database (SQLite file; PostgreSQL when the local server
    answers) per submission, beside a submission without a key; Dagster is an in-memory fake,
    so the figures are the claim's own cost (insert + update + the tag lookup of the fake).
(b) checking a saved pipeline when it is saved, and binding arguments when it runs, beside
    validating the same instructions as POST /execute does (goal: bind < 2x validate).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Engine

from api.dagster import RunRecord
from api.submissions import TAG_IDEMPOTENCY_KEY, Submitter
from bench.stats import describe_ms, row
from orchestrator.catalog import validate
from orchestrator.operations import CATALOG
from orchestrator.saved import bind, check_definition, make_engine, migrate

ROUNDS = 300
TREE = 1000  # top-level instructions of the pipeline in (b), each with a placeholder


class InstantDagster:
    def __init__(self) -> None:
        self.runs: list[RunRecord] = []

    async def list_runs(self, tags: dict[str, str] | None = None, limit: int = 50) -> list[Any]:
        key = (tags or {}).get(TAG_IDEMPOTENCY_KEY)
        return [r for r in self.runs[-1:] if r.tags.get(TAG_IDEMPOTENCY_KEY) == key][:limit]

    async def launch_run(self, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        run = RunRecord(f"run-{len(self.runs)}", "QUEUED", 0.0, None, None, dict(tags))
        self.runs.append(run)
        return run.run_id


DOCUMENT = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "x"}}]}


def timed(fn: Callable[[int], Any], rounds: int) -> list[float]:
    times = []
    for index in range(rounds):
        start = time.perf_counter()
        fn(index)
        times.append(time.perf_counter() - start)
    return times


def submissions(database: Engine | None, keyed: bool) -> list[float]:
    engine = database or make_engine("sqlite://")
    submitter = Submitter(InstantDagster(), engine)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    try:
        key = (lambda i: f"bench-{time.time_ns()}-{i}") if keyed else (lambda i: None)
        return timed(lambda i: loop.run_until_complete(submitter.submit(DOCUMENT, key(i))), ROUNDS)
    finally:
        loop.close()


@contextlib.contextmanager
def postgres_engine() -> Iterator[Engine | None]:
    try:
        from testkit.postgres import fresh_database

        with fresh_database() as pg:
            url = f"postgresql+psycopg2://{pg.username}@{pg.hostname}:{pg.port}/{pg.db_name}"
            engine = make_engine(url)
            migrate(engine)
            yield engine
            engine.dispose()
    except Exception as exc:  # no local server: say so and go on
        print(f"  (PostgreSQL skipped: {type(exc).__name__})")
        yield None


def main() -> None:
    print("(a) submission with an Idempotency-Key claimed in the database")
    row("no key (baseline)", describe_ms(submissions(None, keyed=False)))
    with tempfile.TemporaryDirectory() as folder:
        sqlite = make_engine(f"sqlite:///{folder}/bench.db")
        migrate(sqlite)
        row("key, SQLite file (WAL)", describe_ms(submissions(sqlite, keyed=True)))
        sqlite.dispose()
    with postgres_engine() as pg:
        if pg is not None:
            row("key, PostgreSQL (loopback)", describe_ms(submissions(pg, keyed=True)))

    print(f"(b) a pipeline of {TREE} instructions, each with a placeholder")
    body = {
        "name": "bench",
        "parameters": {"folder": {"type": "string"}},
        "instructions": [
            {"operation": "import_from_local", "parameters": {"path": {"param": "folder"}}}
        ]
        * TREE,
    }
    plain = {"instructions": [dict(DOCUMENT["instructions"][0])] * TREE}
    definition = check_definition(body, CATALOG)
    row(
        "validate, as POST /execute (baseline)",
        describe_ms(timed(lambda _: validate(plain, CATALOG), 20)),
    )
    row("check when saved", describe_ms(timed(lambda _: check_definition(body, CATALOG), 20)))
    row(
        "bind arguments when run",
        describe_ms(
            timed(
                lambda _: bind(
                    definition.parameters, definition.document, {"folder": "x"}, CATALOG
                ),
                20,
            )
        ),
    )


if __name__ == "__main__":
    main()
