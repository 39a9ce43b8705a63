"""Results through the API vs straight from the store, and the cost of the S3 store.

1. A 1 GiB result (`import_from_local` of one 1 GiB file) downloaded through
   `GET /runs/{id}/results/0/items/NAME`, best of BENCH_RESULTS_REPEATS (3):
   - local store: vs reading the store's file directly (warm page cache), and vs a
     bare uvicorn StreamingResponse of the same file (the HTTP stack's ceiling);
   - S3 store on moto: vs boto3's get_object from the store, and vs a presigned URL
     (what `CONSTELLATION_RESULTS_REDIRECT_SECONDS` redirects a client to).
   Clients: httpx, and curl (a client that costs next to nothing). Goal: the API at
   >= 80 % of direct; the API process's peak RSS (VmHWM) stays flat.
2. resize_image over BENCH_RESULTS_IMAGES (100) images, end to end (POST /execute
   until SUCCESS), on the local store vs an S3 store on moto: the cost of S3.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3
import httpx

from bench.stats import row
from stack import Stack, free_port
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


def timed(read: Callable[[], int]) -> float:
    started = time.perf_counter()
    total = read()
    assert total == SIZE, total
    return time.perf_counter() - started


def read_file(path: Path) -> int:
    total = 0
    with path.open("rb") as file:
        while chunk := file.read(MiB):
            total += len(chunk)
    return total


def read_httpx(api: httpx.Client, url: str) -> int:
    total = 0
    with api.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes(MiB):
            total += len(chunk)
    return total


def read_curl(url: str, *headers: str) -> int:
    """Bytes curl fetched from `url` (following redirects): a client that costs next to nothing."""
    argv = ["curl", "-sfL", "-o", os.devnull, "-w", "%{size_download}", url]
    for header in headers:
        argv += ["-H", header]
    return int(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def best(read: Callable[[], int]) -> float:
    return min(timed(read) for _ in range(REPEATS))


def speed(seconds: float) -> str:
    return f"{SIZE / 1e6 / seconds:8.0f} MB/s  ({seconds:.2f} s)"


def bare_server_ceiling(path: Path) -> float:
    """Best seconds for curl to fetch `path` from a bare Starlette StreamingResponse in
    uvicorn (the same chunk size, no route, auth or store): the HTTP stack's own ceiling."""
    from orchestrator.artifacts.local import CHUNK_BYTES

    port = free_port()
    code = (
        "import sys, uvicorn\n"
        "from starlette.applications import Starlette\n"
        "from starlette.responses import StreamingResponse\n"
        "from starlette.routing import Route\n"
        f"PATH, CHUNK = {str(path)!r}, {CHUNK_BYTES}\n"
        "def chunks():\n"
        "    with open(PATH, 'rb') as f:\n"
        "        while b := f.read(CHUNK):\n"
        "            yield b\n"
        "async def get(request):\n"
        "    return StreamingResponse(chunks(), media_type='application/octet-stream')\n"
        "uvicorn.run(Starlette(routes=[Route('/', get)]), host='127.0.0.1', "
        f"port={port}, log_level='warning')\n"
    )
    server = subprocess.Popen([sys.executable, "-c", code])
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, headers={"Range": "bytes=0-0"}, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        return best(lambda: read_curl(url))
    finally:
        server.terminate()
        server.wait(10)


def big_result(stack: Stack, api: httpx.Client) -> str:
    """The items URL of a run that imported one SIZE-byte file."""
    write_big_file(stack.data_root / "big" / "result.bin")
    document = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "big"}}]}
    run_id, _ = run(api, document)
    return f"/runs/{run_id}/results/0/items/result.bin"


def api_rows(stack: Stack, api: httpx.Client, url: str, direct: float) -> None:
    """Through the API (httpx, curl) beside `direct`, and the API process's peak RSS."""
    process = stack.services["api"].process
    assert process is not None
    rss_before = peak_rss_mib(process.pid)
    through_httpx = best(lambda: read_httpx(api, url))
    through_curl = best(lambda: read_curl(stack.api_url + url, f"Authorization: Bearer {KEY}"))
    rss_after = peak_rss_mib(process.pid)
    row("GET .../items/NAME through the API, httpx", speed(through_httpx))
    row("the same, curl as the client", speed(through_curl))
    ratio = direct / through_curl
    row(
        "API (curl) / direct",
        f"{ratio:8.0%}  (goal >= 80 %: {'met' if ratio >= 0.8 else 'NOT met'})",
    )
    row(
        "API process peak RSS (VmHWM) before -> after",
        f"{rss_before:.0f} MiB -> {rss_after:.0f} MiB (+{rss_after - rss_before:.0f} MiB)",
    )


def local_download_bench(stack: Stack, api: httpx.Client) -> None:
    url = big_result(stack, api)
    (stored,) = (stack.artifact_root / url.split("/")[2]).rglob("result.bin")
    read_file(stored)  # warm the page cache
    direct = best(lambda: read_file(stored))
    print(f"download a {SIZE / GiB:.2f} GiB result, best of {REPEATS} (local store, warm cache)")
    row("baseline: read the store's file directly", speed(direct))
    if shutil.which("curl") is not None:
        row("ceiling: a bare uvicorn StreamingResponse, curl", speed(bare_server_ceiling(stored)))
        api_rows(stack, api, url, direct)


def s3_download_bench(stack: Stack, api: httpx.Client, s3: Any) -> None:
    url = big_result(stack, api)
    run_id = url.split("/")[2]
    (key,) = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"artifacts/{run_id}/")["Contents"]
        if o["Key"].endswith("/result.bin")
    ]

    def boto3_read() -> int:
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
        return sum(len(chunk) for chunk in body.iter_chunks(MiB))

    direct = best(boto3_read)
    presigned = s3.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=600
    )
    print(f"download a {SIZE / GiB:.2f} GiB result, best of {REPEATS} (S3 store on moto)")
    row("baseline: boto3 get_object from the store", speed(direct))
    if shutil.which("curl") is not None:
        row(
            "a presigned URL (results_redirect_seconds), curl",
            speed(best(lambda: read_curl(presigned))),
        )
        api_rows(stack, api, url, direct)


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
            local_download_bench(stack, api)
            local = resize_seconds(stack, api)
        with start_moto_server() as moto:
            s3 = boto3.client(
                "s3",
                endpoint_url=moto.url,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            )
            s3.create_bucket(Bucket=BUCKET)
            env = {
                "CONSTELLATION_ARTIFACT_STORE": f"s3://{BUCKET}/artifacts",
                "CONSTELLATION_ARTIFACT_CACHE": str(Path(tmp) / "s3" / "cache"),
                "CONSTELLATION_S3_ENDPOINT_URL": moto.url,
                "CONSTELLATION_S3_REGION": REGION,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            }
            with Stack(Path(tmp) / "s3", api_keys=[KEY], env=env) as stack, client(stack) as api:
                s3_download_bench(stack, api, s3)
                remote = resize_seconds(stack, api)
    print(f"resize_image, {IMAGES} images 1280x720 -> 224x224, run end to end, best of {REPEATS}")
    row("baseline: local store", f"{local:6.2f} s")
    row("S3 store (moto on loopback)", f"{remote:6.2f} s")
    row("cost of S3", f"{remote - local:+6.2f} s  ({remote / local - 1:+.0%})")


if __name__ == "__main__":
    main()
