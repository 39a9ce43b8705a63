"""The S3 resource: where S3 is and how to sign in, for import_from_s3 and export_to_s3."""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from orchestrator.settings import OrchestratorSettings

if TYPE_CHECKING:
    from orchestrator.connectors.s3 import S3Client


class S3Resource(dg.ConfigurableResource):
    """S3 or an S3-compatible store. Blank fields fall back to CONSTELLATION_* settings,
    credentials to boto3's usual chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, instance role)."""

    endpoint_url: str = Field(
        default="", description="Endpoint URL. Empty: $CONSTELLATION_S3_ENDPOINT_URL, else AWS."
    )
    region: str = Field(default="", description="Region. Empty: $CONSTELLATION_S3_REGION.")
    access_key_id: str | None = Field(
        default=None, description="Access key id; set it with dg.EnvVar, never inline."
    )
    secret_access_key: str | None = Field(
        default=None, description="Secret access key; set it with dg.EnvVar, never inline."
    )
    session_token: str | None = Field(default=None, description="Session token, if any.")

    def client(self) -> S3Client:
        """A client that connects on first use, so runs without S3 never touch it."""
        from orchestrator.connectors.s3 import S3Client, S3Config

        settings = OrchestratorSettings()
        return S3Client(
            S3Config(
                endpoint_url=self.endpoint_url or settings.s3_endpoint_url,
                region=self.region or settings.s3_region,
                access_key_id=self.access_key_id,
                secret_access_key=self.secret_access_key,
                session_token=self.session_token,
                max_attempts=settings.transfer_max_attempts,
                backoff_seconds=settings.transfer_backoff_seconds,
                multipart_threshold=settings.s3_multipart_threshold_bytes,
                multipart_chunk_bytes=settings.s3_multipart_chunk_bytes,
                max_concurrency=settings.workers * 2,
            )
        )
