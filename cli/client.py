"""The API over httpx, with every failure turned into a CliError that says what to do.

CliError                 exit code
├── InputProblem         2  the instruction file cannot be read or parsed
├── ApiUnreachable       5  no answer: connection refused, timeout
└── ApiRefused           4  the API answered with an error (401, 404, 409, ...)
    ├── InstructionsRejected  1  422: the instructions have problems (listed)
    └── ApiUnavailable        5  503 and other 5xx: Dagster or the API is down
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from api.schemas import (
    CancelResponse,
    ExecuteResponse,
    OperationList,
    Problem,
    RerunResponse,
    RunDetail,
    RunList,
    RunResults,
    ValidateResponse,
)

DEFAULT_API_URL = "http://127.0.0.1:8000"
STREAM_READ_TIMEOUT_S = 60.0  # the API sends a keep-alive every 15 s


@dataclass(frozen=True)
class RunEvent:
    """One Server-Sent Event of GET /runs/{id}/events."""

    id: str | None
    event: str
    data: dict[str, Any]


def parse_sse(lines: Iterator[str]) -> Iterator[RunEvent]:
    """The events of a text/event-stream: fields up to a blank line; comments skipped."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for text in lines:
        if text == "":
            if data or "event" in fields:
                payload = json.loads("\n".join(data)) if data else {}
                yield RunEvent(fields.get("id"), fields.get("event", "message"), payload)
            fields, data = {}, []
            continue
        if text.startswith(":"):
            continue
        name, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value


class CliError(Exception):
    """An error shown to the user as one message (plus problems), never a traceback."""

    exit_code = 1

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []


class InputProblem(CliError):
    exit_code = 2


class ApiUnreachable(CliError):
    exit_code = 5


class ApiRefused(CliError):
    exit_code = 4

    def __init__(self, message: str, status_code: int, problems: list[Problem] | None = None):
        super().__init__(message, problems)
        self.status_code = status_code


class InstructionsRejected(ApiRefused):
    exit_code = 1


class ApiUnavailable(ApiRefused):
    exit_code = 5


HINTS = {
    401: "pass --api-key or set CONSTELLATION_API_KEY",
    404: "check the run id: `constellation runs` lists recent runs",
}


def refusal(response: httpx.Response) -> ApiRefused:
    """The error for an error response, with the API's own message and problems."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "message" in body:
        message = str(body["message"])
        problems = [Problem.model_validate(p) for p in body.get("problems") or []]
    else:
        message = response.text.strip()[:200] or response.reason_phrase
        problems = []
    status = response.status_code
    text = f"{status} {response.reason_phrase}: {message}"
    if status in HINTS:
        text += f" ({HINTS[status]})"
    if status == 422:
        return InstructionsRejected(text, status, problems)
    if status >= 500:
        return ApiUnavailable(text, status, problems)
    return ApiRefused(text, status, problems)


class ConstellationClient:
    """One method per API route; each returns the API's response model."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ConstellationClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def validate(self, document: Any) -> ValidateResponse:
        return ValidateResponse.model_validate(self._call("POST", "/validate", json=document))

    def execute(self, document: Any, idempotency_key: str | None = None) -> ExecuteResponse:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body = self._call("POST", "/execute", json=document, headers=headers)
        return ExecuteResponse.model_validate(body)

    def run(self, run_id: str) -> RunDetail:
        return RunDetail.model_validate(self._call("GET", f"/runs/{run_id}"))

    def results(self, run_id: str) -> RunResults:
        return RunResults.model_validate(self._call("GET", f"/runs/{run_id}/results"))

    def events(self, run_id: str, last_event_id: str | None = None) -> Iterator[RunEvent]:
        """The run's events as they happen, until its `end` (GET /runs/{id}/events)."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        timeout = httpx.Timeout(self.http.timeout.connect, read=STREAM_READ_TIMEOUT_S)
        path = f"/runs/{run_id}/events"
        try:
            with self.http.stream("GET", path, headers=headers, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise refusal(response)
                yield from parse_sse(response.iter_lines())
        except httpx.TransportError as exc:
            raise ApiUnreachable(
                f"the event stream of run {run_id} from {self.base_url} broke ({exc})"
            ) from exc

    def pages(self, path: str, field: str, limit: int = 500) -> Iterator[dict[str, Any]]:
        """Every entry of a paged results route (`items` or `records`), page by page."""
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor is not None:
                params["cursor"] = cursor
            page = self._call("GET", path, params=params)
            yield from page[field]
            cursor = page.get("next_cursor")
            if cursor is None:
                return

    def download(self, url: str, target: Path) -> int:
        """Stream one item's bytes (its `url` from the items route) into `target`; bytes."""
        written = 0
        try:
            with self.http.stream("GET", url, follow_redirects=True) as response:
                if response.is_error:
                    response.read()
                    raise refusal(response)
                with target.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                        written += len(chunk)
        except httpx.TransportError as exc:
            raise ApiUnreachable(f"download of {url} from {self.base_url} broke ({exc})") from exc
        return written

    def rerun(self, run_id: str, mode: str = "failure") -> RerunResponse:
        body = self._call("POST", f"/runs/{run_id}/rerun", json={"from": mode})
        return RerunResponse.model_validate(body)

    def cancel(self, run_id: str) -> CancelResponse:
        return CancelResponse.model_validate(self._call("POST", f"/runs/{run_id}/cancel"))

    def runs(self, statuses: list[str], limit: int) -> RunList:
        params: dict[str, Any] = {"limit": limit}
        if statuses:
            params["status"] = statuses
        return RunList.model_validate(self._call("GET", "/runs", params=params))

    def operations(self) -> OperationList:
        return OperationList.model_validate(self._call("GET", "/operations"))

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiUnreachable(
                f"the API at {self.base_url} did not answer {method} {path} in time ({exc})"
            ) from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(
                f"cannot reach the API at {self.base_url} ({exc}); is it running? "
                "Set --api-url or CONSTELLATION_API_URL"
            ) from exc
        if response.is_error:
            raise refusal(response)
        try:
            return response.json()
        except ValueError as exc:
            raise ApiRefused(
                f"{method} {path} answered {response.status_code} with a body that is not JSON",
                response.status_code,
            ) from exc
