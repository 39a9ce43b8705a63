"""The one model server client: the Open Inference Protocol (KServe V2) over REST.

Triton, KServe, MLServer and Seldon all speak it. Every call has explicit
timeouts. Connection failures, timeouts, 429 and 5xx answers are retried as
orchestrator/retry.py says (bounded, exponential backoff, Retry-After honoured);
the connection pool drops a connection that failed, so a retry opens a fresh
one. When the attempts run out the call raises RetriesExhausted naming the model,
the server and the number of attempts. Any other 4xx fails at once with the
server's own message, as OperationError.

Two exceptions to retrying 5xx. A 500 answer to an inference request: V2 servers
answer 500 when the model raised on the input (MLServer does for a shape the
model rejects), and the same input fails the same way again. A 503 with a V2
error body and no Retry-After to a call about one model: that is the server's
considered answer, not an outage (KServe answers a load of a model it cannot
load, an unknown one included, and the readiness of a model not ready, so).

Tensors travel as JSON or with the binary tensor data extension (a JSON header,
then each tensor's raw little-endian bytes; BYTES elements each with a 4-byte
little-endian length): `binary_tensors` chooses, per client. "auto" sends binary
when the server metadata lists "binary_tensor_data" (Triton); otherwise the first
inference goes binary and, refused (a 4xx, or a 500 that is not a model's own
error: MLServer 1.7.1 answers a binary body with a bare 500, or a 422 when its
bytes happen to be UTF-8, SeldonIO/MLServer#324), is sent again as JSON once and
the client keeps JSON. KServe (since its PR #3685) takes binary without listing
the extension. In JSON, BYTES elements given as `bytes` go base64-encoded with the
tensor parameter `content_type: "base64"`, which MLServer's codecs decode.

Servers differ in the repository extension: `repository_index()` answers None
where there is no index, and `load`/`unload` raise RepositoryUnsupported where
the server cannot load or unload models at all (404 without a V2 error body,
405, 501, or Triton's 400 "explicit model load / unload is not allowed").

The settings are the `model_server` resource's fields (orchestrator/resources/).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import ssl
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import httpx
import numpy as np

from orchestrator.errors import OperationError, RepositoryUnsupported, RetriesExhausted
from orchestrator.retry import Retryable, Retrying, retry_after_seconds

if TYPE_CHECKING:
    from orchestrator.resources.model_server import ModelServerResource

log = logging.getLogger(__name__)

RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})
READY_POLL_SECONDS = (0.05, 0.1, 0.2, 0.5, 1.0)  # then every second
BINARY_EXTENSION = "binary_tensor_data"  # in the server metadata's `extensions`
HEADER_LENGTH = "inference-header-content-length"
# Where the V2 datatypes have a numpy dtype: little-endian, as the binary extension sends.
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(code)
    for name, code in {
        "BOOL": "?",
        "UINT8": "u1",
        "UINT16": "<u2",
        "UINT32": "<u4",
        "UINT64": "<u8",
        "INT8": "i1",
        "INT16": "<i2",
        "INT32": "<i4",
        "INT64": "<i8",
        "FP16": "<f2",
        "FP32": "<f4",
        "FP64": "<f8",
    }.items()
}
BinaryTensors = Literal["auto", "always", "never"]


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
        """The tensor in a JSON request; `bytes` elements as base64 (`content_type: base64`)."""
        data = self.data
        parameters = dict(self.parameters)
        values: Any = data.ravel().tolist() if isinstance(data, np.ndarray) else data
        if self.datatype == "BYTES" and any(isinstance(v, bytes) for v in values):
            values = [
                base64.b64encode(v).decode() if isinstance(v, bytes) else str(v) for v in values
            ]
            parameters["content_type"] = "base64"
        body: dict[str, Any] = {
            "name": self.name,
            "shape": list(self.shape),
            "datatype": self.datatype,
            "data": values,
        }
        if parameters:
            body["parameters"] = parameters
        return body

    def as_bytes(self) -> bytes:
        """The tensor's data as the binary extension sends it: row-major, little-endian;
        BYTES as each element's 4-byte little-endian length, then its bytes."""
        if self.datatype == "BYTES":
            parts: list[bytes] = []
            for value in np.asarray(self.data, dtype=object).ravel():
                raw = value if isinstance(value, bytes) else str(value).encode()
                parts += (struct.pack("<I", len(raw)), raw)
            return b"".join(parts)
        dtype = NUMPY_DTYPES.get(self.datatype)
        if dtype is None:
            raise OperationError(
                f"tensor {self.name!r}: datatype {self.datatype} has no binary form here "
                f"(expected one of BYTES, {', '.join(NUMPY_DTYPES)})"
            )
        return np.ascontiguousarray(self.data, dtype=dtype).tobytes()


@dataclass(frozen=True)
class TensorSpec:
    """A declared input or output of a model (`GET /v2/models/{name}`): -1 marks a
    variable dimension; `shape` is () when the server declares none."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerMetadata:
    """`GET /v2`: the server's name, version and the protocol extensions it lists."""

    name: str
    version: str
    extensions: tuple[str, ...] = ()


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
        self._format = _TensorFormat(config.binary_tensors)
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

    def server_metadata(self, *, model: str | None = None) -> ServerMetadata:
        """`GET /v2`: name, version and the extensions the server lists (`model`: the one
        the caller asks for, named in errors)."""
        body = self._json(self._call("GET", "/v2", model), model)
        if not isinstance(body, dict):
            raise OperationError(f"model server {self.url} answered malformed server metadata")
        extensions = body.get("extensions")
        return ServerMetadata(
            name=str(body.get("name") or ""),
            version=str(body.get("version") or ""),
            extensions=tuple(str(e) for e in extensions) if isinstance(extensions, list) else (),
        )

    def load(self, model: str) -> None:
        """`POST /v2/repository/models/{model}/load`; a model the server cannot load fails at
        once (MLServer: 404; KServe: 503). RepositoryUnsupported: the server loads no models."""
        self._call(
            "POST",
            f"/v2/repository/models/{model}/load",
            model,
            timeout=self.config.load_timeout_s,
            repository=True,
        )

    def unload(self, model: str) -> bool:
        """`POST /v2/repository/models/{model}/unload`; False when the model was not loaded.
        RepositoryUnsupported: the server unloads no models."""
        response = self._call(
            "POST",
            f"/v2/repository/models/{model}/unload",
            model,
            accept=frozenset({404}),
            repository=True,
        )
        return response.is_success

    def model_ready(self, model: str) -> bool:
        """`GET /v2/models/{model}/ready`: True on 200, False while unknown or not ready."""
        response = self._call(
            "GET", f"/v2/models/{model}/ready", model, accept=frozenset({400, 404, 503})
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

    def repository_index(self) -> list[dict[str, Any]] | None:
        """`POST /v2/repository/index`: every model the server can load, with its state;
        None when the server has no index (it is optional: KServe has none)."""
        try:
            response = self._call(
                "POST", "/v2/repository/index", None, content=b"{}", repository=True
            )
        except RepositoryUnsupported:
            return None
        index = self._json(response, None)
        if not isinstance(index, list):
            raise OperationError(f"model server {self.url} answered a malformed repository index")
        return index

    @property
    def binary_tensors(self) -> bool | None:
        """Whether inference requests go as binary tensors; None until "auto" found out."""
        return self._format.binary

    def infer(
        self, model: str, inputs: Sequence[Tensor], outputs: Sequence[str] | None = None
    ) -> list[Tensor]:
        """`POST /v2/models/{model}/infer`: the output tensors (`outputs`: only these, by name).

        Numeric outputs come back as numpy arrays of their shape (read-only when they
        came as binary); BYTES as a list of `bytes` (binary) or of `str` (JSON).
        """
        binary = self._format.take()
        if binary is not None:
            return self._infer(model, inputs, outputs, binary=binary)
        learnt: bool | None = None
        try:
            if BINARY_EXTENSION in self._listed_extensions(model):
                learnt = True
                return self._infer(model, inputs, outputs, binary=True)
            response = self._post_infer(model, inputs, outputs, binary=True, probing=True)
            if response.is_success:
                learnt = True
                return self._outputs(response, model)
            if not _refuses_binary(response):
                raise _rejection(response, self._subject(model), model)
            answer = self._infer(model, inputs, outputs, binary=False)
            learnt = False
            log.info(
                "model server %s refused binary tensors (HTTP %s %s): JSON from now on",
                self.url,
                response.status_code,
                _server_message(response)[:200],
            )
            return answer
        finally:
            self._format.settle(learnt)

    # --- inference requests ----------------------------------------------------------

    def _listed_extensions(self, model: str) -> tuple[str, ...]:
        """The extensions `GET /v2` lists; none when the server does not answer it."""
        try:
            return self.server_metadata(model=model).extensions
        except RetriesExhausted:
            raise
        except OperationError:
            return ()

    def _infer(
        self,
        model: str,
        inputs: Sequence[Tensor],
        outputs: Sequence[str] | None,
        *,
        binary: bool,
    ) -> list[Tensor]:
        return self._outputs(self._post_infer(model, inputs, outputs, binary=binary), model)

    def _post_infer(
        self,
        model: str,
        inputs: Sequence[Tensor],
        outputs: Sequence[str] | None,
        *,
        binary: bool,
        probing: bool = False,
    ) -> httpx.Response:
        """One inference request; `probing`: a refusal is returned, not raised."""
        content, headers = _inference_request(inputs, outputs, binary=binary)
        return self._call(
            "POST",
            f"/v2/models/{model}/infer",
            model,
            content=content,
            retry_500=False,
            accept=PROBE_ANSWERS if probing else frozenset(),
            # The request goes uncompressed; gzipping the (smaller) answer costs the server
            # CPU on every request: ~0.5 ms per 256-row answer from MLServer on this machine.
            headers=headers | {"accept-encoding": "identity"},
        )

    def _outputs(self, response: httpx.Response, model: str) -> list[Tensor]:
        """The output tensors of an answer: JSON, or a JSON header and binary tensors."""
        content = response.content
        length = response.headers.get(HEADER_LENGTH)
        try:
            end = int(length) if length is not None else len(content)
            body = json.loads(content[:end])
            tensors, offset, data = [], end, memoryview(content)
            for out in body["outputs"]:
                parameters = dict(out.get("parameters") or {})
                size = parameters.pop("binary_data_size", None)
                datatype = str(out["datatype"])
                shape = tuple(int(n) for n in out["shape"])
                if size is None:
                    values = _from_json(out["data"], datatype, shape)
                else:
                    if offset + int(size) > len(content):
                        raise ValueError(f"binary data of {out['name']!r} ends early")
                    values = _from_bytes(data[offset : offset + int(size)], datatype, shape)
                    offset += int(size)
                tensors.append(Tensor(str(out["name"]), datatype, shape, values, parameters))
            return tensors
        except (KeyError, TypeError, ValueError, struct.error) as exc:
            raise OperationError(
                f"model {model!r} on {self.url} answered a malformed inference response: {exc!r}"
            ) from exc

    # --- transport, retries and error mapping --------------------------------------

    def _subject(self, model: str | None) -> str:
        return (
            f"model {model!r} on model server {self.url}" if model else f"model server {self.url}"
        )

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
        repository: bool = False,
    ) -> httpx.Response:
        """One request with bounded retries; every failure leaves as an orchestrator error.

        Answers with a status in `accept` are returned, not raised: the caller reads
        them (a 404 counts only with a V2 error body; without one the route is missing).
        `repository`: a call of the repository extension, RepositoryUnsupported where
        the server has none.
        """
        headers = ({"content-type": "application/json"} if content is not None else {}) | (
            headers or {}
        )
        request_timeout: Any = (
            httpx.Timeout(timeout, connect=self.config.connect_timeout_s)
            if timeout is not None
            else httpx.USE_CLIENT_DEFAULT
        )
        subject = self._subject(model)

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
            # httpx binds the read answer's stream to the answer (a reference cycle), which
            # keeps the request and its body (MBs of tensors) alive until the cyclic GC runs:
            # peak memory grew with the item count. The body is read; the stream is done.
            response.stream = httpx.ByteStream(b"")
            status = response.status_code
            if response.is_success:
                return response
            if repository and _no_repository(response):
                raise RepositoryUnsupported(
                    f"{subject}: the server has no model repository extension "
                    f"({method} {path} answered HTTP {status} {_server_message(response)})"
                )
            readable = status != 404 or _has_v2_error(response)
            if status in accept and readable and (status != 503 or _final_503(response, model)):
                return response
            if (
                status not in RETRIED_STATUS
                or (status == 500 and not retry_500)
                or (status == 503 and _final_503(response, model))
            ):
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


class _TensorFormat:
    """Binary or JSON tensors for one client: fixed by `binary_tensors`, or found out once.

    While undecided ("auto"), one request at a time finds out; the others wait for
    its answer, so a server that refuses binary sees one binary request per client.
    """

    def __init__(self, setting: BinaryTensors):
        self.binary: bool | None = {"always": True, "never": False}.get(setting)
        self._finding_out = False
        self._settled = threading.Condition()

    def take(self) -> bool | None:
        """The format to send; None: the caller is to find out, then `settle()`."""
        with self._settled:
            while self.binary is None and self._finding_out:
                self._settled.wait()
            if self.binary is None:
                self._finding_out = True
            return self.binary

    def settle(self, binary: bool | None) -> None:
        """What the caller found out (None: nothing, e.g. the request failed either way)."""
        with self._settled:
            self._finding_out = False
            if self.binary is None:
                self.binary = binary
            self._settled.notify_all()


# A binary probe's answers read by infer (refused, or the model's own error) rather than raised.
PROBE_ANSWERS = frozenset(range(400, 501)) - {404, 413, 429}


def _refuses_binary(response: httpx.Response) -> bool:
    """Whether an answer to a binary inference request says the server cannot read binary:
    a 4xx but "unknown model", or a 500 that is no V2 error of the model (MLServer's bare
    500) or says the body is no JSON."""
    status = response.status_code
    if status == 500:
        message = _server_message(response).lower()
        return not _has_v2_error(response) or any(
            word in message for word in ("json", "decode", "parse", "utf-8")
        )
    return 400 <= status < 500 and status != 404


def _inference_request(
    inputs: Sequence[Tensor], outputs: Sequence[str] | None, *, binary: bool
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of an inference request, JSON or binary."""
    if not binary:
        body: dict[str, Any] = {"inputs": [tensor.as_json() for tensor in inputs]}
        if outputs:
            body["outputs"] = [{"name": name} for name in outputs]
        return json.dumps(body, separators=(",", ":")).encode(), {}
    chunks: list[bytes] = []
    declared: list[dict[str, Any]] = []
    for tensor in inputs:
        raw = tensor.as_bytes()
        chunks.append(raw)
        declared.append(
            {
                "name": tensor.name,
                "shape": list(tensor.shape),
                "datatype": tensor.datatype,
                "parameters": {**tensor.parameters, "binary_data_size": len(raw)},
            }
        )
    body = {"inputs": declared}
    if outputs:
        body["outputs"] = [{"name": name, "parameters": {"binary_data": True}} for name in outputs]
    else:
        body["parameters"] = {"binary_data_output": True}
    header = json.dumps(body, separators=(",", ":")).encode()
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    return b"".join([header, *chunks]), headers


def _from_json(values: Any, datatype: str, shape: tuple[int, ...]) -> np.ndarray | list[Any]:
    """An output's JSON data: numeric as an array of `shape`, anything else as given."""
    dtype = NUMPY_DTYPES.get(datatype)
    if dtype is None:
        return list(values)
    return np.asarray(values, dtype=dtype).reshape(shape)


def _from_bytes(raw: memoryview, datatype: str, shape: tuple[int, ...]) -> np.ndarray | list[Any]:
    """An output's binary data: numeric as a (read-only) array of `shape`, BYTES as bytes."""
    if datatype == "BYTES":
        elements, offset = [], 0
        while offset < len(raw):
            (size,) = struct.unpack_from("<I", raw, offset)
            elements.append(bytes(raw[offset + 4 : offset + 4 + size]))
            offset += 4 + size
        return elements
    dtype = NUMPY_DTYPES.get(datatype)
    if dtype is None:
        raise ValueError(f"datatype {datatype} has no binary form here")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


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
    if status == 404 and request.url.path.endswith("/load") and _has_v2_error(response):
        return OperationError(
            f"{subject}: the server does not know this model (not in its model repository, "
            f"under this name): {message}"
        )
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
    if status == 503 and request.url.path.endswith("/load"):
        return OperationError(
            f"{subject}: the server could not load this model (is it in its model "
            f"repository, under this name?): HTTP 503 {message}"
        )
    if status == 503:
        return OperationError(f"{subject}: the model is not ready: HTTP 503 {message}")
    return OperationError(text)


def _final_503(response: httpx.Response, model: str | None) -> bool:
    """A 503 about one model with a V2 error body and no Retry-After: the server's answer
    (KServe: "Model with name X is not ready"), which retrying does not change."""
    return (
        model is not None
        and response.status_code == 503
        and "retry-after" not in response.headers
        and _has_v2_error(response)
    )


def _no_repository(response: httpx.Response) -> bool:
    """Whether an answer to a repository call says the server has no such extension."""
    status = response.status_code
    if status in (405, 501):
        return True
    if status == 404:
        return not _has_v2_error(response)
    # Triton started without --model-control-mode=explicit.
    return status == 400 and "load / unload is not allowed" in _server_message(response)


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
