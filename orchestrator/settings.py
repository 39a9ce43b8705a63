"""Orchestrator settings, read from CONSTELLATION_* environment variables."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.catalog.validation import Limits


class OrchestratorSettings(BaseSettings):
    """Defaults for resources left blank in run config, and the tree limits."""

    model_config = SettingsConfigDict(env_prefix="CONSTELLATION_", extra="ignore")

    artifact_root: Path = Field(Path("var/artifacts"), description="Folder for run artifacts.")
    data_root: Path | None = Field(None, description="Folder import_from_local may read.")
    workers: int = Field(2, ge=1, description="Threads for CPU-bound work in one operation.")
    max_parallel: int = Field(4, ge=1, description="Nested instructions run at once.")
    max_depth: int = Field(32, ge=1)
    max_nodes: int = Field(10_000, ge=1)

    @property
    def limits(self) -> Limits:
        return Limits(max_depth=self.max_depth, max_nodes=self.max_nodes)

    def bucket_allowed(self, bucket: str) -> bool:
        patterns = [p.strip() for p in self.s3_allowed_buckets.split(",") if p.strip()]
        return not patterns or any(fnmatch.fnmatchcase(bucket, p) for p in patterns)

    # Archive extraction (orchestrator/archives.py).
    archive_max_entries: int = Field(
        100_000, ge=1, description="Most entries (files and folders) one archive may hold."
    )
    archive_max_total_bytes: int = Field(
        50 * 2**30, ge=1, description="Most bytes one archive may expand to."
    )
    archive_max_ratio: float = Field(
        200.0,
        gt=1,
        description="Highest compression ratio (expanded / compressed) an archive or one of its "
        "entries may have; entries under 1 MiB are exempt (the total limit caps them).",
    )
    # Transfers from and to S3 and Google Drive.
    transfer_max_attempts: int = Field(
        5, ge=1, description="Attempts per request on a network fault, 429 or 5xx."
    )
    transfer_backoff_seconds: float = Field(
        0.5, ge=0, description="First delay between attempts; doubles each attempt."
    )
    transfer_chunk_bytes: int = Field(
        8 * 2**20, ge=2**16, description="Bytes per Google Drive download request."
    )
    s3_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, moto); unset: AWS."
    )
    s3_region: str | None = Field(None, description="S3 region; unset: boto3's usual chain.")
    s3_allowed_buckets: str = Field(
        "",
        description="Comma-separated bucket names (shell patterns allowed, e.g. 'team-*') that "
        "instructions may read or write; empty: any bucket the credentials reach.",
    )
    s3_multipart_threshold_bytes: int = Field(
        64 * 2**20, ge=5 * 2**20, description="Files from this size are uploaded in parts."
    )
    s3_multipart_chunk_bytes: int = Field(
        16 * 2**20, ge=5 * 2**20, description="Size of one part of a multipart upload."
    )
    google_credentials_file: Path | None = Field(
        None, description="Service-account JSON key file for Google Drive."
    )
    google_drive_endpoint: str = Field(
        "https://www.googleapis.com/drive/v3/",
        description="Drive v3 API root; must end in /drive/v3/.",
    )
