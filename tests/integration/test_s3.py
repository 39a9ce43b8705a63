"""import_from_s3 and export_to_s3 against moto's real S3 server on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from orchestrator.connectors.s3 import S3Client
from orchestrator.events import InstructionEvent
from orchestrator.resources import S3Resource
from testkit.moto_server import REGION, MotoServer
from testkit.pipelines import run_pipeline

pytestmark = pytest.mark.integration

MiB = 2**20


def connector(url: str, **overrides: Any) -> S3Client:
    settings: dict[str, Any] = {
        "endpoint_url": url,
        "region": REGION,
        "max_attempts": 3,
        "backoff_s": 0.01,
        "read_chunk_bytes": 64 * 1024,
        "multipart_threshold_bytes": 5 * MiB,
        "multipart_chunk_bytes": 5 * MiB,
    }
    return S3Resource(**(settings | overrides)).client()


def boto(url: str, **credentials: str) -> Any:
    return boto3.client("s3", endpoint_url=url, region_name=REGION, **credentials)


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def items(outcome: Any, root: str = "instructions[0]") -> dict[str, bytes]:
    """A data set's files by item name, read from disk as a user would."""
    dataset = outcome.values[root]
    return {item.name: dataset.path_of(item).read_bytes() for item in dataset.items}


def import_s3(**parameters: Any) -> dict[str, Any]:
    return {"operation": "import_from_s3", "parameters": parameters}


@pytest.fixture
def bucket(moto: MotoServer) -> str:
    boto(moto.url).create_bucket(Bucket="data")
    return "data"


def test_prefix_import_keeps_folders_and_extracts_archives(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    s3 = boto(moto.url)
    s3.put_object(Bucket=bucket, Key="images/a.txt", Body=b"alpha")
    s3.put_object(Bucket=bucket, Key="images/sub/b.txt", Body=b"beta")
    s3.put_object(Bucket=bucket, Key="images/more.zip", Body=zip_bytes({"x/c.txt": b"gamma"}))
    s3.put_object(Bucket=bucket, Key="images/marker/", Body=b"")
    s3.put_object(Bucket=bucket, Key="other/d.txt", Body=b"not under the prefix")

    outcome = run_pipeline(
        [import_s3(bucket=bucket, prefix="images/")], tmp_path, s3=connector(moto.url)
    )

    assert outcome.succeeded, outcome.first_error
    assert items(outcome) == {"a.txt": b"alpha", "sub/b.txt": b"beta", "more/x/c.txt": b"gamma"}
    assert outcome.results[0].output == {
        "type": "dataset",
        "count": 3,
        "bytes": 14,
        "items": ["a.txt", "more/x/c.txt", "sub/b.txt"],
        "more_items": 0,
        "artifact": "test-run/000-import_from_s3",  # a store key, never a worker's path
    }
    # The downloaded archive itself is not left behind in the node's folder.
    node_folder = Path(outcome.values["instructions[0]"].root)
    assert not any(p.suffix == ".zip" or p.name == "archive" for p in node_folder.rglob("*"))


def test_single_object_and_single_archive(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    s3 = boto(moto.url)
    s3.put_object(Bucket=bucket, Key="reports/2024/q1.csv", Body=b"a,b\n1,2\n")
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as archive:
        info = tarfile.TarInfo("labels/cat.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"cat"))
    s3.put_object(Bucket=bucket, Key="bundles/set.tar.gz", Body=tar.getvalue())

    outcome = run_pipeline(
        [
            import_s3(bucket=bucket, key="reports/2024/q1.csv"),
            import_s3(bucket=bucket, key="bundles/set.tar.gz"),
            import_s3(bucket=bucket, key="bundles/set.tar.gz", extract_archives=False),
        ],
        tmp_path,
        s3=connector(moto.url),
    )

    assert outcome.succeeded, outcome.first_error
    assert items(outcome, "instructions[0]") == {"q1.csv": b"a,b\n1,2\n"}
    assert items(outcome, "instructions[1]") == {"labels/cat.txt": b"cat"}
    assert items(outcome, "instructions[2]") == {"set.tar.gz": tar.getvalue()}


def test_export_round_trip(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    s3 = boto(moto.url)
    s3.create_bucket(Bucket="exports")
    payloads = {f"{i:02d}.bin": random.Random(i).randbytes(1000 + i) for i in range(5)}
    for name, data in payloads.items():
        s3.put_object(Bucket=bucket, Key=f"in/{name}", Body=data)

    outcome = run_pipeline(
        [
            {
                "operation": "export_to_s3",
                "parameters": {
                    "bucket": "exports",
                    "prefix": "run-1/",
                    "data": {
                        "operation": "dict_to_list",
                        "parameters": {"data": import_s3(bucket=bucket, prefix="in/")},
                    },
                },
            }
        ],
        tmp_path,
        s3=connector(moto.url),
    )

    assert outcome.succeeded, outcome.first_error
    exported = outcome.values["instructions[0]"]
    assert exported.keys == tuple(f"run-1/{name}" for name in sorted(payloads))
    assert outcome.results[0].output["count"] == 5
    for name, data in payloads.items():
        body = s3.get_object(Bucket="exports", Key=f"run-1/{name}")["Body"].read()
        assert body == data


def test_large_files_are_uploaded_in_parts_and_read_back(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    s3 = boto(moto.url)
    data = random.Random(7).randbytes(12 * MiB)
    s3.put_object(Bucket=bucket, Key="big/blob.bin", Body=data)
    client = connector(moto.url)

    outcome = run_pipeline(
        [
            {
                "operation": "export_to_s3",
                "parameters": {
                    "bucket": bucket,
                    "prefix": "copy",
                    "data": import_s3(bucket=bucket, key="big/blob.bin"),
                },
            },
            import_s3(bucket=bucket, key="copy/blob.bin"),
        ],
        tmp_path,
        s3=client,
    )

    assert outcome.succeeded, outcome.first_error
    head = s3.head_object(Bucket=bucket, Key="copy/blob.bin")
    assert head["ETag"].strip('"').endswith("-3")  # 5 + 5 + 2 MiB parts
    assert head["ContentLength"] == len(data)
    read_back = items(outcome, "instructions[1]")["blob.bin"]
    assert hashlib.sha256(read_back).digest() == hashlib.sha256(data).digest()


def failed_attempts(events: list[InstructionEvent]) -> list[str]:
    return [e.kind for e in events if e.kind in ("retrying", "failed")]


def test_missing_key_and_bucket_fail_at_once(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    events: list[InstructionEvent] = []
    outcome = run_pipeline(
        [import_s3(bucket=bucket, key="nope/missing.txt")],
        tmp_path,
        events,
        s3=connector(moto.proxy.url),
    )
    assert outcome.first_error == (
        "instructions[0] (import_from_s3): cannot download s3://data/nope/missing.txt: "
        "no such object"
    )
    assert failed_attempts(events) == ["failed"]  # no retry
    # the HEAD is the cache key's version check (orchestrator/cache.py), then one GET
    assert [m for m, path, _ in moto.proxy.seen if "missing" in path] == ["HEAD", "GET"]

    outcome = run_pipeline(
        [import_s3(bucket="no-such-bucket", prefix="x/")], tmp_path, s3=connector(moto.url)
    )
    assert "cannot list s3://no-such-bucket/x/: bucket 'no-such-bucket' does not exist" in str(
        outcome.first_error
    )
    outcome = run_pipeline(
        [import_s3(bucket=bucket, prefix="empty/")], tmp_path, s3=connector(moto.url)
    )
    assert "no objects under s3://data/empty/" in str(outcome.first_error)


def test_denied_access_and_bad_credentials_fail_at_once(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    boto(moto.url).put_object(Bucket=bucket, Key="secret.txt", Body=b"top secret")
    iam = boto3.client("iam", endpoint_url=moto.url, region_name=REGION)
    iam.create_user(UserName="lister")
    iam.put_user_policy(
        UserName="lister",
        PolicyName="list-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName="lister")["AccessKey"]
    moto.enforce_auth()

    lister = connector(
        moto.url, access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"]
    )
    outcome = run_pipeline([import_s3(bucket=bucket, key="secret.txt")], tmp_path, s3=lister)
    assert "cannot download s3://data/secret.txt: access denied (AccessDenied" in str(
        outcome.first_error
    )

    stranger = connector(moto.url, access_key_id="AKIAUNKNOWN", secret_access_key="wrong")
    events: list[InstructionEvent] = []
    outcome = run_pipeline(
        [import_s3(bucket=bucket, key="secret.txt")], tmp_path, events, s3=stranger
    )
    assert "cannot download s3://data/secret.txt: access denied (InvalidAccessKeyId" in str(
        outcome.first_error
    )
    assert failed_attempts(events) == ["failed"]


def test_server_errors_are_retried(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    boto(moto.url).put_object(Bucket=bucket, Key="flaky.txt", Body=b"finally")
    moto.proxy.fail_next("GET", 503, times=2)

    outcome = run_pipeline(
        [import_s3(bucket=bucket, key="flaky.txt")], tmp_path, s3=connector(moto.proxy.url)
    )

    assert outcome.succeeded, outcome.first_error
    assert items(outcome) == {"flaky.txt": b"finally"}
    assert [m for m, path, _ in moto.proxy.seen if "flaky" in path] == ["HEAD"] + ["GET"] * 3


def test_body_cut_mid_download_is_resumed(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    data = random.Random(3).randbytes(300_000)
    boto(moto.url).put_object(Bucket=bucket, Key="cut.bin", Body=data)
    moto.proxy.drop_next("GET", after_bytes=100_000)

    outcome = run_pipeline(
        [import_s3(bucket=bucket, key="cut.bin")], tmp_path, s3=connector(moto.proxy.url)
    )

    assert outcome.succeeded, outcome.first_error
    assert items(outcome)["cut.bin"] == data
    ranges = [rng for _, path, rng in moto.proxy.seen if "cut.bin" in path]
    assert ranges[0] == ""
    assert ranges[-1].startswith("bytes=") and ranges[-1] != "bytes=0-"


def test_persistent_server_errors_name_the_object(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    boto(moto.url).put_object(Bucket=bucket, Key="down.txt", Body=b"x")
    moto.proxy.fail_next("GET", 503, times=100)

    outcome = run_pipeline(
        [import_s3(bucket=bucket, key="down.txt")],
        tmp_path,
        s3=connector(moto.proxy.url, max_attempts=2),
    )

    assert outcome.first_error is not None
    assert outcome.first_error.startswith(
        "instructions[0] (import_from_s3): cannot download s3://data/down.txt: S3 answered 503"
    )
    assert outcome.first_error.endswith("ServiceUnavailable: injected fault (after 2 attempts)")
    # botocore's two attempts, not multiplied by the operation's RetryPolicy.
    assert [m for m, path, _ in moto.proxy.seen if "down.txt" in path] == ["HEAD"] + ["GET"] * 2


def test_unsafe_key_names_are_refused(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    boto(moto.url).put_object(Bucket=bucket, Key="in/../../escape.txt", Body=b"x")
    outcome = run_pipeline(
        [import_s3(bucket=bucket, prefix="in/")], tmp_path, s3=connector(moto.url)
    )
    assert "'../../escape.txt' is not a safe relative file name" in str(outcome.first_error)
    assert not list(tmp_path.parent.glob("**/escape.txt"))


def test_key_and_prefix_are_exclusive(tmp_path: Path) -> None:
    from orchestrator.errors import InstructionsInvalid

    with pytest.raises(InstructionsInvalid, match="give either 'key'"):
        run_pipeline([import_s3(bucket="data", key="a", prefix="b/")], tmp_path)


def test_model_predictions_export_as_one_json_lines_object(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    from testkit.fake_model_server import FakeModelServer

    rows = tmp_path / "data" / "rows"
    rows.mkdir(parents=True)
    for index in range(3):
        (rows / f"{index}.json").write_text(json.dumps([index, 1.0, 2.0, 3.0]))
    inference = {
        "operation": "model_inference",
        "parameters": {
            "model": "iris",
            "data": {"operation": "import_from_local", "parameters": {"path": "rows"}},
        },
    }
    outcome = run_pipeline(
        [
            {
                "operation": "export_to_s3",
                "parameters": {"bucket": bucket, "prefix": "preds", "data": inference},
            }
        ],
        tmp_path / "artifacts",
        s3=connector(moto.url),
        model_server=FakeModelServer(loaded={"iris"}).client(),
        data_root=tmp_path / "data",
    )

    assert outcome.succeeded, outcome.first_error
    (key,) = outcome.values["instructions[0]"].keys
    body = boto(moto.url).get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    records = [json.loads(line) for line in body.splitlines()]
    assert [r["name"] for r in records] == ["0.json", "1.json", "2.json"]
    assert [r["outputs"]["predict"] for r in records] == [[6.0], [7.0], [8.0]]


def test_buckets_outside_the_allow_list_are_refused_before_any_request(
    moto: MotoServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSTELLATION_S3_ALLOWED_BUCKETS", "team-*, reports")
    client = connector(moto.url)
    outcome = run_pipeline([import_s3(bucket=bucket, key="anything")], tmp_path, s3=client)
    assert outcome.first_error == (
        f"instructions[0] (import_from_s3): bucket {bucket!r} is not allowed on this server "
        "(CONSTELLATION_S3_ALLOWED_BUCKETS)"
    )


def test_s3_down_mid_run_fails_clearly_and_the_model_is_still_deleted(
    moto: MotoServer, bucket: str, tmp_path: Path
) -> None:
    from testkit.fake_model_server import FakeModelServer

    boto(moto.url).put_object(Bucket=bucket, Key="rows.json", Body=b"[1, 2, 3, 4]")
    moto.proxy.fail_next("GET", 503, times=100)  # S3 answers 503 from now on
    model_server = FakeModelServer()
    document = [
        {"operation": "deploy_model", "parameters": {"model": "iris"}},
        {
            "operation": "model_inference",
            "parameters": {"model": "iris", "data": import_s3(bucket=bucket, key="rows.json")},
        },
        {"operation": "delete_model", "parameters": {"model": "iris"}},
    ]
    outcome = run_pipeline(
        document, tmp_path, s3=connector(moto.proxy.url), model_server=model_server.client()
    )

    assert [r.status for r in outcome.results] == ["succeeded", "failed", "succeeded"]
    assert outcome.first_error.startswith("instructions[1].parameters.data (import_from_s3): ")
    assert f"s3://{bucket}/rows.json" in outcome.first_error
    assert "attempts" in outcome.first_error
    assert model_server.loaded == set()
    assert model_server.requests[-1] == "POST /v2/repository/models/iris/unload"


def test_downloads_are_checked_against_the_objects_crc32() -> None:
    from orchestrator.connectors.s3 import S3Object, _BackgroundDigest

    found = S3Object("k", 1000, '"398533d48111e9f664b1f64cb10c4b63"')
    digest = _BackgroundDigest.for_object(found, {"ChecksumCRC32": "O0HJ5g=="})  # S3's, for x*1000
    assert digest is not None and digest.name == "CRC32"
    digest.update(b"x" * 600)
    digest.update(b"x" * 400)
    assert digest.finish() == digest.expected
    fallback = _BackgroundDigest.for_object(
        found, {"ChecksumType": "COMPOSITE", "ChecksumCRC32": "a-2"}
    )
    assert fallback is not None and fallback.name == "MD5"
    fallback.update(b"x" * 1000)
    assert fallback.finish() == fallback.expected
