"""Image-shaped fake models for unit tests, on the in-process FakeModelServer.

Each model declares its inputs in its metadata (`GET /v2/models/{name}`), as
real image models do: FP32 [-1, 3, 224, 224] pixel values, BYTES [-1] files,
several inputs. The client `FakeImageModels.client()` makes records the
tensors model_inference hands to `infer` (`sent`) and answers them with the
model's `predict`; every tensor is checked against the declaration first, as a
strict server would. What goes over the wire (JSON or binary) is the client's
concern and is tested with it; here the question is what is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from orchestrator.connectors.model_server import ModelServerClient, Tensor
from orchestrator.errors import OperationError
from orchestrator.resources import ModelServerResource
from testkit.fake_model_server import URL, FakeModelServer

Inputs = dict[str, np.ndarray | list[bytes]]


def mean_of_first(inputs: Inputs) -> np.ndarray:
    """One score per row: the mean of the first input's row (a file's length for BYTES)."""
    first = next(iter(inputs.values()))
    if isinstance(first, list):
        return np.asarray([[float(len(data))] for data in first])
    return np.asarray(first.reshape(len(first), -1).mean(axis=1, keepdims=True), np.float64)


@dataclass
class ImageModel:
    """A model: its declared inputs (as the metadata lists them) and what it answers."""

    inputs: list[dict[str, Any]]
    predict: Callable[[Inputs], np.ndarray] = mean_of_first
    fail_on_request: int | None = None  # this request (1, 2, ...) answers with an error


def declared(name: str, datatype: str, shape: Sequence[int], **parameters: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(shape)}
    return entry | ({"parameters": parameters} if parameters else {})


@dataclass
class FakeImageModels:
    """The models by server name; `sent` holds each inference request's tensors, in order."""

    models: dict[str, ImageModel]
    sent: list[list[Tensor]] = field(default_factory=list)
    server: FakeModelServer = field(init=False)

    def __post_init__(self) -> None:
        self.server = FakeModelServer(
            repository=dict.fromkeys(self.models, 0), intercept=self._metadata
        )

    def client(self) -> ModelServerClient:
        settings = ModelServerResource(url=URL, backoff_s=0.0)
        return _RecordingClient(self, settings, transport=httpx.MockTransport(self.server.handle))

    @property
    def infer_requests(self) -> list[str]:
        return [r for r in self.server.requests if r.endswith("/infer")]

    def _metadata(self, request: httpx.Request) -> httpx.Response | None:
        parts = request.url.path.strip("/").split("/")
        if request.method == "GET" and len(parts) == 3 and parts[:2] == ["v2", "models"]:
            name = parts[2]
            if name in self.models and name in self.server.loaded:
                body = {"name": name, "versions": ["1"], "platform": "fake"}
                return httpx.Response(200, json=body | {"inputs": self.models[name].inputs})
        return None

    def infer(self, model: str, inputs: Sequence[Tensor]) -> list[Tensor]:
        self.server.requests.append(f"POST /v2/models/{model}/infer")
        self.sent.append(list(inputs))
        spec = self.models[model]
        if spec.fail_on_request == len(self.sent):
            raise OperationError(f"model {model!r}: HTTP 500 the model raised on this input")
        arrays: Inputs = {}
        for tensor in inputs:
            _check(tensor, spec.inputs)
            arrays[tensor.name] = tensor.data
        scores = np.asarray(spec.predict(arrays), dtype=np.float64)
        return [Tensor("score", "FP64", scores.shape, scores.ravel().tolist())]


class _RecordingClient(ModelServerClient):
    def __init__(self, models: FakeImageModels, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._models = models

    def infer(self, model: str, inputs: Sequence[Tensor]) -> list[Tensor]:
        return self._models.infer(model, inputs)


def _check(tensor: Tensor, inputs: list[dict[str, Any]]) -> None:
    """Refuses a tensor that does not fit its declaration, as a strict server does."""
    entry = next((e for e in inputs if e["name"] == tensor.name), None)
    if inputs and entry is None:
        raise OperationError(f"fake: no input {tensor.name!r}")
    size = len(tensor.data) if isinstance(tensor.data, list) else tensor.data.size
    if size != math.prod(tensor.shape):
        raise OperationError(f"fake: {tensor.name!r} holds {size} values for {tensor.shape}")
    if isinstance(tensor.data, np.ndarray) and list(tensor.data.shape) != list(tensor.shape):
        raise OperationError(f"fake: {tensor.name!r} data {tensor.data.shape} vs {tensor.shape}")
    if entry is None:
        return
    shape = entry["shape"]
    fits = len(shape) == len(tensor.shape) and all(
        d in (-1, n) for d, n in zip(shape, tensor.shape, strict=True)
    )
    if entry["datatype"] != tensor.datatype or not fits:
        raise OperationError(
            f"fake: {tensor.name!r} declared {entry['datatype']} {shape}, "
            f"got {tensor.datatype} {list(tensor.shape)}"
        )
