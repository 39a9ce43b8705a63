"""import_from_google_drive: one Drive file, downloaded to disk; archives extracted."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.archives import is_archive_name
from orchestrator.catalog.registry import RetryPolicy, operation
from orchestrator.catalog.values import Dataset
from orchestrator.connectors.google_drive import FILE_ID_PATTERN
from orchestrator.context import OperationContext
from orchestrator.errors import OperationError
from orchestrator.operations.downloads import ItemNames, add_archive, file_name

ARCHIVE_MEDIA_TYPES = {"application/zip", "application/x-zip-compressed", "application/x-tar"}


class ImportFromGoogleDriveParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file_id: str = Field(
        min_length=1,
        max_length=256,
        pattern=FILE_ID_PATTERN,
        description="The Drive file id (letters, digits, '-' and '_'), as in "
        "https://drive.google.com/file/d/FILE_ID/view. The file must be shared with the "
        "server's service account.",
    )
    extract_archives: bool = Field(
        True,
        description="Extract a zip or tar file into the data set; false keeps it as one file.",
    )


def drive_version(params: ImportFromGoogleDriveParams, ctx: OperationContext) -> Any:
    """The cache key's source version: the file's md5Checksum, size, name and type (one
    metadata request); None for a file without a checksum (e.g. a Google Doc)."""
    drive = ctx.services.drive
    if drive is None:
        raise OperationError("Google Drive is not configured on this server")
    found = drive.metadata(params.file_id)
    if found.md5 is None:
        return None
    return [found.md5, found.size, found.name, found.mime_type]


@operation(
    name="import_from_google_drive",
    output=Dataset,
    cache_key=drive_version,
    # Once more for a download whose size or MD5 is wrong; the connector retries each request.
    retry=RetryPolicy(max_attempts=2, backoff_seconds=1.0),
)
def import_from_google_drive(params: ImportFromGoogleDriveParams, ctx: OperationContext) -> Dataset:
    """Download a Google Drive file as a data set: a zip or tar file's contents, or the file."""
    drive = ctx.services.drive
    if drive is None:
        raise OperationError("Google Drive is not configured on this server")
    found = drive.metadata(params.file_id)
    name = file_name(found.name, fallback=params.file_id)
    writer = ctx.dataset_writer()
    archive = params.extract_archives and (
        is_archive_name(name) or found.mime_type in ARCHIVE_MEDIA_TYPES
    )
    ctx.log.info(f"downloading Google Drive file {params.file_id} ({name!r}, {found.size} bytes)")
    if not archive:
        drive.download(found, writer.path_for(name), should_stop=ctx.cancelled.is_set)
        ctx.progress(found.size or 0, found.size, "bytes")  # the connector tells no chunks
        writer.add(name, found.mime_type)
        return writer.finish()
    download = ctx.folder / "download"
    download.mkdir()
    drive.download(found, download / name, should_stop=ctx.cancelled.is_set)
    ctx.progress(found.size or 0, found.size, "bytes")  # the connector tells no chunks
    count = add_archive(
        writer,
        download / name,
        folder="",
        limits=ctx.services.archive_limits,
        names=ItemNames(),
        source=f"Google Drive file {params.file_id} ({name!r})",
    )
    ctx.log.info(f"extracted {count} file(s) from {name!r}")
    return writer.finish()
