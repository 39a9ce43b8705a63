"""The one model server client: the Open Inference Protocol (KServe V2) over REST.

Triton, KServe, MLServer and Seldon all speak it. Every call has explicit
timeouts. Connection failures, timeouts, 429 and 5xx answers are retried as
orchestrator/retry.py says (bounded, exponential backoff, Retry-After honoured);
the connection pool drops a connection that failed, so a retry opens a fresh
one. When the attempts run out the call raises RetriesExhausted naming the model,
the server and the number of attempts. Any other 4xx fails at once with the
server's own message, as OperationError.

One exception to retrying 5xx: a 500 answer to an inference request. V2 servers
answer 500 when the model raised on the input (MLServer does for a shape the
model rejects), and the same input fails the same way again.

The settings are the `model_server` resource's fields (orchestrator/resources/).
"""

from __future__ import annotations

import functools
import json
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from orchestrator.errors import OperationError
from orchestrator.retry import Retryable, Retrying, retry_after_seconds

if TYPE_CHECKING:
    from orchestrator.resources.model_server import ModelServerResource

RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})
READY_POLL_SECONDS = (0.05, 0.1, 0.2, 0.5, 1.0)  # then every second


@dataclass(frozen=True)
class Tensor:
    """A V2 tensor. `data` is a numpy array (numeric datatypes, any shape: sent row-major),
    a list of `bytes` (BYTES, one element each), or a flat list as JSON carries it;
    `len(data) == prod(shape)` once flattened."""

    name: str
    datatype: str  # BOOL, UINT8, INT64, FP16, FP32, FP64, BYTES, ...
    shape: tuple[int, ...]
    data: np.ndarray | list[Any]
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = self.data
        body: dict[str, Any] = {
            "name": self.name,
            "shape": list(self.shape),
            "datatype": self.datatype,
            "data": data.ravel().tolist() if isinstance(data, np.ndarray) else data,
        }
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body


@dataclass(frozen=True)
class TensorSpec:
    """A declared input or output of a model (`GET /v2/models/{name}`): -1 marks a
    variable dimension; `shape` is () when the server declares none."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelMetadata:
    """`GET /v2/models/{name}`: versions and the declared inputs and outputs (may be empty)."""

    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.outputs)


class ModelServerClient:
    """Speaks the V2 REST protocol to the server at `config.url`. Thread-safe; close() when done.

    `config` is the model_server resource (its timeouts, retries and the
    defaults of batched inference, `config.batch_size` and `config.concurrency`).
    """

    def __init__(
        self,
        config: ModelServerResource,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config = config
        self._raw_url = config.url
        self._transport = transport
        self._sleep = sleep
        self._retrying = Retrying(config, sleep)
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None

    @cached_property
    def url(self) -> str:
        """The base URL as shown in messages and summaries: without credentials."""
        try:
            return str(httpx.URL(self._raw_url).copy_with(username=None, password=None))
        except httpx.InvalidURL:
            return repr(self._raw_url)

    @property
    def _http(self) -> httpx.Client:
        """The connection pool, made on first use: a bad URL fails only the model operations."""
        with self._lock:
            if self._client is None:
                try:
                    base = httpx.URL(self._raw_url)
                except httpx.InvalidURL as exc:
                    raise OperationError(f"model server URL {self.url} is invalid: {exc}") from exc
                if base.scheme not in ("http", "https") or not base.host:
                    raise OperationError(
                        f"model server URL {self.url} must look like http(s)://HOST[:PORT][/PATH]"
                    )
                self._client = httpx.Client(
                    base_url=base,
                    timeout=httpx.Timeout(
                        self.config.read_timeout_s, connect=self.config.connect_timeout_s
                    ),
                    limits=httpx.Limits(max_connections=max(10, 2 * self.config.concurrency)),
                    transport=self._transport,
                    verify=True if base.scheme == "https" else _no_tls(),
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> ModelServerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the protocol ---------------------------------------------------------------

    def load(self, model: str) -> None:
        """`POST /v2/repository/models/{model}/load`; an unknown model fails at once."""
        self._call(
            "POST", f"/v2/repository/models/{model}/load", model, timeout=self.config.load_timeout_s
        )

    def unload(self, model: str) -> bool:
        """`POST /v2/repository/models/{model}/unload`; False when the model was not loaded."""
        response = self._call(
            "POST", f"/v2/repository/models/{model}/unload", model, accept=frozenset({404})
        )
        return response.is_success

    def model_ready(self, model: str) -> bool:
        """`GET /v2/models/{model}/ready`: True on 200, False while unknown or not ready."""
        response = self._call(
            "GET", f"/v2/models/{model}/ready", model, accept=frozenset({400, 404})
        )
        return response.is_success

    def wait_until_ready(self, model: str, timeout_s: float) -> None:
        """Poll `model_ready` until it answers True, or raise OperationError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        for poll in range(1_000_000):
            if self.model_ready(model):
                return
            left = deadline - time.monotonic()
            if left <= 0:
                break
            delay = READY_POLL_SECONDS[poll] if poll < len(READY_POLL_SECONDS) else 1.0
            self._sleep(min(delay, left))
        raise OperationError(
            f"model {model!r} did not become ready on {self.url} within {timeout_s:g} s"
        )

    def metadata(self, model: str) -> ModelMetadata:
        """`GET /v2/models/{model}`; an unknown (not loaded) model fails at once."""
        body = self._json(self._call("GET", f"/v2/models/{model}", model), model)
        return ModelMetadata(
            name=str(body.get("name", model)),
            versions=tuple(str(v) for v in body.get("versions") or ()),
            platform=str(body.get("platform") or ""),
            inputs=_specs(body.get("inputs")),
            outputs=_specs(body.get("outputs")),
        )

    def repository_index(self) -> list[dict[str, Any]]:
        """`POST /v2/repository/index`: every model the server can load, with its state."""
        response = self._call("POST", "/v2/repository/index", None, content=b"{}")
        index = self._json(response, None)
        if not isinstance(index, list):
            raise OperationError(f"model server {self.url} answered a malformed repository index")
        return index

    def infer(self, model: str, inputs: Sequence[Tensor]) -> list[Tensor]:
        """`POST /v2/models/{model}/infer`: the output tensors, data flattened row-major."""
        content = json.dumps(
            {"inputs": [tensor.as_json() for tensor in inputs]}, separators=(",", ":")
        ).encode()
        response = self._call(
            "POST",
            f"/v2/models/{model}/infer",
            model,
            content=content,
            retry_500=False,
            # The request goes uncompressed; gzipping the (smaller) answer costs the server
            # CPU on every request: ~0.5 ms per 256-row answer from MLServer on this machine.
            headers={"accept-encoding": "identity"},
        )
        body = self._json(response, model)
        try:
            return [
                Tensor(
                    name=str(out["name"]),
                    datatype=str(out["datatype"]),
                    shape=tuple(int(n) for n in out["shape"]),
                    data=out["data"],
                )
                for out in body["outputs"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise OperationError(
                f"model {model!r} on {self.url} answered a malformed inference response: {exc!r}"
            ) from exc

    # --- transport, retries and error mapping --------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        model: str | None,
        *,
        content: bytes | None = None,
        timeout: float | None = None,
        retry_500: bool = True,
        accept: frozenset[int] = frozenset(),
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """One request with bounded retries; every failure leaves as an orchestrator error.

        Answers with a status in `accept` are returned, not raised: the caller reads
        them (a 404 counts only with a V2 error body; without one the route is missing).
        """
        headers = ({"content-type": "application/json"} if content is not None else {}) | (
            headers or {}
        )
        request_timeout: Any = (
            httpx.Timeout(timeout, connect=self.config.connect_timeout_s)
            if timeout is not None
            else httpx.USE_CLIENT_DEFAULT
        )
        subject = (
            f"model {model!r} on model server {self.url}" if model else f"model server {self.url}"
        )

        def attempt() -> httpx.Response:
            try:
                response = self._http.request(
                    method, path, content=content, headers=headers, timeout=request_timeout
                )
            except httpx.UnsupportedProtocol as exc:
                raise OperationError(f"{subject}: unsupported URL ({exc})") from exc
            except httpx.TimeoutException as exc:
                raise Retryable(f"{subject}: no answer in time ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                raise Retryable(f"{subject}: {cause}") from exc
            except httpx.HTTPError as exc:  # DecodingError, TooManyRedirects: retrying won't help
                raise OperationError(f"{subject}: {type(exc).__name__}: {exc}") from exc
            status = response.status_code
            if response.is_success:
                return response
            if status in accept and (status != 404 or _has_v2_error(response)):
                return response
            if status not in RETRIED_STATUS or (status == 500 and not retry_500):
                raise _rejection(response, subject, model)
            raise Retryable(
                f"{subject}: HTTP {status} {_server_message(response)}",
                retry_after_seconds(response.headers.get("retry-after")),
            )

        return self._retrying.call(attempt)

    def _json(self, response: httpx.Response, model: str | None) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            what = f"model {model!r} on {self.url}" if model else self.url
            raise OperationError(f"{what} answered {response.status_code} with non-JSON") from exc


def _specs(declared: Any) -> tuple[TensorSpec, ...]:
    """Declared tensors as the metadata lists them; what a server leaves out stays empty."""
    specs = []
    for entry in declared if isinstance(declared, list) else ():
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        try:
            shape = tuple(int(n) for n in entry.get("shape") or ())
        except (TypeError, ValueError):
            shape = ()
        parameters = entry.get("parameters")
        specs.append(
            TensorSpec(
                name=str(entry["name"]),
                datatype=str(entry.get("datatype") or "").upper(),
                shape=shape,
                parameters=parameters if isinstance(parameters, dict) else {},
            )
        )
    return tuple(specs)


@functools.cache
def _no_tls() -> ssl.SSLContext:
    """The TLS context of a client for a plain-http server: it trusts no certificate.

    httpx builds a verifying context (loading certifi's CA bundle) for every
    client, 50-150 ms that a plain-http server never uses: this client only
    requests paths under its http base URL and follows no redirects. Should a
    TLS connection happen after all, it fails verification rather than skip it.
    """
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, with no CA: refuses all


def _rejection(response: httpx.Response, subject: str, model: str | None) -> OperationError:
    """The error for an answer that retrying cannot fix."""
    status = response.status_code
    message = _server_message(response)
    request = response.request
    text = f"{subject} refused {request.method} {request.url.path}: HTTP {status} {message}"
    if status == 404 and model is not None and _has_v2_error(response):
        return OperationError(
            f"{subject}: the server does not know this model (not in its repository, "
            f"or not loaded: run deploy_model first): {message}"
        )
    if status == 404:
        return OperationError(f"{text}; is this an Open Inference Protocol (V2) server?")
    if status == 500:
        return OperationError(
            f"{text}; the model raised on this input: check its shape and datatype"
        )
    return OperationError(text)


def _has_v2_error(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body


def _server_message(response: httpx.Response) -> str:
    """The server's own explanation: V2's `{"error": ...}`, FastAPI's `detail`, or the text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            if body.get(key):
                return str(body[key])
    text = response.text.strip()
    return (text[:500] + "…") if len(text) > 500 else (text or response.reason_phrase)
