"""import_from_s3 and export_to_s3: objects streamed between S3 and the run's data sets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.archives import is_archive_name
from orchestrator.catalog.registry import RetryPolicy, operation
from orchestrator.catalog.values import Batches, Dataset, Predictions, S3Objects
from orchestrator.context import OperationContext
from orchestrator.errors import OperationError
from orchestrator.operations.downloads import (
    ItemNames,
    add_archive,
    archive_folder,
    file_name,
    item_name,
)

if TYPE_CHECKING:
    from orchestrator.connectors.s3 import S3Client

BUCKET_PATTERN = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
# Once more for a fault of the whole transfer (a corrupt download, an object that changed
# while read); the S3 connector retries each request itself.
TRANSFER_RETRY = RetryPolicy(max_attempts=2, backoff_seconds=1.0)


def s3_client(ctx: OperationContext, bucket: str) -> S3Client:
    """The S3 connector, once the bucket is known to be allowed."""
    s3 = ctx.services.s3
    if s3 is None:
        raise OperationError("S3 is not configured on this server")
    if not s3.allows(bucket):
        raise OperationError(
            f"bucket {bucket!r} is not allowed on this server (CONSTELLATION_S3_ALLOWED_BUCKETS)"
        )
    return s3


class ImportFromS3Params(BaseModel):
    # The JSON Schema says what `one_source` checks: exactly one of key and prefix.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["key"], "properties": {"key": {"type": "string"}}},
                {"required": ["prefix"], "properties": {"prefix": {"type": "string"}}},
            ]
        },
    )

    bucket: str = Field(pattern=BUCKET_PATTERN, description="The bucket to read from.")
    key: str | None = Field(
        None, min_length=1, description="One object's key. Give either key or prefix."
    )
    prefix: str | None = Field(
        None,
        description="Import every object whose key starts with this (e.g. 'images/'); item "
        "names are the keys relative to the prefix's folder. Give either key or prefix.",
    )
    extract_archives: bool = Field(
        True,
        description="Extract zip and tar objects (by name) into the data set; with a prefix, "
        "each into a folder named after it.",
    )

    @model_validator(mode="after")
    def one_source(self) -> ImportFromS3Params:
        if (self.key is None) == (self.prefix is None):
            raise ValueError("give either 'key' (one object) or 'prefix' (every object under it)")
        return self


def s3_version(params: ImportFromS3Params, ctx: OperationContext) -> list[Any] | None:
    """The cache key's source version: the ETag and size of each object read (one HEAD, or
    the listing of the prefix); None when the object is not there (the import says why)."""
    s3 = s3_client(ctx, params.bucket)
    if params.key is not None:
        found = s3.head(params.bucket, params.key)
        return None if found is None else [[found.key, found.etag, found.size]]
    objects = list(s3.list_objects(params.bucket, params.prefix or ""))
    return [[obj.key, obj.etag, obj.size] for obj in objects] or None


@operation(name="import_from_s3", output=Dataset, retry=TRANSFER_RETRY, cache_key=s3_version)
def import_from_s3(params: ImportFromS3Params, ctx: OperationContext) -> Dataset:
    """Import one S3 object, or every object under a prefix, as a data set (archives extracted)."""
    s3 = s3_client(ctx, params.bucket)
    writer = ctx.dataset_writer()
    names = ItemNames()
    limits = ctx.services.archive_limits
    download = ctx.folder / "download"
    download.mkdir()
    if params.key is not None:
        sources = [(params.key, file_name(params.key.rsplit("/", 1)[-1], fallback="object"))]
    else:
        prefix = params.prefix or ""
        base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""  # the prefix's folder
        sources = [
            (obj.key, item_name(obj.key[len(base) :], f"s3://{params.bucket}/{obj.key}"))
            for obj in s3.list_objects(params.bucket, prefix)
        ]
        if not sources:
            raise OperationError(f"no objects under s3://{params.bucket}/{params.prefix}")
    ctx.log.info(f"importing {len(sources)} object(s) from s3://{params.bucket}")
    for done, (key, name) in enumerate(sources):
        ctx.progress(done, len(sources), "objects")
        source = f"s3://{params.bucket}/{key}"
        if not (params.extract_archives and is_archive_name(name)):
            names.claim(name, source)
            s3.download(params.bucket, key, writer.path_for(name), ctx.cancelled.is_set)
            writer.add(name)
            continue
        archive = download / "archive"
        s3.download(params.bucket, key, archive, ctx.cancelled.is_set)
        folder = "" if params.key is not None else archive_folder(name)
        add_archive(writer, archive, folder, limits, names, source)
    ctx.progress(len(sources), len(sources), "objects")
    return writer.finish()


class ExportToS3Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Dataset | Batches | Predictions = Field(
        description="The files to upload: a data set, batches, or a model's predictions."
    )
    bucket: str = Field(pattern=BUCKET_PATTERN, description="The bucket to write to.")
    prefix: str = Field(
        "",
        description="Key prefix; each file's key is PREFIX/ITEM_NAME. Existing objects with "
        "the same keys are overwritten.",
    )


def files_of(data: Dataset | Batches | Predictions) -> list[tuple[Path, str, str]]:
    """(path, item name, media type) of each file once, in order."""
    if isinstance(data, Predictions):
        return [(data.file, data.file.name, "application/x-ndjson")]
    if isinstance(data, Dataset):
        items = list(data.items)
    else:
        unique = {item.name: item for batch in data.batches for item in batch}
        items = list(unique.values())
    return [(data.path_of(item), item.name, item.media_type) for item in items]


@operation(name="export_to_s3", output=S3Objects, retry=TRANSFER_RETRY, side_effects=True)
def export_to_s3(params: ExportToS3Params, ctx: OperationContext) -> S3Objects:
    """Upload a data set's files to S3 under a prefix (large files in parts); returns the keys."""
    s3 = s3_client(ctx, params.bucket)
    prefix = params.prefix.strip("/")
    keys = []
    total = 0
    files = files_of(params.data)
    ctx.log.info(f"uploading {len(files)} file(s) to s3://{params.bucket}/{prefix}")
    for path, name, media_type in files:
        ctx.check_canceled()
        key = f"{prefix}/{name}" if prefix else name
        uploaded = s3.upload(path, params.bucket, key, media_type)
        keys.append(key)
        total += uploaded.size
    return S3Objects(bucket=params.bucket, keys=tuple(keys), total_bytes=total)
