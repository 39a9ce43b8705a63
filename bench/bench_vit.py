"""model_inference on camera photos through a ViT-shaped model vs a hand-written client, one run.

The data set: 1,000 generated JPEG photos (testkit.photos), each 1920x1080 or
640x480 (drawn at random, about half each), ~560 kB and ~84 kB. The model:
`vit-fire` (testkit.image_models) on KServe 0.21.0's Python model server
(testkit.kserve), `pixel_values` FP32 [-1, 3, 224, 224] NCHW ImageNet-
normalised -> `logits` FP32 [-1, 2]; the server speaks the binary tensor
extension. Measured, side by side:
(1) model_inference with its defaults (the model's metadata decides the fit:
    stretch to 224x224, NCHW, ImageNet normalisation; binary tensors found out
    by "auto"; 13 images per request, the most that keeps a request within
    MAX_REQUEST_VALUES, x 4 in flight) vs the hand-written client
    bench.vit_client at the same batch size and concurrency. The client knows
    the model: JPEG draft decoding, one resize, one numpy normalisation,
    binary tensors, one JSON line per image. It reads the generated folder;
    model_inference reads the copy import_from_local has just made. Goal:
    model_inference >= 80 % of the client. The two measured in turn, ROUNDS
    rounds: best against best, and the median of each round's own ratio.
    model_inference's time is the operation's own, from its "succeeded"
    event (it includes making its client and reading the model's metadata;
    not import_from_local's copy). Both files of predictions give the same
    label (argmax of the logits) for every image, and on a sample of SAMPLE
    images the label of testkit.image_models' reference (full decode, no
    draft mode) is checked too.
(2) JSON vs binary tensors: model_inference with the resource's
    binary_tensors "never" and "always", images/s and request bytes per image
    (the request bodies' sizes, counted by the client's transport), once each.
(3) For information, the clients' own cost: (1) again with an in-process
    server that answers at once (httpx.MockTransport, zero logits). KServe
    0.21.0 is the bottleneck of (1): its REST path turns every binary input
    into a Python list, value by value (InferInput.set_data_from_numpy with
    binary_data=False), ~50 ms an image on one core, whoever the client is.
(4) Peak RSS as the item count grows: model_inference over 1,000 and over
    5,000 images against the instant server of (3) (the one that buffers
    the least), each in a new Python process that prints its own peak RSS
    (VmHWM) at the end and after its imports. Not ru_maxrss: Linux carries
    the parent's peak into it across fork and exec. The 5,000 are hard links
    to the 1,000 under five names each (generating 5,000 1080p photos would
    take ~2 min on 2 cores; the operation reads and copies each as a new
    file). Goal: peak(5,000) < 1.3 x peak(1,000).
For information, model_inference over the first MLSERVER_PHOTOS photos on
MLServer 1.7.1 (testkit.mlserver's vit-fire runtime), which takes JSON only
over REST ("auto" finds that out on the first request).
Photos are generated in parallel (one process per core). Other work on the
machine makes the figures noisy; the load average is printed.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.stats import row
from bench.vit_client import classify
from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.catalog.values import Predictions
from orchestrator.concurrency import usable_cores
from orchestrator.connectors.model_server import (
    BINARY_EXTENSION as BINARY,
)
from orchestrator.connectors.model_server import (
    HEADER_LENGTH,
    ModelServerClient,
)
from orchestrator.context import Services
from orchestrator.events import InstructionEvent
from orchestrator.execution import run_plan
from orchestrator.operations import CATALOG
from orchestrator.operations.model.batching import MAX_REQUEST_VALUES
from orchestrator.resources import ModelServerResource
from testkit.image_models import LABELS, SIDE, SIGNATURES, predict_vit
from testkit.kserve import KServe, ensure_venv
from testkit.mlserver import MLServer
from testkit.photos import make_photos

PHOTOS = int(os.environ.get("BENCH_VIT_PHOTOS", "1000"))
COPIES = 5  # the RSS check's larger data set: PHOTOS x COPIES hard links
SIZES = ((1920, 1080), (640, 480))
ROUNDS = int(os.environ.get("BENCH_VIT_ROUNDS", "2"))
SAMPLE = 50
MLSERVER_PHOTOS = 130  # for information: 10 requests; JSON is slow
MODEL, INPUT, OUTPUT = "vit-fire", "pixel_values", "logits"
HAND_FILE = "hand.jsonl"
INSTANT_URL = "http://instant.test"


def generate(folder: Path, count: int) -> None:
    """`count` photos in `folder`, made in one process per core (shards of other seeds)."""
    shards = usable_cores()
    parts = folder.parent / f"{folder.name}-shards"
    counts = [count // shards + (k < count % shards) for k in range(shards)]
    with ProcessPoolExecutor(shards) as pool:
        done = [
            pool.submit(make_photos, parts / str(k), n, k, sizes=SIZES)
            for k, n in enumerate(counts)
        ]
        sets = [future.result() for future in done]
    folder.mkdir(parents=True)
    for k, photos in enumerate(sets):
        for path in photos.paths:
            path.rename(folder / f"s{k}-{path.name}")
    shutil.rmtree(parts)


def hard_links(source: Path, folder: Path, copies: int) -> None:
    folder.mkdir()
    for name in sorted(os.listdir(source)):
        for copy in range(copies):
            os.link(source / name, folder / f"c{copy}-{name}")


def instant_answer(request: httpx.Request) -> httpx.Response:
    """An in-process V2 server for vit-fire that answers at once (zero logits, binary):
    what the clients cost on their own."""
    match request.method, request.url.path:
        case "GET", "/v2":
            return httpx.Response(200, json={"name": "instant", "extensions": [BINARY]})
        case "GET", "/v2/models/vit-fire":
            return httpx.Response(200, json={"name": MODEL, **SIGNATURES[MODEL]})
        case "POST", "/v2/models/vit-fire/infer":
            length = int(request.headers[HEADER_LENGTH])
            rows = json.loads(request.content[:length])["inputs"][0]["shape"][0]
            raw = np.zeros((rows, 2), dtype="<f4").tobytes()
            tensor = {"name": OUTPUT, "datatype": "FP32", "shape": [rows, 2]}
            header = json.dumps(
                {
                    "model_name": MODEL,
                    "outputs": [tensor | {"parameters": {"binary_data_size": len(raw)}}],
                }
            ).encode()
            return httpx.Response(
                200, content=header + raw, headers={HEADER_LENGTH: str(len(header))}
            )
    return httpx.Response(404, json={"error": f"no {request.method} {request.url.path}"})


class CountingTransport(httpx.HTTPTransport):
    """Counts the bytes of the request bodies it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent += len(request.content)
        return super().handle_request(request)


def operation(
    root: Path,
    url: str,
    path: str,
    run: str,
    transport: httpx.BaseTransport | None = None,
    **config: Any,
) -> tuple[float, Path]:
    """Images/s of model_inference over data folder `path` (its own duration), and its
    predictions file."""
    instructions = [
        {
            "operation": "model_inference",
            "parameters": {
                "model": MODEL,
                "data": {"operation": "import_from_local", "parameters": {"path": path}},
            },
        }
    ]
    durations: list[float] = []

    def emit(event: InstructionEvent) -> None:
        if event.operation == "model_inference" and event.kind == "succeeded":
            durations.append(event.duration_s or 0.0)

    artifacts = root / f"artifacts-{run}"
    with Services(
        artifacts=LocalStore(artifacts),
        data_root=root / "data",
        model_server=ModelServerClient(ModelServerResource(url=url, **config), transport=transport),
    ) as services:
        plan = validate({"instructions": instructions}, CATALOG)
        outcome = run_plan(plan, CATALOG, services, run, emit=emit)
    assert outcome.succeeded, outcome.first_error
    predictions = root / f"{run}.jsonl"
    written = outcome.values["instructions[0]"]
    assert isinstance(written, Predictions)
    written.file.rename(predictions)
    count = len(os.listdir(root / "data" / path))
    for folder in artifacts.iterdir():  # the imported copy: not to fill the disk over rounds
        shutil.rmtree(folder)
    return count / durations[0], predictions


def labels_of(predictions: Path) -> dict[str, str]:
    """Each image's label: the argmax of its logits."""
    records = (json.loads(line) for line in predictions.read_text().splitlines())
    return {r["name"]: LABELS[int(np.argmax(r["outputs"][OUTPUT]))] for r in records}


def hand(
    folder: Path,
    out: Path,
    url: str,
    batch_size: int,
    concurrency: int,
    transport: httpx.BaseTransport | None = None,
) -> float:
    started = time.perf_counter()
    count = classify(
        folder,
        out,
        url,
        MODEL,
        input_name=INPUT,
        output_name=OUTPUT,
        batch_size=batch_size,
        concurrency=concurrency,
        transport=transport,
    )
    return count / (time.perf_counter() - started)


def high_water_kib() -> int:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries the parent's peak
    into it across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(root: Path, path: str) -> None:
    """In its own process: model_inference over `path` (the instant server); prints its
    peak RSS before and after."""
    before = high_water_kib()
    rate, _ = operation(root, INSTANT_URL, path, f"rss-{path}", httpx.MockTransport(instant_answer))
    print(json.dumps({"before_kib": before, "peak_kib": high_water_kib(), "rate": rate}))


def peak_rss(root: Path, path: str) -> dict[str, float]:
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_vit", "--child", str(root), path],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    load = os.getloadavg()
    defaults = ModelServerResource()
    per_request = min(defaults.batch_size, MAX_REQUEST_VALUES // (3 * SIDE * SIDE))
    concurrency = defaults.concurrency
    with tempfile.TemporaryDirectory(prefix="bench-vit-") as tmp:
        root = Path(tmp)
        data = root / "data"
        photos = data / "photos"
        started = time.perf_counter()
        generate(photos, PHOTOS)
        made = time.perf_counter() - started
        hard_links(photos, data / "photos-x5", COPIES)
        warm, few = data / "warm-up", data / "mlserver"
        for folder, count in ((warm, 2 * per_request), (few, MLSERVER_PHOTOS)):
            folder.mkdir()
            for path in sorted(photos.iterdir())[:count]:
                os.link(path, folder / path.name)
        sizes = [p.stat().st_size for p in photos.iterdir()]
        server = KServe(ensure_venv(), root)
        server.start()
        try:
            url = server.url
            hand(warm, root / HAND_FILE, url, per_request, concurrency)
            rounds = []
            for run in range(ROUNDS):
                theirs = hand(photos, root / HAND_FILE, url, per_request, concurrency)
                mine, predictions = operation(root, url, "photos", f"defaults-{run}")
                rounds.append((theirs, mine))
            limit, ours = (max(rates) for rates in zip(*rounds, strict=True))
            paired = statistics.median(mine / theirs for theirs, mine in rounds)

            ours_labels, hand_labels = labels_of(predictions), labels_of(root / HAND_FILE)
            assert ours_labels == hand_labels, "model_inference and the client disagree"
            sample = sorted(ours_labels)[:: max(1, len(ours_labels) // SAMPLE)][:SAMPLE]
            wrong = [n for n in sample if predict_vit(photos / n).label != ours_labels[n]]
            assert not wrong, f"labels unlike the reference's: {wrong}"

            formats = {}
            for setting in ("always", "never"):
                counting = CountingTransport()
                rate, _ = operation(
                    root, url, "photos", setting, transport=counting, binary_tensors=setting
                )
                formats[setting] = (rate, counting.sent / PHOTOS)

        finally:
            server.stop()
        mlserver = MLServer.create(root / "mlserver-repository")
        mlserver.start()
        try:
            with ModelServerClient(ModelServerResource(url=mlserver.url)) as client:
                client.load(MODEL)
            on_mlserver, _ = operation(root, mlserver.url, few.name, "mlserver")
        finally:
            mlserver.stop()
        instant = httpx.MockTransport(instant_answer)
        alone = (
            hand(photos, root / HAND_FILE, INSTANT_URL, per_request, concurrency, instant),
            operation(root, INSTANT_URL, "photos", "instant", instant)[0],
        )
        small = peak_rss(root, "photos")
        large = peak_rss(root, "photos-x5")

    print(
        f"KServe 0.21.0, vit-fire FP32 [-1,3,224,224]; {PHOTOS} JPEGs 1920x1080 / 640x480 "
        f"(mean {statistics.fmean(sizes) / 1e3:.0f} kB, made in {made:.0f} s); "
        f"load average {load[0]:.2f} {load[1]:.2f} at the start"
    )
    setting = f"{per_request} images x {concurrency} in flight"
    row(f"hand-written client, {setting}", f"{limit:7.1f} images/s (best of {ROUNDS})")
    row(f"model_inference, defaults ({setting})", f"{ours:7.1f} images/s (best of {ROUNDS})")
    row("model_inference vs the client", f"{ours / limit:7.0%}   (goal >= 80 %)")
    row(f"  median of the {ROUNDS} rounds' own ratios", f"{paired:7.0%}")
    row("labels: model_inference = client", f"{len(ours_labels)}/{len(hand_labels)} images")
    row("labels: = reference (full decode)", f"{len(sample) - len(wrong)}/{len(sample)} sampled")
    row("client side alone (instant server): client", f"{alone[0]:7.1f} images/s")
    row("  model_inference", f"{alone[1]:7.1f} images/s  ({alone[1] / alone[0]:.0%})")
    for setting, (rate, sent) in formats.items():
        kind = "binary" if setting == "always" else "JSON"
        row(
            f"model_inference, {kind} tensors ({setting!r})",
            f"{rate:7.1f} images/s, {sent / 1e6:6.2f} MB sent per image",
        )
    row(
        f"model_inference, MLServer 1.7.1 (JSON), {MLSERVER_PHOTOS} images",
        f"{on_mlserver:7.1f} images/s  (info: no binary tensors over its REST)",
    )
    for count, figures in ((PHOTOS, small), (PHOTOS * COPIES, large)):
        row(
            f"model_inference, {count} images: peak RSS",
            f"{figures['peak_kib'] / 1024:7.0f} MiB  ({figures['before_kib'] / 1024:.0f} MiB "
            f"before the run; {figures['rate']:.1f} images/s)",
        )
    row(
        f"peak RSS, {PHOTOS * COPIES} vs {PHOTOS} images",
        f"{large['peak_kib'] / small['peak_kib']:7.2f} x   (goal < 1.3x)",
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]), sys.argv[3])
    else:
        main()
