"""Google Drive in, S3 out, through the API and a real Dagster run."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import boto3
import pytest
from PIL import Image

from stack import Stack
from testkit.dagster_stack import ApiClient, connectors_env, start_stack
from testkit.drive_server import DriveServer
from testkit.moto_server import REGION, SECRET_KEY, MotoServer

pytestmark = pytest.mark.integration

FILE_ID = "1aniasD6RcD3Zr7K8DSWiiqtXCRbFx7gU"


@pytest.fixture(scope="module")
def connected_stack(
    tmp_path_factory: pytest.TempPathFactory,
    moto_server: MotoServer,
    drive_session: DriveServer,
    google_credentials: Path,
) -> Iterator[Stack]:
    """A stack whose runs reach moto and the loopback Drive server."""
    env = connectors_env(moto_server.url, drive_session.endpoint, google_credentials)
    with ExitStack() as exits:
        yield start_stack(tmp_path_factory.mktemp("stack-connectors"), "sqlite", exits, env=env)


def photo_archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
            image = io.BytesIO()
            Image.new("RGB", (320, 240), colour).save(image, "PNG")
            archive.writestr(f"photos/{index:02d}.png", image.getvalue())
    return buffer.getvalue()


def test_drive_to_s3_through_the_api(
    connected_stack: Stack, moto: MotoServer, drive_server: DriveServer
) -> None:
    drive_server.add_file(FILE_ID, "fire-photos.zip", photo_archive(), "application/zip")
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name=REGION)
    s3.create_bucket(Bucket="exports")
    pipeline = {
        "instructions": [
            {
                "operation": "export_to_s3",
                "parameters": {
                    "bucket": "exports",
                    "prefix": "thumbnails",
                    "data": {
                        "operation": "resize_image",
                        "parameters": {
                            "width": 32,
                            "height": 24,
                            "data": {
                                "operation": "dict_to_list",
                                "parameters": {
                                    "data": {
                                        "operation": "import_from_google_drive",
                                        "parameters": {"file_id": FILE_ID},
                                    }
                                },
                            },
                        },
                    },
                },
            }
        ]
    }
    api = ApiClient(connected_stack)
    try:
        response = api.execute(pipeline)
        assert response.status_code == 201, response.text
        detail = api.wait(response.json()["run_id"])
        assert detail["status"] == "SUCCESS", detail
        results = api.http.get(f"/runs/{detail['run_id']}/results").json()
    finally:
        api.http.close()

    keys = [f"thumbnails/photos/{index:02d}.png" for index in range(3)]
    output = results["results"][0]["output"]
    assert output["type"] == "s3_objects"
    assert output["bucket"] == "exports"
    assert output["keys"] == keys
    listed = s3.list_objects_v2(Bucket="exports")["Contents"]
    assert [entry["Key"] for entry in listed] == keys
    for key, colour in zip(keys, [(200, 30, 30), (30, 200, 30), (30, 30, 200)], strict=True):
        body = s3.get_object(Bucket="exports", Key=key)["Body"].read()
        with Image.open(io.BytesIO(body)) as image:
            assert image.size == (32, 24)
            assert image.convert("RGB").getpixel((16, 12)) == colour


def test_no_secret_appears_in_run_config_logs_responses_or_errors(
    connected_stack: Stack, moto: MotoServer, drive_server: DriveServer, google_credentials: Path
) -> None:
    """After a successful and a failing run, scan everything a user or operator can read."""
    import json

    import httpx

    from api.dagster import GET_RUN, RUN_LOGS
    from testkit.dagster_stack import API_KEY

    service_account = json.loads(google_credentials.read_text())
    key_body = "".join(service_account["private_key"].splitlines()[1:-1])
    secrets = {
        "AWS secret key": SECRET_KEY,
        "API key": API_KEY,
        "service-account key id": service_account["private_key_id"],
        "service-account private key": key_body[40:80],
    }
    drive_server.add_file(FILE_ID, "fire-photos.zip", photo_archive(), "application/zip")
    boto3.client("s3", endpoint_url=moto.url, region_name=REGION).create_bucket(Bucket="scan")
    drive = {"operation": "import_from_google_drive", "parameters": {"file_id": FILE_ID}}
    good = {
        "instructions": [
            {"operation": "export_to_s3", "parameters": {"bucket": "scan", "data": drive}}
        ]
    }
    bad = {
        "instructions": [
            {"operation": "export_to_s3", "parameters": {"bucket": "no-such-bucket", "data": drive}}
        ]
    }

    api = ApiClient(connected_stack)
    seen: list[str] = []
    try:
        runs = [api.wait(api.execute(doc).json()["run_id"]) for doc in (good, bad)]
        assert [r["status"] for r in runs] == ["SUCCESS", "FAILURE"]
        assert "no-such-bucket" in runs[1]["error"]
        for run in runs:
            seen.append(json.dumps(run))
            seen.append(api.http.get(f"/runs/{run['run_id']}/results").text)
            for document in (GET_RUN, RUN_LOGS):
                variables = {"runId": run["run_id"], "cursor": None, "limit": 10_000}
                if document is GET_RUN:
                    variables = {"runId": run["run_id"]}
                seen.append(
                    httpx.post(
                        f"{connected_stack.dagster_url}/graphql",
                        json={"query": document, "variables": variables},
                        timeout=30,
                    ).text
                )
        seen += [api.http.get("/runs").text, api.http.get("/operations").text]
        seen.append(api.http.get("/operations", headers={"Authorization": "Bearer nope"}).text)
    finally:
        api.http.close()
    for folder in (connected_stack.logs, connected_stack.home):
        seen += [p.read_text(errors="replace") for p in folder.rglob("*") if _is_text_log(p)]

    text = "\n".join(seen)
    assert "constellation-event" in text, "the scan must have read the event log"
    leaked = [name for name, secret in secrets.items() if secret in text]
    assert leaked == []


def _is_text_log(path: Path) -> bool:
    return path.is_file() and path.suffix in {".log", ".out", ".err", ".yaml", ".txt", ".complete"}
