"""The model server client against a real MLServer: which tensors it takes, and the
repository extension's parts deploy_model relies on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from orchestrator.connectors.model_server import ModelServerClient, Tensor
from orchestrator.errors import OperationError
from orchestrator.resources import ModelServerResource
from testkit.mlserver import MLServer
from testkit.pipelines import run_pipeline

pytestmark = pytest.mark.integration


class Counting(httpx.HTTPTransport):
    """A real HTTP transport that remembers each request's method, path and content type."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        kind = request.headers.get("content-type", "")
        self.seen.append((request.method, request.url.path, kind))
        return super().handle_request(request)

    def infers(self) -> list[str]:
        return [kind for _, path, kind in self.seen if path.endswith("/infer")]


@pytest.fixture
def iris(mlserver: MLServer) -> Iterator[str]:
    httpx.post(f"{mlserver.url}/v2/repository/models/iris/load", timeout=60).raise_for_status()
    yield "iris"
    mlserver.unload_all()


def client_for(server: MLServer, binary_tensors: str) -> tuple[ModelServerClient, Counting]:
    transport = Counting()
    config = ModelServerResource(url=server.url, binary_tensors=binary_tensors)
    return ModelServerClient(config, transport=transport), transport


def test_auto_falls_back_to_json_on_mlserver_with_one_extra_request(mlserver, iris):
    rows = np.random.default_rng(7).uniform(0.1, 7.9, (64, 4))
    batches = [Tensor("input-0", "FP64", (16, 4), rows[i : i + 16]) for i in range(0, 64, 16)]

    auto, auto_requests = client_for(mlserver, "auto")
    json_only, json_requests = client_for(mlserver, "never")
    with auto, json_only:
        by_auto = [auto.infer(iris, [batch])[0] for batch in batches]
        by_json = [json_only.infer(iris, [batch])[0] for batch in batches]
        assert auto.binary_tensors is False

    # MLServer 1.7.1 refuses binary over REST (SeldonIO/MLServer#324): one binary request,
    # then the same request and all others as JSON.
    assert auto_requests.infers() == ["application/octet-stream"] + ["application/json"] * 4
    assert json_requests.infers() == ["application/json"] * 4
    for a, j in zip(by_auto, by_json, strict=True):
        assert (
            (a.name, a.datatype, a.shape)
            == (j.name, j.datatype, j.shape)
            == (
                "predict",
                "INT64",
                (16, 1),
            )
        )
        assert a.data.dtype == np.int64 and np.array_equal(a.data, j.data)


def test_always_binary_fails_clearly_on_mlserver(mlserver, iris):
    client, _ = client_for(mlserver, "always")
    batch = Tensor("input-0", "FP64", (2, 4), np.ones((2, 4)))
    with client, pytest.raises(OperationError, match=r"HTTP (500|422)") as caught:
        client.infer(iris, [batch])
    assert "model 'iris'" in str(caught.value)


def test_deploy_of_a_model_already_loaded_does_not_load_it_again(mlserver, iris, tmp_path: Path):
    client, transport = client_for(mlserver, "auto")
    with client:
        outcome = run_pipeline(
            [{"operation": "deploy_model", "parameters": {"model": "iris"}}],
            tmp_path,
            model_server=client,
        )
    assert outcome.succeeded, outcome.first_error
    assert not any(path.endswith("/load") for _, path, _ in transport.seen)
    deployed = outcome.results[0].output
    assert deployed["state"] == "ready" and deployed["version"] == "v1"  # from the index
