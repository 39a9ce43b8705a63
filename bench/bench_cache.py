"""Caching across runs and reruns from failure, each beside its baseline, in one run.

(a) a 500-photo import_from_local + resize_image pipeline: the first run (nothing cached)
    vs a second run with the cache warm (goal: >= 20x faster)
(b) the same plus a last instruction that failed: a rerun from failure (the first
    instruction reused) vs a full run of the same pipeline
(c) (a) as a user sees it: POST /execute to SUCCESS through the API and real Dagster

(a) and (b) go through `run_plan`, the executor a Dagster run uses, on the local
artifact store; each cold round gets a new store. In (c) Dagster's per-run floor (a new
process per run, ~2 s here: DESIGN.md §5) is added to both sides.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.stats import describe_ms, row
from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.context import Services
from orchestrator.execution import RunOutcome, run_plan
from orchestrator.operations import CATALOG
from orchestrator.report import TERMINAL_RUN_STATUSES
from stack import Stack
from stack.demo_photos import make_photos

PHOTOS = int(os.environ.get("BENCH_CACHE_PHOTOS", "500"))
ROUNDS = int(os.environ.get("BENCH_CACHE_ROUNDS", "3"))
WORKERS = 2
KEY = "bench-key-0123456789abcdef"


def resized(folder: str) -> dict[str, Any]:
    """Resize what import_from_local reads from `folder` to 224x224 (instruction id "small")."""
    return {
        "id": "small",
        "operation": "resize_image",
        "parameters": {
            "width": 224,
            "height": 224,
            "data": {"operation": "import_from_local", "parameters": {"path": folder}},
        },
    }


RESIZED = resized("photos")
PIPELINE = {"instructions": [RESIZED]}
# Its last instruction fails while data/late does not exist (a real failure, of a real
# operation); once it does, a rerun from failure runs only that instruction.
WITH_LAST = {
    "instructions": [
        RESIZED,
        {
            "operation": "resize_image",
            "parameters": {
                "width": 224,
                "height": 224,
                "data": {"operation": "import_from_local", "parameters": {"path": "late"}},
            },
        },
    ]
}


def execute(
    document: dict[str, Any], data: Path, store: Path, **options: Any
) -> tuple[RunOutcome, float]:
    services = Services(artifacts=LocalStore(store), data_root=data, workers=WORKERS)
    run_id = f"bench-{uuid.uuid4().hex[:12]}"
    started = time.perf_counter()
    outcome = run_plan(validate(document, CATALOG), CATALOG, services, run_id, **options)
    return outcome, time.perf_counter() - started


def statuses(outcome: RunOutcome) -> list[str]:
    return [instruction.status for instruction in outcome.detail.instructions]


def through_the_api(work: Path, photos: list[Path]) -> None:
    """(c): the first and the second run of the pipeline as POST /execute to SUCCESS."""
    with Stack(work / "stack", api_keys=[KEY]) as stack:
        api = httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
        )

        def submit(folder: str) -> tuple[list[str], float]:
            document = {"instructions": [resized(folder)]}
            started = time.perf_counter()
            run_id = api.post("/execute", json=document).json()["run_id"]
            while (detail := api.get(f"/runs/{run_id}").json())["status"] not in (
                TERMINAL_RUN_STATUSES
            ):
                time.sleep(0.05)
            took = time.perf_counter() - started
            return [i["status"] for i in detail["instructions"]], took

        cold, warm = [], []
        for round_ in range(ROUNDS):
            folder = stack.data_root / f"photos-{round_}"
            folder.mkdir(parents=True)
            for path in photos:
                os.link(path, folder / path.name)
            found, took = submit(folder.name)
            assert found == ["succeeded"], found
            cold.append(took)
            found, took = submit(folder.name)
            assert found == ["cached"], found
            warm.append(took)
        print("(c) (a) through the API and Dagster: POST /execute to SUCCESS")
        row("first run (nothing cached)", describe_ms(cold))
        row("second run (cache warm)", describe_ms(warm))
        speedup = statistics.median(cold) / statistics.median(warm)
        row("speed-up at the median", f"{speedup:.1f}x")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        made = time.perf_counter()
        photos = make_photos(data / "photos", PHOTOS, seed=3, labels_file=data / "labels.csv")
        total = sum(path.stat().st_size for path in photos.paths)
        print(
            f"{PHOTOS} photos, {total / 1e6:.0f} MB, mixed camera sizes "
            f"(made in {time.perf_counter() - made:.0f} s); {WORKERS} resize threads",
            flush=True,
        )

        cold, warm = [], []
        for round_ in range(ROUNDS):
            store = work / f"store-{round_}"
            first, took = execute(PIPELINE, data, store)
            assert statuses(first) == ["succeeded"], first.first_error
            cold.append(took)
            for _ in range(3):
                second, took = execute(PIPELINE, data, store)
                assert statuses(second) == ["cached"], statuses(second)
                warm.append(took)
            shutil.rmtree(store)
        print("(a) import + resize of the photos: first run vs second run, cache warm")
        row("first run (nothing cached)", describe_ms(cold))
        row("second run (cache warm)", describe_ms(warm))
        speedup = statistics.median(cold) / statistics.median(warm)
        row("speed-up at the median (goal >= 20x)", f"{speedup:.1f}x")

        full, rerun = [], []
        for round_ in range(ROUNDS):
            store = work / f"rerun-{round_}"
            shutil.rmtree(data / "late", ignore_errors=True)
            failed, _ = execute(WITH_LAST, data, store)
            assert statuses(failed) == ["succeeded", "failed"], statuses(failed)
            make_photos(data / "late", 1, seed=round_, labels_file=data / "late.csv")
            again, took = execute(WITH_LAST, data, store, rerun_of=failed.run_id)
            assert statuses(again) == ["cached", "succeeded"], statuses(again)
            rerun.append(took)
            everything, took = execute(WITH_LAST, data, work / f"full-{round_}")
            assert statuses(everything) == ["succeeded", "succeeded"], statuses(everything)
            full.append(took)
            shutil.rmtree(store)
            shutil.rmtree(work / f"full-{round_}")
        print("(b) the same + a last instruction that failed: rerun from failure vs full run")
        row("full run", describe_ms(full))
        row("rerun from failure (import+resize reused)", describe_ms(rerun))
        speedup = statistics.median(full) / statistics.median(rerun)
        row("speed-up at the median", f"{speedup:.1f}x")
        if os.environ.get("BENCH_CACHE_STACK", "1") != "0":
            through_the_api(work, photos.paths)


if __name__ == "__main__":
    main()
