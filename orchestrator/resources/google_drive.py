"""The Google Drive resource: the service-account key and the API root."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

from orchestrator.settings import OrchestratorSettings

if TYPE_CHECKING:
    from orchestrator.connectors.google_drive import DriveClient


class GoogleDriveResource(dg.ConfigurableResource):
    """Drive v3 with a service account. Blank fields fall back to CONSTELLATION_* settings."""

    credentials_file: str = Field(
        default="",
        description="Service-account JSON key file. Empty: $CONSTELLATION_GOOGLE_CREDENTIALS_FILE; "
        "unset: Drive imports fail with a clear error, other runs are unaffected.",
    )
    endpoint: str = Field(
        default="",
        description="Drive v3 API root ending in /drive/v3/. Empty: "
        "$CONSTELLATION_GOOGLE_DRIVE_ENDPOINT, else https://www.googleapis.com/drive/v3/.",
    )

    def client(self) -> DriveClient:
        """A client that reads its credentials on first use."""
        from orchestrator.connectors.google_drive import DriveClient, DriveConfig

        settings = OrchestratorSettings()
        credentials = self.credentials_file or settings.google_credentials_file
        return DriveClient(
            DriveConfig(
                credentials_file=Path(credentials) if credentials else None,
                endpoint=self.endpoint or settings.google_drive_endpoint,
                max_attempts=settings.transfer_max_attempts,
                backoff_seconds=settings.transfer_backoff_seconds,
                chunk_bytes=settings.transfer_chunk_bytes,
            )
        )
