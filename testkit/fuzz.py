"""Fuzz the API from its own OpenAPI document (the integration test and `bench.fuzz_api`)."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from testkit.dagster_stack import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def errors_are_json(response: Any) -> None:
    """Every 4xx has a JSON body with an error code and a message."""
    if 400 <= response.status_code < 500:
        body = response.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body


def fuzz(api_url: str, max_examples: int) -> int:
    """Call every operation with generated requests; returns how many were sent."""
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json", headers=AUTH)
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            nonlocal sent
            response = case.call(headers=AUTH, timeout=30)
            sent += 1
            case.validate_response(response, checks=[not_a_server_error])
            errors_are_json(response)

        check()
    return sent
