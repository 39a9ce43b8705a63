"""Load on the production topology (PostgreSQL, gRPC code server, queued coordinator).

RUNS pipelines (local-import) are submitted through POST /execute by CLIENTS
concurrent clients, each with its own Idempotency-Key; every tenth request is sent
twice, as a client retrying after a lost answer would. Printed: submissions/s,
submit latency, time until every run ended, and runs lost or duplicated, counted
against Dagster's own run list (both must be 0).

    .venv/bin/python -m bench.bench_load     # BENCH_LOAD_RUNS, _CLIENTS, _MAX_CONCURRENT
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import httpx

from api.submissions import TAG_IDEMPOTENCY_KEY
from bench.stats import describe_ms, row
from orchestrator.report import TERMINAL_RUN_STATUSES
from orchestrator.samples import load_samples
from stack.__main__ import seed_examples
from stack.production import ProductionStack
from testkit.postgres import fresh_database

KEY = "bench-key-0123456789abcdef"
RUNS = int(os.environ.get("BENCH_LOAD_RUNS", "200"))
CLIENTS = int(os.environ.get("BENCH_LOAD_CLIENTS", "20"))
MAX_CONCURRENT = int(os.environ.get("BENCH_LOAD_MAX_CONCURRENT", "4"))
RETRY_EVERY = 10
ALL_RUNS = """
query AllRuns($cursor: String) {
  runsOrError(cursor: $cursor, limit: 500) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""


async def submit_all(
    api: httpx.AsyncClient, prefix: str
) -> tuple[dict[str, str], list[float], int]:
    """{idempotency key: run id}, latencies (s), answers that disagreed on a retried key."""
    document = load_samples()["local-import"].document
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(RUNS):
        queue.put_nowait(index)
    run_ids: dict[str, str] = {}
    latencies: list[float] = []
    disagreements = 0

    async def client() -> None:
        nonlocal disagreements
        while not queue.empty():
            index = queue.get_nowait()
            key = f"{prefix}-{index:04d}"
            headers = {"Idempotency-Key": key}
            started = time.perf_counter()
            response = await api.post("/execute", json=document, headers=headers)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            run_ids[key] = response.json()["run_id"]
            if index % RETRY_EVERY == 0:
                again = await api.post("/execute", json=document, headers=headers)
                again.raise_for_status()
                disagreements += again.json()["run_id"] != run_ids[key]

    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return run_ids, latencies, disagreements


def dagster_runs(url: str) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = []
    cursor = None
    with httpx.Client(timeout=60) as http:
        while True:
            data = http.post(
                f"{url}/graphql", json={"query": ALL_RUNS, "variables": {"cursor": cursor}}
            ).json()["data"]["runsOrError"]["results"]
            runs += data
            if len(data) < 500:
                return runs
            cursor = data[-1]["runId"]


def wait_all_ended(url: str, run_ids: set[str], timeout: float) -> Counter[str]:
    deadline = time.monotonic() + timeout
    shown = time.monotonic()
    while True:
        statuses = {r["runId"]: str(r["status"]) for r in dagster_runs(url)}
        ours = Counter(statuses.get(run_id, "MISSING") for run_id in run_ids)
        if (
            all(status in TERMINAL_RUN_STATUSES for status in ours.elements())
            or time.monotonic() > deadline
        ):
            return ours
        if time.monotonic() - shown > 30:
            print("  ...", ", ".join(f"{k} {v}" for k, v in sorted(ours.items())), flush=True)
            shown = time.monotonic()
        time.sleep(1)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, fresh_database() as postgres:
        stack = ProductionStack(
            Path(tmp), postgres, api_keys=[KEY], max_concurrent_runs=MAX_CONCURRENT
        )
        with stack:
            seed_examples(stack.data_root)
            prefix = f"bench-{uuid.uuid4().hex[:8]}"
            print(
                f"{RUNS} local-import pipelines, {CLIENTS} clients, "
                f"max_concurrent_runs={MAX_CONCURRENT}, PostgreSQL, gRPC code server",
                flush=True,
            )

            async def submit() -> tuple[dict[str, str], list[float], int]:
                headers = {"Authorization": f"Bearer {KEY}"}
                limits = httpx.Limits(max_connections=CLIENTS)
                async with httpx.AsyncClient(
                    base_url=stack.api_url, headers=headers, timeout=120, limits=limits
                ) as api:
                    return await submit_all(api, prefix)

            started = time.perf_counter()
            run_ids, latencies, disagreements = asyncio.run(submit())
            submitted = time.perf_counter() - started
            statuses = wait_all_ended(stack.dagster_url, set(run_ids.values()), timeout=1800)
            ended = time.perf_counter() - started

            by_key: defaultdict[str, set[str]] = defaultdict(set)
            for run in dagster_runs(stack.dagster_url):
                tags = {t["key"]: t["value"] for t in run["tags"]}  # type: ignore[attr-defined]
                if str(tags.get(TAG_IDEMPOTENCY_KEY, "")).startswith(prefix):
                    by_key[tags[TAG_IDEMPOTENCY_KEY]].add(str(run["runId"]))
            lost = sum(1 for key, run_id in run_ids.items() if run_id not in by_key.get(key, ()))
            lost += RUNS - len(run_ids)
            duplicated = sum(len(ids) - 1 for ids in by_key.values()) + disagreements

        print("(a) submission through the API")
        row(
            "submissions", f"{len(run_ids)} in {submitted:.1f} s = {len(run_ids) / submitted:.1f}/s"
        )
        row("POST /execute latency", describe_ms(latencies))
        print("(b) completion")
        row(f"time until all {RUNS} runs ended", f"{ended:.1f} s ({RUNS / ended:.2f} runs/s)")
        row("final statuses", ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
        print("(c) integrity (goal: 0 and 0)")
        row("runs lost", str(lost))
        row(
            f"runs duplicated ({len(range(0, RUNS, RETRY_EVERY))} keys sent twice)", str(duplicated)
        )


if __name__ == "__main__":
    main()
