"""The model server resource: where the Open Inference Protocol server is, and how to call it.

Each field defaults to its CONSTELLATION_MODEL_SERVER_* environment variable
(`..._URL`, `..._READ_TIMEOUT_S`, `..._BATCH_SIZE`, ...), else the default below.
Without a URL no client is made and the model operations refuse to run; every
other run is unaffected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import dagster as dg

from orchestrator.settings import env_field

if TYPE_CHECKING:
    from orchestrator.connectors.model_server import ModelServerClient

ENV = "CONSTELLATION_MODEL_SERVER_"


class ModelServerResource(dg.ConfigurableResource[Any]):
    """An Open Inference Protocol (KServe V2 REST) server: Triton, KServe, MLServer, Seldon."""

    url: str = env_field(
        f"{ENV}URL", "", description="Base URL, e.g. http://127.0.0.1:8080; unset: no model server."
    )
    connect_timeout_s: float = env_field(
        f"{ENV}CONNECT_TIMEOUT_S", 5.0, gt=0, description="Seconds to open a connection."
    )
    read_timeout_s: float = env_field(
        f"{ENV}READ_TIMEOUT_S", 60.0, gt=0, description="Seconds to wait for an answer."
    )
    load_timeout_s: float = env_field(
        f"{ENV}LOAD_TIMEOUT_S", 300.0, gt=0, description="Seconds a model load may take."
    )
    max_attempts: int = env_field(
        f"{ENV}MAX_ATTEMPTS", 4, ge=1, description="Attempts per call on network faults, 429, 5xx."
    )
    backoff_s: float = env_field(
        f"{ENV}BACKOFF_S", 0.5, ge=0, description="First delay between attempts (s); doubles."
    )
    max_backoff_s: float = env_field(
        f"{ENV}MAX_BACKOFF_S", 30.0, ge=0, description="Longest delay (s), Retry-After included."
    )
    # Each request costs ~1.4 ms of HTTP and server work here: 1024 rather than 256
    # rows per request took 5,000 small rows ~30 % faster.
    batch_size: int = env_field(
        f"{ENV}BATCH_SIZE", 1024, ge=1, description="Rows per inference request (fewer if big)."
    )
    concurrency: int = env_field(
        f"{ENV}CONCURRENCY", 4, ge=1, description="Inference requests in flight."
    )
    binary_tensors: Literal["auto", "always", "never"] = env_field(
        f"{ENV}BINARY_TENSORS",
        "auto",
        description="Tensors as binary data (the binary tensor data extension) or JSON: "
        "'auto' uses binary where the server takes it (asked once, then remembered).",
    )

    def client(self) -> ModelServerClient | None:
        """A client for the configured server, or None when no URL is configured."""
        from orchestrator.connectors.model_server import ModelServerClient

        return ModelServerClient(self) if self.url else None
