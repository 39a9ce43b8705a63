"""GET /runs/{id} of a finished run, before and after reading the log incrementally.

On a real stack (SQLite), finished runs of 200 and 2,000 instructions:
- before: what each poll did until now: the run with its config, the whole log
  (every page), the config parsed and validated again, every event folded
  (`plan_of` + `DagsterClient.run_logs` + `build_detail`, kept for this baseline),
  in this process, so without the HTTP and FastAPI costs the API adds;
- after: GET /runs/{id} through the API, the way the CLI polls (every 0.5 s);
- after, first read: a fresh `RunReports` (an API just restarted) reading the run once.
Goal: after >= 10x faster than before at 2,000 instructions, and flat as the log grows.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from api.dagster import DagsterClient
from api.run_views import RunReports, build_detail, plan_of
from bench.stats import describe_ms, row
from orchestrator.catalog.validation import Limits
from orchestrator.operations import CATALOG
from orchestrator.report import TERMINAL_RUN_STATUSES
from stack import Stack

KEY = "bench-key-0123456789abcdef"
SIZES = [int(n) for n in os.environ.get("BENCH_RUN_SIZES", "200,2000").split(",")]
BEFORE_ROUNDS = int(os.environ.get("BENCH_BEFORE_ROUNDS", "5"))
AFTER_ROUNDS = int(os.environ.get("BENCH_AFTER_ROUNDS", "40"))
RUN_TIMEOUT_S = 900
POLL_S = 0.5  # as the CLI polls


def pipeline(count: int) -> dict[str, Any]:
    """`count` top-level instructions, cheap ones: the log is what grows."""
    instruction = {"operation": "import_from_local", "parameters": {"path": "one"}}
    return {"instructions": [instruction] * count}


def finished_run(api: httpx.Client, count: int) -> tuple[str, list[tuple[int, float]]]:
    """Run `count` instructions, polled as the CLI does; (run id, [(instructions done,
    seconds of that poll)])."""
    run_id = str(api.post("/execute", json=pipeline(count)).raise_for_status().json()["run_id"])
    deadline = time.monotonic() + RUN_TIMEOUT_S
    polls: list[tuple[int, float]] = []
    while True:
        started = time.perf_counter()
        detail = api.get(f"/runs/{run_id}").json()
        elapsed = time.perf_counter() - started
        if detail["status"] in TERMINAL_RUN_STATUSES:
            break
        done = sum(1 for i in detail["instructions"] if i["status"] == "succeeded")
        polls.append((done, elapsed))
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run_id} of {count} instructions did not end")
        time.sleep(POLL_S)
    if detail["status"] != "SUCCESS":
        raise SystemExit(f"run {run_id} of {count} instructions ended {detail['status']}")
    return run_id, polls


async def before_and_first_read(dagster_url: str, run_id: str) -> tuple[list[float], float, int]:
    """(seconds of each old-style read, seconds of one first incremental read, events read)."""
    async with httpx.AsyncClient(timeout=120) as http:
        dagster = DagsterClient(
            http, dagster_url, "orchestrator", "__repository__", "build_execute_job"
        )
        before = []
        lines: list[Any] = []
        for _ in range(BEFORE_ROUNDS):
            started = time.perf_counter()
            record = await dagster.get_run(run_id, config=True)
            lines = await dagster.run_logs(run_id)
            detail = build_detail(record, lines, plan_of(record, CATALOG, Limits()))
            detail.model_dump_json()
            before.append(time.perf_counter() - started)
        started = time.perf_counter()
        await RunReports(dagster, CATALOG, Limits()).detail_json(run_id)
        first = time.perf_counter() - started
        return before, first, len(lines)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), api_keys=[KEY]) as stack:
        (stack.data_root / "one").mkdir(parents=True)
        (stack.data_root / "one" / "a.txt").write_text("a")
        api = httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120
        )
        medians: dict[int, tuple[float, float]] = {}
        for count in SIZES:
            started = time.perf_counter()
            run_id, polls = finished_run(api, count)
            print(f"run of {count} instructions finished in {time.perf_counter() - started:.0f} s")
            running = [seconds for done, seconds in polls if 0 < done < count]
            if len(running) >= 6:  # the log grows while the run goes on: early vs late polls
                third = len(running) // 3
                row("polls while it ran, first third", describe_ms(running[:third]))
                row("polls while it ran, last third", describe_ms(running[-third:]))
            before, first, events = asyncio.run(before_and_first_read(stack.dagster_url, run_id))
            after = []
            for _ in range(AFTER_ROUNDS):
                started = time.perf_counter()
                response = api.get(f"/runs/{run_id}")
                after.append(time.perf_counter() - started)
                assert response.status_code == 200 and len(response.json()["instructions"]) == count
            print(
                f"GET /runs/{{id}} of a finished run: {count} instructions, {events} log messages"
            )
            row("before: whole log + config, every poll", describe_ms(before))
            row("after, first read (a restarted API)", describe_ms([first]))
            row("after: GET /runs/{id} through the API", describe_ms(after))
            medians[count] = (statistics.median(before), statistics.median(after))
            row("before / after at the median", f"{medians[count][0] / medians[count][1]:.0f}x")
        if len(SIZES) > 1:
            small, large = min(SIZES), max(SIZES)
            print(f"growth from {small} to {large} instructions (p50)")
            row("before", f"{medians[large][0] / medians[small][0]:.1f}x")
            row("after", f"{medians[large][1] / medians[small][1]:.1f}x")


if __name__ == "__main__":
    main()
