"""The S3 resource: where S3 is, how to sign in and how to transfer, for import_from_s3 and
export_to_s3. Credentials left unset come from boto3's usual chain (AWS_ACCESS_KEY_ID,
AWS_PROFILE, instance role); definitions.py binds the AWS_* variables with dg.EnvVar."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from orchestrator.resources.transfers import TransferResource
from orchestrator.settings import env_field

if TYPE_CHECKING:
    from orchestrator.connectors.s3 import S3Client

MiB = 2**20


class S3Resource(TransferResource):
    """S3 or an S3-compatible store (MinIO, moto). Requests are retried by botocore's
    standard retry mode, `max_attempts` in all; a broken download resumes where it broke."""

    endpoint_url: str = env_field(
        "CONSTELLATION_S3_ENDPOINT_URL", "", description="Endpoint URL; empty: AWS."
    )
    region: str = env_field(
        "CONSTELLATION_S3_REGION", "", description="Region; empty: boto3's usual chain."
    )
    allowed_buckets: str = env_field(
        "CONSTELLATION_S3_ALLOWED_BUCKETS",
        "",
        description="Comma-separated bucket names (shell patterns allowed, e.g. 'team-*') that "
        "instructions may read or write; empty: any bucket the credentials reach.",
    )
    access_key_id: str | None = Field(
        default=None, repr=False, description="Access key id; set it with dg.EnvVar, never inline."
    )
    secret_access_key: str | None = Field(
        default=None, repr=False, description="Secret access key; set it with dg.EnvVar."
    )
    session_token: str | None = Field(
        default=None, repr=False, description="Session token, if any; set it with dg.EnvVar."
    )
    multipart_threshold_bytes: int = env_field(
        "CONSTELLATION_S3_MULTIPART_THRESHOLD_BYTES",
        64 * MiB,
        ge=5 * MiB,
        description="Files from this size are uploaded in parts.",
    )
    multipart_chunk_bytes: int = env_field(
        "CONSTELLATION_S3_MULTIPART_CHUNK_BYTES",
        16 * MiB,
        ge=5 * MiB,
        description="Size of one part of a multipart upload.",
    )
    connect_timeout_s: float = Field(default=10.0, gt=0, description="Seconds to connect.")
    read_timeout_s: float = Field(default=60.0, gt=0, description="Seconds to wait for data.")
    # Small reads are much faster than big ones (measured: 1 GiB from moto in
    # 0.87 s at 256 KiB, 1.80 s at 1 MiB, 3.0 s at 8 MiB).
    read_chunk_bytes: int = Field(
        default=256 * 2**10, ge=2**10, description="Bytes per read of a download's body."
    )

    def client(self, max_concurrency: int = 4) -> S3Client:
        """A client that connects on first use, so runs without S3 never touch it.

        `max_concurrency`: parts of one multipart upload in flight.
        """
        from orchestrator.connectors.s3 import S3Client

        return S3Client(self, max_concurrency=max_concurrency)
