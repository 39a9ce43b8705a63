"""The model server client: retries, Retry-After, and how every failure is reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from orchestrator.connectors.model_server import ModelServerClient, Tensor
from orchestrator.errors import OperationError, RetriesExhausted, TransientError
from orchestrator.events import InstructionEvent
from orchestrator.resources import ModelServerResource
from testkit.fake_model_server import URL, FakeModelServer
from testkit.pipelines import run_pipeline

ROW = Tensor("input-0", "FP64", (1, 4), [1.0, 2.0, 3.0, 4.0])


def config(**fields: Any) -> ModelServerResource:
    return ModelServerResource(**({"url": URL} | fields))


def scripted(*answers: httpx.Response | Exception, config: ModelServerResource | None = None):
    """A client whose server gives `answers` in turn; returns (client, sleeps, paths)."""
    queue = list(answers)
    sleeps: list[float] = []
    paths: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = ModelServerClient(
        config
        or ModelServerResource(
            url=URL, max_attempts=4, backoff_s=0.5, max_backoff_s=30, binary_tensors="never"
        ),
        transport=httpx.MockTransport(handle),
        sleep=sleeps.append,
    )
    return client, sleeps, paths


def test_connection_errors_are_retried_with_exponential_backoff():
    client, sleeps, paths = scripted(
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("connection reset"),
        httpx.Response(200),
    )
    client.load("iris")
    assert sleeps == [0.5, 1.0]
    assert paths == ["/v2/repository/models/iris/load"] * 3


def test_retry_after_in_seconds_is_honoured_on_503_and_429():
    client, sleeps, _ = scripted(
        httpx.Response(503, headers={"Retry-After": "3"}, json={"error": "restarting"}),
        httpx.Response(429, headers={"Retry-After": "1.5"}),
        httpx.Response(200),
    )
    client.unload("iris")
    assert sleeps == [3.0, 1.5]


def test_retry_after_as_http_date_is_honoured_and_capped():
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    client, sleeps, _ = scripted(
        httpx.Response(503, headers={"Retry-After": later}),
        httpx.Response(200),
        config=config(max_attempts=2, max_backoff_s=5),
    )
    client.load("iris")
    assert sleeps == [5.0]


def test_attempts_run_out_with_an_error_naming_model_server_and_attempts():
    client, sleeps, paths = scripted(
        *[httpx.ConnectError("connection refused")] * 4,
    )
    with pytest.raises(RetriesExhausted) as caught:
        client.infer("iris", [ROW])
    message = str(caught.value)
    assert "model 'iris' on model server http://model-server.test:8080" in message
    assert message == (
        "model 'iris' on model server http://model-server.test:8080: "
        "ConnectError: connection refused (after 4 attempts)"
    )
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert not isinstance(caught.value, TransientError)  # the executor does not retry it again
    assert len(paths) == 4 and sleeps == [0.5, 1.0, 2.0]


def test_a_5xx_that_persists_ends_as_retries_exhausted_with_the_status():
    client, _, _ = scripted(*[httpx.Response(502, text="Bad Gateway")] * 4)
    with pytest.raises(RetriesExhausted, match=r"HTTP 502 Bad Gateway \(after 4 attempts\)$"):
        client.load("iris")


def test_delete_model_against_a_dead_server_makes_max_attempts_calls(tmp_path: Path):
    """One layer of retries: the connector's, not multiplied by the operation's RetryPolicy."""
    client, sleeps, paths = scripted(*[httpx.ConnectError("connection refused")] * 4)
    events: list[InstructionEvent] = []
    outcome = run_pipeline(
        [{"operation": "delete_model", "parameters": {"model": "iris"}}],
        tmp_path,
        events,
        model_server=client,
    )
    assert paths == ["/v2/repository/models/iris/unload"] * 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert [e.kind for e in events] == ["started", "failed"]
    assert outcome.first_error == (
        "instructions[0] (delete_model): model 'iris' on model server "
        "http://model-server.test:8080: ConnectError: connection refused (after 4 attempts)"
    )


def test_timeouts_are_retried():
    client, sleeps, _ = scripted(httpx.ReadTimeout("slow"), httpx.Response(200))
    assert client.model_ready("iris")
    assert sleeps == [0.5]


def test_a_model_the_server_does_not_know_fails_at_once_with_its_message():
    client, sleeps, paths = scripted(httpx.Response(404, json={"error": "Model nope not found"}))
    with pytest.raises(OperationError) as caught:
        client.load("nope")
    assert not isinstance(caught.value, TransientError)
    assert "does not know this model" in str(caught.value)
    assert "Model nope not found" in str(caught.value)
    assert sleeps == [] and len(paths) == 1


def test_a_shape_the_model_rejects_fails_at_once_with_the_servers_message():
    client, sleeps, _ = scripted(httpx.Response(400, json={"error": "expected 4 features"}))
    with pytest.raises(OperationError, match="HTTP 400 expected 4 features") as caught:
        client.infer("iris", [ROW])
    assert not isinstance(caught.value, TransientError) and sleeps == []


def test_a_500_to_an_inference_is_not_retried_but_explained():
    # MLServer answers a shape mismatch with a bare 500: the same input fails again.
    client, sleeps, _ = scripted(httpx.Response(500, text="Internal Server Error"))
    with pytest.raises(OperationError, match="the model raised on this input") as caught:
        client.infer("iris", [ROW])
    assert not isinstance(caught.value, TransientError) and sleeps == []


def test_a_500_to_a_control_call_is_retried():
    client, sleeps, _ = scripted(httpx.Response(500), httpx.Response(200))
    client.load("iris")
    assert sleeps == [0.5]


@pytest.mark.parametrize("status", [401, 403, 409, 413, 422])
def test_other_4xx_fail_at_once(status):
    client, sleeps, _ = scripted(httpx.Response(status, json={"detail": "no"}))
    with pytest.raises(OperationError, match=f"HTTP {status} no") as caught:
        client.load("iris")
    assert not isinstance(caught.value, TransientError) and sleeps == []


def _transport_errors(cls: type[httpx.TransportError]) -> list[type[httpx.TransportError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _transport_errors(sub)
    return found


@pytest.mark.parametrize("error", _transport_errors(httpx.TransportError), ids=lambda c: c.__name__)
def test_every_transport_error_is_mapped(error):
    """Fails if an httpx error reaches the caller untranslated."""
    client, _, _ = scripted(*[error("boom")] * 2, config=config(max_attempts=2))
    with pytest.raises(OperationError) as caught:
        client.load("iris")
    assert isinstance(caught.value.__cause__, httpx.TransportError)
    if error is httpx.UnsupportedProtocol:
        assert not isinstance(caught.value, RetriesExhausted)
    else:
        assert isinstance(caught.value, RetriesExhausted)


def test_unload_of_a_model_that_is_not_loaded_is_not_an_error():
    server = FakeModelServer()
    with server.client() as client:
        assert client.unload("iris") is False
        client.load("iris")
        assert client.unload("iris") is True


def test_a_404_without_a_v2_error_body_means_the_route_is_missing():
    client, _, _ = scripted(httpx.Response(404, json={"detail": "Not Found"}))
    with pytest.raises(OperationError, match="is this an Open Inference Protocol"):
        client.metadata("iris")


def test_model_ready_is_false_while_loading_and_true_when_ready():
    client, _, _ = scripted(
        httpx.Response(400, json={"error": "Model iris is not ready yet."}),
        httpx.Response(404, json={"error": "Model iris not found"}),
        httpx.Response(200),
    )
    assert [client.model_ready("iris") for _ in range(3)] == [False, False, True]


def test_wait_until_ready_gives_up_after_its_timeout():
    server = FakeModelServer()
    with server.client() as client, pytest.raises(OperationError, match="did not become ready"):
        client.wait_until_ready("iris", timeout_s=0.05)


def test_credentials_in_the_url_never_show_and_a_bad_url_fails_on_first_use():
    client = ModelServerClient(config(url="http://user:secret@127.0.0.1:1"))
    assert client.url == "http://127.0.0.1:1" and "secret" not in client.url
    bad = ModelServerClient(config(url="ftp://127.0.0.1/models"))
    with pytest.raises(OperationError, match=r"must look like http\(s\)://"):
        bad.load("iris")


def test_infer_round_trip_through_the_fake_server():
    server = FakeModelServer()
    with server.client() as client:
        client.load("iris")
        [output] = client.infer("iris", [Tensor("x", "FP64", (2, 4), [1, 2, 3, 4, 5, 6, 7, 8])])
    assert (output.name, output.datatype, output.shape) == ("predict", "FP64", (2, 1))
    assert output.data.dtype == np.float64 and output.data.tolist() == [[10.0], [26.0]]
