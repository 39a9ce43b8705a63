"""Faults on the real stack: Dagster down, retried and concurrent submissions, API restarts."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from stack import Stack
from testkit.dagster_stack import ApiClient, make_images

pytestmark = pytest.mark.integration

DOCUMENT = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "faults"}}]}


def test_dagster_down_is_503_and_the_retry_creates_exactly_one_run(
    stack: Stack, api: ApiClient
) -> None:
    make_images(stack.data_root / "faults", 1)
    key = {"Idempotency-Key": f"down-{uuid.uuid4()}"}
    before = api.run_ids()
    stack.services["webserver"].stop()
    try:
        response = api.execute(DOCUMENT, headers=key)
        assert response.status_code == 503
        assert "cannot be reached" in response.json()["message"]
        assert api.http.get("/readyz").status_code == 503
    finally:
        stack.restart("webserver")
        stack.wait_api_ready()
    first = api.execute(DOCUMENT, headers=key)
    second = api.execute(DOCUMENT, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json()["run_id"] == second.json()["run_id"]
    assert api.run_ids() - before == {first.json()["run_id"]}
    assert api.wait(first.json()["run_id"])["status"] == "SUCCESS"


def test_concurrent_duplicates_make_one_run(stack: Stack, api: ApiClient) -> None:
    make_images(stack.data_root / "faults", 1)
    key = {"Idempotency-Key": f"dup-{uuid.uuid4()}"}
    before = api.run_ids()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: api.execute(DOCUMENT, headers=key), range(8)))
    assert {r.status_code for r in responses} == {201}
    run_ids = {r.json()["run_id"] for r in responses}
    assert len(run_ids) == 1
    assert api.run_ids() - before == run_ids


def test_the_key_survives_an_api_restart(stack: Stack, api: ApiClient) -> None:
    make_images(stack.data_root / "faults", 1)
    key = {"Idempotency-Key": f"restart-{uuid.uuid4()}"}
    first = api.execute(DOCUMENT, headers=key).json()["run_id"]
    stack.restart("api")
    again = api.execute(DOCUMENT, headers=key)
    assert again.status_code == 201
    assert again.json()["run_id"] == first
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.wait(first)["status"] == "SUCCESS"
