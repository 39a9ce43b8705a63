"""The ViT-shaped fire detector on KServe 0.21.0's Python model server (kserve.ModelServer).

    python -m testkit.v2_runtimes.kserve_image HTTP_PORT      (in the KServe venv)

Serves `vit-fire` and `EdBianchi--vit-fire-detection`, both loaded at start, over REST on
127.0.0.1:HTTP_PORT (gRPC off; KServe hard-codes host 0.0.0.0, so LoopbackREST rebinds
its uvicorn config to loopback). A stock ModelServer's `load` of an unloaded model does
nothing (its ModelRepository.load is a stub), so this repository re-creates the model:
what a KServe user serving several models writes, and what lets a test session unload
and load again. What of the V2 protocol KServe implements: see testkit.kserve.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

import kserve.model_server
import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.errors import InvalidInput
from kserve.model_repository import ModelRepository
from kserve.protocol.rest.server import RESTServer

from testkit.image_models import SIGNATURES, VIT_MODELS, ModelInputError, vit_logits

HOST = "127.0.0.1"


class VitFire(Model):  # type: ignore[misc]  # kserve has no type hints
    """`pixel_values` FP32 [-1, 3, 224, 224] NCHW, ImageNet-normalised -> `logits` [-1, 2]."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.load()

    def load(self) -> bool:
        self.ready = True
        return True

    def get_input_types(self) -> list[dict[str, Any]]:
        return SIGNATURES[self.name]["inputs"]

    def get_output_types(self) -> list[dict[str, Any]]:
        return SIGNATURES[self.name]["outputs"]

    async def predict(
        self,
        payload: InferRequest,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        names = [tensor.name for tensor in payload.inputs]
        if len(payload.inputs) != 1:
            raise InvalidInput(f"{self.name} takes one input 'pixel_values', got {names}")
        tensor = payload.inputs[0]
        if tensor.datatype != "FP32":
            raise InvalidInput(
                f"{self.name}: input 'pixel_values' must be FP32, got {tensor.datatype} "
                f"{tensor.shape}"
            )
        try:
            logits = vit_logits(np.asarray(tensor.as_numpy(), dtype=np.float32))
        except ModelInputError as exc:
            raise InvalidInput(f"{self.name}: {exc}") from exc
        output = InferOutput(name="logits", shape=list(logits.shape), datatype="FP32", data=logits)
        return InferResponse(
            response_id=payload.id or str(uuid.uuid4()),  # its JSON answer requires an id
            model_name=self.name,
            infer_outputs=[output],
            use_binary_outputs=payload.use_binary_outputs,
        )


class ImageModels(ModelRepository):  # type: ignore[misc]
    """Loads the ViT-shaped models by name (the stock repository's `load` is a stub)."""

    def load(self, name: str) -> bool:
        if name not in VIT_MODELS:
            return False
        if self.get_model(name) is None:
            self.update(VitFire(name))
        return True


class LoopbackREST(RESTServer):  # type: ignore[misc]
    """KServe's REST server, listening on loopback only."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.host = HOST


def main(http_port: int) -> None:
    kserve.model_server.RESTServer = LoopbackREST
    server = ModelServer(
        http_port=http_port,
        enable_grpc=False,
        registered_models=ImageModels(),
        enable_latency_logging=False,
    )
    server.start([VitFire(name) for name in VIT_MODELS])


if __name__ == "__main__":
    main(int(sys.argv[1]))
