"""Time from an instruction's end to its Server-Sent Event at a client.

On a real stack (SQLite): a run of BENCH_EVENT_INSTRUCTIONS (50) top-level
instructions, each resizing a few images so their ends are spread out, followed
through GET /runs/{id}/events by an httpx client on this machine. For each
`succeeded` event: arrival time at the client minus the event's `at` (written
by the run worker when the instruction ended, just before Dagster stores it).
The API polls Dagster's log every `POLL_INTERVAL_S`; that interval (half of it
on average) is the baseline the latency is made of, plus the GraphQL read.
Goal: p50 < 200 ms.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from api.run_views import POLL_INTERVAL_S
from bench.stats import describe_ms, percentile, row
from stack import Stack
from testkit.dagster_stack import make_images

KEY = "bench-key-0123456789abcdef"
INSTRUCTIONS = int(os.environ.get("BENCH_EVENT_INSTRUCTIONS", "50"))


def pipeline(count: int) -> dict[str, Any]:
    resize = {
        "operation": "resize_image",
        "parameters": {
            "width": 320,
            "height": 240,
            "data": {"operation": "import_from_local", "parameters": {"path": "bench-events"}},
        },
    }
    return {"instructions": [resize] * count}


def latencies(stack: Stack, run_id: str) -> tuple[list[float], int]:
    """(seconds from each instruction's end to its event's arrival, events received)."""
    url = f"{stack.api_url}/runs/{run_id}/events"
    headers = {"Authorization": f"Bearer {KEY}"}
    seconds: list[float] = []
    received = 0
    timeout = httpx.Timeout(30, read=300)
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        response.raise_for_status()
        event = ""
        for text in response.iter_lines():
            if text.startswith("event: "):
                event = text[len("event: ") :]
            elif text.startswith("data: "):
                arrived = time.time()
                data = json.loads(text[len("data: ") :])
                received += 1
                ended = event == "instruction" and data.get("kind") == "succeeded"
                if ended and data["path"] == data["root"]:  # one per top-level instruction
                    seconds.append(arrived - data["at"])
    return seconds, received


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), api_keys=[KEY]) as stack:
        make_images(stack.data_root / "bench-events", 4)
        api = httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
        )
        run_id = api.post("/execute", json=pipeline(INSTRUCTIONS)).raise_for_status().json()
        seconds, received = latencies(stack, run_id["run_id"])
        print(
            f"instruction end -> SSE event at the client: {len(seconds)} instructions, "
            f"{received} events"
        )
        row("baseline: the API's poll interval", f"{POLL_INTERVAL_S * 1000:.0f} ms")
        row("end -> event", describe_ms(seconds))
        p50 = percentile(seconds, 50) * 1000
        row("goal p50 < 200 ms", "met" if p50 < 200 else f"NOT met ({p50:.0f} ms)")


if __name__ == "__main__":
    main()
