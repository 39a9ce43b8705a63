"""The S3 store: objects under `s3://BUCKET/PREFIX/RUN_ID/NNN-OPERATION/`, for several
machines. Operations work in local folders of a bounded cache (`LocalCache`);
publishing uploads a folder's files (streamed from disk, multipart when big), a
checkout downloads them (streamed to disk) unless the cache still has them.
Every transfer goes through the one S3 client, `orchestrator/connectors/s3.py`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.artifacts.cache import PUBLISHED_MARKER, LocalCache
from orchestrator.artifacts.store import (
    ArtifactStore,
    check_key,
    check_run_id,
)
from orchestrator.artifacts.writer import media_type_of
from orchestrator.errors import ArtifactError

if TYPE_CHECKING:
    from orchestrator.connectors.s3 import S3Client


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` as ("bucket", "some/prefix")."""
    if not uri.startswith("s3://"):
        raise ArtifactError(f"artifact store {uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ArtifactError(f"artifact store {uri!r} names no bucket (s3://bucket/prefix)")
    return bucket, prefix.strip("/")


class S3Store(ArtifactStore):
    def __init__(self, client: S3Client, uri: str, cache: LocalCache):
        self.client = client
        self.uri = uri
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.cache = cache

    def working_root(self) -> Path:
        return self.cache.root

    def object_key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def publish(self, folder: Path) -> str:
        key = self.key_of(folder)
        if key is None:
            raise ArtifactError("cannot publish a folder outside the artifact cache")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = path.relative_to(folder).as_posix()
            if relative == PUBLISHED_MARKER:
                continue
            self.client.upload(
                path, self.bucket, self.object_key(f"{key}/{relative}"), media_type_of(path.name)
            )
        self.cache.add(key)
        return key

    def checkout(self, key: str) -> Path:
        key = check_key(key)
        with self.cache.lock:  # one download of a folder at a time
            self.cache.pin(key)
            if self.cache.has(key):
                return self.cache.folder(key)
            try:
                self._download(key)
            except BaseException:
                self.cache.unpin(key)
                raise
            self.cache.add(key)
            return self.cache.folder(key)

    def _download(self, key: str) -> None:
        folder = self.cache.folder(key)
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        prefix = self.object_key(key) + "/"
        found = False
        for obj in self.client.list_objects(self.bucket, prefix):
            relative = check_key(obj.key.removeprefix(prefix))
            target = partial / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            self.client.download(self.bucket, obj.key, target)
            found = True
        if not found:
            raise ArtifactError(f"no artifact {key!r} in {self.uri}")
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)

    def release(self, key: str) -> None:
        self.cache.unpin(check_key(key))

    def write_bytes(self, key: str, data: bytes, media_type: str = "application/json") -> None:
        self.client.put_bytes(self.bucket, self.object_key(key), data, media_type)

    def size(self, key: str) -> int | None:
        found = self.client.head(self.bucket, self.object_key(key))
        return None if found is None else found.size

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        if end is None:
            size = self.size(key)
            if size is None:
                raise ArtifactError(f"no artifact {key!r} in {self.uri}")
            end = size
        return self.client.read_range(self.bucket, self.object_key(key), start, end)

    def presigned_url(self, key: str, media_type: str, seconds: int) -> str | None:
        return self.client.presigned_get(self.bucket, self.object_key(key), media_type, seconds)

    def delete(self, key: str) -> None:
        self.client.delete_prefix(self.bucket, self.object_key(key))  # a key is its own prefix

    def delete_run(self, run_id: str) -> None:
        run_id = check_run_id(run_id)
        self.client.delete_prefix(self.bucket, self.object_key(run_id) + "/")
        self.cache.drop_run(run_id)

    def describe(self) -> dict[str, Any]:
        return {"type": "S3Store", "uri": self.uri}
