"""The production topology (docker-compose.yml), run natively: restarts, crashes, results.

stack/production.ProductionStack starts what compose starts: Redis, the user-code gRPC
server, the webserver and the daemon on deploy/dagster.yaml + deploy/workspace.yaml
(PostgreSQL storage), two warm Celery run workers, and the API, with artifacts on S3
(moto) and no folder shared by the API and the workers, nor by the two workers. Run
monitoring gets short timeouts here.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from orchestrator.samples import load_samples
from stack.__main__ import FIRE_LABELS, FIRE_PHOTOS, seed_examples
from stack.production import SERVICES, ProductionStack, S3Artifacts
from testkit.dagster_stack import (
    API_KEY,
    ApiClient,
    dagster_graphql,
    make_images,
    run_messages,
    slow_resize,
)
from testkit.mlserver import MLServer
from testkit.moto_server import ACCESS_KEY, REGION, SECRET_KEY, MotoServer
from testkit.postgres import fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

MAX_RUNTIME_S = 120  # the backstop for a run whose worker cannot be asked
POLL_S = 2
MONITORING = {
    "run_monitoring": {
        "poll_interval_seconds": POLL_S,
        "start_timeout_seconds": 60,
        "cancel_timeout_seconds": 30,
        "max_runtime_seconds": MAX_RUNTIME_S,
    }
}
RUN_STATUS = """
query RunStatus($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }
"""
WORKER_STARTED = re.compile(r"^Started process for run \(pid: (\d+)\)\.$")
BUCKET = "constellation"
PNG = b"\x89PNG\r\n\x1a\n"


def s3_client(moto: MotoServer) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture(scope="module")
def production(
    tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer, mlserver: MLServer
) -> Iterator[ProductionStack]:
    s3_client(moto_server).create_bucket(Bucket=BUCKET)
    artifacts = S3Artifacts(
        f"s3://{BUCKET}/artifacts", moto_server.url, ACCESS_KEY, SECRET_KEY, REGION
    )
    with fresh_database() as postgres:
        workdir = tmp_path_factory.mktemp("production")
        stack = ProductionStack(
            workdir,
            postgres,
            artifacts=artifacts,
            api_keys=[API_KEY],
            instance_overrides=MONITORING,
            # Each test's runs do their work (the cache has tests of its own).
            env={"CONSTELLATION_MODEL_SERVER_URL": mlserver.url, "CONSTELLATION_CACHE": "false"},
        )
        with stack:
            seed_examples(stack.data_root)
            make_images(stack.data_root / "large", 6, size=(1280, 720))
            yield stack


@pytest.fixture
def api(production: ProductionStack) -> Iterator[ApiClient]:
    client = ApiClient(production)  # type: ignore[arg-type]
    yield client
    client.http.close()


def resize_pipeline(repeats: int) -> dict[str, Any]:
    """A pipeline that keeps a run worker busy for a while (PNG, Lanczos, 1280x720)."""
    return {"instructions": [slow_resize("large")] * repeats}


def dagster_status(stack: ProductionStack, run_id: str) -> str:
    return str(dagster_graphql(stack.dagster_url, RUN_STATUS, runId=run_id)["runOrError"]["status"])


def wait_for_worker(stack: ProductionStack, api: ApiClient, run_id: str) -> int:
    """The pid of the run's worker, once its first instruction has finished."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        detail = api.run(run_id)
        assert detail["status"] in {"QUEUED", "STARTING", "STARTED"}, detail
        if detail["instructions"][0]["status"] == "succeeded":
            for message in run_messages(stack.dagster_url, run_id):
                if match := WORKER_STARTED.match(message):
                    return int(match[1])
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} never got going")


def parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def code_server_pid(stack: ProductionStack) -> int:
    process = stack.services["user-code"].process
    assert process is not None
    return process.pid


SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    ... on Sensor { sensorState { ticks(limit: 5) { status skipReason } } }
  }
}
"""


def test_saved_pipelines_share_one_database_between_api_and_code_location(
    production: ProductionStack, api: ApiClient
) -> None:
    body = {
        "name": "prod-import",
        "parameters": {"folder": {"type": "string"}},
        "instructions": [
            {"operation": "import_from_local", "parameters": {"path": {"param": "folder"}}}
        ],
    }
    assert api.http.post("/pipelines", json=body).status_code == 201
    run = api.http.post("/pipelines/prod-import/runs", json={"arguments": {"folder": "large"}})
    assert api.wait(run.json()["run_id"], timeout=180)["status"] == "SUCCESS"
    # The sensor, in the user-code server, reads the database the API migrated.
    selector = {
        "repositoryLocationName": "orchestrator",
        "repositoryName": "__repository__",
        "sensorName": "saved_schedules",
    }
    deadline = time.monotonic() + 90
    reasons: list[str | None] = []
    while time.monotonic() < deadline:
        data = dagster_graphql(production.dagster_url, SENSOR_TICKS, selector=selector)
        reasons = [t["skipReason"] for t in data["sensorOrError"]["sensorState"]["ticks"]]
        if "no schedule is due" in reasons:
            break
        time.sleep(2)
    assert "no schedule is due" in reasons, reasons


@pytest.mark.parametrize("name", ["local-images", "local-import"])
def test_local_samples_succeed(api: ApiClient, name: str) -> None:
    detail = api.wait(api.execute(load_samples()[name].document).json()["run_id"], timeout=180)
    assert detail["status"] == "SUCCESS", detail
    assert all(i["status"] == "succeeded" for i in detail["instructions"])


def test_the_api_serves_contents_from_s3_without_the_workers_disk(
    production: ProductionStack, api: ApiClient, moto_server: MotoServer
) -> None:
    run_id = api.execute({"instructions": [slow_resize("large")]}).json()["run_id"]
    detail = api.wait(run_id, timeout=180)
    assert detail["status"] == "SUCCESS", detail

    listing = api.http.get(f"/runs/{run_id}/results/0/items")
    assert listing.status_code == 200, listing.text
    items = listing.json()["items"]
    assert len(items) == 6
    assert {item["media_type"] for item in items} == {"image/png"}
    first = items[0]
    whole = api.content(run_id, "0", f"items/{first['name']}")
    assert whole.startswith(PNG) and len(whole) == first["size"]
    end = first["size"] // 2
    part = api.http.get(
        f"/runs/{run_id}/results/0/items/{first['name']}", headers={"Range": f"bytes=8-{end}"}
    )
    assert part.status_code == 206, part.text
    assert part.headers["content-range"] == f"bytes 8-{end}/{first['size']}"
    assert part.content == whole[8 : end + 1]

    # The bytes are in the bucket, under the run; the worker's cache is not the API's.
    keys = s3_client(moto_server).list_objects_v2(Bucket=BUCKET, Prefix=f"artifacts/{run_id}/")
    assert any(obj["Key"].endswith(first["name"]) for obj in keys.get("Contents", []))
    worker_cache = str(production.caches["user-code"])
    for text in (
        listing.text,
        api.http.get(f"/runs/{run_id}").text,
        api.http.get(f"/runs/{run_id}/results").text,
    ):
        assert "/tmp" not in text and worker_cache not in text, text


def test_predictions_and_a_comparison_come_from_s3(
    production: ProductionStack, api: ApiClient, moto_server: MotoServer
) -> None:
    """compare-models on the production topology: every record, the table and the report
    through the API, whose process has no folder in common with the run worker."""
    run_id = api.execute(load_samples()["compare-models"].document).json()["run_id"]
    detail = api.wait(run_id, timeout=300)
    assert detail["status"] == "SUCCESS", detail
    results = api.http.get(f"/runs/{run_id}/results").json()["results"]
    with (production.data_root / FIRE_LABELS).open(newline="") as labels:
        truth = {row["name"]: row["label"] for row in csv.DictReader(labels)}
    photos = sorted(p.name for p in (production.data_root / FIRE_PHOTOS).iterdir())

    accuracy = {}
    for result in (r for r in results if r["operation"] == "model_inference"):
        records = api.predictions(run_id, result["path"])
        assert sorted(records) == photos, "one record per photo, every page"
        page = api.http.get(f"/runs/{run_id}/results/{result['path']}/predictions?limit=1")
        model = page.json()["model"]
        accuracy[model] = sum(records[n]["label"] == truth[n] for n in photos) / len(photos)
    assert sorted(accuracy) == ["uint8-fire", "vit-fire"]

    (comparison,) = [r for r in results if r["operation"] == "compare_predictions"]
    table = json.loads(api.content(run_id, comparison["path"], "table"))
    assert {m["model"]: m["accuracy"] for m in table["models"]} == accuracy
    report = api.content(run_id, comparison["path"], "report").decode()
    assert "<html" in report.lower() and "uint8-fire" in report
    keys = s3_client(moto_server).list_objects_v2(Bucket=BUCKET, Prefix=f"artifacts/{run_id}/")
    stored = [obj["Key"] for obj in keys.get("Contents", [])]
    assert any(key.endswith("predictions.jsonl") for key in stored), stored
    assert any(key.endswith("report.html") for key in stored), stored


def test_runs_launch_after_the_code_server_restarts(
    production: ProductionStack, api: ApiClient
) -> None:
    before = code_server_pid(production)
    production.restart("user-code")
    assert code_server_pid(production) != before

    # No reload needed: the webserver's watch thread sees the new server id; the runs
    # themselves go to the workers, which never needed the code server.
    for name in ("local-import", "local-images"):
        run_id = api.execute(load_samples()[name].document).json()["run_id"]
        assert api.wait(run_id, timeout=180)["status"] == "SUCCESS"


def test_a_run_survives_an_api_restart(production: ProductionStack, api: ApiClient) -> None:
    run_id = api.execute(resize_pipeline(24)).json()["run_id"]
    wait_for_worker(production, api, run_id)

    production.services["api"].stop()
    assert dagster_status(production, run_id) == "STARTED", "the run goes on without the API"
    production.services["api"].start()
    production.wait_ready("api")

    detail = api.run(run_id)
    assert detail["instructions"][0]["status"] == "succeeded"
    detail = api.wait(run_id, timeout=MAX_RUNTIME_S)
    assert detail["status"] == "SUCCESS", detail
    assert [i["status"] for i in detail["instructions"]] == ["succeeded"] * 24


def worker_of(stack: ProductionStack, pid: int) -> str:
    """The worker service whose pool process `pid` is."""
    parent = parent_pid(pid)
    pids = {name: stack.services[name].process for name in stack.worker_names}
    names = [name for name, process in pids.items() if process and process.pid == parent]
    assert names, f"pid {pid} is no pool process of a worker (its parent is {parent})"
    return names[0]


def test_runs_spread_over_both_workers_which_share_no_folder(
    production: ProductionStack, api: ApiClient
) -> None:
    # Four runs at once: each worker takes at most two (its pool size, prefetch 1).
    runs = [api.execute(resize_pipeline(12)).json()["run_id"] for _ in range(4)]
    workers = {worker_of(production, wait_for_worker(production, api, r)) for r in runs}
    assert workers == {"worker-1", "worker-2"}
    for run_id in runs:
        assert api.wait(run_id, timeout=180)["status"] == "SUCCESS"
    homes = {production.environment(SERVICES["worker"], n)["DAGSTER_HOME"] for n in workers}
    assert len(homes) == 2 and str(production.home) not in homes


def test_a_killed_pool_process_fails_its_run_naming_the_cause(
    production: ProductionStack, api: ApiClient
) -> None:
    run_id = api.execute(resize_pipeline(40)).json()["run_id"]
    pid = wait_for_worker(production, api, run_id)
    worker = worker_of(production, pid)

    os.kill(pid, signal.SIGKILL)

    # Celery records WorkerLostError in the result backend; run monitoring reads it.
    detail = api.wait(run_id, timeout=60)
    assert detail["status"] == "FAILURE", detail
    cause = "WorkerLostError: Worker exited prematurely: signal 9 (SIGKILL)"
    messages = run_messages(production.dagster_url, run_id)
    assert any(cause in m and worker in m for m in messages), messages[-5:]
    statuses = [i["status"] for i in detail["instructions"]]
    assert "running" not in statuses and "pending" not in statuses, statuses
    # The worker forked a new warm pool process: the next run is unaffected.
    other = api.execute(load_samples()["local-import"].document).json()["run_id"]
    assert api.wait(other, timeout=180)["status"] == "SUCCESS"


def test_cancel_interrupts_the_run_which_cleans_up_and_the_process_serves_on(
    production: ProductionStack, api: ApiClient
) -> None:
    run_id = api.execute(resize_pipeline(40)).json()["run_id"]
    pid = wait_for_worker(production, api, run_id)

    response = api.http.post(f"/runs/{run_id}/cancel")
    assert response.status_code in (200, 202), response.text

    detail = api.wait(run_id, timeout=60)
    assert detail["status"] == "CANCELED", detail
    statuses = [i["status"] for i in detail["instructions"]]
    assert statuses[0] == "succeeded" and "canceled" in statuses, statuses
    assert "running" not in statuses and "pending" not in statuses, statuses
    # Dagster's own interrupt handling ran in the process (not a kill): it lives on.
    assert Path(f"/proc/{pid}").exists(), "the pool process was interrupted, not killed"


def test_a_killed_worker_fails_its_run_and_a_restarted_worker_takes_runs(
    production: ProductionStack, api: ApiClient
) -> None:
    run_id = api.execute(resize_pipeline(40)).json()["run_id"]
    name = worker_of(production, wait_for_worker(production, api, run_id))
    worker = production.services[name]
    assert worker.process is not None

    # The whole worker (its machine, say) dies: nobody reports; the ping goes unanswered.
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait(30)
    detail = api.wait(run_id, timeout=20 * POLL_S + 30)
    assert detail["status"] == "FAILURE", detail
    messages = run_messages(production.dagster_url, run_id)
    assert any(f"Celery worker {name}@" in m and "no longer answers a ping" in m for m in messages)

    worker.start()  # compose's `restart: unless-stopped`
    production.wait_ready(name)
    runs = [api.execute(resize_pipeline(12)).json()["run_id"] for _ in range(4)]
    used = {worker_of(production, wait_for_worker(production, api, r)) for r in runs}
    assert name in used, "the restarted worker takes runs again"
    for other in runs:
        assert api.wait(other, timeout=180)["status"] == "SUCCESS"
