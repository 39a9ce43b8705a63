"""model_inference's parameters, as GET /operations and the launchpad show them.

Everything but `model` and `data` is optional: the model's V2 metadata says
what each input takes, and these parameters say what the metadata leaves open
or override it (the rule is in `fitting`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.catalog.values import Batches, Dataset
from orchestrator.operations.model.labels import LabelParams
from orchestrator.operations.model.lifecycle import ModelName

# The V2 datatypes an input can be sent as ("auto": what the model declares, else the data's).
Datatype = Literal[
    "auto",
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
ResizePolicy = Literal["stretch", "crop", "pad"]
LayoutChoice = Literal["auto", "NCHW", "NHWC"]
Normalize = Literal["auto", "imagenet", "[-1,1]", "[0,1]", "none"]
SourceName = Literal["pixels", "rows", "bytes", "size", "name"]


class Constant(BaseModel):
    """The same value in every row of an input."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float | list[float] | list[list[float]] = Field(
        description="A number or a (nested) list of numbers, sent once per row."
    )


Source = SourceName | Constant

SOURCES = (
    "What feeds a declared input: 'pixels' (the image, fitted to the input), 'rows' (the "
    "numbers of a JSON/CSV/.npy item), 'bytes' (the item's file as it is, for BYTES inputs), "
    "'size' (the image's original [height, width]), 'name' (the item's name, BYTES), or "
    '{"value": NUMBER_OR_LIST} (a constant in every row).'
)


class ModelInferenceParams(LabelParams, BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = ModelName
    data: Dataset | Batches = Field(
        description="Items to predict on: images, .json, .csv or .npy files (or any file, "
        "for a model that takes BYTES)."
    )
    batch_size: int | None = Field(
        None, ge=1, le=100_000, description="Rows per request; default: the resource's (1024)."
    )
    concurrency: int | None = Field(
        None, ge=1, le=64, description="Requests in flight; default: the resource's (4)."
    )
    input_name: str | None = Field(
        None,
        min_length=1,
        description="The one input the data goes to; default: the model's only declared input, "
        "else 'input-0' when it declares none. Same as inputs: {NAME: what the data is}.",
    )
    inputs: dict[str, Source] | None = Field(
        None,
        min_length=1,
        description="For a model that declares several inputs: {DECLARED_NAME: SOURCE}. " + SOURCES,
    )
    datatype: Datatype = Field(
        "auto",
        description="Datatype of the data's input; auto: the model's declared one, else UINT8 "
        "for images, FP64 for JSON/CSV, .npy's own float; BYTES sends the files as they are.",
    )
    image_size: list[int] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="[height, width] every image is resized to; default: the model's declared "
        "size, else each image's own (requests then hold images of one size).",
    )
    resize: ResizePolicy = Field(
        "stretch",
        description="How an image meets a fixed size: 'stretch' (to the size, aspect not kept), "
        "'crop' (short side scaled to fit, then the centre cut out), 'pad' (long side scaled "
        "to fit, centred on black).",
    )
    layout: LayoutChoice = Field(
        "auto",
        description="Image tensor layout; auto: from the declared shape (3 or 1 channels at "
        "axis 1: NCHW, at axis 3: NHWC), NHWC when the shape does not tell.",
    )
    normalize: Normalize = Field(
        "auto",
        description="Pixel scaling for float inputs: 'imagenet' (mean 0.485,0.456,0.406, std "
        "0.229,0.224,0.225 on [0,1]), '[-1,1]', '[0,1]', 'none' (0-255 as floats); auto: the "
        "mean/std or normalize the input's metadata states, else imagenet for float inputs "
        "and none for integer ones.",
    )
    mean: list[float] | None = Field(
        None,
        min_length=1,
        max_length=3,
        description="Per-channel mean on the [0,1] scale (values above 1: the 0-255 scale); "
        "with std, overrides normalize.",
    )
    std: list[float] | None = Field(
        None,
        min_length=1,
        max_length=3,
        description="Per-channel standard deviation, on the same scale as mean.",
    )

    @model_validator(mode="after")
    def _checked(self) -> ModelInferenceParams:
        if (self.mean is None) != (self.std is None):
            raise ValueError("give mean and std together")
        if self.std is not None and min(self.std) <= 0:
            raise ValueError("std must be positive")
        if self.image_size is not None and not all(1 <= n <= 16_384 for n in self.image_size):
            raise ValueError("image_size must be [height, width], each 1 to 16384")
        if self.inputs is not None and self.input_name is not None:
            raise ValueError("give input_name or inputs, not both")
        return self
