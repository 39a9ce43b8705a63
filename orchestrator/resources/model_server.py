"""The model server resource: where the Open Inference Protocol server is, and how to call it.

Every field left blank in run config comes from a CONSTELLATION_MODEL_SERVER_*
environment variable (`..._URL`, `..._READ_TIMEOUT_S`, `..._BATCH_SIZE`, ...),
else the default below. Without a URL no client is made and the model
operations refuse to run; every other run is unaffected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from orchestrator.connectors.model_server import ModelServerClient


class ModelServerSettings(BaseSettings):
    """CONSTELLATION_MODEL_SERVER_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="CONSTELLATION_MODEL_SERVER_", extra="ignore")

    url: str = Field("", description="Base URL, e.g. http://127.0.0.1:8080; empty: none.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Seconds to open a connection.")
    read_timeout_s: float = Field(60.0, gt=0, description="Seconds to wait for an answer.")
    load_timeout_s: float = Field(300.0, gt=0, description="Seconds a model load may take.")
    max_attempts: int = Field(4, ge=1, description="Attempts per call on network faults, 429, 5xx.")
    backoff_s: float = Field(0.5, ge=0, description="First delay between attempts; doubles.")
    max_backoff_s: float = Field(30.0, ge=0, description="Longest delay, Retry-After included.")
    batch_size: int = Field(1024, ge=1, description="Rows per inference request.")
    concurrency: int = Field(4, ge=1, description="Inference requests in flight.")


class ModelServerResource(dg.ConfigurableResource):
    """An Open Inference Protocol (KServe V2 REST) server: Triton, KServe, MLServer, Seldon.
    Blank fields fall back to CONSTELLATION_MODEL_SERVER_* environment variables."""

    url: str = Field(
        default="",
        description="Base URL. Empty: $CONSTELLATION_MODEL_SERVER_URL; unset: no model server.",
    )
    connect_timeout_s: float | None = Field(default=None, description="Connect timeout (s).")
    read_timeout_s: float | None = Field(default=None, description="Read timeout (s).")
    load_timeout_s: float | None = Field(default=None, description="Model load timeout (s).")
    max_attempts: int | None = Field(default=None, description="Attempts per call.")
    backoff_s: float | None = Field(default=None, description="First retry delay (s).")
    max_backoff_s: float | None = Field(default=None, description="Longest retry delay (s).")
    batch_size: int | None = Field(default=None, description="Rows per inference request.")
    concurrency: int | None = Field(default=None, description="Inference requests in flight.")

    def client(self) -> ModelServerClient | None:
        """A client for the configured server, or None when no URL is configured."""
        from orchestrator.connectors.model_server import ClientConfig, ModelServerClient

        env = ModelServerSettings()
        url = self.url or env.url
        if not url:
            return None
        merged = ModelServerSettings.model_validate(
            env.model_dump()
            | {name: value for name, value in self.model_dump().items() if value is not None}
        )
        return ModelServerClient(url, ClientConfig(**merged.model_dump(exclude={"url"})))
