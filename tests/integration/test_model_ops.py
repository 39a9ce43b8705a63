"""Model operations against a real MLServer, run through the plan executor."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.connectors.model_server import ModelServerClient
from orchestrator.context import Services
from orchestrator.events import InstructionEvent
from orchestrator.execution import RunOutcome, run_plan
from orchestrator.operations import CATALOG
from orchestrator.resources import ModelServerResource
from testkit.mlserver import MLServer

pytestmark = pytest.mark.integration

TINY_FIRE_MODEL = "testkit/fire-8x8"  # raw [N, 8, 8, 3] UINT8 (mlserver_models.py)


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(autouse=True)
def no_model_left_loaded(mlserver: MLServer):
    yield
    mlserver.unload_all()


def run(
    server: MLServer,
    data_root: Path,
    instructions: list[dict],
    emit: Callable[[InstructionEvent], None] = lambda event: None,
    **config: float,
) -> RunOutcome:
    client = ModelServerClient(ModelServerResource(url=server.url, **config))
    services = Services(
        artifacts=LocalStore(data_root.parent / "artifacts"),
        data_root=data_root,
        model_server=client,
    )
    plan = validate({"instructions": instructions}, CATALOG)
    with services:
        return run_plan(plan, CATALOG, services, "run1", emit=emit)


def seed_pipeline(model: str, folder: str, **inference: object) -> list[dict]:
    """The seed's three steps, with the data imported from the local data root."""
    data = {
        "operation": "dict_to_list",
        "parameters": {"data": {"operation": "import_from_local", "parameters": {"path": folder}}},
    }
    return [
        {"operation": "deploy_model", "parameters": {"model": model}},
        {"operation": "model_inference", "parameters": {"model": model, "data": data, **inference}},
        {"operation": "delete_model", "parameters": {"model": model}},
    ]


def write_iris_rows(folder: Path, count: int, features: int = 4) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    rows = np.random.default_rng(3).uniform(0.1, 7.9, (count, features)).round(2)
    for i, row in enumerate(rows):
        (folder / f"{i:04d}.json").write_text(json.dumps(row.tolist()))
    return rows


def records(outcome: RunOutcome) -> list[dict]:
    file = outcome.values["instructions[1]"].file
    return [json.loads(line) for line in file.read_text().splitlines()]


def test_seed_pipeline_predicts_what_the_model_itself_predicts(mlserver, data_root, tmp_path):
    rows = write_iris_rows(data_root / "iris", 150)
    outcome = run(mlserver, data_root, seed_pipeline("iris", "iris", batch_size=32))

    assert outcome.succeeded, outcome.first_error
    expected = mlserver.predict_locally("iris", rows, tmp_path)
    got = records(outcome)
    assert [r["name"] for r in got] == [f"{i:04d}.json" for i in range(150)]
    assert [r["outputs"]["predict"] for r in got] == [[label] for label in expected]
    deployed, predictions, deleted = (r.output for r in outcome.results)
    assert deployed["served_name"] == "iris" and deployed["version"] == "v1"
    assert predictions["count"] == 150 and predictions["requests"] == 5
    assert predictions["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [1]}]
    assert deleted["state"] == "unloaded"
    assert mlserver.index()["iris"] != "READY"


def test_images_under_a_hub_style_name(mlserver, data_root, tmp_path):
    folder = data_root / "photos"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    images = rng.integers(0, 255, (12, 8, 8, 3), dtype=np.uint8)
    images[:6, :, :, 0] = 250  # red: fire
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"photo{i:02d}.png")

    outcome = run(mlserver, data_root, seed_pipeline(TINY_FIRE_MODEL, "photos", batch_size=5))

    assert outcome.succeeded, outcome.first_error
    assert outcome.results[0].output["served_name"] == "testkit--fire-8x8"
    expected = mlserver.predict_locally("testkit--fire-8x8", images, tmp_path)
    assert [r["outputs"]["predict"] for r in records(outcome)] == [[p] for p in expected]
    assert expected[:6] == [1] * 6
    assert mlserver.index()["testkit--fire-8x8"] != "READY"


def test_a_failed_inference_still_unloads_and_the_run_reports_the_inference(mlserver, data_root):
    write_iris_rows(data_root / "iris", 10, features=3)  # iris takes 4 features
    outcome = run(mlserver, data_root, seed_pipeline("iris", "iris"))

    assert [r.status for r in outcome.results] == ["succeeded", "failed", "succeeded"]
    assert outcome.first_error.startswith("instructions[1] (model_inference): ")
    assert "tensor 'input-0' [10, 3] FP64" in outcome.first_error
    assert "the model raised on this input" in outcome.first_error
    assert outcome.results[2].output["state"] == "unloaded"
    assert mlserver.index()["iris"] != "READY"


def test_a_model_missing_from_the_repository_fails_at_once(mlserver, data_root):
    started = time.monotonic()
    outcome = run(mlserver, data_root, [seed_pipeline("no-such-model", "x")[0]])
    assert "does not know this model" in outcome.first_error
    assert "Model no-such-model not found" in outcome.first_error
    assert time.monotonic() - started < 5


def test_server_stopped_mid_run_retries_then_fails_clearly_and_recovers(own_mlserver, data_root):
    write_iris_rows(data_root / "iris", 20)

    def stop_after_deploy(event: InstructionEvent) -> None:
        if event.operation == "deploy_model" and event.kind == "succeeded":
            own_mlserver.stop()

    started = time.monotonic()
    outcome = run(
        own_mlserver,
        data_root,
        seed_pipeline("iris", "iris"),
        emit=stop_after_deploy,
        max_attempts=3,
        backoff_s=0.1,
    )
    assert time.monotonic() - started < 20
    assert [r.status for r in outcome.results] == ["succeeded", "failed", "failed"]
    error = outcome.first_error
    assert error.startswith("instructions[1] (model_inference): ")
    assert f"model 'iris' on model server {own_mlserver.url}" in error
    assert "after 3 attempts" in error and "ConnectError" in error

    # A server that comes back while the client is still retrying is simply used.
    restart = threading.Timer(0.5, own_mlserver.start)
    restart.start()
    try:
        recovered = run(
            own_mlserver,
            data_root,
            seed_pipeline("iris", "iris"),
            max_attempts=40,
            backoff_s=0.25,
            max_backoff_s=0.25,
        )
    finally:
        restart.join()
    assert recovered.succeeded, recovered.first_error
    assert len(records(recovered)) == 20
