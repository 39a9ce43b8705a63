"""Reading a request body as JSON, strictly and within a size limit."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from api.errors import BodyTooLarge, InvalidRequest
from orchestrator.errors import Problem


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _invalid(message: str, received: str) -> InvalidRequest:
    return InvalidRequest(
        f"the body is not valid JSON: {message}",
        [Problem("$", message, "a JSON document (UTF-8)", received)],
    )


async def read_json_body(request: Request, max_bytes: int) -> tuple[Any, bytes]:
    """The parsed body and its bytes; BodyTooLarge or InvalidRequest otherwise."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"the body is {declared} bytes; the limit is {max_bytes}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"the body is over the limit of {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"not UTF-8 at byte {exc.start}", "bytes") from exc
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants), raw
    except RecursionError as exc:
        raise _invalid("nested too deeply", "a deeply nested document") from exc
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise _invalid(str(exc), f"{len(raw)} bytes") from exc
