"""A real uvicorn server in a thread, with Dagster unreachable: 503, 413, 422, 401, /operations."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from api.config import Settings
from api.main import create_app
from stack import free_port

KEY = "unit-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
SERVER_START_TIMEOUT_S = 30
VALID = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "x"}}]}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    settings = Settings(
        dagster_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        api_keys=[KEY],
        max_body_bytes=10_000,
    )
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the API server did not start in {SERVER_START_TIMEOUT_S} s")
        time.sleep(0.01)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as test_client:
        yield test_client
    server.should_exit = True
    thread.join(5)


def test_dagster_unreachable_gives_503_with_a_clear_message(client: httpx.Client) -> None:
    response = client.post("/execute", json=VALID, headers=AUTH)
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "dagster_unavailable"
    assert "cannot be reached" in body["message"]
    assert "is the Dagster webserver running?" in body["message"]
    assert response.headers["Retry-After"] == "5"
    assert client.get("/readyz").status_code == 503
    assert client.get("/runs/abc", headers=AUTH).status_code == 503


def test_validation_happens_before_dagster_is_asked(client: httpx.Client) -> None:
    response = client.post("/validate", json=VALID, headers=AUTH)
    assert response.status_code == 200
    assert response.json()["instructions"][0]["operation"] == "import_from_local"
    bad = client.post("/execute", json={"instructions": [{"operation": "x"}]}, headers=AUTH)
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["path"] == "instructions[0].operation"


def test_oversize_body_is_413(client: httpx.Client) -> None:
    big = {
        "instructions": [{"operation": "import_from_local", "parameters": {"path": "x" * 20_000}}]
    }
    response = client.post("/execute", json=big, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Expecting property name enclosed in double quotes"),
        (b'{"instructions": [], "instructions": []}', "duplicate key 'instructions'"),
        (b'{"instructions": [NaN]}', "NaN is not valid JSON"),
        (b"\xff\xfe", "not UTF-8 at byte 0"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    ],
)
def test_malformed_bodies_are_422_with_a_json_error(
    client: httpx.Client, body: bytes, message: str
) -> None:
    response = client.post(
        "/execute", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert message in response.text


def test_missing_or_wrong_key_is_401(client: httpx.Client) -> None:
    assert client.get("/operations").status_code == 401
    response = client.get("/operations", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/healthz").status_code == 200


def test_operations_list_the_catalog_with_json_schema(client: httpx.Client) -> None:
    operations = {
        op["name"]: op for op in client.get("/operations", headers=AUTH).json()["operations"]
    }
    resize = operations["resize_image"]
    assert resize["output"] == "dataset"
    assert resize["inputs"] == {"data": ["dataset"]}
    assert resize["parameters"]["properties"]["width"]["type"] == "integer"
    assert operations["batch_formatted_data"]["output"] == "batches"


def test_settings_refuse_to_start_without_keys_unless_open_access_is_explicit() -> None:
    with pytest.raises(ValueError, match="no API keys configured"):
        Settings(api_keys=[], allow_open_access=False)
    assert Settings(api_keys=[], allow_open_access=True).allow_open_access
    with pytest.raises(ValueError, match="at least 16 characters"):
        Settings(api_keys=["short"])


def test_openapi_document_describes_the_routes(client: httpx.Client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/execute",
        "/validate",
        "/runs",
        "/runs/{run_id}",
        "/runs/{run_id}/results",
        "/runs/{run_id}/cancel",
        "/operations",
        "/healthz",
        "/readyz",
    } <= set(paths)


def test_hostile_inputs_are_refused_quickly(client: httpx.Client) -> None:
    def post(content: Any, **headers: str) -> httpx.Response:
        return client.post(
            "/execute",
            content=content,
            headers={**AUTH, "Content-Type": "application/json", **headers},
        )

    level = b'{"operation": "dict_to_list", "parameters": {"data": '
    deep = b'{"instructions": [' + level * 10_000
    answer = post(deep)
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"] == "body_too_large"
    # Well-formed and under the size limit, but deeper than the tree may be.
    nested = b'{"instructions": [' + level * 100 + b'{"operation": "dict_to_list"}' + b"}}" * 100
    nested += b"]}"
    answer = post(nested)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_instructions"
    assert "deep" in answer.json()["message"] + json.dumps(answer.json()["problems"])
    wide = json.dumps({"instructions": [{"operation": "dict_to_list"}] * 100_000}).encode()
    assert post(wide).status_code == 413

    def fifty_megabytes() -> Iterator[bytes]:
        for _ in range(50):
            yield b" " * 1_048_576

    assert post(fifty_megabytes()).status_code == 413
    huge = b'{"instructions": [{"operation": "resize_image", "parameters": {"width": 1e999}}]}'
    assert post(huge).status_code == 422
    digits = (
        b'{"instructions": [{"operation": "resize_image", "parameters": {"width": '
        + b"9" * 5000
        + b"}}]}"
    )
    assert post(digits).status_code == 422


def test_many_nodes_within_the_body_limit_stop_at_the_node_limit() -> None:
    settings = Settings(api_keys=[KEY], max_body_bytes=50_000_000, max_nodes=1000)
    problems_seen = []
    from api.errors import InvalidRequest
    from api.submissions import plan_or_422
    from orchestrator.operations import CATALOG

    class Counted(dict[str, Any]):
        """An instruction that counts how often validation reads it."""

        reads = 0

        def get(self, key: str, default: Any = None) -> Any:
            Counted.reads += 1
            return super().get(key, default)

    instruction = Counted(operation="import_from_local", parameters={"path": "x"})
    document = {"instructions": [instruction] * 100_000}
    with pytest.raises(InvalidRequest) as caught:
        plan_or_422(document, CATALOG, settings.limits)
    problems_seen = [p.message for p in caught.value.problems]
    assert problems_seen == ["the tree has more than 1000 instructions"]
    assert Counted.reads <= 2 * 1000, "validation stops at the node limit"
