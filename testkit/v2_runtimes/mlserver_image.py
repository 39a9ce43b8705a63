"""MLServer 1.7.1 custom runtimes for the image models, named in each model-settings.json.

    {"name": "vit-fire", "implementation": "testkit.v2_runtimes.mlserver_image.VitFire", ...}

MLServer imports the class from PYTHONPATH (testkit.mlserver sets it to the repository
root). Inputs are checked as a real server would check them: the wrong shape or datatype
is refused with HTTP 400 and a message naming what the model declared and what came.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import InferenceError
from mlserver.types import (
    InferenceRequest,
    InferenceResponse,
    RequestInput,
    ResponseOutput,
)

from testkit.image_models import (
    ModelInputError,
    bytes_labels,
    uint8_probabilities,
    vit_logits,
)


class ImageRuntime(MLModel):  # type: ignore[misc]  # mlserver is not in the project's venv
    """One input, checked by name and datatype; subclasses run the model."""

    input_name = ""
    datatype = ""

    async def load(self) -> bool:
        self.ready = True
        return self.ready

    def the_input(self, payload: InferenceRequest) -> RequestInput:
        names = [tensor.name for tensor in payload.inputs]
        if len(payload.inputs) != 1:
            raise InferenceError(f"{self.name} takes one input {self.input_name!r}, got {names}")
        tensor = payload.inputs[0]
        if tensor.datatype != self.datatype:
            raise InferenceError(
                f"{self.name}: input {self.input_name!r} must be {self.datatype}, "
                f"got {tensor.datatype} {tensor.shape}"
            )
        return tensor

    def respond(self, outputs: list[ResponseOutput]) -> InferenceResponse:
        return InferenceResponse(model_name=self.name, model_version=self.version, outputs=outputs)


class VitFire(ImageRuntime):
    """`pixel_values` FP32 [-1, 3, 224, 224] NCHW, ImageNet-normalised -> `logits`."""

    input_name = "pixel_values"
    datatype = "FP32"

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        tensor = self.the_input(payload)
        try:
            logits = vit_logits(NumpyCodec.decode_input(tensor).astype(np.float32, copy=False))
        except (ModelInputError, ValueError) as exc:
            raise InferenceError(f"{self.name}: {exc}") from exc
        return self.respond([NumpyCodec.encode_output("logits", logits)])


class BytesFire(ImageRuntime):
    """`image` BYTES [-1], encoded files (raw, or base64 with content_type "base64")."""

    input_name = "image"
    datatype = "BYTES"

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        tensor = self.the_input(payload)
        declared = (tensor.parameters and tensor.parameters.content_type) or (
            payload.parameters and payload.parameters.content_type
        )
        items = tensor.data.root if isinstance(tensor.data.root, list) else [tensor.data.root]
        try:
            files = [self.file(item, declared == "base64") for item in items]
            labels, scores = bytes_labels(files)
        except ModelInputError as exc:
            raise InferenceError(f"{self.name}: {exc}") from exc
        count = [len(labels)]  # [-1] as declared (NumpyCodec would make scores [N, 1])
        return self.respond(
            [
                ResponseOutput(name="label", datatype="BYTES", shape=count, data=labels),
                ResponseOutput(name="score", datatype="FP32", shape=count, data=scores.tolist()),
            ]
        )

    @staticmethod
    def file(item: object, is_base64: bool) -> bytes:
        if isinstance(item, str):
            item = item.encode("utf-8", "surrogateescape")
        if not isinstance(item, bytes):
            raise ModelInputError(f"expected encoded image files, got {type(item).__name__}")
        if not is_base64:
            return item
        try:
            return base64.b64decode(item, validate=True)
        except binascii.Error as exc:
            raise ModelInputError(f"content_type is base64 but an item is not: {exc}") from exc


class Uint8Fire(ImageRuntime):
    """`pixels` UINT8 [-1, -1, -1, 3], any size (one per request) -> `probabilities`."""

    input_name = "pixels"
    datatype = "UINT8"

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        tensor = self.the_input(payload)
        try:
            probabilities = uint8_probabilities(
                NumpyCodec.decode_input(tensor).astype(np.uint8, copy=False)
            )
        except (ModelInputError, ValueError) as exc:
            raise InferenceError(f"{self.name}: {exc}") from exc
        return self.respond([NumpyCodec.encode_output("probabilities", probabilities)])
