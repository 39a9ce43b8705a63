"""Benchmark: importing a tar archive from S3 (moto) keeps memory flat and keeps pace with boto3.

For each size, one uncompressed tar archive is uploaded to a fresh moto server. Then, each
in its own process (so peak RSS is the import's own):
- baseline: boto3's `download_file` of the same object, default settings (parallel 8 MiB
  ranged GETs), and again with multipart off (one GET, like-for-like with the import's one
  stream; moto copies the whole object for every ranged GET, which slows the default at 1 GiB);
- import: `import_from_s3` through `run_plan`, extracting the archive (download + extract);
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
BASELINES = ("baseline", "baseline-single")
LABELS = {
    "baseline": "boto3 download_file",
    "baseline-single": "boto3 download_file, one GET",
    "download": "import_from_s3, no extraction",
    "import": "import_from_s3 + extract",
}


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


def worker(mode: str, key: str, folder: Path, repeat: int) -> dict[str, Any]:
    """Download `repeat` times in this process; report the best time and the peak RSS."""
    times = []
    if mode.startswith("baseline"):
        import boto3
        from boto3.s3.transfer import TransferConfig

        client = boto3.client("s3", endpoint_url=os.environ["BENCH_S3_URL"])
        config = TransferConfig(multipart_threshold=2**40) if mode == "baseline-single" else None
        for _ in range(repeat):
            started = time.perf_counter()
            client.download_file(BUCKET, key, str(folder / "object"), Config=config)
            times.append(time.perf_counter() - started)
            (folder / "object").unlink()
            os.sync()
    else:
        from orchestrator.artifacts import LocalStore
        from orchestrator.catalog import validate
        from orchestrator.context import Services
        from orchestrator.execution import run_plan
        from orchestrator.operations import CATALOG
        from orchestrator.resources import S3Resource

        parameters = {"bucket": BUCKET, "key": key, "extract_archives": mode == "import"}
        plan = validate(
            {"instructions": [{"operation": "import_from_s3", "parameters": parameters}]}, CATALOG
        )
        client = S3Resource().client()
        list(client.list_objects(BUCKET, key))  # connect first, as the baseline does
        store = LocalStore(folder)
        services = Services(artifacts=store, s3=client)
        for attempt in range(repeat):
            run_id = f"bench-{attempt}"
            started = time.perf_counter()
            outcome = run_plan(plan, CATALOG, services, run_id)
            times.append(time.perf_counter() - started)
            if not outcome.succeeded:
                raise SystemExit(outcome.first_error)
            store.delete_run(run_id)
            os.sync()
    return {"seconds": min(times), "peak_rss_mib": peak_rss_mib()}


def run_worker(mode: str, key: str, repeat: int, env: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        os.sync()  # start clean: no run pays for the previous run's writeback
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                *("--worker", mode, "--key", key, "--folder", folder, "--repeat", str(repeat)),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1024", help="archive sizes in MiB")
    parser.add_argument("--worker", choices=[*LABELS])
    parser.add_argument("--key")
    parser.add_argument("--folder", type=Path)
    parser.add_argument(
        "--default-baseline-max-mib",
        type=int,
        default=256,
        help="time boto3's default (multipart) download_file only up to this size",
    )
    parser.add_argument("--repeat", type=int, default=1, help="(worker) runs; the best counts")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.key, args.folder, args.repeat)))
        return

    import boto3
    from boto3.s3.transfer import TransferConfig

    from testkit.moto_server import start_moto_server

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
            repeat = 3 if size_mib <= 256 else 1  # short runs are noisy: best of three
            # moto copies the whole object for each ranged GET: boto3's default multipart
            # download of 1 GiB takes minutes there, so it is only timed up to this size.
            slow = size_mib > args.default_baseline_max_mib
            for mode in [m for m in LABELS if not (slow and m == "baseline")]:
                result = run_worker(mode, key, repeat, env)
                rows.append((size_mib, mode, nbytes, result))
            s3.delete_object(Bucket=BUCKET, Key=key)
        report(rows)


def report(rows: list[tuple[int, str, int, dict[str, Any]]]) -> None:
    print(
        f"{'archive':>9}  {'what':<31}{'seconds':>8}{'MB/s':>8}{'peak RSS MiB':>14}"
        "  throughput vs download_file (default / one GET)"
    )
    rates: dict[tuple[int, str], float] = {}
    for size_mib, mode, nbytes, result in rows:
        rate = rates[size_mib, mode] = nbytes / 1e6 / result["seconds"]
        versus = ""
        if not mode.startswith("baseline"):
            versus = " / ".join(
                f"{rate / rates[size_mib, base] - 1:+.0%}" if (size_mib, base) in rates else "n/a"
                for base in BASELINES
            )
        print(
            f"{size_mib:>5} MiB  {LABELS[mode]:<31}{result['seconds']:>8.2f}{rate:>8.1f}"
            f"{result['peak_rss_mib']:>14.0f}  {versus}"
        )
    imports = [row for row in rows if not row[1].startswith("baseline")]
    worst_rss = max(row[3]["peak_rss_mib"] for row in imports)
    # Like for like: the download itself. Extraction then writes every byte a second
    # time, which no plain download does; its cost is printed above, not judged here.
    pace = all(
        rates[size, mode] >= (1 - THROUGHPUT_GOAL) * rates[size, base]
        for size, mode, _, _ in imports
        if mode == "download"
        for base in BASELINES
        if (size, base) in rates
    )
    print(
        f"goal: peak RSS < {RSS_GOAL_MIB} MiB for every import: "
        f"{'met' if worst_rss < RSS_GOAL_MIB else 'MISSED'} (worst {worst_rss:.0f} MiB)\n"
        f"goal: import (no extraction) within {THROUGHPUT_GOAL:.0%} of both baselines: "
        f"{'met' if pace else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
