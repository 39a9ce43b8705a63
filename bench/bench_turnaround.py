"""Warm run workers beside Dagster's DefaultRunLauncher, on the same embedded stack (SQLite).

(a) submit → SUCCESS of the three-operation pipeline through the API, one run at a time:
    p50/p99, and CPU seconds per run of every process of the stack (goal: warm median
    ≤ 0.5 s)
(b) runs/s with 20 clients over 200 runs, each client submitting and waiting in turn;
    every run must end SUCCESS exactly once (goal: ≥ 5× DefaultRunLauncher, 0 lost,
    0 duplicated)
(c) the warm worker's RSS (main + pool processes) after 1,000 runs vs after 10
    (goal: < 1.2×; pool processes are replaced every worker_max_tasks_per_child runs)

Environment: BENCH_TURNAROUND_ROUNDS (20), BENCH_THROUGHPUT_RUNS (200),
BENCH_THROUGHPUT_CLIENTS (20), BENCH_DEFAULT_THROUGHPUT_RUNS (same as warm),
BENCH_RSS_RUNS (1000; 0 skips (c)).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.bench_core import THREE_OPS
from bench.stats import describe_ms, percentile, row
from orchestrator.report import TERMINAL_RUN_STATUSES
from stack import Stack
from stack.__main__ import seed_examples
from stack.instance import Launcher

KEY = "bench-key-0123456789abcdef"
ROUNDS = int(os.environ.get("BENCH_TURNAROUND_ROUNDS", "20"))
RUNS = int(os.environ.get("BENCH_THROUGHPUT_RUNS", "200"))
DEFAULT_RUNS = int(os.environ.get("BENCH_DEFAULT_THROUGHPUT_RUNS", str(RUNS)))
CLIENTS = int(os.environ.get("BENCH_THROUGHPUT_CLIENTS", "20"))
RSS_RUNS = int(os.environ.get("BENCH_RSS_RUNS", "1000"))
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def group_members(groups: set[int]) -> list[int]:
    """Live processes whose process group is one of `groups` (a service and its children)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(stat_fields(int(entry.name))[2]) in groups:
                    members.append(int(entry.name))
            except (OSError, IndexError):
                continue
    return members


def cpu_seconds(groups: set[int]) -> float:
    """User + system CPU of the groups' processes, with their reaped children's."""
    total = 0
    for pid in group_members(groups):
        try:
            fields = stat_fields(pid)
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total / 1e6


class Client:
    """What a frontend does: POST /execute, then poll GET /runs/{id} until it ends."""

    def __init__(self, stack: Stack, poll_s: float):
        self.http = httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
        )
        self.poll_s = poll_s

    def run(self) -> tuple[str, str]:
        response = self.http.post("/execute", json=THREE_OPS)
        response.raise_for_status()
        run_id = str(response.json()["run_id"])
        while (status := self.http.get(f"/runs/{run_id}").json()["status"]) not in (
            TERMINAL_RUN_STATUSES
        ):
            time.sleep(self.poll_s)
        return run_id, str(status)

    def all_run_ids(self) -> list[str]:
        """Every run GET /runs lists, page by page."""
        ids: list[str] = []
        cursor = None
        while True:
            params = {"limit": 500} | ({"cursor": cursor} if cursor else {})
            page = self.http.get("/runs", params=params).json()
            ids += [str(r["run_id"]) for r in page["runs"]]
            if not (cursor := page["next_cursor"]):
                return ids


@contextmanager
def running(launcher: Launcher) -> Iterator[Stack]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        Stack(Path(tmp), api_keys=[KEY], launcher=launcher) as stack,
    ):
        seed_examples(stack.data_root)
        yield stack


def groups_of(stack: Stack) -> set[int]:
    return {s.process.pid for s in stack.services.values() if s.process}


def turnaround(stack: Stack) -> tuple[list[float], float]:
    client = Client(stack, poll_s=0.02)
    for _ in range(2):  # warm-up: first runs of a fresh process
        assert client.run()[1] == "SUCCESS"
    time.sleep(1)
    groups = groups_of(stack)
    before = cpu_seconds(groups)
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        assert client.run()[1] == "SUCCESS"
        times.append(time.perf_counter() - started)
    time.sleep(1)  # let the last run's processes be reaped
    return times, (cpu_seconds(groups) - before) / ROUNDS


def throughput(stack: Stack, runs: int) -> tuple[float, int, int]:
    """runs/s; runs lost (not SUCCESS, or missing from GET /runs); runs duplicated."""
    clients = [Client(stack, poll_s=0.25) for _ in range(CLIENTS)]
    before = set(clients[0].all_run_ids())
    per_client = [runs // CLIENTS + (1 if i < runs % CLIENTS else 0) for i in range(CLIENTS)]

    def work(index: int) -> list[tuple[str, str]]:
        return [clients[index].run() for _ in range(per_client[index])]

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [r for batch in pool.map(work, range(CLIENTS)) for r in batch]
    elapsed = time.perf_counter() - started
    listed = [r for r in clients[0].all_run_ids() if r not in before]
    ids = [run_id for run_id, _ in results]
    failed = Counter(status for _, status in results if status != "SUCCESS")
    if failed:
        print(f"    runs that did not succeed: {dict(failed)}", flush=True)
    lost = sum(failed.values()) + len(set(ids) - set(listed))
    duplicated = (len(ids) - len(set(ids))) + (len(listed) - len(set(ids)))
    return runs / elapsed, lost, duplicated


def worker_pids(stack: Stack) -> list[int]:
    process = stack.services["worker"].process
    assert process is not None
    return group_members({process.pid})


def memory(stack: Stack) -> tuple[float, float]:
    """RSS of the warm worker after 10 runs and after RSS_RUNS runs."""
    client = Client(stack, poll_s=0.05)
    for _ in range(10):
        client.run()
    after_10 = rss_mb(worker_pids(stack))
    throughput_runs = RSS_RUNS - 10
    print(f"    ({throughput_runs} more runs for (c) ...)", flush=True)
    throughput(stack, throughput_runs)
    return after_10, rss_mb(worker_pids(stack))


@dataclass
class Figures:
    times: list[float]
    cpu: float
    rate: float
    lost: int
    duplicated: int
    runs: int
    rss: tuple[float, float] | None = None


def measure(launcher: Launcher) -> Figures:
    print(f"  ... {launcher.value} launcher", flush=True)
    with running(launcher) as stack:
        times, cpu = turnaround(stack)
        runs = DEFAULT_RUNS if launcher is Launcher.DEFAULT else RUNS
        figures = Figures(times, cpu, *throughput(stack, runs), runs=runs)
        if launcher is Launcher.WARM and RSS_RUNS:
            figures.rss = memory(stack)
        return figures


def main() -> None:
    default, warm = measure(Launcher.DEFAULT), measure(Launcher.WARM)
    both = (("DefaultRunLauncher", default), ("warm workers", warm))
    print(f"(a) submit → SUCCESS through the API, three operations, one at a time (n={ROUNDS})")
    for name, data in both:
        row(name, describe_ms(data.times))
        row(f"{name}: CPU s per run (whole stack)", f"{data.cpu:.2f} s")
    ratio = statistics.median(default.times) / statistics.median(warm.times)
    row("median: DefaultRunLauncher / warm", f"{ratio:.1f}x  (goal: warm ≤ 0.5 s)")
    row("warm p99", f"{percentile(warm.times, 99):.2f} s")
    print(f"(b) runs/s, {CLIENTS} clients, each submitting and waiting in turn")
    for name, data in both:
        row(
            f"{name} ({data.runs} runs)",
            f"{data.rate:.2f} runs/s  lost {data.lost}  duplicated {data.duplicated}",
        )
    row("warm / DefaultRunLauncher", f"{warm.rate / default.rate:.1f}x  (goal: ≥ 5x)")
    if warm.rss:
        after_10, after_n = warm.rss
        print("(c) warm worker RSS (main + pool processes)")
        row("after 10 runs", f"{after_10:.0f} MB")
        row(f"after {RSS_RUNS} runs", f"{after_n:.0f} MB  ({after_n / after_10:.2f}x, goal < 1.2x)")


if __name__ == "__main__":
    main()
