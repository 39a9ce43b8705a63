"""What the S3 and Google Drive resources share: how often a request is tried."""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field

from orchestrator.settings import env_field


class TransferResource(dg.ConfigurableResource[Any]):
    """Retries of one request on a network fault, 429 or 5xx (orchestrator/retry.py)."""

    max_attempts: int = env_field(
        "CONSTELLATION_TRANSFER_MAX_ATTEMPTS",
        5,
        ge=1,
        description="Attempts per request on a network fault, 429 or 5xx.",
    )
    backoff_s: float = env_field(
        "CONSTELLATION_TRANSFER_BACKOFF_SECONDS",
        0.5,
        ge=0,
        description="First delay between attempts (s); doubles each attempt.",
    )
    max_backoff_s: float = Field(
        default=30.0, ge=0, description="Longest delay between attempts (s), Retry-After included."
    )
