"""API settings, from CONSTELLATION_* environment variables (and an optional keys file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from orchestrator.saved.database import database_url
from orchestrator.settings import TreeLimits


class Settings(TreeLimits):
    """Everything the API needs to know; nothing is read at import time."""

    model_config = SettingsConfigDict(env_prefix="CONSTELLATION_", extra="ignore")

    dagster_url: str = Field("http://127.0.0.1:3000", description="Dagster webserver URL.")
    dagster_location: str = "orchestrator"
    dagster_repository: str = "__repository__"
    dagster_job: str = "build_execute_job"
    dagster_timeout_s: float = Field(30.0, gt=0, description="Per GraphQL request.")
    dagster_max_connections: int = Field(
        8, ge=1, description="GraphQL requests in flight; more wait in the API."
    )

    database_url: SecretStr = Field(
        default_factory=lambda: SecretStr(database_url()),
        description="Saved pipelines, schedules and Idempotency-Keys: a SQLAlchemy URL "
        "(postgresql+psycopg2://... in production); default a SQLite file in var/.",
    )

    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="Comma-separated bearer tokens."
    )
    api_keys_file: Path | None = Field(None, description="A file with one API key per line.")
    allow_open_access: bool = Field(False, description="No auth at all: local development only.")

    max_body_bytes: int = Field(1_048_576, ge=1)
    results_redirect_seconds: int = Field(
        0,
        ge=0,
        description="With an S3 artifact store: answer an item's bytes with a 307 to a "
        "presigned URL valid this long; 0: stream them through the API.",
    )
    metrics_public: bool = Field(
        False,
        description="Serve GET /metrics without the API key (for a Prometheus that reaches "
        "the API over a private network); by default it needs the key like every route.",
    )
    celery_broker_url: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "CONSTELLATION_CELERY_BROKER_URL", "DAGSTER_CELERY_BROKER_URL"
        ),
        description="The warm run workers' broker (the run launcher's, deploy/dagster.yaml): "
        "/metrics pings the Celery workers on it; unset: workers are not listed.",
    )
    metrics_poll_s: float = Field(
        5.0,
        ge=0,
        description="How often the API reads the queue, the workers' health and the runs "
        "that ended from Dagster for /metrics; 0: never (submissions are still counted).",
    )
    # max_depth and max_nodes: TreeLimits, shared with the orchestrator's job.

    @model_validator(mode="before")
    @classmethod
    def _split_keys(cls, data: dict[str, object]) -> dict[str, object]:
        keys = data.get("api_keys")
        if isinstance(keys, str):
            data["api_keys"] = [k.strip() for k in keys.split(",") if k.strip()]
        return data

    @model_validator(mode="after")
    def _require_auth(self) -> Settings:
        if self.api_keys_file is not None:
            lines = self.api_keys_file.read_text().splitlines()
            self.api_keys += [SecretStr(k.strip()) for k in lines if k.strip()]
        if not self.api_keys and not self.allow_open_access:
            raise ValueError(
                "no API keys configured: set CONSTELLATION_API_KEYS or "
                "CONSTELLATION_API_KEYS_FILE, or CONSTELLATION_ALLOW_OPEN_ACCESS=true "
                "for local development"
            )
        if any(len(k.get_secret_value()) < 16 for k in self.api_keys):
            raise ValueError("API keys must be at least 16 characters long")
        return self
