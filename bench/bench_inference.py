"""model_inference on 5,000 rows against MLServer vs direct clients, all in one run.

(a) one request per row, in sequence (rows in memory): what batching saves;
(b) a hand-tuned batched client doing the same job: read the same 5,000 JSON
    files, send them batched with threads, write one JSON line per file; the
    best of several batch sizes and concurrencies is this machine's limit;
(c) for information, (b) with the rows already in memory: the server's ceiling.
Goal: model_inference with its defaults >= 10x (a) and >= 80 % of (b).
model_inference's time is the operation's own, from its "succeeded" event.
Figures are best of 3; other work on the machine makes them noisy.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from bench.stats import row
from orchestrator.artifacts import ArtifactStore
from orchestrator.catalog import validate
from orchestrator.connectors.model_server import ModelServerClient
from orchestrator.context import Services
from orchestrator.events import InstructionEvent
from orchestrator.execution import PlanExecutor
from orchestrator.operations import CATALOG
from tests.fixtures.mlserver import MLServer

ROWS = int(os.environ.get("BENCH_INFERENCE_ROWS", "5000"))
SEQUENTIAL_ROWS = int(os.environ.get("BENCH_INFERENCE_SEQUENTIAL_ROWS", "1000"))
REPEATS = 3
MODEL = "iris"


def write_rows(folder: Path) -> np.ndarray:
    folder.mkdir(parents=True)
    rows = np.random.default_rng(0).uniform(0.1, 7.9, (ROWS, 4)).round(2)
    for index, values in enumerate(rows):
        (folder / f"{index:05d}.json").write_text(json.dumps(values.tolist()))
    return rows


def infer_body(rows: np.ndarray) -> bytes:
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64"}
    return json.dumps({"inputs": [tensor | {"data": rows.ravel().tolist()}]}).encode()


def one_request_per_row(url: str, rows: np.ndarray) -> float:
    """Rows/s of one request per row, in sequence, on a kept-alive connection."""
    with httpx.Client(base_url=url, timeout=30) as http:
        started = time.perf_counter()
        for values in rows:
            http.post(
                f"/v2/models/{MODEL}/infer",
                content=infer_body(values[None, :]),
                headers={"content-type": "application/json"},
            ).raise_for_status()
        return len(rows) / (time.perf_counter() - started)


def hand_tuned(folder: Path, url: str, batch_size: int, concurrency: int) -> float:
    """Rows/s of a plain client doing model_inference's job: files in, JSON lines out."""
    names = sorted(os.listdir(folder))
    limits = httpx.Limits(max_connections=concurrency)
    with (
        httpx.Client(base_url=url, timeout=30, limits=limits) as http,
        ThreadPoolExecutor(concurrency) as pool,
        (folder.parent / "hand-tuned.jsonl").open("w") as out,
    ):

        def send(chunk: list[str]) -> tuple[list[str], list]:
            rows = []
            for name in chunk:
                with open(folder / name, "rb") as file:
                    rows.append(json.loads(file.read()))
            answer = http.post(
                f"/v2/models/{MODEL}/infer",
                content=infer_body(np.asarray(rows)),
                headers={"content-type": "application/json"},
            )
            answer.raise_for_status()
            return chunk, answer.json()["outputs"][0]["data"]

        started = time.perf_counter()
        chunks = [names[i : i + batch_size] for i in range(0, len(names), batch_size)]
        for chunk, labels in pool.map(send, chunks):
            out.write(
                "".join(
                    f'{{"name": "{n}", "predict": {p}}}\n'
                    for n, p in zip(chunk, labels, strict=True)
                )
            )
        return len(names) / (time.perf_counter() - started)


def direct_batched(url: str, rows: np.ndarray, batch_size: int, concurrency: int) -> float:
    """Rows/s of a plain batched client: in-memory rows, `concurrency` threads."""
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    limits = httpx.Limits(max_connections=concurrency)
    with httpx.Client(base_url=url, timeout=30, limits=limits) as http:

        def send(batch: np.ndarray) -> None:
            http.post(
                f"/v2/models/{MODEL}/infer",
                content=infer_body(batch),
                headers={"content-type": "application/json"},
            ).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, batches))
        return len(rows) / (time.perf_counter() - started)


def operation(root: Path, url: str, run: int, **params: int) -> float:
    """Rows/s of model_inference over the data set, from the operation's own duration."""
    instructions = [
        {
            "operation": "model_inference",
            "parameters": {
                "model": MODEL,
                "data": {"operation": "import_from_local", "parameters": {"path": "rows"}},
                **params,
            },
        }
    ]
    durations: list[float] = []

    def emit(event: InstructionEvent) -> None:
        if event.operation == "model_inference" and event.kind == "succeeded":
            durations.append(event.duration_s or 0.0)

    with ModelServerClient(url) as client:
        services = Services(
            artifacts=ArtifactStore(root / "artifacts"),
            data_root=root / "data",
            model_server=client,
        )
        plan = validate({"instructions": instructions}, CATALOG)
        outcome = PlanExecutor(plan, CATALOG, services, f"bench{run}", emit).run()
    assert outcome.succeeded, outcome.first_error
    return ROWS / durations[0]


def best(measure, repeats: int = REPEATS) -> float:
    return max(measure() for _ in range(repeats))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        root = Path(tmp)
        rows = write_rows(root / "data" / "rows")
        server = MLServer.create(root / "mlserver")
        server.start()
        try:
            with ModelServerClient(server.url) as client:
                client.load(MODEL)
            url = server.url
            direct_batched(url, rows[:1000], 64, 2)  # warm up the server
            print(f"MLServer 1.7.1 (sklearn iris, parallel_workers=0), {ROWS} rows of 4 FP64")

            sequential = one_request_per_row(url, rows[:SEQUENTIAL_ROWS])
            grid = [(s, c) for s in (64, 256, 1000) for c in (1, 2, 4)]
            folder = root / "data" / "rows"
            tuned = {(s, c): best(lambda s=s, c=c: hand_tuned(folder, url, s, c)) for s, c in grid}
            (size, concurrency), limit = max(tuned.items(), key=lambda kv: kv[1])
            ceiling = best(lambda: direct_batched(url, rows, size, concurrency))
            runs = iter(range(1000))
            ours = best(lambda: operation(root, url, next(runs)))
            ours_tuned = best(
                lambda: operation(root, url, next(runs), batch_size=size, concurrency=concurrency)
            )
        finally:
            server.stop()

    row(f"(a) one request per row ({SEQUENTIAL_ROWS} rows)", f"{sequential:9,.0f} rows/s")
    for (s, c), rate in sorted(tuned.items()):
        row(f"(b) hand-tuned, {s} rows x {c} in flight", f"{rate:9,.0f} rows/s")
    row(f"(b) best: {size} rows x {concurrency} in flight", f"{limit:9,.0f} rows/s")
    row(f"(c) rows in memory, {size} x {concurrency} (info)", f"{ceiling:9,.0f} rows/s")
    row("model_inference, defaults (256 rows x 4)", f"{ours:9,.0f} rows/s")
    row(f"model_inference, {size} rows x {concurrency}", f"{ours_tuned:9,.0f} rows/s")
    row("model_inference defaults vs (a)", f"{ours / sequential:9.1f} x   (goal >= 10x)")
    row("model_inference defaults vs (b)", f"{ours / limit:9.0%}     (goal >= 80 %)")
    row(f"model_inference at {size}x{concurrency} vs (b)", f"{ours_tuned / limit:9.0%}")


if __name__ == "__main__":
    main()
