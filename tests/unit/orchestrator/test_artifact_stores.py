"""Both artifact stores behind one interface; the S3 one against moto, with its bounded cache."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from orchestrator.artifacts import LocalCache, LocalStore, S3Store
from orchestrator.errors import ArtifactError
from orchestrator.resources import ArtifactStoreResource, S3Resource
from testkit.moto_server import MotoServer


def s3_store(moto: MotoServer, tmp_path: Path, capacity: int) -> S3Store:
    boto3.client("s3", endpoint_url=moto.url).create_bucket(Bucket="runs")
    client = S3Resource(endpoint_url=moto.url).client()
    return S3Store(client, "s3://runs/pre", LocalCache(tmp_path / "cache", capacity))


def test_the_configuration_chooses_the_store(tmp_path: Path) -> None:
    assert isinstance(ArtifactStoreResource(store_uri=str(tmp_path)).store(), LocalStore)
    remote = ArtifactStoreResource(store_uri="s3://bucket/some/prefix", cache=str(tmp_path))
    store = remote.store(S3Resource(endpoint_url="http://127.0.0.1:9").client())
    assert isinstance(store, S3Store) and (store.bucket, store.prefix) == ("bucket", "some/prefix")
    with pytest.raises(ArtifactError, match="names no bucket"):
        ArtifactStoreResource(store_uri="s3:///x").store(S3Resource().client())


def test_s3_store_publishes_reads_ranges_and_checks_out_after_eviction(
    moto: MotoServer, tmp_path: Path
) -> None:
    store = s3_store(moto, tmp_path, capacity=1500)
    folders = []
    for index in range(3):
        folder = store.node_folder("r1", index, "op")
        (folder / "files").mkdir()
        (folder / "files" / "a.bin").write_bytes(bytes([index]) * 1000)
        folders.append(store.publish(folder))
    assert folders == ["r1/000-op", "r1/001-op", "r1/002-op"]
    s3 = boto3.client("s3", endpoint_url=moto.url)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="runs")["Contents"]]
    assert "pre/r1/000-op/files/a.bin" in keys and not any(".published" in k for k in keys)
    assert store.cache.total_bytes <= 1500, "older folders left the cache"
    assert not (tmp_path / "cache" / "r1" / "000-op").exists()

    folder = store.checkout("r1/000-op")  # evicted: downloaded again
    assert (folder / "files" / "a.bin").read_bytes() == bytes([0]) * 1000
    assert store.size("r1/001-op/files/a.bin") == 1000
    assert b"".join(store.read("r1/001-op/files/a.bin", 10, 20)) == bytes([1]) * 10
    assert store.size("r1/001-op/files/none") is None
    store.release("r1/000-op")

    store.delete_run("r1")
    assert "Contents" not in s3.list_objects_v2(Bucket="runs", Prefix="pre/r1/")
    assert store.size("r1/001-op/files/a.bin") is None


def test_local_store_delete_run_removes_the_folder(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    folder = store.node_folder("r1", 0, "op")
    (folder / "x").write_text("x")
    assert store.publish(folder) == "r1/000-op" and store.checkout("r1/000-op") == folder
    store.delete_run("r1")
    assert not folder.exists() and not store.run_folder("r1").exists()
    with pytest.raises(ArtifactError, match="not a safe relative key"):
        store.size("../etc/passwd")
