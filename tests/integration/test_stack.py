"""`python -m stack` (what `make run` runs) as a process: its settings and how it stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stack.processes import free_port

pytestmark = pytest.mark.integration

STARTED = "stops everything."
STOPPING = "stopping ..."
DEADLINE_S = 240  # generous: a slow machine is slow, never wrong


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def descendants(root: int) -> set[int]:
    parents = {
        int(p.name): parent_of(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit()
    }
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= children
        frontier = children
    return found


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def read_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if marker in line:
            return lines
    pytest.fail(f"python -m stack ended before printing {marker!r}:\n{''.join(lines)}")


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    env = {
        **os.environ,
        "CONSTELLATION_VAR": str(tmp_path / "var"),
        "CONSTELLATION_ARTIFACT_ROOT": str(tmp_path / "elsewhere" / "artifacts"),
        "CONSTELLATION_API_PORT": str(free_port()),
        "CONSTELLATION_DAGSTER_PORT": str(free_port()),
        "CONSTELLATION_API_KEYS": "",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "stack"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group, as `make run` has
    )
    try:
        yield process, env
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_sigterm_twice_to_the_process_group_stops_every_child(
    launched: tuple[subprocess.Popen[str], dict[str, str]],
) -> None:
    process, env = launched
    printed = read_until(process, STARTED)
    children = descendants(process.pid)
    api_url = f"http://127.0.0.1:{env['CONSTELLATION_API_PORT']}"

    # CONSTELLATION_ARTIFACT_ROOT is honoured (README), and reaches the services.
    artifacts = env["CONSTELLATION_ARTIFACT_ROOT"]
    assert f"  artifacts   {artifacts}\n" in printed
    api = next(p for p in children if "uvicorn" in Path(f"/proc/{p}/cmdline").read_text())
    assert environ(api)["CONSTELLATION_ARTIFACT_ROOT"] == artifacts
    # /healthz names the Dagster version /readyz reports.
    ready = httpx.get(f"{api_url}/readyz", timeout=30).json()
    assert (
        httpx.get(f"{api_url}/healthz", timeout=30).json()["dagster_version"]
        == (ready["dagster_version"])
    )
    assert len(children) >= 3  # webserver, daemon, API (and the code servers they start)

    os.killpg(process.pid, signal.SIGTERM)
    read_until(process, STOPPING)
    os.killpg(process.pid, signal.SIGTERM)  # the second signal lands inside Stack.stop()
    os.killpg(process.pid, signal.SIGINT)

    assert process.wait(timeout=DEADLINE_S) == 0
    assert process.stdout is not None
    rest = process.stdout.read()
    assert "Traceback" not in rest, rest
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and any(alive(pid) for pid in children):
        time.sleep(0.2)
    assert [pid for pid in children if alive(pid)] == []
