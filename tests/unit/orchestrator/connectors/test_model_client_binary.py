"""The model server client's tensors: the binary tensor data extension, JSON, and which one a
server gets ("auto" finds out once per client); and the partial repository extension."""

from __future__ import annotations

import base64
import gc
import json
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from orchestrator.connectors.model_server import (
    ModelServerClient,
    ServerMetadata,
    Tensor,
)
from orchestrator.errors import OperationError, RepositoryUnsupported, RetriesExhausted
from orchestrator.resources import ModelServerResource
from testkit.fake_model_server import URL, FakeModelServer

ROWS = Tensor("x", "FP64", (2, 4), np.arange(8, dtype=np.float64).reshape(2, 4))


def infer_requests(server: FakeModelServer) -> list[str]:
    return [r for r in server.requests if r.endswith("/infer")]


def loaded(**fake) -> FakeModelServer:
    fake.setdefault("repository", {"iris": 4, "files": 0})
    return FakeModelServer(loaded={"iris", "files"}, **fake)


def captured(*answers: httpx.Response, **config):
    """A client whose server gives `answers` in turn; returns (client, requests)."""
    queue = list(answers)
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return queue.pop(0)

    settings = ModelServerResource(**({"url": URL, "backoff_s": 0.0} | config))
    return ModelServerClient(settings, transport=httpx.MockTransport(handle)), seen


def test_a_binary_request_is_a_json_header_then_the_raw_little_endian_bytes():
    answer = httpx.Response(200, json={"outputs": []})
    client, seen = captured(answer, binary_tensors="always")
    array = np.array([[1.5, -2.0], [3.25, 4.0]], dtype=np.float32)
    client.infer("m", [Tensor("x", "FP32", (2, 2), array)])
    [request] = seen
    length = int(request.headers["inference-header-content-length"])
    assert request.headers["content-type"] == "application/octet-stream"
    assert json.loads(request.content[:length]) == {
        "inputs": [
            {
                "name": "x",
                "shape": [2, 2],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 16},
            }
        ],
        "parameters": {"binary_data_output": True},
    }
    assert request.content[length:] == struct.pack("<4f", 1.5, -2.0, 3.25, 4.0)


def test_bytes_elements_go_with_a_4_byte_little_endian_length_and_named_outputs_are_asked_for():
    client, seen = captured(httpx.Response(200, json={"outputs": []}), binary_tensors="always")
    client.infer("m", [Tensor("img", "BYTES", (2,), [b"\xff\xd8jpeg", b""])], outputs=["label"])
    [request] = seen
    length = int(request.headers["inference-header-content-length"])
    header = json.loads(request.content[:length])
    assert header["outputs"] == [{"name": "label", "parameters": {"binary_data": True}}]
    assert "parameters" not in header
    assert header["inputs"][0]["parameters"] == {"binary_data_size": 14}
    assert request.content[length:] == b"\x06\x00\x00\x00\xff\xd8jpeg" + b"\x00\x00\x00\x00"


def test_binary_answers_become_numpy_arrays_and_bytes():
    server = loaded(binary=True)
    with server.client(binary_tensors="always") as client:
        [predict] = client.infer("iris", [ROWS])
        length, echo = client.infer("files", [Tensor("f", "BYTES", (2,), [b"ab", b"\x00\x01\x02"])])
    assert predict.data.dtype == np.float64 and predict.data.shape == (2, 1)
    assert predict.data.tolist() == [[6.0], [22.0]]
    assert length.data.dtype == np.int64 and length.data.tolist() == [2, 3]
    assert echo.data == [b"ab", b"\x00\x01\x02"]
    assert server.binary_requests == 2


def test_json_answers_become_numpy_arrays_of_their_datatype_and_bytes_strings():
    answer = {
        "outputs": [
            {"name": "p", "datatype": "FP32", "shape": [2, 2], "data": [0.5, 1, 2, 3]},
            {"name": "ok", "datatype": "BOOL", "shape": [2], "data": [True, False]},
            {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["fire", "no fire"]},
        ]
    }
    client, _ = captured(httpx.Response(200, json=answer), binary_tensors="never")
    p, ok, label = client.infer("m", [ROWS])
    assert p.data.dtype == np.float32 and p.data.tolist() == [[0.5, 1.0], [2.0, 3.0]]
    assert ok.data.dtype == np.bool_ and ok.data.tolist() == [True, False]
    assert label.data == ["fire", "no fire"]


def test_in_json_bytes_elements_go_base64_with_content_type_base64():
    client, seen = captured(httpx.Response(200, json={"outputs": []}), binary_tensors="never")
    client.infer("m", [Tensor("img", "BYTES", (1,), [b"\xff\xd8"])])
    [tensor] = json.loads(seen[0].content)["inputs"]
    assert tensor == {
        "name": "img",
        "shape": [1],
        "datatype": "BYTES",
        "data": [base64.b64encode(b"\xff\xd8").decode()],
        "parameters": {"content_type": "base64"},
    }


def test_json_requests_keep_numeric_arrays_as_json_numbers():
    client, seen = captured(httpx.Response(200, json={"outputs": []}), binary_tensors="never")
    client.infer("m", [ROWS])
    assert seen[0].headers["content-type"] == "application/json"
    assert json.loads(seen[0].content)["inputs"][0]["data"] == list(range(8))


def test_auto_sends_binary_at_once_where_the_server_lists_the_extension():
    server = loaded(lists_binary=True)
    with server.client(binary_tensors="auto") as client:
        client.infer("iris", [ROWS])
        client.infer("iris", [ROWS])
        assert client.binary_tensors is True
    assert server.requests.count("GET /v2") == 1
    assert server.binary_requests == 2 and len(infer_requests(server)) == 2


def test_auto_keeps_binary_where_the_server_takes_it_without_listing_it():
    """KServe: binary since its PR #3685, not in its server metadata."""
    server = loaded()
    with server.client(binary_tensors="auto") as client:
        for _ in range(3):
            [predict] = client.infer("iris", [ROWS])
        assert client.binary_tensors is True
    assert predict.data.tolist() == [[6.0], [22.0]]
    assert server.binary_requests == 3 and len(infer_requests(server)) == 3


def test_auto_falls_back_to_json_once_on_a_server_refusing_binary():
    """MLServer 1.7.1 answers a binary body with a bare 500 (SeldonIO/MLServer#324)."""
    server = loaded(binary=False)
    with server.client(binary_tensors="auto") as client:
        answers = [client.infer("iris", [ROWS])[0].data.tolist() for _ in range(3)]
        assert client.binary_tensors is False
    assert answers == [[[6.0], [22.0]]] * 3
    assert len(infer_requests(server)) == 4  # one binary, then JSON: the first was sent twice


@pytest.mark.parametrize(
    "refusal",
    [
        httpx.Response(
            422, json={"detail": [{"type": "json_invalid", "msg": "JSON decode error"}]}
        ),
        httpx.Response(400, json={"error": "failed to parse the request JSON buffer"}),
        httpx.Response(415, text="Unsupported Media Type"),
        httpx.Response(500, json={"error": "JSONDecodeError : Expecting value"}),
    ],
    ids=["422", "400", "415", "500-json"],
)
def test_auto_takes_4xx_and_a_500_about_json_as_refusals(refusal):
    ok = httpx.Response(200, json={"outputs": []})
    client, seen = captured(httpx.Response(200, json={"extensions": []}), refusal, ok, ok)
    client.infer("m", [ROWS])
    client.infer("m", [ROWS])
    kinds = [r.headers.get("content-type") for r in seen[1:]]
    assert kinds == ["application/octet-stream", "application/json", "application/json"]
    assert client.binary_tensors is False


def test_a_model_error_to_a_binary_request_is_not_sent_again():
    """A V2 error of the model means the server read the binary body."""
    model_error = httpx.Response(500, json={"error": "ValueError : bad pixels"})
    client, seen = captured(httpx.Response(200, json={"extensions": []}), model_error)
    with pytest.raises(OperationError, match="HTTP 500 ValueError : bad pixels"):
        client.infer("m", [ROWS])
    assert len(seen) == 2 and client.binary_tensors is None


def test_an_unknown_model_is_not_sent_again_as_json():
    server = FakeModelServer()
    with (
        server.client(binary_tensors="auto") as client,
        pytest.raises(OperationError, match="does not know this model"),
    ):
        client.infer("iris", [ROWS])
    assert len(infer_requests(server)) == 1


def test_when_json_fails_too_the_json_error_is_raised_and_nothing_is_decided():
    server = loaded(binary=False)
    wrong = Tensor("x", "FP64", (1, 3), np.ones((1, 3)))
    with server.client(binary_tensors="auto") as client:
        with pytest.raises(OperationError, match="HTTP 400 expected 4 features per row"):
            client.infer("iris", [wrong])
        assert client.binary_tensors is None
        client.infer("iris", [ROWS])
        assert client.binary_tensors is False


def test_requests_in_flight_while_auto_finds_out_wait_for_its_answer():
    gate = threading.Event()
    server = loaded(binary=False)

    def hold_the_first_infer(request):
        if request.url.path.endswith("/infer"):
            gate.wait(5)

    server.intercept = hold_the_first_infer
    with (
        server.client(binary_tensors="auto", concurrency=8) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        futures = [pool.submit(client.infer, "iris", [ROWS]) for _ in range(8)]
        gate.set()
        results = [f.result()[0].data.tolist() for f in futures]
    assert results == [[[6.0], [22.0]]] * 8
    assert len(infer_requests(server)) == 9  # one binary refused, then 8 JSON


def test_a_dead_server_fails_once_with_the_model_named():
    client, seen = captured(
        *[httpx.Response(502, text="Bad Gateway")] * 2, max_attempts=2, binary_tensors="auto"
    )
    with pytest.raises(
        RetriesExhausted, match=r"^model 'm' on model server .*\(after 2 attempts\)$"
    ):
        client.infer("m", [ROWS])
    assert [r.url.path for r in seen] == ["/v2", "/v2"]


def test_a_binary_answer_that_ends_early_is_malformed():
    header = json.dumps(
        {
            "outputs": [
                {
                    "name": "p",
                    "datatype": "FP32",
                    "shape": [4],
                    "parameters": {"binary_data_size": 16},
                }
            ]
        }
    ).encode()
    short = httpx.Response(
        200,
        content=header + b"\x00" * 8,
        headers={"inference-header-content-length": str(len(header))},
    )
    client, _ = captured(short, binary_tensors="always")
    with pytest.raises(OperationError, match="malformed inference response"):
        client.infer("m", [ROWS])


def test_server_metadata_lists_its_extensions():
    client, _ = captured(
        httpx.Response(
            200, json={"name": "triton", "version": "2.50", "extensions": ["binary_tensor_data"]}
        )
    )
    assert client.server_metadata() == ServerMetadata("triton", "2.50", ("binary_tensor_data",))


# --- the repository extension, in part or not at all -------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(404, json={"detail": "Not Found"}),
        httpx.Response(405, json={"detail": "Method Not Allowed"}),
        httpx.Response(501, json={"error": "not implemented"}),
        httpx.Response(
            400, json={"error": "explicit model load / unload is not allowed if polling is enabled"}
        ),
    ],
    ids=["404", "405", "501", "triton-400"],
)
def test_a_server_without_model_control_raises_repository_unsupported(answer):
    client, seen = captured(answer, answer, answer)
    for call in (client.load, client.unload):
        with pytest.raises(RepositoryUnsupported, match="has no model repository extension"):
            call("iris")
    assert client.repository_index() is None
    assert len(seen) == 3  # not retried


def test_kserve_503_answers_about_a_model_are_not_retried():
    not_ready = httpx.Response(503, json={"error": "Model with name iris is not ready."})
    client, seen = captured(not_ready, not_ready)
    assert client.model_ready("iris") is False
    with pytest.raises(OperationError, match="could not load this model"):
        client.load("iris")
    assert len(seen) == 2


def test_a_503_with_retry_after_or_without_a_v2_body_is_still_retried():
    client, seen = captured(
        httpx.Response(503, text="Service Unavailable"),
        httpx.Response(503, json={"error": "restarting"}, headers={"Retry-After": "0"}),
        httpx.Response(200),
    )
    client.load("iris")
    assert len(seen) == 3


def test_a_request_body_is_freed_when_its_answer_is_read_not_by_the_cyclic_gc():
    """Without the cyclic GC, each request's body (MBs of tensors) must still go at once:
    httpx ties an answer to its stream in a cycle that would keep the request alive."""
    big = Tensor("x", "FP64", (4096, 4), np.ones((4096, 4)))
    server = loaded(binary=True)
    with server.client(binary_tensors="always") as client:
        client.infer("iris", [big])  # the pool and the client's own objects exist now
        gc.collect()
        gc.disable()
        try:
            for _ in range(5):
                client.infer("iris", [big])
            left_in_cycles = gc.collect()
        finally:
            gc.enable()
    assert left_in_cycles == 0
