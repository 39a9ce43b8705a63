"""GET /metrics on the real stack: a pipeline run through the API shows up as Prometheus
reads it (its submission, its outcome, its turnaround, each operation's duration), beside
the queue and the Dagster daemons and code location."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stack import Stack
from testkit.dagster_stack import ApiClient, make_images

pytestmark = pytest.mark.integration

OPERATIONS = ("import_from_local", "resize_image", "dict_to_list")
POLL_WAIT_S = 60  # the API polls Dagster every 5 s (metrics_poll_s)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: ApiClient) -> Samples:
    response = api.http.get("/metrics")
    response.raise_for_status()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


def three_operations(folder: str) -> dict[str, object]:
    return {
        "instructions": [
            {
                "operation": "dict_to_list",
                "parameters": {
                    "data": {
                        "operation": "resize_image",
                        "parameters": {
                            "width": 16,
                            "height": 12,
                            "data": {
                                "operation": "import_from_local",
                                "parameters": {"path": folder},
                            },
                        },
                    }
                },
            }
        ]
    }


def test_a_run_through_the_api_shows_in_the_metrics(stack: Stack, api: ApiClient) -> None:
    make_images(stack.data_root / "metered", 3)
    before = scrape(api)  # the session's other tests may have run pipelines already

    response = api.execute(three_operations("metered"))
    assert response.status_code == 201, response.text
    detail = api.wait(response.json()["run_id"])
    assert detail["status"] == "SUCCESS", detail

    ops = "constellation_operation_duration_seconds_count"
    deadline = time.monotonic() + POLL_WAIT_S
    while True:
        after = scrape(api)
        seen = all(
            value(after, ops, operation=op, outcome="succeeded")
            > value(before, ops, operation=op, outcome="succeeded")
            for op in OPERATIONS
        )
        if seen or time.monotonic() > deadline:
            break
        time.sleep(0.5)

    created = {"endpoint": "/execute", "status": "201", "answer": "created"}
    submissions = "constellation_submissions_total"
    assert value(after, submissions, **created) == value(before, submissions, **created) + 1
    runs = "constellation_runs_total"
    assert value(after, runs, status="SUCCESS") >= value(before, runs, status="SUCCESS") + 1
    turnaround = "constellation_run_turnaround_seconds"
    count = value(after, f"{turnaround}_count", status="SUCCESS")
    assert count >= value(before, f"{turnaround}_count", status="SUCCESS") + 1
    took = detail["ended_at"] - detail["created_at"]
    added = value(after, f"{turnaround}_sum", status="SUCCESS") - value(
        before, f"{turnaround}_sum", status="SUCCESS"
    )
    assert added >= took - 1e-6, "this run's turnaround is among the observations"
    for op in OPERATIONS:
        labels = {"operation": op, "outcome": "succeeded"}
        assert value(after, ops, **labels) >= value(before, ops, **labels) + 1, op

    assert value(after, "constellation_dagster_up") == 1
    assert ("constellation_runs_active", frozenset({("status", "QUEUED")})) in after
    location = {"kind": "code_location", "name": "orchestrator"}
    assert value(after, "constellation_worker_up", **location) == 1
    coordinator = {"kind": "dagster_daemon", "name": "QUEUED_RUN_COORDINATOR"}
    assert value(after, "constellation_worker_up", **coordinator) == 1
    beat = value(after, "constellation_worker_last_heartbeat_timestamp_seconds", **coordinator)
    assert time.time() - beat < 120
    celery = {
        labels: up
        for (name, labels), up in after.items()
        if name == "constellation_worker_up" and ("kind", "celery_worker") in labels
    }
    assert celery and all(up == 1 for up in celery.values()), celery  # the warm run worker
