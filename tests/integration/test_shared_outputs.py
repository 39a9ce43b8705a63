"""Sharing an output through the API on a real Dagster: one import feeds two consumers and
runs once; GET /runs/{id} shows it once, with its id, and the consumers' refs."""

from __future__ import annotations

from typing import Any

import pytest

from stack import Stack
from testkit.dagster_stack import ApiClient, make_images, run_messages

pytestmark = pytest.mark.integration


def shared_import(folder: str) -> dict[str, Any]:
    photos = {"ref": "photos"}
    return {
        "instructions": [
            {"id": "photos", "operation": "import_from_local", "parameters": {"path": folder}},
            {
                "operation": "resize_image",
                "parameters": {"width": 16, "height": 12, "data": photos},
            },
            {
                "operation": "batch_formatted_data",
                "parameters": {
                    "batch_size": 2,
                    "data": {"operation": "dict_to_list", "parameters": {"data": photos}},
                },
            },
        ]
    }


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_one_import_feeds_two_consumers_and_runs_once(stack: Stack, api: ApiClient) -> None:
    make_images(stack.data_root / "shared", 3)
    document = shared_import("shared")
    planned = api.http.post("/validate", json=document)
    assert planned.status_code == 200, planned.text
    assert planned.json()["instructions"][1]["inputs"] == {
        "data": {"ref": "photos", "path": "instructions[0]"}
    }

    run_id = api.execute(document).json()["run_id"]
    detail = api.wait(run_id)

    assert detail["status"] == "SUCCESS", detail
    shared, resized, batched = detail["instructions"]
    assert (shared["path"], shared["id"], shared["status"]) == (
        "instructions[0]",
        "photos",
        "succeeded",
    )
    assert shared["output"]["count"] == 3
    link = {"path": "instructions[0]", "ref": "photos"}
    assert resized["inputs"] == {"data": link} and resized["steps"] == []
    (to_list,) = batched["steps"]
    assert (to_list["operation"], to_list["inputs"]) == ("dict_to_list", {"data": link})
    assert batched["output"]["batch_sizes"] == [2, 1]
    every_path = [s["path"] for i in detail["instructions"] for s in [i, *i["steps"]]]
    assert every_path.count("instructions[0]") == 1, "the shared import is shown once"

    messages = run_messages(stack.dagster_url, run_id)
    started = [m for m in messages if m.startswith("instructions[0] import_from_local started")]
    assert len(started) == 1, "the shared import ran once"
    plan = next(m for m in messages if "constellation-plan: " in m)
    assert '"photos"' in plan and '{"ref":"instructions[0]"}' in plan
    folders = sorted(p.name for p in (stack.artifact_root / run_id).iterdir() if p.is_dir())
    assert [f for f in folders if f.endswith("-import_from_local")] == ["000-import_from_local"]


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_a_failing_shared_import_fails_both_consumers(stack: Stack, api: ApiClient) -> None:
    run_id = api.execute(shared_import("no-such-folder")).json()["run_id"]
    detail = api.wait(run_id)

    assert detail["status"] == "FAILURE"
    error = (
        "instructions[0] (import_from_local): path 'no-such-folder' does not exist under the "
        "data root"
    )
    assert [(i["status"], i["error"]) for i in detail["instructions"]] == [("failed", error)] * 3
    assert detail["error"] == error


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_refs_that_do_not_resolve_are_refused_with_their_paths(api: ApiClient) -> None:
    document = shared_import("shared")
    document["instructions"][1]["parameters"]["data"] = {"ref": "fotos"}
    document["instructions"][2]["id"] = "photos"
    response = api.execute(document)
    assert response.status_code == 422
    assert [(p["path"], p["message"]) for p in response.json()["problems"]] == [
        ("instructions[2].id", "duplicate id 'photos': instructions[0] has it too"),
        ("instructions[1].parameters.data.ref", "unknown id 'fotos'; did you mean 'photos'?"),
    ]
