"""Load: 500 submissions at 50 concurrent clients, valid and invalid, with duplicate keys.

Prints submissions/s and p50/p99 latency, then proves from Dagster's own run list
that every accepted submission has exactly one run, every run reached a terminal
state, and no invalid submission created a run.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from api.dagster import LIST_RUNS
from api.submissions import TAG_IDEMPOTENCY_KEY
from bench.stats import describe_ms, row
from orchestrator.report import TERMINAL_RUN_STATUSES
from stack import Stack
from stack.__main__ import seed_examples

KEY = "bench-key-0123456789abcdef"
TOTAL = int(os.environ.get("BENCH_SUBMISSIONS", "500"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "50"))
VALID = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "examples"}}]}
INVALID = [
    {"instructions": [{"operation": "import_from_locl", "parameters": {"path": "x"}}]},
    {"instructions": [{"operation": "resize_image", "parameters": {"width": "wide"}}]},
    {"instructions": []},
    {"instr": 1},
]


def make_submissions(rng: random.Random) -> list[tuple[dict[str, Any], str, bool]]:
    """(document, idempotency key, valid?) — about 30 % invalid, 20 % repeated keys."""
    submissions: list[tuple[dict[str, Any], str, bool]] = []
    for _ in range(TOTAL):
        roll = rng.random()
        if roll < 0.3:
            submissions.append((rng.choice(INVALID), f"bad-{uuid.uuid4()}", False))
        elif roll < 0.5 and any(valid for _, _, valid in submissions):
            document, key, _ = rng.choice([s for s in submissions if s[2]])
            submissions.append((document, key, True))
        else:
            submissions.append((VALID, f"ok-{uuid.uuid4()}", True))
    return submissions


async def submit_all(api_url: str, submissions: list[Any]) -> list[tuple[str, int, str, float]]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in submissions:
        queue.put_nowait(item)
    results: list[tuple[str, int, str, float]] = []
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=60) as http:

        async def client() -> None:
            while not queue.empty():
                document, key, _ = queue.get_nowait()
                started = time.perf_counter()
                response = await http.post(
                    "/execute", json=document, headers={"Idempotency-Key": key}
                )
                run_id = response.json().get("run_id", "") if response.status_code == 201 else ""
                results.append((key, response.status_code, run_id, time.perf_counter() - started))

        await asyncio.gather(*(client() for _ in range(CLIENTS)))
    return results


def all_runs(dagster_url: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    cursor = None
    while True:
        data = httpx.post(
            f"{dagster_url}/graphql",
            json={"query": LIST_RUNS, "variables": {"cursor": cursor, "limit": 500}},
            timeout=60,
        ).json()["data"]["runsOrError"]["results"]
        runs += data
        if len(data) < 500:
            return runs
        cursor = data[-1]["runId"]


def main() -> None:
    rng = random.Random(7)
    submissions = make_submissions(rng)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Stack(Path(tmp), api_keys=[KEY], max_concurrent_runs=4) as stack,
    ):
        seed_examples(stack.data_root)
        started = time.perf_counter()
        results = asyncio.run(submit_all(stack.api_url, submissions))
        elapsed = time.perf_counter() - started
        deadline = time.monotonic() + 1800
        while True:
            runs = all_runs(stack.dagster_url)
            if (
                all(r["status"] in TERMINAL_RUN_STATUSES for r in runs)
                or time.monotonic() > deadline
            ):
                break
            time.sleep(2)
        finished = time.perf_counter() - started

    valid_keys = {key for _, key, valid in submissions if valid}
    accepted = defaultdict(set)
    statuses = Counter(status for _, status, _, _ in results)
    for key, status, run_id, _ in results:
        if status == 201:
            accepted[key].add(run_id)
    runs_by_key: dict[str, list[str]] = defaultdict(list)
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        runs_by_key[tags.get(TAG_IDEMPOTENCY_KEY, "")].append(run["runId"])
    duplicated = sum(1 for ids in runs_by_key.values() if len(ids) > 1)
    lost = sum(1 for key, ids in accepted.items() if runs_by_key.get(key) != sorted(ids))
    from_invalid = sum(1 for key in runs_by_key if key not in valid_keys)
    unfinished = sum(1 for r in runs if r["status"] not in TERMINAL_RUN_STATUSES)

    print(f"{TOTAL} submissions at {CLIENTS} concurrent clients (embedded stack, SQLite)")
    row("responses by status", ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    row("submissions/s", f"{TOTAL / elapsed:.1f}")
    row("submit latency", describe_ms([latency for *_, latency in results]))
    row("runs created / distinct accepted keys", f"{len(runs)} / {len(accepted)}")
    row("time until every run ended", f"{finished:.0f} s")
    row("runs lost | duplicated | from invalid | unfinished",
        f"{lost} | {duplicated} | {from_invalid} | {unfinished}")  # fmt: skip


if __name__ == "__main__":
    main()
