"""The core, end to end: instructions in through the API, a real Dagster run out."""

from __future__ import annotations

import io
import time
import uuid

import httpx
import pytest
from PIL import Image

from stack import Stack
from testkit.dagster_stack import API_KEY, ApiClient, make_images, slow_resize

pytestmark = pytest.mark.integration


def local_images_pipeline(folder: str, batch_size: int = 2) -> dict:
    return {
        "instructions": [
            {
                "operation": "batch_formatted_data",
                "parameters": {
                    "batch_size": batch_size,
                    "data": {
                        "operation": "dict_to_list",
                        "parameters": {
                            "data": {
                                "operation": "resize_image",
                                "parameters": {
                                    "width": 32,
                                    "height": 24,
                                    "data": {
                                        "operation": "import_from_local",
                                        "parameters": {"path": folder},
                                    },
                                },
                            }
                        },
                    },
                },
            },
            {"operation": "import_from_local", "parameters": {"path": folder}},
        ]
    }


def test_multi_operation_pipeline_succeeds(stack: Stack, api: ApiClient) -> None:
    make_images(stack.data_root / "five", 5)
    response = api.execute(local_images_pipeline("five"))
    assert response.status_code == 201, response.text
    run_id = response.json()["run_id"]

    detail = api.wait(run_id)

    assert detail["status"] == "SUCCESS", detail
    assert detail["error"] is None
    first, second = detail["instructions"]
    assert first["status"] == "succeeded" and second["status"] == "succeeded"
    assert [s["operation"] for s in first["steps"]] == [
        "import_from_local",
        "resize_image",
        "dict_to_list",
    ]
    assert all(s["status"] == "succeeded" and s["duration_s"] >= 0 for s in first["steps"])
    assert first["started_at"] <= second["started_at"], "top-level instructions run in order"
    assert first["output"]["batch_sizes"] == [2, 2, 1]

    results = api.http.get(f"/runs/{run_id}/results").json()
    assert results["complete"] is True
    batches, imported = results["results"]
    assert batches["output"]["batch_sizes"] == [2, 2, 1]
    assert imported["output"]["count"] == 5
    assert imported["output"]["items"] == [f"img-{i:03d}.jpg" for i in range(5)]
    items = api.http.get(f"/runs/{run_id}/results/0/items").json()["items"]
    assert [item["name"] for item in items] == [f"img-{i:03d}.jpg" for i in range(5)]
    first_item = api.http.get(f"/runs/{run_id}/results/0/items/{items[0]['name']}")
    assert first_item.status_code == 200 and first_item.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(first_item.content)) as image:
        assert image.size == (32, 24)


def test_failure_skips_later_instructions_and_reports_first_error(
    stack: Stack, api: ApiClient
) -> None:
    make_images(stack.data_root / "two", 2)
    document = {
        "instructions": [
            {"operation": "import_from_local", "parameters": {"path": "two"}},
            {"operation": "import_from_local", "parameters": {"path": "no-such-folder"}},
            {"operation": "import_from_local", "parameters": {"path": "two"}},
        ]
    }
    run_id = api.execute(document).json()["run_id"]

    detail = api.wait(run_id)

    assert detail["status"] == "FAILURE"
    assert [i["status"] for i in detail["instructions"]] == ["succeeded", "failed", "skipped"]
    assert detail["error"] == (
        "instructions[1] (import_from_local): path 'no-such-folder' does not exist under the "
        "data root"
    )


def test_path_outside_data_root_is_refused(stack: Stack, api: ApiClient) -> None:
    document = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "../"}}]}
    response = api.execute(document)  # refused by its name, before any run
    assert response.status_code == 422
    assert response.json()["problems"][0]["path"] == "instructions[0].parameters.path"
    link = stack.data_root / "leads-out"  # a link is followed only when the run reads it
    if not link.is_symlink():
        link.symlink_to(stack.workdir)
    document = {
        "instructions": [{"operation": "import_from_local", "parameters": {"path": link.name}}]
    }
    detail = api.wait(api.execute(document).json()["run_id"])
    assert detail["status"] == "FAILURE"
    assert "resolves outside the data root" in detail["error"]


def test_invalid_instructions_get_422_with_every_problem_and_no_run(
    stack: Stack, api: ApiClient
) -> None:
    before = api.run_ids()
    document = {
        "instructions": [
            {"operation": "dict_to_lst", "parameters": {}},
            {"operation": "resize_image", "parameters": {"width": "wide", "data": 3}},
        ]
    }
    response = api.execute(document)

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_instructions"
    paths = [p["path"] for p in body["problems"]]
    assert paths == [
        "instructions[0].operation",
        "instructions[1].parameters.data",
        "instructions[1].parameters.width",
    ]
    assert "did you mean 'dict_to_list'?" in body["problems"][0]["message"]
    assert api.run_ids() == before, "an invalid request must not create a run"


def test_unknown_run_is_404(api: ApiClient) -> None:
    for path in (f"/runs/{uuid.uuid4()}", f"/runs/{uuid.uuid4()}/results"):
        response = api.http.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "run_not_found"
    assert api.http.post(f"/runs/{uuid.uuid4()}/cancel").status_code == 404


def test_cancel_stops_a_running_pipeline(stack: Stack, api: ApiClient) -> None:
    make_images(stack.data_root / "big", 30, size=(1920, 1080))
    step = slow_resize("big")
    run_id = api.execute({"instructions": [step] * 40}).json()["run_id"]
    deadline = time.monotonic() + 60
    while api.run(run_id)["instructions"][0]["status"] != "succeeded":
        assert time.monotonic() < deadline, "the first instruction never finished"
        time.sleep(0.1)

    response = api.http.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 202, response.text
    canceled_at = time.monotonic()
    detail = api.wait(run_id, timeout=60)

    assert detail["status"] == "CANCELED"
    assert time.monotonic() - canceled_at < 20
    statuses = [i["status"] for i in detail["instructions"]]
    assert statuses[0] == "succeeded"
    assert statuses[-1] == "canceled", statuses
    again = api.http.post(f"/runs/{run_id}/cancel")
    assert again.status_code == 409


def test_idempotency_key_returns_the_same_run(stack: Stack, api: ApiClient) -> None:
    make_images(stack.data_root / "one", 1)
    document = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "one"}}]}
    key = {"Idempotency-Key": f"test-{uuid.uuid4()}"}
    first = api.execute(document, headers=key)
    second = api.execute(document, headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json()["run_id"] == second.json()["run_id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    other = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "two"}}]}
    assert api.execute(other, headers=key).status_code == 409


def test_runs_are_listed_and_filterable(stack: Stack, api: ApiClient) -> None:
    make_images(stack.data_root / "one", 1)
    document = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "one"}}]}
    run_id = api.execute(document).json()["run_id"]
    api.wait(run_id)
    listed = api.http.get("/runs", params={"status": "SUCCESS", "limit": 100}).json()["runs"]
    assert run_id in [r["run_id"] for r in listed]
    assert all(r["status"] == "SUCCESS" for r in listed)


def test_requests_without_a_valid_key_are_refused(stack: Stack) -> None:
    assert httpx.get(f"{stack.api_url}/operations").status_code == 401
    wrong = {"Authorization": "Bearer " + "x" * len(API_KEY)}
    assert httpx.get(f"{stack.api_url}/operations", headers=wrong).status_code == 401
    assert httpx.get(f"{stack.api_url}/healthz").status_code == 200


@pytest.mark.parametrize("name", ["local-images", "local-import"])
def test_local_samples_run_end_to_end(stack: Stack, api: ApiClient, name: str) -> None:
    from orchestrator.samples import load_samples
    from stack.__main__ import seed_examples

    seed_examples(stack.data_root)
    detail = api.wait(api.execute(load_samples()[name].document).json()["run_id"])
    assert detail["status"] == "SUCCESS", detail
    assert all(i["status"] == "succeeded" for i in detail["instructions"])
