"""The Google Drive resource: the service-account key, the API root and the transfer sizes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.connectors.google_drive import DEFAULT_ENDPOINT
from orchestrator.resources.transfers import TransferResource
from orchestrator.settings import env_field

if TYPE_CHECKING:
    from orchestrator.connectors.google_drive import DriveClient


class GoogleDriveResource(TransferResource):
    """Drive v3 with a service account; each request retried (orchestrator/retry.py)."""

    credentials_file: str = env_field(
        "CONSTELLATION_GOOGLE_CREDENTIALS_FILE",
        "",
        description="Service-account JSON key file; unset: Drive imports fail with a clear "
        "error, other runs are unaffected.",
    )
    endpoint: str = env_field(
        "CONSTELLATION_GOOGLE_DRIVE_ENDPOINT",
        DEFAULT_ENDPOINT,
        description="Drive v3 API root; must end in /drive/v3/.",
    )
    chunk_bytes: int = env_field(
        "CONSTELLATION_TRANSFER_CHUNK_BYTES",
        8 * 2**20,
        ge=2**16,
        description="Bytes per Google Drive download request.",
    )

    def client(self) -> DriveClient:
        """A client that reads its credentials on first use."""
        from orchestrator.connectors.google_drive import DriveClient

        return DriveClient(self)
