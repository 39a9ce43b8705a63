"""The one S3 client: streamed, verified downloads and multipart uploads via boto3.

Requests are retried by botocore (standard retry mode, the resource's
`max_attempts` in all) on throttling, 5xx and connection errors; a body that
breaks off mid-download is resumed here with a Range request, retried as
orchestrator/retry.py says. Every library error leaves this module as an
orchestrator error naming the bucket and key: missing objects, missing buckets
and denied access as OperationError; faults botocore retried in vain as
RetriesExhausted with the number of attempts; a corrupt download, or an object
that changed while read, as TransientError (the operation may run again).

The settings are the `s3` resource's fields (orchestrator/resources/s3.py).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import queue
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from orchestrator.errors import Canceled, OperationError, RetriesExhausted, TransientError
from orchestrator.retry import Retryable, Retrying, after_attempts

if TYPE_CHECKING:
    from orchestrator.resources.s3 import S3Resource

MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
DENIED_CODES = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
}
# What botocore's standard mode retries (besides 429 and 5xx): after it, RetriesExhausted.
RETRIED_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
}
# Faults of the whole download: TransientError, the operation may run again.
TRANSIENT_CODES = {
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "PreconditionFailed",  # the object changed between two ranges: start again
}


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str = ""

    @property
    def md5(self) -> str | None:
        """The ETag is the MD5 of the content for single-part uploads (no '-' in it)."""
        etag = self.etag.strip('"')
        return etag if len(etag) == 32 and "-" not in etag else None


def s3_uri(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


class S3Client:
    """Reads and writes objects; the boto3 client is made on first use.

    `config` is the s3 resource; `max_concurrency` the parts of one upload in
    flight; `sleep` waits between the attempts of a broken download.
    """

    def __init__(
        self,
        config: S3Resource,
        *,
        max_concurrency: int = 4,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config = config
        self.max_concurrency = max_concurrency
        self._retrying = Retrying(config, sleep)
        self._allowed = [p.strip() for p in config.allowed_buckets.split(",") if p.strip()]

    def __repr__(self) -> str:  # never the credentials
        return f"S3Client(endpoint_url={self.config.endpoint_url!r}, region={self.config.region!r})"

    def allows(self, bucket: str) -> bool:
        """Whether instructions may use `bucket` (the resource's `allowed_buckets`)."""
        return not self._allowed or any(fnmatch.fnmatchcase(bucket, p) for p in self._allowed)

    @cached_property
    def _boto(self) -> Any:  # botocore builds the client class at run time
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(
            aws_access_key_id=self.config.access_key_id,
            aws_secret_access_key=self.config.secret_access_key,
            aws_session_token=self.config.session_token,
            region_name=self.config.region or None,
        )
        return session.client(
            "s3",
            endpoint_url=self.config.endpoint_url or None,
            config=Config(
                retries={"mode": "standard", "total_max_attempts": self.config.max_attempts},
                connect_timeout=self.config.connect_timeout_s,
                read_timeout=self.config.read_timeout_s,
                max_pool_connections=max(10, self.max_concurrency),
            ),
        )

    def _errors(self, bucket: str, key: str, action: str) -> Any:
        return translate_errors(bucket, key, action, self.config.max_attempts)

    def list_objects(self, bucket: str, prefix: str) -> Iterator[S3Object]:
        """Every object under `prefix`, in key order (folder markers skipped)."""
        paginator = self._boto.get_paginator("list_objects_v2")
        with self._errors(bucket, prefix, "list"):
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    if entry["Key"].endswith("/") and entry["Size"] == 0:
                        continue
                    yield S3Object(entry["Key"], entry["Size"], entry.get("ETag", ""))

    def download(
        self,
        bucket: str,
        key: str,
        path: Path,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> S3Object:
        """Stream one object to `path`, resuming a broken body; verify size and checksum
        (the object's full-object CRC32 where S3 keeps one, else the ETag's MD5)."""
        progress = _Download(bucket, key)
        try:
            with path.open("wb") as out:
                self._retrying.call(lambda: self._download_rest(progress, out, should_stop))
        finally:
            digest = progress.digest
            actual = digest.finish() if digest is not None else None
        found, where = progress.found, progress.where
        assert found is not None  # the first request answered, or the call raised
        if progress.offset != found.size:
            raise TransientError(
                f"download of {where} is {progress.offset} bytes, expected {found.size}"
            )
        if digest is not None and actual != digest.expected:
            raise TransientError(
                f"download of {where} is corrupt: {digest.name} {actual} differs from the "
                f"{digest.source} {digest.expected}"
            )
        return found

    def _download_rest(
        self, progress: _Download, out: IO[bytes], should_stop: Callable[[], bool]
    ) -> None:
        """One attempt: the object from `progress.offset` on; Retryable where the body broke."""
        where = progress.where
        if should_stop():
            raise Canceled(f"download of {where} canceled")
        request: dict[str, Any] = {"Bucket": progress.bucket, "Key": progress.key}
        if progress.found is not None:  # resuming: the rest of the same version only
            request["Range"] = f"bytes={progress.offset}-"
            request["IfMatch"] = progress.found.etag
        with self._errors(progress.bucket, progress.key, "download"):
            response = self._boto.get_object(**request)
        if progress.found is None:
            progress.found = S3Object(
                progress.key, response["ContentLength"], response.get("ETag", "")
            )
            progress.digest = _BackgroundDigest.for_object(progress.found, response)
        before = progress.offset
        try:
            progress.offset = self._copy_body(
                response["Body"], out, progress.digest, progress.offset, where
            )
        except _BodyBroken as broken:
            progress.offset = broken.offset
            raise Retryable(f"download of {where} broke off ({broken.cause})") from broken.cause
        if progress.offset < progress.found.size:
            cause = ConnectionError(f"the body ended after {progress.offset - before} bytes")
            raise Retryable(f"download of {where} broke off ({cause})") from cause

    def _copy_body(
        self, body: Any, out: IO[bytes], digest: _BackgroundDigest | None, offset: int, where: str
    ) -> int:
        """Write a response body to `out`; the new offset, or _BodyBroken where it broke."""
        try:
            for chunk in body.iter_chunks(self.config.read_chunk_bytes):
                out.write(chunk)
                if digest is not None:
                    digest.update(chunk)
                offset += len(chunk)
        except (HTTPClientError, IncompleteReadError) as exc:
            raise _BodyBroken(offset, exc) from exc
        except FlexibleChecksumError as exc:
            raise TransientError(f"download of {where} is corrupt: {exc}") from exc
        finally:
            body.close()
        return offset

    def upload(self, path: Path, bucket: str, key: str, content_type: str) -> S3Object:
        """Upload one file, in parts from `multipart_threshold_bytes` on."""
        from boto3.exceptions import S3UploadFailedError
        from boto3.s3.transfer import TransferConfig

        transfer = TransferConfig(
            multipart_threshold=self.config.multipart_threshold_bytes,
            multipart_chunksize=self.config.multipart_chunk_bytes,
            max_concurrency=self.max_concurrency,
            use_threads=self.max_concurrency > 1,
        )
        with self._errors(bucket, key, "upload"):
            try:
                self._boto.upload_file(
                    str(path),
                    bucket,
                    key,
                    ExtraArgs={"ContentType": content_type},
                    Config=transfer,
                )
            except S3UploadFailedError as exc:
                # boto3 wraps the botocore error without chaining it explicitly.
                cause = exc.__cause__ or exc.__context__
                if isinstance(cause, ClientError | BotoCoreError):
                    raise cause from exc
                raise TransientError(f"upload to {s3_uri(bucket, key)} failed: {exc}") from exc
        return S3Object(key, path.stat().st_size)

    def head(self, bucket: str, key: str) -> S3Object | None:
        """The object's size and ETag; None when there is no such object."""
        try:
            with self._errors(bucket, key, "read"):
                response = self._boto.head_object(Bucket=bucket, Key=key)
        except OperationError as exc:
            if isinstance(exc.__cause__, ClientError) and _code(exc.__cause__) in MISSING_CODES:
                return None
            raise
        return S3Object(key, response["ContentLength"], response.get("ETag", ""))

    def read_range(self, bucket: str, key: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes `start` up to `end` (exclusive) of one object, streamed in read chunks."""
        if end <= start:
            return
        with self._errors(bucket, key, "read"):
            response = self._boto.get_object(
                Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}"
            )
        body = response["Body"]
        try:
            with self._errors(bucket, key, "read"):
                yield from body.iter_chunks(self.config.read_chunk_bytes)
        finally:
            body.close()

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """Write a small object in one request."""
        with self._errors(bucket, key, "upload"):
            self._boto.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        """Delete every object under `prefix`, a thousand per request; how many."""
        keys = [found.key for found in self.list_objects(bucket, prefix)]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            with self._errors(bucket, prefix, "delete"):
                self._boto.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)

    def presigned_get(self, bucket: str, key: str, content_type: str, seconds: int) -> str:
        """A URL that GETs the object without credentials for `seconds`."""
        with self._errors(bucket, key, "presign"):
            url: str = self._boto.generate_presigned_url(
                "get_object",
                Params={"Bucket": bucket, "Key": key, "ResponseContentType": content_type},
                ExpiresIn=seconds,
            )
        return url


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass
class _Download:
    """Where one download stands between its attempts."""

    bucket: str
    key: str
    found: S3Object | None = None  # known from the first answer
    digest: _BackgroundDigest | None = None
    offset: int = 0  # bytes written so far

    @property
    def where(self) -> str:
        return s3_uri(self.bucket, self.key)


class _Crc32:
    """zlib's CRC32 (several GB/s; frees the GIL), as S3 encodes it: base64 of 4 bytes."""

    def __init__(self) -> None:
        self._value = 0

    def update(self, chunk: bytes) -> None:
        self._value = zlib.crc32(chunk, self._value)

    def hexdigest(self) -> str:
        return base64.b64encode(self._value.to_bytes(4, "big")).decode()


class _BackgroundDigest:
    """A checksum computed on a second thread, so hashing overlaps the network.

    At most `depth` chunks wait in the queue, so memory stays bounded.
    """

    def __init__(self, name: str, source: str, expected: str, depth: int = 4):
        self.name, self.source, self.expected = name, source, expected
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._digest: Any = _Crc32() if name == "CRC32" else hashlib.md5(usedforsecurity=False)
        self._thread = threading.Thread(target=self._run, name="checksum", daemon=True)
        self._thread.start()

    @classmethod
    def for_object(cls, found: S3Object, response: dict[str, Any]) -> _BackgroundDigest | None:
        """The cheapest full-object checksum the object has: CRC32, else the ETag's MD5."""
        crc32 = response.get("ChecksumCRC32")
        if crc32 and response.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
            return cls("CRC32", "object's CRC32", crc32)
        if found.md5:
            return cls("MD5", "ETag", found.md5)
        return None

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            self._digest.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def finish(self) -> str:
        """The digest; stops the thread."""
        self._queue.put(None)
        self._thread.join()
        return str(self._digest.hexdigest())


class _BodyBroken(Exception):
    """The response body broke off at `offset`; the download resumes from there."""

    def __init__(self, offset: int, cause: Exception):
        super().__init__(str(cause))
        self.offset = offset
        self.cause = cause


@contextmanager
def translate_errors(bucket: str, key: str, action: str, attempts: int) -> Iterator[None]:
    """Turn botocore errors into orchestrator errors naming the bucket and key.

    `attempts`: what botocore was told to make of each request (for faults it retried).
    """
    where = s3_uri(bucket, key)
    try:
        yield
    except ClientError as exc:
        raise client_error(exc, bucket, key, action) from exc
    except NoCredentialsError as exc:
        raise OperationError(
            f"cannot {action} {where}: no S3 credentials (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or configure the s3 resource)"
        ) from exc
    except (BotoConnectionError, HTTPClientError) as exc:  # botocore retried these
        raise RetriesExhausted(
            f"cannot {action} {where}: {exc} {after_attempts(attempts)}"
        ) from exc
    except (IncompleteReadError, FlexibleChecksumError) as exc:
        raise TransientError(f"cannot {action} {where}: {exc}") from exc
    except BotoCoreError as exc:  # bad parameters, bad configuration: retrying will not help
        raise OperationError(f"cannot {action} {where}: {exc}") from exc


def client_error(exc: ClientError, bucket: str, key: str, action: str) -> OperationError:
    """The orchestrator error for an error answer from S3."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = error.get("Message") or code
    metadata = exc.response.get("ResponseMetadata", {})
    status = metadata.get("HTTPStatusCode", 0)
    where = s3_uri(bucket, key)
    if code == "NoSuchBucket":
        return OperationError(f"cannot {action} {where}: bucket {bucket!r} does not exist")
    if code in MISSING_CODES:
        return OperationError(f"cannot {action} {where}: no such object")
    if code in DENIED_CODES:
        return OperationError(f"cannot {action} {where}: access denied ({code}: {message})")
    answered = f"cannot {action} {where}: S3 answered {status} {code}: {message}"
    if code in RETRIED_CODES or status == 429 or status >= 500:
        tries = metadata.get("RetryAttempts", 0) + 1
        return RetriesExhausted(f"{answered} {after_attempts(tries)}")
    if code in TRANSIENT_CODES:
        return TransientError(answered)
    return OperationError(answered)
