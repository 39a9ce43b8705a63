"""The fit decided from declared inputs and parameters: layouts, sizes, scales, refusals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from orchestrator.catalog import Dataset
from orchestrator.connectors.model_server import ModelMetadata, TensorSpec
from orchestrator.errors import OperationError
from orchestrator.operations.model.fitting import Fit, Sample, fit_model
from orchestrator.operations.model.parameters import ModelInferenceParams

PHOTO = Sample("photo.jpg", "image", size=(1080, 1920), nbytes=265_000)
ROWS = Sample("row.json", "json", row=np.zeros(4))


def fit(declared: list[TensorSpec], sample: Sample | None = PHOTO, **params: Any) -> Fit:
    metadata = ModelMetadata("m", ("1",), "fake", tuple(declared))
    data = Dataset(root="/nowhere", items=())
    return fit_model("m", metadata, ModelInferenceParams(model="m", data=data, **params), sample)


def spec(shape: tuple[int, ...], datatype: str = "FP32", **parameters: Any) -> TensorSpec:
    return TensorSpec("x", datatype, shape, parameters)


@pytest.mark.parametrize(
    ("shape", "params", "row_shape", "batched"),
    [
        ((-1, 3, 224, 224), {}, (3, 224, 224), True),
        ((-1, 224, 224, 3), {}, (224, 224, 3), True),
        ((-1, 1, 28, 28), {}, (1, 28, 28), True),
        ((3, 224, 224), {}, (3, 224, 224), False),  # no batch dimension: one image a request
        ((224, 224, 3), {}, (224, 224, 3), False),
        ((-1, 28, 28), {}, (28, 28), True),  # a batch of grayscale images
        ((-1, -1, -1, -1), {}, (1080, 1920, 3), True),  # undecidable: NHWC, own size
        ((-1, -1, -1, -1), {"layout": "NCHW"}, (3, 1080, 1920), True),
        ((-1, 3, -1, -1), {}, (3, 1080, 1920), True),
        ((-1, 3, -1, -1), {"image_size": [32, 48]}, (3, 32, 48), True),
        ((), {}, (1080, 1920, 3), True),  # nothing declared: the pixels as decoded
    ],
)
def test_layout_and_size_follow_the_declared_shape(shape, params, row_shape, batched):
    got = fit([spec(shape)], **params)
    [one] = got.inputs
    assert one.source == "pixels" and one.pixels is not None
    assert one.pixels.row_shape(PHOTO.size) == row_shape
    assert got.batched is batched


def test_an_undecidable_layout_is_said_in_the_log():
    assert fit([spec((-1, -1, -1, -1))]).notes == (
        "input 'x' FP32 [-1, -1, -1, -1]: layout not decidable from the shape, sent as NHWC "
        "(set layout to NCHW if it is not)",
    )


IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.mark.parametrize(
    ("datatype", "parameters", "params", "mean_std"),
    [
        ("FP32", {}, {}, IMAGENET),  # float input, nothing said: imagenet
        ("FP16", {}, {"normalize": "[-1,1]"}, ((0.5,) * 3, (0.5,) * 3)),
        ("FP32", {}, {"normalize": "[0,1]"}, ((0,) * 3, (1,) * 3)),
        ("FP32", {}, {"normalize": "none"}, None),
        (
            "FP32",
            {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
            {},
            ((0.5,) * 3, (0.25,) * 3),
        ),
        ("FP32", {"mean": "0.5,0.5,0.5", "std": "0.5,0.5,0.5"}, {}, ((0.5,) * 3, (0.5,) * 3)),
        ("FP32", {"normalize": "[-1,1]"}, {}, ((0.5,) * 3, (0.5,) * 3)),
        ("FP32", {}, {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]}, IMAGENET),
        ("UINT8", {}, {}, None),  # integer input: 0-255 as they are
        ("FP32", {"normalize": "[-1,1]"}, {"normalize": "imagenet"}, IMAGENET),  # parameter wins
    ],
)
def test_float_pixels_are_scaled_by_the_first_rule_that_says_how(
    datatype, parameters, params, mean_std
):
    [one] = fit([spec((-1, 3, 8, 8), datatype, **parameters)], **params).inputs
    assert one.pixels is not None
    if mean_std is None:
        assert one.pixels.scale is None
        return
    mean, std = (np.asarray(v, dtype=np.float64) for v in mean_std)
    np.testing.assert_allclose(one.pixels.scale, 1 / (255 * std), rtol=1e-3)
    np.testing.assert_allclose(one.pixels.offset, -mean / std, rtol=1e-3, atol=1e-9)


def test_the_data_goes_to_the_declared_input_in_its_datatype():
    [bytes_in] = fit([spec((-1,), "BYTES")]).inputs
    assert (bytes_in.source, bytes_in.datatype, bytes_in.row_shape) == ("bytes", "BYTES", ())
    [column] = fit([spec((-1, 1), "BYTES")]).inputs
    assert column.row_shape == (1,)
    [rows] = fit([spec((-1, 4), "FP32")], sample=ROWS).inputs
    assert (rows.source, rows.datatype) == ("rows", "FP32")
    [undeclared] = fit([], sample=ROWS).inputs
    assert (undeclared.name, undeclared.datatype) == ("input-0", "")
    [asked] = fit([spec((-1, 3, 8, 8))], datatype="FP16").inputs
    assert asked.datatype == "FP16" and asked.pixels and asked.pixels.dtype == np.float16
    [named] = fit([spec((-1, 4)), TensorSpec("y", "FP32", (-1, 4))], ROWS, input_name="y").inputs
    assert named.name == "y"


def test_requests_hold_at_most_two_million_values_and_the_models_fixed_batch():
    assert fit([spec((-1, 3, 224, 224))]).per_request(PHOTO, 1024) == 13
    assert fit([spec((1, 3, 224, 224))]).per_request(PHOTO, 1024) == 1
    assert fit([spec((-1,), "BYTES")]).per_request(PHOTO, 1024) == 31  # ~8 MB of files
    assert fit([spec((-1, 4))], sample=ROWS).per_request(ROWS, 1024) == 1024


SEVERAL = [
    TensorSpec("pixel_values", "FP32", (-1, 3, 224, 224)),
    TensorSpec("mask", "INT64", (-1, 224, 224)),
]


@pytest.mark.parametrize(
    ("inputs", "sample", "params", "message"),
    [
        (
            SEVERAL,
            PHOTO,
            {},
            "model 'm' declares 2 inputs ('pixel_values' FP32 [-1, 3, 224, 224], 'mask' INT64 "
            "[-1, 224, 224]): say what feeds each with the parameter inputs, e.g. "
            '{"pixel_values": "pixels"}',
        ),
        (
            SEVERAL,
            PHOTO,
            {"input_name": "pixels"},
            "model 'm' declares no input 'pixels'; it declares 'pixel_values' FP32",
        ),
        (
            [spec((-1, 4))],
            Sample("row.json", "json", row=np.zeros(3)),
            {},
            "model 'm' input 'x' FP32 [-1, 4] cannot take FP32 [-1, 3] (the rows of 'row.json'): "
            "the shapes differ",
        ),
        (
            [spec((-1, 3, 224, 224), "UINT8")],
            PHOTO,
            {"normalize": "imagenet"},
            "model 'm' input 'x' UINT8 [-1, 3, 224, 224] cannot take pixels normalised by "
            "normalize imagenet: uint8 cannot hold normalised values; set normalize to none",
        ),
        (
            [spec((-1, 784))],
            PHOTO,
            {},
            "model 'm' input 'x' FP32 [-1, 784] cannot take pixels [n, 1080, 1920, 3]: an image "
            "is 3-D (HWC, CHW or NHW) or 4-D (NHWC, NCHW)",
        ),
        (
            [spec((-1, 3, 224, -1))],
            PHOTO,
            {},
            "cannot take pixels [n, 1080, 1920, 3]: it fixes one of height and width only; "
            "give image_size: [height, width]",
        ),
        (
            [spec((-1,), "BYTES")],
            PHOTO,
            {"inputs": {"x": "pixels"}},
            "model 'm' input 'x' BYTES [-1] cannot take pixels [n, 1080, 1920, 3]: it takes BYTES",
        ),
        (
            [spec((-1, 3, 224, 224))],
            PHOTO,
            {"inputs": {"x": "bytes"}},
            "model 'm' input 'x' FP32 [-1, 3, 224, 224] cannot take BYTES [n] (each item's file "
            "as it is): it does not take BYTES",
        ),
        (
            [spec((-1, 3, 224, 224))],
            ROWS,
            {},
            "model 'm' input 'x' FP32 [-1, 3, 224, 224] cannot take FP32 [-1, 4] (the rows of "
            "'row.json'): the shapes differ",
        ),
        (
            [spec((-1, 3, 8, 8))],
            Sample("notes.txt", "other"),
            {},
            "item 'notes.txt' cannot be sent to input 'x' FP32 [-1, 3, 8, 8]: expected an image",
        ),
    ],
)
def test_what_cannot_fit_is_refused_naming_the_declared_and_the_offered(
    inputs, sample, params, message
):
    with pytest.raises(OperationError) as caught:
        fit(inputs, sample, **params)
    assert message in str(caught.value)
