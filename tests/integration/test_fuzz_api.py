"""Property-based tests of the API from its own OpenAPI document (bounded for CI).

`python -m bench.fuzz_api` runs the same with many more examples.
"""

from __future__ import annotations

import pytest

from stack import Stack
from testkit.fuzz import fuzz

pytestmark = pytest.mark.integration


def test_no_server_errors_and_json_errors(stack: Stack) -> None:
    if stack.postgres is not None:
        pytest.skip("the API does not depend on the storage: fuzzed once, on SQLite")
    assert fuzz(stack.api_url, max_examples=15) > 50
