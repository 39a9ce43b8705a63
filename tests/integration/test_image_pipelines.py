"""The image samples end to end on real V2 servers: fire-detection-local and compare-models
through the API on a real Dagster run against MLServer, model_inference against KServe with
binary tensors, and a model that cannot be fitted refused before any request."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.catalog.values import Predictions
from orchestrator.connectors.model_server import ModelServerClient
from orchestrator.context import Services
from orchestrator.execution import RunOutcome, run_plan
from orchestrator.operations import CATALOG
from orchestrator.resources import ModelServerResource
from orchestrator.samples import load_samples
from stack import Stack
from stack.__main__ import FIRE_LABELS, FIRE_PHOTOS
from testkit import image_models
from testkit.dagster_stack import ApiClient
from testkit.kserve import KServe
from testkit.mlserver import MLServer
from testkit.photos import PhotoSet

pytestmark = pytest.mark.integration

SAMPLES = load_samples()


@pytest.fixture(scope="module")
def fire_photos(model_stack: Stack, photos: PhotoSet) -> PhotoSet:
    """The photos where the samples look for them: DATA_ROOT/fire-photos, fire-labels.csv."""
    folder = model_stack.data_root / FIRE_PHOTOS
    folder.mkdir(parents=True, exist_ok=True)
    for path in photos.paths:
        shutil.copy(path, folder / path.name)
    labels = model_stack.data_root / FIRE_LABELS
    shutil.copy(photos.labels_file, labels)
    return PhotoSet(folder, photos.labels, labels)


@pytest.fixture
def api(model_stack: Stack) -> Iterator[ApiClient]:
    client = ApiClient(model_stack)
    yield client
    client.http.close()


def submit(api: ApiClient, document: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run `document` through the API: the run's detail and its results, once it ended."""
    response = api.execute(document)
    assert response.status_code == 201, response.text
    detail = api.wait(response.json()["run_id"], timeout=300)
    results = api.http.get(f"/runs/{detail['run_id']}/results")
    results.raise_for_status()
    return detail, results.json()


def records(file: Path) -> dict[str, dict[str, Any]]:
    lines = file.read_text().splitlines()
    return {record["name"]: record for record in map(json.loads, lines)}


def output_of(results: dict[str, Any], operation: str) -> list[dict[str, Any]]:
    return [
        r["output"] | {"path": r["path"]} for r in results["results"] if r["operation"] == operation
    ]


def test_the_fire_detection_sample_on_mixed_size_photos(
    api: ApiClient, mlserver: MLServer, fire_photos: PhotoSet
) -> None:
    detail, results = submit(api, json.loads(SAMPLES["fire-detection-local"].text))

    assert detail["status"] == "SUCCESS", detail
    (predictions,) = output_of(results, "model_inference")
    predicted = api.predictions(detail["run_id"], predictions["path"])
    assert sorted(predicted) == sorted(fire_photos.labels), "one record per photo"
    for name, record in predicted.items():
        label = image_models.LABELS[int(np.argmax(record["outputs"]["logits"]))]
        assert label == image_models.predict_vit(fire_photos.folder / name).label, name
    assert mlserver.index()[image_models.FIRE_DETECTION_MODEL] != "READY", "deleted at the end"


def test_the_compare_models_sample_reports_on_both_models(
    api: ApiClient, model_stack: Stack, mlserver: MLServer, fire_photos: PhotoSet
) -> None:
    detail, results = submit(api, SAMPLES["compare-models"].document)
    run_id = detail["run_id"]

    assert detail["status"] == "SUCCESS", detail
    every_path = [s["path"] for i in detail["instructions"] for s in [i, *i["steps"]]]
    assert every_path.count("instructions[0]") == 1, "the shared import ran once"
    vit, uint8 = output_of(results, "model_inference")
    vit_records = api.predictions(run_id, vit["path"])
    uint8_records = api.predictions(run_id, uint8["path"])
    (resized,) = (model_stack.artifact_root / detail["run_id"]).glob("*-resize_image")
    for name in fire_photos.labels:
        photo = fire_photos.folder / name
        assert vit_records[name]["label"] == image_models.predict_vit(photo).label, name
        # uint8-fire was fed resize_image's output: the reference runs on those files
        assert (
            uint8_records[name]["label"]
            == image_models.predict_uint8(resized / "files" / name).label
        )

    (comparison,) = output_of(results, "compare_predictions")
    accuracy = {
        model: sum(r[n]["label"] == t for n, t in fire_photos.labels.items()) / len(r)
        for model, r in (("vit-fire", vit_records), ("uint8-fire", uint8_records))
    }
    assert {m["model"]: m["accuracy"] for m in comparison["models"]} == accuracy
    assert comparison["labelled"] == len(fire_photos.labels)
    report = api.content(run_id, comparison["path"], "report").decode()
    assert "uint8-fire" in report and "http" not in report
    loaded = mlserver.index()
    assert loaded["vit-fire"] != "READY" and loaded["uint8-fire"] != "READY"


class Recording(httpx.HTTPTransport):
    """The real transport, noting each request's method and path (what the server was asked)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        return super().handle_request(request)


def run_locally(
    document: dict[str, Any], url: str, data_root: Path, artifacts: Path, **client: Any
) -> tuple[RunOutcome, ModelServerClient]:
    """The document run as a Dagster run runs it, in this process, against the server at url."""
    plan = validate(document, CATALOG)
    server = ModelServerClient(ModelServerResource(url=url), **client)
    services = Services(LocalStore(artifacts), data_root=data_root, model_server=server)
    return run_plan(plan, CATALOG, services, "local-run", emit=lambda event: None), server


def inference(model: str, **parameters: Any) -> dict[str, Any]:
    data = {"operation": "import_from_local", "parameters": {"path": "photos"}}
    step = {"model": model, "data": data, **parameters}
    return {"instructions": [{"operation": "model_inference", "parameters": step}]}


@pytest.fixture
def photo_root(photos: PhotoSet, tmp_path: Path) -> Path:
    """A data root holding the photos (without their labels.csv) under photos/."""
    folder = tmp_path / "data" / "photos"
    folder.mkdir(parents=True)
    for path in photos.paths:
        shutil.copy(path, folder / path.name)
    return folder.parent


def test_inference_on_kserve_sends_binary_tensors(
    kserve: KServe, photos: PhotoSet, photo_root: Path, tmp_path: Path
) -> None:
    document = inference("vit-fire", labels=list(image_models.LABELS), softmax=True)
    outcome, server = run_locally(document, kserve.url, photo_root, tmp_path / "artifacts")

    assert outcome.status == "SUCCESS", outcome.detail.error
    assert server.binary_tensors is True
    predictions = outcome.values["instructions[0]"]
    assert isinstance(predictions, Predictions)
    predicted = records(Path(predictions.root) / predictions.path)
    assert sorted(predicted) == sorted(photos.labels)
    for name, record in predicted.items():
        expected = image_models.predict_vit(photos.folder / name)
        assert record["label"] == expected.label, name
        # model_inference resizes its own way (JPEG draft mode): close, not bit-equal
        assert record["score"] == pytest.approx(expected.score, abs=0.01)


def test_a_model_that_cannot_be_fitted_is_refused_before_any_request(
    mlserver: MLServer, photo_root: Path, tmp_path: Path
) -> None:
    mlserver.load("uint8-fire")
    recording = Recording()
    try:
        document = inference("uint8-fire", normalize="imagenet")
        outcome, _ = run_locally(
            document, mlserver.url, photo_root, tmp_path / "artifacts", transport=recording
        )
    finally:
        httpx.post(f"{mlserver.url}/v2/repository/models/uint8-fire/unload", timeout=10)

    assert outcome.status == "FAILURE"
    error = outcome.detail.error or ""
    assert "UINT8" in error and "[-1, -1, -1, 3]" in error, error
    assert "normalize imagenet" in error, error
    assert not [r for r in recording.requests if r.endswith("/infer")], recording.requests
    assert "GET /v2/models/uint8-fire" in recording.requests, "the metadata was read"


@pytest.mark.parametrize("binary_tensors", ["auto", "never"])
def test_a_bytes_model_on_mlserver_gets_the_encoded_files(
    mlserver: MLServer, photos: PhotoSet, photo_root: Path, tmp_path: Path, binary_tensors: str
) -> None:
    """BYTES [-1]: each photo's file as it is (base64 in JSON: MLServer takes no binary)."""
    mlserver.load("bytes-fire")
    try:
        document = inference("bytes-fire", batch_size=8, concurrency=4)
        plan = validate(document, CATALOG)
        config = ModelServerResource(url=mlserver.url, binary_tensors=binary_tensors)
        services = Services(
            LocalStore(tmp_path / "artifacts"),
            data_root=photo_root,
            model_server=ModelServerClient(config),
        )
        outcome = run_plan(plan, CATALOG, services, "bytes-run", emit=lambda event: None)
    finally:
        httpx.post(f"{mlserver.url}/v2/repository/models/bytes-fire/unload", timeout=10)

    assert outcome.status == "SUCCESS", outcome.detail.error
    predictions = outcome.values["instructions[0]"]
    assert isinstance(predictions, Predictions)
    predicted = records(Path(predictions.root) / predictions.path)
    assert sorted(predicted) == sorted(photos.labels)
    for name, record in predicted.items():
        expected = image_models.predict_bytes(photos.folder / name)
        assert record["outputs"]["label"] == expected.label, (name, record)
