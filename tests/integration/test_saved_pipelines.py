"""Saved pipelines and schedules with real Dagster (SQLite and PostgreSQL): versions named by
their runs, one run per Idempotency-Key across two API processes, one run per schedule tick
across a daemon restart, a tick with invalid arguments failing visibly, and the CLI."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.main import main as cli_main
from stack import Stack, free_port
from stack.processes import Service, http_ok
from testkit.dagster_stack import API_KEY, ApiClient, dagster_graphql, make_images

pytestmark = pytest.mark.integration


def thumbs(name: str, folder_param: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "parameters": {
            "width": {"type": "integer", "default": 32, "description": "Pixels."},
            "folder": {"type": "string"},
        },
        "instructions": [
            {
                "operation": "resize_image",
                "parameters": {
                    "width": {"param": "width"},
                    "height": 24,
                    "data": {
                        "operation": "import_from_local",
                        "parameters": {"path": folder_param or {"param": "folder"}},
                    },
                },
            }
        ],
    }


RUNS_BY_TAG = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) { ... on Runs { results { runId status tags { key value } } } }
}
"""

SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      sensorState { ticks(limit: 50) { status error { message causes { message } } } }
    }
  }
}
"""


def runs_tagged(stack: Stack, key: str, value: str) -> list[dict[str, Any]]:
    data = dagster_graphql(
        stack.dagster_url, RUNS_BY_TAG, filter={"tags": [{"key": key, "value": value}]}
    )
    runs = data["runsOrError"]["results"]
    return [{**r, "tags": {t["key"]: t["value"] for t in r["tags"]}} for r in runs]


def test_save_run_new_version_and_old_runs_keep_their_version(stack: Stack, api: ApiClient) -> None:
    make_images(stack.data_root / "saved-photos", 2)
    name = f"thumbs-{uuid.uuid4().hex[:8]}"
    assert api.http.post("/pipelines", json=thumbs(name)).status_code == 201
    first = api.http.post(f"/pipelines/{name}/runs", json={"arguments": {"folder": "saved-photos"}})
    assert first.status_code == 201, first.text
    old_run = first.json()["run_id"]
    assert api.wait(old_run)["status"] == "SUCCESS"
    changed = thumbs(name)
    changed["parameters"]["width"]["default"] = 16
    assert api.http.put(f"/pipelines/{name}", json=changed).json()["version"] == 2
    second = api.http.post(
        f"/pipelines/{name}/runs", json={"arguments": {"folder": "saved-photos"}}
    )
    new_run = second.json()["run_id"]
    assert second.json()["version"] == 2
    assert api.wait(new_run)["status"] == "SUCCESS"
    assert api.run(old_run)["pipeline_version"] == 1
    assert api.run(old_run)["pipeline"] == name
    listed = api.http.get("/runs", params={"pipeline": name}).json()["runs"]
    assert {(r["run_id"], r["pipeline_version"]) for r in listed} == {(old_run, 1), (new_run, 2)}
    bad = api.http.post(f"/pipelines/{name}/runs", json={"arguments": {"folder": 3}})
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["path"] == "arguments.folder"


def test_two_api_processes_make_one_run_per_idempotency_key(stack: Stack, tmp_path: Path) -> None:
    make_images(stack.data_root / "saved-key", 1)
    port = free_port()
    argv = stack.api_argv()
    argv[argv.index(str(stack.api_port))] = str(port)
    second = Service("api-second", argv, stack.environment(), stack.logs)
    second.start()
    try:
        second.wait_until(http_ok(f"http://127.0.0.1:{port}/healthz"), 120)
        urls = [stack.api_url, f"http://127.0.0.1:{port}"] * 4
        key = f"two-apis-{uuid.uuid4()}"
        document = {
            "instructions": [
                {"operation": "import_from_local", "parameters": {"path": "saved-key"}}
            ]
        }

        def post(url: str) -> httpx.Response:
            return httpx.post(
                f"{url}/execute",
                json=document,
                headers={"Authorization": f"Bearer {API_KEY}", "Idempotency-Key": key},
                timeout=60,
            )

        with ThreadPoolExecutor(len(urls)) as pool:
            answers = list(pool.map(post, urls))
        assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
        assert len({a.json()["run_id"] for a in answers}) == 1
        assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 7
        assert len(runs_tagged(stack, "constellation/idempotency-key", key)) == 1
    finally:
        second.stop()


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1)
    raise TimeoutError(f"no {what} after {timeout:.0f} s")


def test_a_schedule_makes_one_run_per_tick_across_a_daemon_restart_and_fails_visibly(
    stack: Stack, api: ApiClient
) -> None:
    make_images(stack.data_root / "saved-tick", 1)
    pipeline = f"ticked-{uuid.uuid4().hex[:8]}"
    schedule = f"every-minute-{uuid.uuid4().hex[:8]}"
    assert api.http.post("/pipelines", json=thumbs(pipeline)).status_code == 201
    created = api.http.post(
        "/schedules",
        json={"name": schedule, "pipeline": pipeline, "cron": "* * * * *",
              "arguments": {"folder": "saved-tick"}},
    )  # fmt: skip
    assert created.status_code == 201, created.text

    def scheduled() -> list[dict[str, Any]]:
        return runs_tagged(stack, "constellation/schedule", schedule)

    wait_for(lambda: len(scheduled()) >= 1, 100, "run of the first tick")
    stack.restart("daemon")  # the daemon has no readiness check: restart starts it again
    wait_for(lambda: len(scheduled()) >= 2, 100, "run of a tick after the daemon restart")
    ticks = [r["tags"]["constellation/scheduled-at"] for r in scheduled()]
    assert len(ticks) == len(set(ticks)), ticks  # one run per tick
    assert {r["tags"]["constellation/pipeline-version"] for r in scheduled()} == {"1"}

    # A new version needs an argument the schedule does not give: the next tick fails.
    needs_more = thumbs(pipeline)
    del needs_more["parameters"]["width"]["default"]
    assert api.http.put(f"/pipelines/{pipeline}", json=needs_more).json()["version"] == 2
    failed = wait_for(
        lambda: api.http.get(f"/schedules/{schedule}").json()["failed_ticks"],
        100,
        "failed tick",
    )
    assert failed[0]["problems"][0]["path"] == "arguments.width"
    assert all(r["tags"]["constellation/pipeline-version"] == "1" for r in scheduled())
    selector = {
        "repositoryLocationName": "orchestrator",
        "repositoryName": "__repository__",
        "sensorName": "saved_schedules",
    }
    data = dagster_graphql(stack.dagster_url, SENSOR_TICKS, selector=selector)
    errors = [  # what the tick's error shows in the UI: Dagster's wrapper, then ours
        " ".join([t["error"]["message"], *(c["message"] for c in t["error"]["causes"])])
        for t in data["sensorOrError"]["sensorState"]["ticks"]
        if t["status"] == "FAILURE"
    ]
    assert any("arguments.width: missing argument" in e for e in errors), errors
    assert api.http.delete(f"/schedules/{schedule}").status_code == 204


def test_the_cli_saves_runs_and_schedules(
    stack: Stack, api: ApiClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_images(stack.data_root / "saved-cli", 1)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    file = tmp_path / "pipeline.json"
    file.write_text(json.dumps(thumbs(name)))
    base = ["--api-url", stack.api_url, "--api-key", API_KEY]

    def run(*args: str) -> tuple[int, str]:
        code = cli_main([*base, *args])
        return code, capsys.readouterr().out

    assert run("pipelines", "save", str(file)) == (0, f"{name} version 1\n")
    code, out = run("pipelines", "run", name, "-a", "folder=saved-cli", "-a", "width=20")
    assert code == 0
    assert api.wait(out.strip())["status"] == "SUCCESS"
    code, out = run("pipelines", "list")
    assert code == 0 and name in out
    schedule = ["--pipeline", name, "--cron", "0 3 * * *", "--timezone", "Europe/Paris"]
    code, out = run("schedules", "create", f"{name}-s", *schedule, "-a", "folder=saved-cli")
    assert code == 0 and "running" in out
    assert "paused" in run("schedules", "pause", f"{name}-s")[1]
    assert "running" in run("schedules", "resume", f"{name}-s")[1]
    assert run("pipelines", "delete", name)[0] == 4  # a schedule runs it: 409
    assert run("schedules", "delete", f"{name}-s")[0] == 0
    assert run("pipelines", "delete", name)[0] == 0
    code, _ = run("pipelines", "run", name, "-a", "folder=x")
    assert code == 4  # 404
