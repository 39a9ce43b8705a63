"""What every peer server process of the tests needs: its own virtualenv, a start that
waits for `/v2/health/ready`, a stop that ends its whole process group, its log's tail."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import httpx


def ensure_venv(script: Path, what: str) -> Path:
    """The virtual environment `script` makes (once; it prints its path last)."""
    done = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"cannot set up {what}'s environment:\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def launch(
    command: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: Path,
    url: str,
    what: str,
    timeout_s: float,
) -> subprocess.Popen[bytes]:
    """Start `command` in its own process group, logging to `log_path`, and wait until
    `url`'s V2 health says ready; on failure the error holds the log's tail."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends its workers too
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited at start:\n{log_tail(log_path)}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"{what} not ready in {timeout_s:g} s:\n{log_tail(log_path)}")


def stop(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the process group, SIGKILL after 15 s."""
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
