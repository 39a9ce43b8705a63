"""The long fuzz run: every API operation with many generated requests, on a real stack.

python -m bench.fuzz_api [EXAMPLES_PER_OPERATION]   (default 500)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from stack import Stack
from testkit.dagster_stack import API_KEY
from testkit.fuzz import fuzz


def main() -> None:
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    with tempfile.TemporaryDirectory() as tmp, Stack(Path(tmp), api_keys=[API_KEY]) as stack:
        started = time.perf_counter()
        sent = fuzz(stack.api_url, max_examples=examples)
        elapsed = time.perf_counter() - started
    print(f"{sent} generated requests in {elapsed:.0f} s: no 5xx, every 4xx a JSON error body")


if __name__ == "__main__":
    main()
