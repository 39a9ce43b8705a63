"""The image-model peers themselves, called directly over V2 REST: MLServer's custom runtimes
and KServe's model server declare what they take, refuse what does not fit, and answer
what the models run directly (testkit.image_models) answer."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from testkit import image_models
from testkit.image_models import LABELS, SIGNATURES
from testkit.kserve import KServe
from testkit.mlserver import RUNTIMES, MLServer
from testkit.photos import PhotoSet

pytestmark = pytest.mark.integration

IMAGE_MODELS = list(RUNTIMES)


@pytest.fixture(scope="module")
def image_server(mlserver: MLServer) -> Iterator[MLServer]:
    """The session's MLServer with the image models loaded for this module."""
    for name in IMAGE_MODELS:
        mlserver.load(name)
    yield mlserver
    mlserver.unload_all()


@pytest.fixture(scope="module")
def vit_inputs(photos: PhotoSet) -> dict[str, np.ndarray]:
    """Each photo preprocessed correctly by hand, once: [1, 3, 224, 224] by file name."""
    return {path.name: image_models.pixel_values(path) for path in photos.paths}


def batch_of(vit_inputs: dict[str, np.ndarray], paths: list[Path]) -> np.ndarray:
    return np.concatenate([vit_inputs[path.name] for path in paths])


def smallest(photos: PhotoSet) -> Path:
    return min(photos.paths, key=lambda path: path.stat().st_size)


def infer(url: str, model: str, inputs: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(f"{url}/v2/models/{model}/infer", json={"inputs": inputs}, timeout=120)


def pixel_input(batch: np.ndarray) -> dict[str, Any]:
    return {
        "name": "pixel_values",
        "datatype": "FP32",
        "shape": list(batch.shape),
        "data": batch.ravel().tolist(),
    }


def output(answer: httpx.Response, name: str) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    tensor = next(o for o in answer.json()["outputs"] if o["name"] == name)
    return np.array(tensor["data"]).reshape(tensor["shape"])


def vit_labels(logits: np.ndarray) -> list[str]:
    return [LABELS[i] for i in logits.argmax(axis=1)]


def right_answers(labels: list[str], photos: PhotoSet) -> int:
    truth = [photos.labels[path.name] for path in photos.paths]
    return sum(got == want for got, want in zip(labels, truth, strict=True))


def wrongly_scaled(right: np.ndarray) -> np.ndarray:
    """The ViT input without the ImageNet mean/std: [0, 1] only."""
    mean = image_models.IMAGENET_MEAN[:, None, None]
    return right * image_models.IMAGENET_STD[:, None, None] + mean


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_mlserver_models_declare_their_inputs_and_outputs(image_server, model):
    metadata = httpx.get(f"{image_server.url}/v2/models/{model}", timeout=10).json()

    assert metadata["inputs"] == SIGNATURES[model]["inputs"]
    assert metadata["outputs"] == SIGNATURES[model]["outputs"]


def test_the_seed_pipelines_model_is_vit_shaped(image_server):
    metadata = httpx.get(f"{image_server.url}/v2/models/EdBianchi--vit-fire-detection").json()

    assert metadata["inputs"] == [
        {"name": "pixel_values", "datatype": "FP32", "shape": [-1, 3, 224, 224]}
    ]
    assert metadata["outputs"] == [{"name": "logits", "datatype": "FP32", "shape": [-1, 2]}]


@pytest.mark.parametrize("model", image_models.VIT_MODELS)
def test_vit_on_mlserver_answers_what_the_model_answers_directly(
    image_server, photos, vit_inputs, model
):
    paths = photos.paths[:6]
    batch = batch_of(vit_inputs, paths)

    logits = output(infer(image_server.url, model, [pixel_input(batch)]), "logits")

    np.testing.assert_allclose(logits, image_models.vit_logits(batch), rtol=1e-5, atol=1e-5)
    assert vit_labels(logits) == [image_models.predict_vit(path).label for path in paths]


def test_vit_on_mlserver_is_right_on_photos_when_preprocessed_correctly(
    image_server: MLServer, photos: PhotoSet, vit_inputs: dict[str, np.ndarray]
):
    labels: list[str] = []
    for start in range(0, len(photos.paths), 8):
        batch = batch_of(vit_inputs, photos.paths[start : start + 8])
        answer = infer(image_server.url, "EdBianchi--vit-fire-detection", [pixel_input(batch)])
        labels += vit_labels(output(answer, "logits"))

    assert right_answers(labels, photos) >= 0.9 * len(photos.paths)


def test_vit_gives_wrong_answers_without_imagenet_normalisation(image_server, photos, vit_inputs):
    batch = wrongly_scaled(batch_of(vit_inputs, photos.paths[:16]))

    logits = output(infer(image_server.url, "vit-fire", [pixel_input(batch)]), "logits")

    truth = [photos.labels[path.name] for path in photos.paths[:16]]
    assert vit_labels(logits) != truth
    right = [image_models.predict_vit(path).label for path in photos.paths[:16]]
    assert right == truth


def test_vit_refuses_raw_pixels_by_shape(image_server, photos):
    pixels = image_models.raw_pixels(smallest(photos)).astype(np.float32)  # [1, H, W, 3] 0-255
    answer = infer(image_server.url, "vit-fire", [pixel_input(pixels)])

    assert answer.status_code == 400
    height, width = pixels.shape[1:3]
    assert answer.json()["error"] == (
        "vit-fire: expected pixel_values FP32 [-1, 3, 224, 224] (NCHW, ImageNet-normalised), "
        f"got shape [1, {height}, {width}, 3] (NHWC? this model takes NCHW)"
    )


def test_vit_refuses_another_datatype(image_server):
    answer = infer(
        image_server.url,
        "vit-fire",
        [{"name": "pixel_values", "datatype": "UINT8", "shape": [1, 3], "data": [1, 2, 3]}],
    )

    assert answer.status_code == 400
    assert answer.json()["error"] == "vit-fire: input 'pixel_values' must be FP32, got UINT8 [1, 3]"


def test_bytes_model_takes_encoded_files_as_base64(image_server, photos):
    paths = photos.paths[:5]
    files = [base64.b64encode(path.read_bytes()).decode("ascii") for path in paths]
    image = {
        "name": "image",
        "datatype": "BYTES",
        "shape": [len(files)],
        "data": files,
        "parameters": {"content_type": "base64"},
    }

    answer = infer(image_server.url, "bytes-fire", [image])

    expected = [image_models.predict_bytes(path) for path in paths]
    assert list(output(answer, "label")) == [p.label for p in expected]
    np.testing.assert_allclose(output(answer, "score"), [p.score for p in expected], rtol=1e-5)
    assert [p.label for p in expected] == [photos.labels[p.name] for p in paths]


def test_bytes_model_refuses_what_is_not_an_image(image_server):
    image = {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["not a photo"]}

    answer = infer(image_server.url, "bytes-fire", [image])

    assert answer.status_code == 400
    assert answer.json()["error"].startswith(
        "bytes-fire: expected an encoded image file, got 11 bytes: "
    )


def test_uint8_model_takes_raw_pixels_of_any_size(image_server, photos):
    sizes = set()
    for path in sorted(photos.paths, key=lambda path: path.stat().st_size)[:4]:
        pixels = image_models.raw_pixels(path)
        sizes.add(pixels.shape[1:3])
        tensor = {
            "name": "pixels",
            "datatype": "UINT8",
            "shape": list(pixels.shape),
            "data": pixels.ravel().tolist(),
        }

        probabilities = output(infer(image_server.url, "uint8-fire", [tensor]), "probabilities")

        expected = image_models.predict_uint8(path)
        assert LABELS[int(probabilities.argmax())] == expected.label == photos.labels[path.name]
        np.testing.assert_allclose(probabilities.max(), expected.score, rtol=1e-5)
    assert len(sizes) > 1


# KServe: an independent V2 implementation.


@pytest.mark.parametrize("model", image_models.VIT_MODELS)
def test_kserve_declares_the_vit_inputs_and_outputs(kserve: KServe, model):
    metadata = httpx.get(f"{kserve.url}/v2/models/{model}", timeout=10).json()

    assert metadata["inputs"] == SIGNATURES[model]["inputs"]
    assert metadata["outputs"] == SIGNATURES[model]["outputs"]


def test_kserve_answers_json_what_the_model_answers_directly(kserve, photos, vit_inputs):
    batch = batch_of(vit_inputs, photos.paths[:4])

    logits = output(infer(kserve.url, "vit-fire", [pixel_input(batch)]), "logits")

    np.testing.assert_allclose(logits, image_models.vit_logits(batch), rtol=1e-5, atol=1e-5)


def test_kserve_takes_and_gives_binary_tensors(
    kserve: KServe, photos: PhotoSet, vit_inputs: dict[str, np.ndarray]
):
    batch = batch_of(vit_inputs, photos.paths)
    header = {
        "inputs": [
            {
                "name": "pixel_values",
                "datatype": "FP32",
                "shape": list(batch.shape),
                "parameters": {"binary_data_size": batch.nbytes},
            }
        ],
        "parameters": {"binary_data_output": True},
    }
    head = json.dumps(header).encode()

    answer = httpx.post(
        f"{kserve.url}/v2/models/EdBianchi--vit-fire-detection/infer",
        content=head + batch.tobytes(),
        headers={"Inference-Header-Content-Length": str(len(head))},
        timeout=120,
    )

    assert answer.status_code == 200, answer.text
    length = int(answer.headers["Inference-Header-Content-Length"])
    described = json.loads(answer.content[:length])["outputs"]
    assert described[0]["parameters"] == {"binary_data_size": len(photos.paths) * 2 * 4}
    logits = np.frombuffer(answer.content[length:], dtype=np.float32).reshape(-1, 2)
    np.testing.assert_allclose(logits, image_models.vit_logits(batch), rtol=1e-5, atol=1e-5)
    assert right_answers(vit_labels(logits), photos) >= 0.9 * len(photos.paths)


def test_kserve_refuses_raw_pixels_by_shape(kserve, photos):
    pixels = image_models.raw_pixels(smallest(photos)).astype(np.float32)

    answer = infer(kserve.url, "vit-fire", [pixel_input(pixels)])

    assert answer.status_code == 400
    assert "(NHWC? this model takes NCHW)" in answer.json()["error"]


def test_kserve_implements_the_repository_extension_only_in_part(kserve):
    server = httpx.get(f"{kserve.url}/v2", timeout=10).json()
    assert server == {
        "name": "kserve",
        "version": "0.21.0",
        "extensions": ["model_repository_extension"],
    }
    assert httpx.post(f"{kserve.url}/v2/repository/index", json={}).status_code == 404

    load = f"{kserve.url}/v2/repository/models/vit-fire/load"
    assert httpx.post(load).json() == {"name": "vit-fire", "load": True}  # already loaded
    unload = httpx.post(f"{kserve.url}/v2/repository/models/vit-fire/unload")
    assert unload.json() == {"name": "vit-fire", "unload": True}
    gone = httpx.get(f"{kserve.url}/v2/models/vit-fire/ready")
    assert gone.status_code == 404
    assert gone.json() == {"error": "Model with name vit-fire does not exist."}
    assert httpx.post(load).status_code == 200
    ready = httpx.get(f"{kserve.url}/v2/models/vit-fire/ready").json()
    assert ready == {"name": "vit-fire", "ready": True}
    unknown = httpx.post(f"{kserve.url}/v2/repository/models/no-such-model/load")
    assert unknown.status_code == 503
