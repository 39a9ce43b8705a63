"""Artifact retention on the real SQLite stack: the schedule, the job, DELETE and 410."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from stack import Stack
from testkit.dagster_stack import ApiClient, dagster_graphql, make_images, slow_resize

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("stack", ["sqlite"], indirect=True),
]

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
STATUS = """
query Status($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }
"""
SCHEDULE = """
query Schedule($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { cronSchedule scheduleState { status } }
  }
}
"""
LOCATION = {"repositoryLocationName": "orchestrator", "repositoryName": "__repository__"}
DAY_S = 86_400.0


def busy_pipeline(folder: str) -> dict[str, Any]:
    """Forty distinct slow resizes: a run that stays STARTED for a good while."""
    steps = []
    for width in range(600, 640):
        step = slow_resize(folder)
        step["parameters"] = {**step["parameters"], "width": width, "height": 400}
        steps.append(step)
    return {"instructions": steps}


def small_run(api: ApiClient, stack: Stack, folder: str) -> dict[str, Any]:
    make_images(stack.data_root / folder, 2, size=(64, 48))
    document = {"instructions": [slow_resize(folder)]}
    response = api.execute(document)
    assert response.status_code == 201, response.text
    detail = api.wait(response.json()["run_id"])
    assert detail["status"] == "SUCCESS", detail
    return detail


def retention(stack: Stack, now: float, days: float = 1.0) -> None:
    """Run remove_artifacts_job as the schedule would, judging ages as of `now`."""
    config = {"ops": {"remove_artifacts": {"config": {"retention_days": days, "now": now}}}}
    params = {
        "selector": {**LOCATION, "jobName": "remove_artifacts_job"},
        "runConfigData": config,
    }
    launched = dagster_graphql(stack.dagster_url, LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = dagster_graphql(stack.dagster_url, STATUS, runId=run_id)["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            assert status == "SUCCESS", f"the retention run {run_id} ended {status}"
            return
        time.sleep(0.2)
    raise TimeoutError(f"the retention run {run_id} did not end")


def removed(folder: Path) -> bool:
    """The run's folder is gone from the store."""
    return not folder.exists()


def test_the_schedule_is_in_the_ui_and_running(stack: Stack) -> None:
    selector = {**LOCATION, "scheduleName": "artifact_retention"}
    schedule = dagster_graphql(stack.dagster_url, SCHEDULE, selector=selector)["scheduleOrError"]
    assert schedule["__typename"] == "Schedule", schedule
    assert schedule["cronSchedule"] == "30 3 * * *"
    assert schedule["scheduleState"]["status"] == "RUNNING"


def test_retention_removes_exactly_the_runs_past_it(stack: Stack, api: ApiClient) -> None:
    old = small_run(api, stack, "retention-old")
    recent = small_run(api, stack, "retention-recent")
    make_images(stack.data_root / "retention-busy", 12, size=(1600, 1200))
    busy = api.execute(busy_pipeline("retention-busy")).json()["run_id"]
    deadline = time.monotonic() + 60
    while api.run(busy)["instructions"][0]["status"] != "succeeded":
        assert time.monotonic() < deadline, "the busy run never got going"
        time.sleep(0.1)
    folders = {run: stack.artifact_root / run for run in (old["run_id"], recent["run_id"], busy)}
    assert all(folder.is_dir() for folder in folders.values())

    # As if a day had passed since a moment between the two ended runs: only `old` is past.
    between = (old["ended_at"] + recent["created_at"]) / 2
    retention(stack, now=between + DAY_S)

    assert removed(folders[old["run_id"]])
    assert folders[recent["run_id"]].is_dir()
    assert folders[busy].is_dir()
    gone = api.http.get(f"/runs/{old['run_id']}/results")
    assert gone.status_code == 410, gone.text
    assert gone.json()["error"] == "artifacts_removed"
    assert api.http.get(f"/runs/{recent['run_id']}/results").status_code == 200
    assert api.run(old["run_id"])["status"] == "SUCCESS", "the run's record stays"
    assert (stack.data_root / "retention-old").is_dir(), "imported files are never removed"

    # Years later, while `busy` still runs: every ended run goes, the running one stays.
    assert api.run(busy)["status"] == "STARTED"
    retention(stack, now=time.time() + 1000 * DAY_S)
    assert api.run(busy)["status"] == "STARTED", "the busy run ran throughout"

    assert removed(folders[recent["run_id"]])
    assert folders[busy].is_dir()
    api.http.post(f"/runs/{busy}/cancel")
    api.wait(busy, timeout=60)


def test_delete_removes_one_ended_runs_artifacts(stack: Stack, api: ApiClient) -> None:
    done = small_run(api, stack, "delete-now")
    folder = stack.artifact_root / done["run_id"]
    assert folder.is_dir()

    response = api.http.delete(f"/runs/{done['run_id']}/artifacts", timeout=150)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["run_id"] == done["run_id"]
    assert body["artifacts"] == "removed"
    assert body["removal_run_id"]
    assert removed(folder)
    gone = api.http.get(f"/runs/{done['run_id']}/results")
    assert gone.status_code == 410
    assert gone.json()["message"].startswith(
        f"the artifacts of run {done['run_id']!r} were removed"
    )
    again = api.http.delete(f"/runs/{done['run_id']}/artifacts")
    assert (again.status_code, again.json()["removal_run_id"]) == (200, None)
    assert done["run_id"] in api.run_ids(), "the removal run is not listed as a pipeline run"
    assert body["removal_run_id"] not in api.run_ids()


def test_delete_refuses_a_running_run_and_an_unknown_one(stack: Stack, api: ApiClient) -> None:
    make_images(stack.data_root / "delete-busy", 12, size=(1600, 1200))
    busy = api.execute(busy_pipeline("delete-busy")).json()["run_id"]
    deadline = time.monotonic() + 60
    while api.run(busy)["instructions"][0]["status"] != "succeeded":
        assert time.monotonic() < deadline, "the busy run never got going"
        time.sleep(0.1)

    refused = api.http.delete(f"/runs/{busy}/artifacts")

    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "run_not_ended"
    assert refused.json()["message"].startswith(f"run {busy!r} is STARTED: its artifacts can be")
    assert (stack.artifact_root / busy).is_dir()
    api.http.post(f"/runs/{busy}/cancel")
    api.wait(busy, timeout=60)
    missing = api.http.delete("/runs/no-such-run/artifacts")
    assert missing.status_code == 404
    unauthorized = api.http.delete(f"/runs/{busy}/artifacts", headers={"Authorization": ""})
    assert unauthorized.status_code == 401
