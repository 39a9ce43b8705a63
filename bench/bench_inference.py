"""model_inference on 5,000 rows against MLServer vs direct clients, all in one run.

The data set: 5,000 JSON files of one row of 4 numbers each (iris features).
(a) one request per row, in sequence (rows in memory): what batching saves;
(b) a hand-tuned batched client doing model_inference's job. Before its clock
    starts it copies the data set's folder (model_inference reads the copy
    import_from_local has just made), lists and sorts the names and makes its
    httpx client and thread pool. Then it opens its output file and cuts the
    names into batches; each of its threads reads a batch's files (os.open
    relative to the folder's descriptor, one os.read each), parses them as one
    JSON document, makes one FP64 array and sends it as one V2 request
    (`ravel().tolist()`, json.dumps, asking like model_inference for an
    uncompressed answer), and decodes the answer; the main thread writes one
    JSON line per file, byte for byte model_inference's record (`{"name": ...,
    "outputs": {"predict": ...}}`; the benchmark checks that the two files are
    identical). It knows its data, so it checks nothing that model_inference
    must (each file one flat list, names needing no escaping).
    model_inference's time includes making its client and asking the model's
    metadata. The best of 3 batch sizes x 3 concurrencies is this machine's
    limit;
(c) for information, (b) with the rows already in memory and nothing written:
    the server's ceiling.
Goal: model_inference with its defaults >= 10x (a) and >= 80 % of (b).
model_inference's time is the operation's own, from its "succeeded" event.
Figures are best of 3; other work on the machine makes them noisy. The goal's
(b) is measured again at its best setting, in turn with model_inference, 7
rounds: best against best, and the median of each round's own ratio.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from bench.stats import row
from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.connectors.model_server import ModelServerClient
from orchestrator.context import Services
from orchestrator.events import InstructionEvent
from orchestrator.execution import run_plan
from orchestrator.operations import CATALOG
from orchestrator.resources import ModelServerResource
from testkit.mlserver import MLServer

ROWS = int(os.environ.get("BENCH_INFERENCE_ROWS", "5000"))
SEQUENTIAL_ROWS = int(os.environ.get("BENCH_INFERENCE_SEQUENTIAL_ROWS", "1000"))
REPEATS = 3
ROUNDS = 7  # (b) and model_inference in turn: noise hits both alike
MODEL = "iris"
# what model_inference sends: answers uncompressed (MLServer gzips answers over 500 bytes)
HEADERS = {"content-type": "application/json", "accept-encoding": "identity"}
HAND_TUNED_FILE = "hand-tuned.jsonl"  # next to the data set's folder


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
                headers=HEADERS,
            ).raise_for_status()
        return len(rows) / (time.perf_counter() - started)


def hand_tuned(folder: Path, url: str, batch_size: int, concurrency: int) -> float:
    """Rows/s of a tuned client doing model_inference's job: files in, the same JSON lines out.

    It reads a copy of `folder` made just before its clock starts, as
    model_inference reads the copy import_from_local has just made: files
    written moments ago read slower (~13 % here) than settled ones. It uses
    every trick known to it for this data: files opened relative to the
    folder's descriptor and read with one os.read, a batch's files parsed as
    one JSON document, names written as they are (they need no escaping), the
    predictions encoded with one json.dumps per request.
    """
    fresh = folder.parent / f"{folder.name}-copy"
    shutil.copytree(folder, fresh)
    names = sorted(os.listdir(fresh))
    limits = httpx.Limits(max_connections=concurrency)
    try:
        with (
            httpx.Client(base_url=url, timeout=30, limits=limits) as http,
            ThreadPoolExecutor(concurrency) as pool,
        ):

            def send(chunk: list[str]) -> tuple[list[str], list[str]]:
                contents = []
                for name in chunk:
                    fd = os.open(name, os.O_RDONLY, dir_fd=folder_fd)
                    contents.append(os.read(fd, 1 << 16))
                    os.close(fd)
                rows = json.loads(b"[" + b",".join(contents) + b"]")
                answer = http.post(
                    f"/v2/models/{MODEL}/infer",
                    content=infer_body(np.asarray(rows, dtype=np.float64)),
                    headers=HEADERS,
                )
                answer.raise_for_status()
                values = answer.json()["outputs"][0]["data"]  # shape [rows, 1], flat
                return chunk, json.dumps(values)[1:-1].split(", ")

            started = time.perf_counter()
            folder_fd = os.open(fresh, os.O_RDONLY | os.O_DIRECTORY)
            chunks = [names[i : i + batch_size] for i in range(0, len(names), batch_size)]
            with (folder.parent / HAND_TUNED_FILE).open("w", encoding="utf-8") as out:
                for chunk, values in pool.map(send, chunks):
                    out.write(
                        "".join(
                            f'{{"name": "{n}", "outputs": {{"predict": [{v}]}}}}\n'
                            for n, v in zip(chunk, values, strict=True)
                        )
                    )
            os.close(folder_fd)
            return len(names) / (time.perf_counter() - started)
    finally:
        shutil.rmtree(fresh)


def direct_batched(url: str, rows: np.ndarray, batch_size: int, concurrency: int) -> float:
    """Rows/s of a plain batched client: in-memory rows, `concurrency` threads."""
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    limits = httpx.Limits(max_connections=concurrency)
    with httpx.Client(base_url=url, timeout=30, limits=limits) as http:

        def send(batch: np.ndarray) -> None:
            http.post(
                f"/v2/models/{MODEL}/infer",
                content=infer_body(batch),
                headers=HEADERS,
            ).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, batches))
        return len(rows) / (time.perf_counter() - started)


def operation(root: Path, url: str, run: int, **params: int) -> float:
    """Rows/s of model_inference over the data set, from the operation's own duration.

    Checks that its predictions are byte for byte those (b) wrote."""
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

    with Services(
        artifacts=LocalStore(root / "artifacts"),
        data_root=root / "data",
        model_server=ModelServerClient(ModelServerResource(url=url)),
    ) as services:
        plan = validate({"instructions": instructions}, CATALOG)
        outcome = run_plan(plan, CATALOG, services, f"bench{run}", emit=emit)
    assert outcome.succeeded, outcome.first_error
    written = outcome.values["instructions[0]"].file.read_bytes()
    expected = (root / "data" / HAND_TUNED_FILE).read_bytes()
    assert written == expected, "model_inference and (b) wrote different predictions"
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
            with ModelServerClient(ModelServerResource(url=server.url)) as client:
                client.load(MODEL)
            url = server.url
            direct_batched(url, rows[:1000], 64, 2)  # warm up the server
            print(f"MLServer 1.7.1 (sklearn iris, parallel_workers=0), {ROWS} rows of 4 FP64")

            sequential = one_request_per_row(url, rows[:SEQUENTIAL_ROWS])
            grid = [(s, c) for s in (64, 256, 1024) for c in (1, 2, 4)]
            folder = root / "data" / "rows"
            tuned = {(s, c): best(lambda s=s, c=c: hand_tuned(folder, url, s, c)) for s, c in grid}
            (size, concurrency), grid_best = max(tuned.items(), key=lambda kv: kv[1])
            ceiling = best(lambda: direct_batched(url, rows, size, concurrency))
            # The grid's best is the luckiest of 27 noisy runs: measure (b) at that setting
            # again, in turn with model_inference, so all get their runs in the same moments.
            rounds = [
                (
                    hand_tuned(folder, url, size, concurrency),
                    operation(root, url, 2 * run),
                    operation(root, url, 2 * run + 1, batch_size=size, concurrency=concurrency),
                )
                for run in range(ROUNDS)
            ]
            limit, ours, ours_tuned = (max(rates) for rates in zip(*rounds, strict=True))
            paired = statistics.median(mine / theirs for theirs, mine, _ in rounds)
        finally:
            server.stop()

    row(f"(a) one request per row ({SEQUENTIAL_ROWS} rows)", f"{sequential:9,.0f} rows/s")
    for (s, c), rate in sorted(tuned.items()):
        row(f"(b) hand-tuned, {s} rows x {c} in flight", f"{rate:9,.0f} rows/s")
    row(f"(b) best: {size} rows x {concurrency} in flight", f"{grid_best:9,.0f} rows/s")
    row(f"(b) {size} x {concurrency}, measured again in turn", f"{limit:9,.0f} rows/s")
    row(f"(c) rows in memory, {size} x {concurrency} (info)", f"{ceiling:9,.0f} rows/s")
    defaults = ModelServerResource()
    row(
        f"model_inference, defaults ({defaults.batch_size} rows x {defaults.concurrency})",
        f"{ours:9,.0f} rows/s",
    )
    row(f"model_inference, {size} rows x {concurrency}", f"{ours_tuned:9,.0f} rows/s")
    row("model_inference defaults vs (a)", f"{ours / sequential:9.1f} x   (goal >= 10x)")
    row("model_inference defaults vs (b)", f"{ours / limit:9.0%}     (goal >= 80 %)")
    row(f"  median of the {ROUNDS} rounds' own ratios", f"{paired:9.0%}")
    row(f"model_inference at {size}x{concurrency} vs (b)", f"{ours_tuned / limit:9.0%}")


if __name__ == "__main__":
    main()
