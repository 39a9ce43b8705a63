"""model_inference fitting images to what each fake model declares, through the executor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.context import Services
from orchestrator.execution import RunOutcome, run_plan
from orchestrator.operations import CATALOG
from testkit.fake_image_models import FakeImageModels, ImageModel, declared

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
PHOTOS = {
    "operation": "dict_to_list",
    "parameters": {"data": {"operation": "import_from_local", "parameters": {"path": "photos"}}},
}


def photos(folder: Path, sizes: list[tuple[int, int]], suffix: str = "png") -> list[Path]:
    """Random RGB images of the given (width, height), named 00.png, 01.png, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    paths = []
    for index, (width, height) in enumerate(sizes):
        path = folder / f"{index:02d}.{suffix}"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def resized(path: Path, width: int, height: int) -> np.ndarray:
    """The reference: Pillow's bilinear resize of the decoded image, [H, W, 3] UINT8."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR))


@pytest.fixture
def run(tmp_path):
    def run(models: FakeImageModels, model: str, **inference: object) -> RunOutcome:
        instructions = [
            {"operation": "deploy_model", "parameters": {"model": model}},
            {
                "operation": "model_inference",
                "parameters": {"model": model, "data": PHOTOS, **inference},
            },
            {"operation": "delete_model", "parameters": {"model": model}},
        ]
        services = Services(
            artifacts=LocalStore(tmp_path / "artifacts"),
            data_root=tmp_path / "data",
            model_server=models.client(),
        )
        return run_plan(validate({"instructions": instructions}, CATALOG), CATALOG, services, "r")

    return run


def records(outcome: RunOutcome) -> list[dict]:
    file = outcome.values["instructions[1]"].file
    return [json.loads(line) for line in file.read_text().splitlines()]


def test_a_vit_shaped_model_gets_nchw_fp32_normalised_pixels_of_mixed_size_photos(tmp_path, run):
    paths = photos(tmp_path / "data" / "photos", [(40, 30), (25, 50), (40, 30)])
    models = FakeImageModels({"vit": ImageModel([declared("pixel_values", "FP32", [-1, 3, 8, 8])])})
    outcome = run(models, "vit")

    assert outcome.succeeded, outcome.first_error
    [[tensor]] = models.sent  # mixed sizes, one request: all resized to 8 x 8
    assert (tensor.name, tensor.datatype, tensor.shape) == ("pixel_values", "FP32", (3, 3, 8, 8))
    expected = np.stack([((resized(p, 8, 8) / 255 - MEAN) / STD).transpose(2, 0, 1) for p in paths])
    np.testing.assert_allclose(tensor.data, expected, atol=1e-5)
    got = records(outcome)
    assert [r["name"] for r in got] == ["00.png", "01.png", "02.png"]
    assert got[1]["outputs"]["score"] == [pytest.approx(expected[1].mean())]
    summary = outcome.results[1].output
    assert summary["count"] == 3 and isinstance(summary["seconds"], float)


def test_a_uint8_nhwc_model_gets_the_resized_pixels_as_they_are(tmp_path, run):
    paths = photos(tmp_path / "data" / "photos", [(12, 9), (7, 7)])
    models = FakeImageModels({"raw": ImageModel([declared("images", "UINT8", [-1, 6, 5, 3])])})
    outcome = run(models, "raw", batch_size=1, concurrency=1)

    assert outcome.succeeded, outcome.first_error
    assert [[(t.datatype, t.shape) for t in request] for request in models.sent] == [
        [("UINT8", (1, 6, 5, 3))],
        [("UINT8", (1, 6, 5, 3))],
    ]
    for request, path in zip(models.sent, paths, strict=True):
        np.testing.assert_array_equal(request[0].data[0], resized(path, 5, 6))


@pytest.mark.parametrize(("shape", "sent_shape"), [([-1], (2,)), ([-1, 1], (2, 1))])
def test_a_bytes_model_gets_each_file_as_it_is(tmp_path, run, shape, sent_shape):
    paths = photos(tmp_path / "data" / "photos", [(30, 20), (10, 60)], suffix="jpg")
    models = FakeImageModels({"hf": ImageModel([declared("image", "BYTES", shape)])})
    outcome = run(models, "hf")

    assert outcome.succeeded, outcome.first_error
    [[tensor]] = models.sent
    assert (tensor.datatype, tensor.shape) == ("BYTES", sent_shape)
    assert tensor.data == [path.read_bytes() for path in paths]
    assert [r["outputs"]["score"] for r in records(outcome)] == [
        [float(path.stat().st_size)] for path in paths
    ]


def test_a_dynamic_model_gets_consecutive_images_of_one_size_together(tmp_path, run):
    sizes = [(8, 6), (8, 6), (5, 9), (8, 6), (8, 6)]
    paths = photos(tmp_path / "data" / "photos", sizes)
    models = FakeImageModels({"fcn": ImageModel([declared("x", "FP32", [-1, 3, -1, -1])])})
    outcome = run(models, "fcn", normalize="[0,1]", concurrency=1)  # requests in order

    assert outcome.succeeded, outcome.first_error
    assert [request[0].shape for request in models.sent] == [
        (2, 3, 6, 8),
        (1, 3, 9, 5),
        (2, 3, 6, 8),
    ]
    with Image.open(paths[2]) as image:
        own = np.asarray(image.convert("RGB")).transpose(2, 0, 1) / 255
    np.testing.assert_allclose(models.sent[1][0].data[0], own, atol=1e-6)
    assert [r["name"] for r in records(outcome)] == [f"{i:02d}.png" for i in range(5)]

    # image_size overrides: every image resized, one request
    models.sent.clear()
    outcome = run(models, "fcn", image_size=[4, 4])
    assert outcome.succeeded, outcome.first_error
    assert [request[0].shape for request in models.sent] == [(5, 3, 4, 4)]


def test_crop_keeps_the_centre_and_pad_letterboxes_on_black(tmp_path, run):
    folder = tmp_path / "data" / "photos"
    folder.mkdir(parents=True)
    bands = np.zeros((20, 60, 3), dtype=np.uint8)
    bands[:, :20, 0], bands[:, 20:40, 1], bands[:, 40:, 2] = 255, 255, 255  # red|green|blue
    Image.fromarray(bands).save(folder / "bands.png")
    models = FakeImageModels({"square": ImageModel([declared("x", "UINT8", [-1, 10, 10, 3])])})

    outcome = run(models, "square", resize="crop")
    assert outcome.succeeded, outcome.first_error
    cropped = models.sent[-1][0].data[0]
    assert (cropped == [0, 255, 0]).all()  # the centre third, scaled to fill 10 x 10

    outcome = run(models, "square", resize="pad")
    assert outcome.succeeded, outcome.first_error
    padded = models.sent[-1][0].data[0]
    assert (padded[:3] == 0).all() and (padded[7:] == 0).all()  # 60 x 20 -> 10 x 3, centred
    assert padded[3:7].any() and padded[3:7, :, 0].max() > 200 and padded[3:7, :, 2].max() > 200

    outcome = run(models, "square")  # stretch: all three bands, squeezed
    assert outcome.succeeded, outcome.first_error
    stretched = models.sent[-1][0].data[0]
    assert stretched[:, 0, 0].min() > 200 and stretched[:, -1, 2].min() > 200


def test_a_large_jpeg_decoded_in_draft_mode_matches_a_full_decode(tmp_path, run):
    folder = tmp_path / "data" / "photos"
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:1080, 0:1920]
    smooth = np.stack([x * 255 // 1919, y * 255 // 1079, (x + y) * 255 // 2998], axis=-1)
    Image.fromarray(smooth.astype(np.uint8)).save(folder / "camera.jpg", quality=95)
    models = FakeImageModels({"vit": ImageModel([declared("x", "UINT8", [-1, 224, 224, 3])])})
    outcome = run(models, "vit")

    assert outcome.succeeded, outcome.first_error
    full = resized(folder / "camera.jpg", 224, 224).astype(int)
    assert np.abs(models.sent[0][0].data[0].astype(int) - full).mean() < 2


def test_several_inputs_each_get_what_inputs_maps_to_them(tmp_path, run):
    paths = photos(tmp_path / "data" / "photos", [(16, 12), (9, 21)])
    model = ImageModel(
        [
            declared("pixel_values", "FP32", [-1, 3, 8, 8]),
            declared("original_size", "INT64", [-1, 2]),
            declared("file", "BYTES", [-1]),
            declared("id", "BYTES", [-1]),
            declared("threshold", "FP32", [-1, 1]),
        ]
    )
    models = FakeImageModels({"detr": model})
    mapping = {
        "pixel_values": "pixels",
        "original_size": "size",
        "file": "bytes",
        "id": "name",
        "threshold": {"value": 0.5},
    }
    outcome = run(models, "detr", inputs=mapping, normalize="[-1,1]")

    assert outcome.succeeded, outcome.first_error
    [request] = models.sent
    sent = {tensor.name: tensor for tensor in request}
    assert list(sent) == list(mapping)
    assert sent["original_size"].datatype == "INT64"
    assert sent["original_size"].data.tolist() == [[12, 16], [21, 9]]
    assert sent["file"].data == [path.read_bytes() for path in paths]
    assert sent["id"].data == [b"00.png", b"01.png"] and sent["id"].shape == (2,)
    assert sent["threshold"].data.tolist() == [[0.5], [0.5]]
    assert sent["threshold"].datatype == "FP32"
    expected = resized(paths[0], 8, 8).transpose(2, 0, 1) / 127.5 - 1
    np.testing.assert_allclose(sent["pixel_values"].data[0], expected, atol=1e-5)


def test_a_model_without_a_batch_dimension_gets_one_image_a_request(tmp_path, run):
    photos(tmp_path / "data" / "photos", [(10, 10), (20, 10)])

    def logits(inputs):  # no batch dimension in, none out
        return np.array([inputs["x"].mean(), 1.0])

    models = FakeImageModels({"chw": ImageModel([declared("x", "FP32", [3, 4, 4])], logits)})
    outcome = run(models, "chw", normalize="none")

    assert outcome.succeeded, outcome.first_error
    assert [request[0].shape for request in models.sent] == [(3, 4, 4), (3, 4, 4)]
    assert [len(r["outputs"]["score"]) for r in records(outcome)] == [2, 2]


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (
            ImageModel([declared("a", "FP32", [-1, 3, 8, 8]), declared("b", "FP32", [-1, 1])]),
            {},
            "declares 2 inputs ('a' FP32 [-1, 3, 8, 8], 'b' FP32 [-1, 1]): say what feeds each",
        ),
        (
            ImageModel([declared("x", "INT8", [-1, 8, 8, 3])]),
            {"mean": [0.5], "std": [0.5]},
            "input 'x' INT8 [-1, 8, 8, 3] cannot take pixels normalised by mean/std",
        ),
        (
            ImageModel([declared("x", "FP32", [-1, 64])]),
            {},
            "input 'x' FP32 [-1, 64] cannot take pixels [n, 6, 8, 3]: an image is 3-D",
        ),
        (
            ImageModel([declared("x", "FP32", [-1, 3, 8, 8])]),
            {"inputs": {"x": "bytes"}},
            "input 'x' FP32 [-1, 3, 8, 8] cannot take BYTES [n] (each item's file as it is)",
        ),
    ],
)
def test_what_cannot_fit_is_refused_before_any_inference_request(
    tmp_path, run, model, params, message
):
    photos(tmp_path / "data" / "photos", [(8, 6)] * 3)
    models = FakeImageModels({"m": model})
    outcome = run(models, "m", **params)

    assert [r.status for r in outcome.results] == ["succeeded", "failed", "succeeded"]
    assert message in outcome.first_error
    assert models.infer_requests == []
    assert list((tmp_path / "artifacts").rglob("predictions.jsonl*")) == []


def test_a_failed_inference_leaves_no_predictions_file(tmp_path, run):
    photos(tmp_path / "data" / "photos", [(8, 6)] * 5)
    model = ImageModel([declared("x", "UINT8", [-1, 6, 8, 3])], fail_on_request=2)
    models = FakeImageModels({"m": model})
    outcome = run(models, "m", batch_size=2, concurrency=1)

    assert not outcome.succeeded and "the model raised on this input" in outcome.first_error
    assert "items '02.png'..'03.png' (tensor 'x' [2, 6, 8, 3] UINT8)" in outcome.first_error
    assert list((tmp_path / "artifacts").rglob("predictions.jsonl*")) == []

    model.fail_on_request = None
    assert run(models, "m", batch_size=2).succeeded
    assert [p.name for p in (tmp_path / "artifacts").rglob("predictions.jsonl*")] == [
        "predictions.jsonl"
    ]


def test_numbers_follow_the_declared_datatype_and_shape(tmp_path, run):
    folder = tmp_path / "data" / "photos"
    folder.mkdir(parents=True)
    for index in range(3):
        (folder / f"{index}.json").write_text(json.dumps([index, 1.5, 2, 3]))
    models = FakeImageModels({"iris": ImageModel([declared("features", "FP32", [-1, 4])])})
    outcome = run(models, "iris")

    assert outcome.succeeded, outcome.first_error
    [[tensor]] = models.sent
    assert (tensor.name, tensor.datatype, tensor.shape) == ("features", "FP32", (3, 4))
    assert tensor.data.tolist() == [[i, 1.5, 2, 3] for i in range(3)]

    (folder / "0.json").write_text("[1, 2, 3]")
    models.sent.clear()
    models.server.requests.clear()
    outcome = run(models, "iris")
    assert "input 'features' FP32 [-1, 4] cannot take FP32 [-1, 3]" in outcome.first_error
    assert models.infer_requests == [] and models.sent == []
