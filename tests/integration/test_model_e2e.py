"""The seed pipeline through the API and a real Dagster run, against a real MLServer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from stack import Stack
from testkit.dagster_stack import ApiClient

pytestmark = pytest.mark.integration

MODEL = "testkit/fire-8x8"  # raw [N, 8, 8, 3] UINT8 under a hub-style name (mlserver_models.py)
SERVED = "testkit--fire-8x8"


def seed_pipeline(model: str, folder: str) -> dict:
    data = {
        "operation": "dict_to_list",
        "parameters": {"data": {"operation": "import_from_local", "parameters": {"path": folder}}},
    }
    return {
        "instructions": [
            {"operation": "deploy_model", "parameters": {"model": model}},
            {"operation": "model_inference", "parameters": {"model": model, "data": data}},
            {"operation": "delete_model", "parameters": {"model": model}},
        ]
    }


def submit(stack: Stack, document: dict) -> dict:
    api = ApiClient(stack)
    try:
        response = api.execute(document)
        assert response.status_code == 201, response.text
        return api.wait(response.json()["run_id"], timeout=120)
    finally:
        api.http.close()


def test_seed_pipeline_through_the_api(model_stack, mlserver, tmp_path):
    folder = model_stack.data_root / "fire-8x8-photos"
    folder.mkdir(parents=True)
    images = np.random.default_rng(11).integers(0, 255, (6, 8, 8, 3), dtype=np.uint8)
    images[:3, :, :, 0] = 250
    for index, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{index:02d}.png")

    detail = submit(model_stack, seed_pipeline(MODEL, "fire-8x8-photos"))

    assert detail["status"] == "SUCCESS", detail
    assert [i["status"] for i in detail["instructions"]] == ["succeeded"] * 3
    file = model_stack.artifact_root / detail["run_id"] / "001-model_inference/predictions.jsonl"
    records = [json.loads(line) for line in file.read_text().splitlines()]
    expected = mlserver.predict_locally(SERVED, images, tmp_path)
    assert [r["name"] for r in records] == [f"{i:02d}.png" for i in range(6)]
    assert [r["outputs"]["predict"] for r in records] == [[label] for label in expected]
    assert mlserver.index()[SERVED] != "READY"


def test_a_failed_inference_fails_the_run_and_still_unloads(model_stack, mlserver):
    folder = model_stack.data_root / "short-rows"
    folder.mkdir(parents=True)
    (folder / "row.json").write_text("[1.0, 2.0]")  # iris takes 4 features

    detail = submit(model_stack, seed_pipeline("iris", "short-rows"))

    assert detail["status"] == "FAILURE", detail
    assert [i["status"] for i in detail["instructions"]] == ["succeeded", "failed", "succeeded"]
    assert detail["error"].startswith("instructions[1] (model_inference): ")
    assert "the model raised on this input" in detail["error"]
    assert mlserver.index()["iris"] != "READY"


def test_a_canceled_run_still_deletes_its_model(model_stack, mlserver):
    """Cancel while the pipeline runs: it stops within seconds, delete_model still runs."""
    import time

    from testkit.dagster_stack import make_images, slow_resize

    make_images(model_stack.data_root / "cancel-big", 20, size=(1920, 1080))
    slow = slow_resize("cancel-big")
    document = {
        "instructions": [
            {"operation": "deploy_model", "parameters": {"model": "iris"}},
            *[slow] * 40,
            {"operation": "delete_model", "parameters": {"model": "iris"}},
        ]
    }
    api = ApiClient(model_stack)
    try:
        run_id = api.execute(document).json()["run_id"]
        deadline = time.monotonic() + 120
        while api.run(run_id)["instructions"][1]["status"] != "succeeded":
            assert time.monotonic() < deadline, "the pipeline never got going"
            time.sleep(0.2)
        assert mlserver.index()["iris"] == "READY"

        assert api.http.post(f"/runs/{run_id}/cancel").status_code == 202
        canceled_at = time.monotonic()
        detail = api.wait(run_id, timeout=60)
    finally:
        api.http.close()

    assert detail["status"] == "CANCELED"
    assert time.monotonic() - canceled_at < 20
    statuses = [i["status"] for i in detail["instructions"]]
    assert statuses[0] == "succeeded" and "canceled" in statuses[2:-1]
    assert statuses[-1] == "succeeded", "delete_model is a cleanup operation"
    assert mlserver.index()["iris"] != "READY"
