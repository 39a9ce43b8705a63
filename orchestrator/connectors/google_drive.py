"""The one Google Drive client: Drive v3 metadata and chunked media downloads to disk.

Built with google-api-python-client from its bundled discovery document and
service-account credentials read from a file (never without credentials: the
library would probe the cloud metadata server). Each request (one metadata call,
one chunk of a download) is retried as orchestrator/retry.py says on 429, 5xx
and dropped connections, so a download resumes at the chunk that broke; when the
attempts run out, RetriesExhausted. Library errors leave this module as
orchestrator errors naming the file id. The settings are the `google_drive`
resource's fields (orchestrator/resources/google_drive.py).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from orchestrator.errors import Canceled, OperationError, TransientError
from orchestrator.retry import Retryable, Retrying, retry_after_seconds

if TYPE_CHECKING:
    from orchestrator.resources.google_drive import GoogleDriveResource

DRIVE_SCOPES = ("https://www.googleapis.com/auth/drive.readonly",)
DEFAULT_ENDPOINT = "https://www.googleapis.com/drive/v3/"
FILE_ID_PATTERN = r"^[A-Za-z0-9_-]+$"
_FILE_ID = re.compile(FILE_ID_PATTERN)
RATE_LIMIT_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
GOOGLE_APPS_PREFIX = "application/vnd.google-apps."

T = TypeVar("T")


@dataclass(frozen=True)
class DriveFile:
    """A file's metadata: what the download is checked against."""

    id: str
    name: str
    size: int | None
    md5: str | None
    mime_type: str


def check_file_id(file_id: str) -> str:
    """`file_id` if it is a Drive id (letters, digits, '-' and '_'), else OperationError."""
    if not _FILE_ID.fullmatch(file_id):
        raise OperationError(
            f"{file_id!r} is not a Google Drive file id (expected letters, digits, '-' and '_')"
        )
    return file_id


class _HashingWriter:
    """A file that also feeds what it writes to an MD5 digest."""

    def __init__(self, out: IO[bytes]):
        self.out = out
        self.digest = hashlib.md5(usedforsecurity=False)
        self.written = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.written += len(data)
        return self.out.write(data)


class DriveClient:
    """Reads Drive files; credentials and the API client are made on first use.

    `config` is the google_drive resource; `sleep` waits between attempts.
    """

    def __init__(self, config: GoogleDriveResource, *, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self._retrying = Retrying(config, sleep)

    @cached_property
    def _credentials(self) -> Any:
        from google.oauth2 import service_account

        path = self.config.credentials_file
        if not path:
            raise OperationError(
                "Google Drive is not configured: set CONSTELLATION_GOOGLE_CREDENTIALS_FILE to a "
                "service-account key file"
            )
        try:
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                path, scopes=list(DRIVE_SCOPES)
            )
        except FileNotFoundError as exc:
            raise OperationError(f"Google credentials file {path!r} does not exist") from exc
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            raise OperationError(
                f"Google credentials file {path!r} is not a service-account key: {exc}"
            ) from exc

    @cached_property
    def _service(self) -> Any:
        from googleapiclient.discovery import build

        if not self.config.endpoint.endswith("/drive/v3/"):
            raise OperationError(
                f"the Google Drive endpoint must end in /drive/v3/, got {self.config.endpoint!r} "
                "(CONSTELLATION_GOOGLE_DRIVE_ENDPOINT)"
            )
        return build(
            "drive",
            "v3",
            credentials=self._credentials,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": self.config.endpoint},
        )

    def metadata(self, file_id: str) -> DriveFile:
        """Name, size, MD5 and type of a file."""
        request = self._service.files().get(
            fileId=check_file_id(file_id),
            fields="id,name,size,md5Checksum,mimeType",
            supportsAllDrives=True,
        )
        found = self._call(file_id, "read the metadata of", request.execute)
        return DriveFile(
            id=file_id,
            name=found.get("name") or file_id,
            size=int(found["size"]) if "size" in found else None,
            md5=found.get("md5Checksum"),
            mime_type=found.get("mimeType", "application/octet-stream"),
        )

    def download(
        self, file: DriveFile, path: Path, should_stop: Callable[[], bool] = lambda: False
    ) -> None:
        """Download a file to `path` chunk by chunk; verify its size and MD5."""
        from googleapiclient.http import MediaIoBaseDownload

        if file.mime_type.startswith(GOOGLE_APPS_PREFIX):
            raise OperationError(
                f"Google Drive file {file.id!r} ({file.name!r}) is a {file.mime_type} item, "
                "which has no content to download; export it to a regular file first"
            )
        request = self._service.files().get_media(fileId=file.id, supportsAllDrives=True)
        with path.open("wb") as out:
            writer = _HashingWriter(out)
            downloader = MediaIoBaseDownload(writer, request, chunksize=self.config.chunk_bytes)
            done = False
            while not done:
                if should_stop():
                    raise Canceled(f"download of Google Drive file {file.id!r} canceled")
                _, done = self._call(file.id, "download", downloader.next_chunk)
        if file.size is not None and writer.written != file.size:
            raise TransientError(
                f"download of Google Drive file {file.id!r} is {writer.written} bytes, "
                f"expected {file.size}"
            )
        if file.md5 and writer.digest.hexdigest() != file.md5:
            raise TransientError(
                f"download of Google Drive file {file.id!r} is corrupt: MD5 "
                f"{writer.digest.hexdigest()} differs from Drive's {file.md5}"
            )

    def _call(self, file_id: str, action: str, call: Callable[[], T]) -> T:
        """Run one request, retried on transient faults (orchestrator/retry.py)."""
        from google.auth.exceptions import RefreshError
        from google.auth.exceptions import TransportError as AuthTransportError
        from googleapiclient.errors import HttpError
        from httplib2 import HttpLib2Error

        def attempt() -> T:
            try:
                return call()
            except HttpError as exc:
                error = http_error(exc, file_id, action)
                if isinstance(error, Retryable):
                    error.retry_after = retry_after_seconds(exc.resp.get("retry-after"))
                raise error from exc
            except RefreshError as exc:
                raise OperationError(
                    f"cannot {action} Google Drive file {file_id!r}: the service-account "
                    f"credentials were refused ({exc})"
                ) from exc
            except (OSError, http.client.HTTPException, HttpLib2Error, AuthTransportError) as exc:
                raise Retryable(
                    f"cannot {action} Google Drive file {file_id!r}: "
                    f"{type(exc).__name__} {str(exc) or '(connection dropped)'}"
                ) from exc

        return self._retrying.call(attempt)


def http_error(exc: Any, file_id: str, action: str) -> OperationError | Retryable:
    """The orchestrator error for an HttpError answer from Drive; Retryable if it may pass."""
    status = exc.resp.status
    reason = _reason(exc)
    message = f"cannot {action} Google Drive file {file_id!r}: Drive answered {status}"
    detail = f"{message} ({reason})" if reason else message
    if status == 404:
        return OperationError(f"{message}: file not found, or not shared with the service account")
    if status == 429 or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS):
        return Retryable(detail)
    if status in (401, 403):
        return OperationError(f"{detail}: access denied")
    return OperationError(detail)


def _reason(exc: Any) -> str:
    try:
        details = exc.error_details
    except AttributeError:
        return ""
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("reason", ""))
    return str(details or "")
