"""The core's overheads, each beside its baseline, on a real stack (SQLite).

(a) POST /execute latency vs the raw GraphQL launchRun it wraps (goal: < +10 %)
(b) submit-to-SUCCESS of a three-operation pipeline: API vs bare GraphQL vs one
    Python process (goal: API within 1.25x of bare Dagster)
(d) validation time of a 5,000-node instruction tree (goal: < 100 ms)
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from api.dagster import GET_RUN, LAUNCH_RUN
from api.submissions import run_config
from bench.stats import describe_ms, row
from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.context import Services
from orchestrator.execution import run_plan
from orchestrator.operations import CATALOG
from orchestrator.report import TERMINAL_RUN_STATUSES
from stack import Stack
from stack.__main__ import seed_examples

KEY = "bench-key-0123456789abcdef"
LATENCY_ROUNDS = int(os.environ.get("BENCH_LATENCY_ROUNDS", "30"))
E2E_ROUNDS = int(os.environ.get("BENCH_E2E_ROUNDS", "6"))

THREE_OPS = {
    "instructions": [
        {
            "operation": "batch_formatted_data",
            "parameters": {
                "batch_size": 2,
                "data": {
                    "operation": "dict_to_list",
                    "parameters": {
                        "data": {
                            "operation": "import_from_local",
                            "parameters": {"path": "examples"},
                        }
                    },
                },
            },
        }
    ]
}


class Bare:
    """Dagster's GraphQL API used directly, as a baseline."""

    def __init__(self, url: str):
        self.http = httpx.Client(base_url=url, timeout=30)
        self.selector = {
            "repositoryLocationName": "orchestrator",
            "repositoryName": "__repository__",
            "jobName": "build_execute_job",
        }

    def launch(self, document: Any) -> str:
        params = {"selector": self.selector, "runConfigData": run_config(document)}
        data = self.http.post(
            "/graphql", json={"query": LAUNCH_RUN, "variables": {"executionParams": params}}
        ).json()
        return str(data["data"]["launchRun"]["run"]["runId"])

    def status(self, run_id: str) -> str:
        data = self.http.post("/graphql", json={"query": GET_RUN, "variables": {"runId": run_id}})
        return str(data.json()["data"]["runOrError"]["status"])


def wait(status: Any, run_id: str) -> str:
    while (current := status(run_id)) not in TERMINAL_RUN_STATUSES:
        time.sleep(0.05)
    return str(current)


def wait_idle(bare: Bare, run_ids: list[str]) -> None:
    for run_id in run_ids:
        wait(bare.status, run_id)


def nodes_tree(count: int) -> dict[str, Any]:
    chain = THREE_OPS["instructions"][0]
    per_chain = 3
    return {"instructions": [chain] * (count // per_chain)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), api_keys=[KEY]) as stack:
        seed_examples(stack.data_root)
        api = httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
        )
        bare = Bare(stack.dagster_url)
        wait(bare.status, bare.launch(THREE_OPS))  # warm up both paths
        wait(bare.status, api.post("/execute", json=THREE_OPS).json()["run_id"])

        # The daemon pauses during (a): the runs wait in the queue instead of starting
        # processes that compete for the two cores with the submissions being timed.
        stack.services["daemon"].stop()
        api_times, bare_times, launched = [], [], []
        for _ in range(LATENCY_ROUNDS):
            started = time.perf_counter()
            launched.append(bare.launch(THREE_OPS))
            bare_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = api.post("/execute", json=THREE_OPS)
            api_times.append(time.perf_counter() - started)
            launched.append(response.json()["run_id"])
        stack.services["daemon"].start()
        wait_idle(bare, launched)
        print("(a) submit latency")
        row("raw GraphQL launchRun", describe_ms(bare_times))
        row("POST /execute (validate + launchRun)", describe_ms(api_times))
        overhead = statistics.median(api_times) / statistics.median(bare_times) - 1
        row("API overhead at the median", f"{overhead * 100:+.1f} %")

        api_e2e, bare_e2e = [], []
        for _ in range(E2E_ROUNDS):
            started = time.perf_counter()
            run_id = api.post("/execute", json=THREE_OPS).json()["run_id"]
            assert wait(lambda r: api.get(f"/runs/{r}").json()["status"], run_id) == "SUCCESS"
            api_e2e.append(time.perf_counter() - started)
            started = time.perf_counter()
            assert wait(bare.status, bare.launch(THREE_OPS)) == "SUCCESS"
            bare_e2e.append(time.perf_counter() - started)
        in_process = []
        services = Services(artifacts=LocalStore(Path(tmp) / "inproc"), data_root=stack.data_root)
        for index in range(E2E_ROUNDS):
            started = time.perf_counter()
            plan = validate(THREE_OPS, CATALOG)
            assert run_plan(plan, CATALOG, services, f"r{index}").succeeded
            in_process.append(time.perf_counter() - started)
        print("(b) submit to SUCCESS, three operations")
        row("same operations in one Python process", describe_ms(in_process))
        row("bare GraphQL launchRun + poll", describe_ms(bare_e2e))
        row("API POST /execute + GET /runs poll", describe_ms(api_e2e))
        ratio = statistics.median(api_e2e) / statistics.median(bare_e2e)
        row("API / bare Dagster at the median", f"{ratio:.2f}x")

    tree = nodes_tree(5000)
    count = sum(len(validate(tree, CATALOG).nodes) for _ in range(1))
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        validate(tree, CATALOG)
        timings.append(time.perf_counter() - started)
    print(f"(d) validation of a {count}-node tree")
    row("validate()", describe_ms(timings))


if __name__ == "__main__":
    main()
