"""Benchmark: importing a tar archive from S3 (moto) keeps memory flat and keeps pace with boto3.

For each size, one uncompressed tar archive is uploaded to a fresh moto server. Then, each
in its own process (so peak RSS is the import's own):
- baseline: boto3's `download_file` of the same object;
- import: `import_from_s3` through the PlanExecutor, extracting the archive (download + extract);
- import, no extraction: `import_from_s3` with `extract_archives: false` (download only).
It prints peak RSS and throughput side by side. Goals: peak RSS under 300 MiB for every import;
throughput of the download-only import within 15 % of the baseline.

    .venv/bin/python bench/bench_import.py                # 100 MiB and 1 GiB
    .venv/bin/python bench/bench_import.py --sizes 100    # quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MiB = 2**20
BUCKET = "bench"
FILE_BYTES = 32 * MiB
RSS_GOAL_MIB = 300
THROUGHPUT_GOAL = 0.15


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_archive(path: Path, total_bytes: int) -> None:
    """An uncompressed tar of random-looking files, written block by block."""
    block = random.Random(0).randbytes(MiB)
    with tarfile.open(path, "w") as archive:
        for index in range(max(1, total_bytes // FILE_BYTES)):
            size = min(FILE_BYTES, total_bytes)
            info = tarfile.TarInfo(f"part-{index:03d}.bin")
            info.size = size
            archive.addfile(info, _Blocks(block, size, index))


class _Blocks:
    """A readable stream of `size` bytes: `block` repeated, each copy tagged."""

    def __init__(self, block: bytes, size: int, seed: int):
        self.block, self.left, self.count, self.seed = block, size, 0, seed

    def read(self, n: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        tag = f"{self.seed}:{self.count}".encode()
        self.count += 1
        data = (tag + self.block)[: min(MiB, self.left, n if n > 0 else MiB)]
        self.left -= len(data)
        return data


def worker(mode: str, key: str, folder: Path) -> dict[str, Any]:
    """Run one download in this process; report its duration and this process's peak RSS."""
    if mode == "baseline":
        import boto3

        client = boto3.client("s3", endpoint_url=os.environ["BENCH_S3_URL"])
        started = time.perf_counter()
        client.download_file(BUCKET, key, str(folder / "object"))
        seconds = time.perf_counter() - started
    else:
        from orchestrator.artifacts import ArtifactStore
        from orchestrator.catalog import validate
        from orchestrator.context import Services
        from orchestrator.execution import PlanExecutor
        from orchestrator.operations import CATALOG
        from orchestrator.resources import S3Resource

        instructions = [
            {
                "operation": "import_from_s3",
                "parameters": {
                    "bucket": BUCKET,
                    "key": key,
                    "extract_archives": mode == "import",
                },
            }
        ]
        plan = validate({"instructions": instructions}, CATALOG)
        services = Services(artifacts=ArtifactStore(folder), s3=S3Resource().client())
        started = time.perf_counter()
        outcome = PlanExecutor(plan, CATALOG, services, "bench", lambda event: None).run()
        seconds = time.perf_counter() - started
        if not outcome.succeeded:
            raise SystemExit(outcome.first_error)
    return {"seconds": seconds, "peak_rss_mib": peak_rss_mib()}


def run_worker(mode: str, key: str, env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", mode, "--key", key, "--folder", folder],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1024", help="archive sizes in MiB")
    parser.add_argument("--worker", choices=["baseline", "import", "download"])
    parser.add_argument("--key")
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.key, args.folder)))
        return

    import boto3
    from boto3.s3.transfer import TransferConfig

    from tests.fixtures.moto_server import start_moto_server

    with start_moto_server() as moto, tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        env = {
            **os.environ,
            "BENCH_S3_URL": moto.url,
            "CONSTELLATION_S3_ENDPOINT_URL": moto.url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        os.environ.update(env)
        s3 = boto3.client("s3", endpoint_url=moto.url)
        s3.create_bucket(Bucket=BUCKET)
        rows = []
        for size_mib in (int(size) for size in args.sizes.split(",")):
            key = f"archive-{size_mib}MiB.tar"
            archive = Path(scratch) / key
            write_archive(archive, size_mib * MiB)
            s3.upload_file(
                str(archive), BUCKET, key, Config=TransferConfig(multipart_chunksize=64 * MiB)
            )
            nbytes = archive.stat().st_size
            archive.unlink()
            for mode in ("baseline", "download", "import"):
                result = run_worker(mode, key, env)
                rows.append((size_mib, mode, nbytes, result))
            s3.delete_object(Bucket=BUCKET, Key=key)
        report(rows)


def report(rows: list[tuple[int, str, int, dict[str, Any]]]) -> None:
    labels = {
        "baseline": "boto3 download_file (baseline)",
        "download": "import_from_s3, no extraction",
        "import": "import_from_s3 + extract",
    }
    print(f"{'archive':>9}  {'what':<32}{'seconds':>9}{'MB/s':>9}{'peak RSS MiB':>14}  vs baseline")
    baseline: dict[int, float] = {}
    for size_mib, mode, nbytes, result in rows:
        rate = nbytes / 1e6 / result["seconds"]
        if mode == "baseline":
            baseline[size_mib] = rate
            versus = ""
        else:
            versus = f"{rate / baseline[size_mib] - 1:+.0%} throughput"
        print(
            f"{size_mib:>5} MiB  {labels[mode]:<32}{result['seconds']:>9.2f}{rate:>9.1f}"
            f"{result['peak_rss_mib']:>14.0f}  {versus}"
        )
    imports = [r for r in rows if r[1] != "baseline"]
    worst_rss = max(r[3]["peak_rss_mib"] for r in imports)
    print(
        f"goals: peak RSS < {RSS_GOAL_MIB} MiB for every import: "
        f"{'met' if worst_rss < RSS_GOAL_MIB else 'MISSED'} (worst {worst_rss:.0f} MiB); "
        f"download-only throughput within {THROUGHPUT_GOAL:.0%} of the baseline: "
        + (
            "met"
            if all(
                r[2] / 1e6 / r[3]["seconds"] >= (1 - THROUGHPUT_GOAL) * baseline[r[0]]
                for r in imports
                if r[1] == "download"
            )
            else "MISSED"
        )
    )


if __name__ == "__main__":
    main()
