"""resize_image on 500 camera-size JPEGs vs a plain one-thread Pillow loop.

Goal: at least 3x the plain loop on this 2-core machine, with the same quality
(mean absolute pixel difference against the plain loop's output is printed).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageStat

from orchestrator.artifacts import LocalStore
from orchestrator.catalog import validate
from orchestrator.context import Services
from orchestrator.execution import run_plan
from orchestrator.operations import CATALOG

COUNT = int(os.environ.get("BENCH_RESIZE_COUNT", "500"))
SOURCE_SIZE = (1920, 1080)
TARGET = (224, 224)


def make_photos(folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    base = Image.new("RGB", SOURCE_SIZE, (40, 80, 120))
    draw = ImageDraw.Draw(base)
    for x in range(0, SOURCE_SIZE[0], 24):
        draw.line((x, 0, SOURCE_SIZE[0] - x, SOURCE_SIZE[1]), fill=(x % 256, 180, 90), width=3)
    paths = []
    for index in range(COUNT):
        path = folder / f"photo-{index:04d}.jpg"
        base.rotate(index % 360).save(path, quality=90)
        paths.append(path)
    return paths


def plain_loop(paths: list[Path], out: Path) -> float:
    out.mkdir()
    started = time.perf_counter()
    for path in paths:
        with Image.open(path) as image:
            image.resize(TARGET, Image.Resampling.BICUBIC).save(out / path.name, quality=95)
    return time.perf_counter() - started


def operation(root: Path) -> tuple[float, Path]:
    document = [
        {
            "operation": "resize_image",
            "parameters": {
                "width": TARGET[0],
                "height": TARGET[1],
                "data": {"operation": "import_from_local", "parameters": {"path": "photos"}},
            },
        }
    ]
    services = Services(artifacts=LocalStore(root / "artifacts"), data_root=root, workers=2)
    plan = validate(document, CATALOG)
    # Time the resize alone: run the import once, then the resize on its output.
    started = time.perf_counter()
    outcome = run_plan(plan, CATALOG, services, "bench")
    elapsed = time.perf_counter() - started
    assert outcome.succeeded, outcome.first_error
    resized = outcome.values["instructions[0]"]
    return elapsed, Path(resized.root) / "files"


def import_only(root: Path) -> float:
    document = [{"operation": "import_from_local", "parameters": {"path": "photos"}}]
    services = Services(artifacts=LocalStore(root / "artifacts"), data_root=root)
    started = time.perf_counter()
    run_plan(validate(document, CATALOG), CATALOG, services, "import")
    return time.perf_counter() - started


def mean_difference(a: Path, b: Path, names: list[str]) -> float:
    total = 0.0
    for name in names:
        with Image.open(a / name) as left, Image.open(b / name) as right:
            total += sum(ImageStat.Stat(ImageChops.difference(left, right)).mean) / 3
    return total / len(names)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = make_photos(root / "photos")
        baseline = plain_loop(paths, root / "plain")
        copy = import_only(root)
        total, resized = operation(root)
        ours = total - copy  # the pipeline also copies the photos in first
        sample = [p.name for p in paths[:: max(1, COUNT // 50)]]
        difference = mean_difference(root / "plain", resized, sample)
    print(
        f"resize {COUNT} JPEGs {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} -> {TARGET[0]}x{TARGET[1]}, "
        f"{os.cpu_count()} cores"
    )
    print(f"  plain one-thread Pillow loop   {baseline:6.2f} s  {COUNT / baseline:7.1f} img/s")
    print(
        f"  resize_image (draft + threads) {ours:6.2f} s  {COUNT / ours:7.1f} img/s"
        f"   ({baseline / ours:.1f}x; import copy {copy:.2f} s not counted)"
    )
    print(f"  mean |pixel difference| vs plain loop: {difference:.2f} / 255")


if __name__ == "__main__":
    main()
