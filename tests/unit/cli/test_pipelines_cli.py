"""`constellation pipelines` and `schedules`: arguments, and the answers over a mock API."""

from __future__ import annotations

import json

import httpx
import pytest

from cli.client import InputProblem
from cli.pipelines import SavedClient, parse_arguments


def test_arguments_are_json_when_they_parse_else_text() -> None:
    assert parse_arguments(("width=32", "folder=photos", "sizes=[1,2]", "on=true")) == {
        "width": 32,
        "folder": "photos",
        "sizes": [1, 2],
        "on": True,
    }
    with pytest.raises(InputProblem, match="expected NAME=VALUE"):
        parse_arguments(("width",))


def test_a_run_sends_arguments_version_and_key() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201, json={"run_id": "r1", "status_url": "/runs/r1", "pipeline": "p", "version": 2}
        )

    client = SavedClient("http://api.test", "key", transport=httpx.MockTransport(answer))
    assert client.run_pipeline("p", {"a": 1}, 2, "k").version == 2
    assert json.loads(seen[0].content) == {"arguments": {"a": 1}, "version": 2}
    assert seen[0].headers["Idempotency-Key"] == "k"
    assert seen[0].url.path == "/pipelines/p/runs"
