"""Caching across runs and reruns from failure, through the API and real Dagster runs.

What the sources were asked for is read from their own request logs: the proxy in front of
moto (`moto.proxy.seen`) and the loopback Drive server (`drive_server.state.requests`).
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import pytest
from PIL import Image

from stack import Stack
from testkit.dagster_stack import ApiClient, connectors_env, start_stack
from testkit.drive_server import DriveServer
from testkit.moto_server import REGION, MotoServer

pytestmark = pytest.mark.integration

FILE_ID = "1cacheRerunFileId_0123456789"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def sources_stack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    moto_server: MotoServer,
    drive_session: DriveServer,
    google_credentials: Path,
) -> Iterator[Stack]:
    """A stack whose runs reach moto through its logging proxy, and the Drive server."""
    env = {
        "CONSTELLATION_CACHE": "true",
        **connectors_env(moto_server.proxy.url, drive_session.endpoint, google_credentials),
    }
    with ExitStack() as exits:
        workdir = tmp_path_factory.mktemp(f"stack-cache-{request.param}")
        yield start_stack(workdir, request.param, exits, env=env)


@pytest.fixture
def api(sources_stack: Stack) -> Iterator[ApiClient]:
    client = ApiClient(sources_stack)
    yield client
    client.http.close()


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def run(api: ApiClient, instructions: list[dict[str, Any]]) -> dict[str, Any]:
    response = api.execute({"instructions": instructions})
    assert response.status_code == 201, response.text
    return api.wait(response.json()["run_id"])


def statuses(detail: dict[str, Any]) -> list[str]:
    return [instruction["status"] for instruction in detail["instructions"]]


def s3_requests(moto: MotoServer, bucket: str) -> list[tuple[str, str]]:
    """(method, path) of every request the runs sent for `bucket`."""
    return [
        (m, p) for m, p, _ in moto.proxy.seen if p.lstrip("/").split("?")[0].split("/")[0] == bucket
    ]


def resize(data: dict[str, Any]) -> dict[str, Any]:
    return {"operation": "resize_image", "parameters": {"width": 16, "height": 12, "data": data}}


def test_a_rerun_from_failure_asks_the_sources_for_nothing_it_had(
    api: ApiClient, moto: MotoServer, drive_server: DriveServer
) -> None:
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name=REGION)
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="more/a.png", Body=png((200, 0, 0)))
    s3.put_object(Bucket="photos", Key="more/b.png", Body=png((0, 200, 0)))
    drive_server.add_file(FILE_ID, "c.png", png((0, 0, 200)), "image/png")
    drive = {"operation": "import_from_google_drive", "parameters": {"file_id": FILE_ID}}
    from_s3 = {"operation": "import_from_s3", "parameters": {"bucket": "photos", "prefix": "more/"}}
    instructions = [
        # "cache": false: what the rerun reuses, it reuses because the old run made it
        {**resize({**drive, "cache": False}), "id": "small"},
        {**resize({**from_s3, "cache": False}), "id": "more"},
        {  # fails: the bucket does not exist yet
            "operation": "export_to_s3",
            "parameters": {"bucket": "exports", "data": {"ref": "small"}},
        },
    ]
    failed = run(api, instructions)
    assert failed["status"] == "FAILURE"
    assert statuses(failed) == ["succeeded", "succeeded", "failed"]
    assert drive_server.media_ranges and s3_requests(moto, "photos")  # the sources were read

    s3.create_bucket(Bucket="exports")
    moto.proxy.clear()
    drive_server.state.requests.clear()
    response = api.http.post(f"/runs/{failed['run_id']}/rerun")
    assert response.status_code == 201, response.text
    started = response.json()
    assert started["rerun_of"] == failed["run_id"] and started["from"] == "failure"
    rerun = api.wait(started["run_id"])

    assert rerun["status"] == "SUCCESS", rerun
    assert rerun["rerun_of"] == failed["run_id"]
    assert statuses(rerun) == ["cached", "cached", "succeeded"]
    assert [s["status"] for s in rerun["instructions"][0]["steps"]] == ["cached"]
    assert drive_server.state.requests == []  # not even the file's metadata
    assert s3_requests(moto, "photos") == []
    assert [m for m, _ in s3_requests(moto, "exports")] == ["PUT"]
    listed = s3.list_objects_v2(Bucket="exports")["Contents"]
    assert [entry["Key"] for entry in listed] == ["c.png"]
    old = api.http.get(f"/runs/{failed['run_id']}/results").json()["results"]
    new = api.http.get(f"/runs/{rerun['run_id']}/results").json()["results"]
    assert new[0]["output"] == old[0]["output"]  # the same artifact, by key
    events = api.http.get(f"/runs/{rerun['run_id']}/events").text
    assert '"kind":"cached"' in events and f'"cached_from":"{failed["run_id"]}"' in events


def test_a_rerun_of_all_runs_everything_again(
    api: ApiClient, moto: MotoServer, drive_server: DriveServer
) -> None:
    drive_server.add_file(FILE_ID, "c.png", png((0, 0, 200)), "image/png")
    drive = {"operation": "import_from_google_drive", "parameters": {"file_id": FILE_ID}}
    first = run(api, [resize(drive)])
    drive_server.state.requests.clear()
    response = api.http.post(f"/runs/{first['run_id']}/rerun", json={"from": "all"})
    assert response.status_code == 201, response.text
    again = api.wait(response.json()["run_id"])

    assert again["status"] == "SUCCESS" and statuses(again) == ["succeeded"]
    assert len(drive_server.media_ranges) >= 1
    bad = api.http.post(f"/runs/{first['run_id']}/rerun", json={"from": "the middle"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["path"] == "body.from"
    assert api.http.post("/runs/no-such-run/rerun").status_code == 404


def test_a_cache_hit_never_crosses_a_changed_s3_object(
    api: ApiClient, moto: MotoServer, drive_server: DriveServer
) -> None:
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name=REGION)
    s3.create_bucket(Bucket="photos")
    s3.put_object(Bucket="photos", Key="one.png", Body=png((200, 0, 0)))
    pipeline = [
        resize(
            {"operation": "import_from_s3", "parameters": {"bucket": "photos", "key": "one.png"}}
        )
    ]

    first = run(api, pipeline)
    moto.proxy.clear()
    second = run(api, pipeline)
    gets_when_cached = [m for m, _ in s3_requests(moto, "photos")]
    s3.put_object(Bucket="photos", Key="one.png", Body=png((0, 200, 0)))  # a new ETag
    moto.proxy.clear()
    third = run(api, pipeline)
    gets_when_changed = [m for m, _ in s3_requests(moto, "photos")]
    fourth = run(api, pipeline)

    assert statuses(first) == ["succeeded"] and statuses(second) == ["cached"]
    assert gets_when_cached == ["HEAD"]  # the version asked for, the object not read
    assert statuses(third) == ["succeeded"] and "GET" in gets_when_changed
    assert statuses(fourth) == ["cached"]
    outputs = [
        api.http.get(f"/runs/{detail['run_id']}/results").json()["results"][0]["output"]
        for detail in (first, second, third, fourth)
    ]
    assert outputs[0] == outputs[1] != outputs[2] == outputs[3]
    pixel = api.content(third["run_id"], "0", "items/one.png")
    with Image.open(io.BytesIO(pixel)) as image:
        assert image.convert("RGB").getpixel((8, 6)) == (0, 200, 0)


def test_a_changed_drive_file_is_downloaded_again(
    api: ApiClient, moto: MotoServer, drive_server: DriveServer
) -> None:
    drive_server.add_file(FILE_ID, "d.png", png((10, 20, 30)), "image/png")
    pipeline = [{"operation": "import_from_google_drive", "parameters": {"file_id": FILE_ID}}]
    run(api, pipeline)
    drive_server.state.requests.clear()
    cached = run(api, pipeline)
    asked_when_cached = list(drive_server.state.requests)
    drive_server.add_file(FILE_ID, "d.png", png((30, 20, 10)), "image/png")  # a new md5
    changed = run(api, pipeline)

    assert statuses(cached) == ["cached"]
    assert len(asked_when_cached) == 1 and "alt=media" not in asked_when_cached[0][0]
    assert statuses(changed) == ["succeeded"] and drive_server.media_ranges


def test_constellation_rerun_waits_for_the_new_run(
    sources_stack: Stack, api: ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    from cli.main import main
    from testkit.dagster_stack import API_KEY, make_images

    folder = f"late-{uuid.uuid4().hex[:8]}"
    pipeline = [resize({"operation": "import_from_local", "parameters": {"path": folder}})]
    failed = run(api, pipeline)
    assert failed["status"] == "FAILURE"
    make_images(sources_stack.data_root / folder, 2, size=(64, 48))
    capsys.readouterr()

    options = ["--api-url", sources_stack.api_url, "--api-key", API_KEY]
    code = main([*options, "rerun", failed["run_id"], "--wait", "--json"])
    detail = json.loads(capsys.readouterr().out)

    assert code == 0
    assert detail["status"] == "SUCCESS" and detail["rerun_of"] == failed["run_id"]
    assert statuses(detail) == ["succeeded"]
