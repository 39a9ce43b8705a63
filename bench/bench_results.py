"""Results through the API vs straight from the store, and the cost of the S3 store.

1. A 1 GiB result (`import_from_local` of one 1 GiB file, local store) downloaded
   through `GET /runs/{id}/results/0/items/NAME` (streamed by httpx) vs read
   directly from the store's file, both warm in the page cache, best of
   BENCH_RESULTS_REPEATS (3). Goal: the API at >= 80 % of direct; the API
   process's peak RSS (VmHWM) stays flat across the downloads.
2. resize_image over BENCH_RESULTS_IMAGES (100) images, end to end (POST /execute
   until SUCCESS), on the local store vs an S3 store on moto: the cost of S3.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import httpx

from bench.stats import row
from stack import Stack
from testkit.dagster_stack import make_images
from testkit.moto_server import ACCESS_KEY, REGION, SECRET_KEY, start_moto_server

KEY = "bench-key-0123456789abcdef"
GiB = 2**30
MiB = 2**20
SIZE = int(os.environ.get("BENCH_RESULTS_BYTES", str(GiB)))
REPEATS = int(os.environ.get("BENCH_RESULTS_REPEATS", "3"))
IMAGES = int(os.environ.get("BENCH_RESULTS_IMAGES", "100"))
BUCKET = "bench-results"


def client(stack: Stack) -> httpx.Client:
    return httpx.Client(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=httpx.Timeout(60, read=600),
    )


def run(api: httpx.Client, document: Mapping[str, Any]) -> tuple[str, float]:
    """(run id, seconds from POST /execute to SUCCESS)."""
    started = time.perf_counter()
    run_id = str(api.post("/execute", json=document).raise_for_status().json()["run_id"])
    while True:
        detail = api.get(f"/runs/{run_id}").raise_for_status().json()
        if detail["status"] in {"SUCCESS", "FAILURE", "CANCELED"}:
            break
        time.sleep(0.1)
    if detail["status"] != "SUCCESS":
        raise RuntimeError(f"run {run_id} ended {detail['status']}: {detail}")
    return run_id, time.perf_counter() - started


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def write_big_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = os.urandom(8 * MiB)
    with path.open("wb") as file:
        for _ in range(SIZE // len(block)):
            file.write(block)
        file.write(block[: SIZE % len(block)])


def read_direct(path: Path) -> float:
    started = time.perf_counter()
    total = 0
    with path.open("rb") as file:
        while chunk := file.read(MiB):
            total += len(chunk)
    assert total == SIZE, total
    return time.perf_counter() - started


def read_api(api: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    total = 0
    with api.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(MiB):
            total += len(chunk)
    assert total == SIZE, total
    return time.perf_counter() - started


def read_curl(stack: Stack, url: str) -> float | None:
    """Seconds for curl to fetch `url` (a client that costs next to nothing), if installed."""
    if shutil.which("curl") is None:
        return None
    started = time.perf_counter()
    subprocess.run(
        ["curl", "-sf", "-o", os.devnull, "-H", f"Authorization: Bearer {KEY}",
         stack.api_url + url],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def download_bench(stack: Stack, api: httpx.Client) -> None:
    write_big_file(stack.data_root / "big" / "result.bin")
    document = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "big"}}]}
    run_id, _ = run(api, document)
    (stored,) = (stack.artifact_root / run_id).rglob("result.bin")
    url = f"/runs/{run_id}/results/0/items/result.bin"
    process = stack.services["api"].process
    assert process is not None
    read_direct(stored)  # warm the page cache
    rss_before = peak_rss_mib(process.pid)
    direct = min(read_direct(stored) for _ in range(REPEATS))
    through_api = min(read_api(api, url) for _ in range(REPEATS))
    curl = [t for t in (read_curl(stack, url) for _ in range(REPEATS)) if t is not None]
    rss_after = peak_rss_mib(process.pid)
    mb = SIZE / 1e6
    print(f"download a {SIZE / GiB:.2f} GiB result, best of {REPEATS} (local store, warm cache)")
    row("baseline: read the store's file directly", f"{mb / direct:8.0f} MB/s  ({direct:.2f} s)")
    row(
        "GET .../items/NAME through the API", f"{mb / through_api:8.0f} MB/s  ({through_api:.2f} s)"
    )
    if curl:
        row("the same, curl as the client", f"{mb / min(curl):8.0f} MB/s  ({min(curl):.2f} s)")
    ratio = direct / through_api
    row("API / direct", f"{ratio:8.0%}  (goal >= 80 %: {'met' if ratio >= 0.8 else 'NOT met'})")
    row(
        "API process peak RSS (VmHWM) before -> after",
        f"{rss_before:.0f} MiB -> {rss_after:.0f} MiB (+{rss_after - rss_before:.0f} MiB)",
    )


def resize_document() -> dict[str, Any]:
    resize = {
        "operation": "resize_image",
        "parameters": {
            "width": 224,
            "height": 224,
            "data": {"operation": "import_from_local", "parameters": {"path": "photos"}},
        },
    }
    return {"instructions": [resize]}


def resize_seconds(stack: Stack, api: httpx.Client) -> float:
    make_images(stack.data_root / "photos", IMAGES, size=(1280, 720))
    run(api, resize_document())  # warm-up: imports, code server, caches
    return min(run(api, resize_document())[1] for _ in range(REPEATS))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with Stack(Path(tmp) / "local", api_keys=[KEY]) as stack, client(stack) as api:
            download_bench(stack, api)
            local = resize_seconds(stack, api)
        with start_moto_server() as moto:
            boto3.client(
                "s3",
                endpoint_url=moto.url,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            ).create_bucket(Bucket=BUCKET)
            env = {
                "CONSTELLATION_ARTIFACT_STORE": f"s3://{BUCKET}/artifacts",
                "CONSTELLATION_ARTIFACT_CACHE": str(Path(tmp) / "s3" / "cache"),
                "CONSTELLATION_S3_ENDPOINT_URL": moto.url,
                "CONSTELLATION_S3_REGION": REGION,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            }
            with Stack(Path(tmp) / "s3", api_keys=[KEY], env=env) as stack, client(stack) as api:
                remote = resize_seconds(stack, api)
    print(f"resize_image, {IMAGES} images 1280x720 -> 224x224, run end to end, best of {REPEATS}")
    row("baseline: local store", f"{local:6.2f} s")
    row("S3 store (moto on loopback)", f"{remote:6.2f} s")
    row("cost of S3", f"{remote - local:+6.2f} s  ({remote / local - 1:+.0%})")


if __name__ == "__main__":
    main()
