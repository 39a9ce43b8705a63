"""Generated JPEG "photos" of camera sizes, fire vs no fire, with a ground-truth labels CSV.

Fire photos are red/orange dominant, the others blue (sky, sea) or green (forest); each has
a vertical light gradient, a few soft blobs and sensor noise, and comes in one of the usual
sizes, portrait included. Deterministic from the seed; about 30 ms a photo.
`make run` seeds its data root with some (the fire-detection samples); the tests' `photos`
fixture (testkit.photos) makes 40.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SIZES = ((1920, 1080), (640, 480), (1280, 720), (1080, 1920), (480, 640))
LABELS_FILE = "labels.csv"
# Base colours on [0, 1] by kind: (low, high) per channel.
PALETTES = {
    "fire": ((0.62, 1.0), (0.22, 0.62), (0.0, 0.25)),
    "sky": ((0.05, 0.4), (0.3, 0.65), (0.55, 0.95)),
    "forest": ((0.1, 0.42), (0.42, 0.8), (0.08, 0.38)),
}


@dataclass(frozen=True)
class PhotoSet:
    folder: Path
    labels: dict[str, str]  # file name -> "fire" or "no fire"
    labels_file: Path  # the CSV of `labels`: name,label

    @property
    def paths(self) -> list[Path]:
        return [self.folder / name for name in self.labels]


def photo(rng: np.random.Generator, size: tuple[int, int], kind: str) -> Image.Image:
    """One photo: drawn small, upscaled (smooth, like optics), then noise at full size."""
    width, height = size
    small_w, small_h = max(width // 16, 2), max(height // 16, 2)
    base = np.array([rng.uniform(low, high) for low, high in PALETTES[kind]], dtype=np.float32)
    light = np.linspace(rng.uniform(0.85, 1.1), rng.uniform(0.6, 0.9), small_h, dtype=np.float32)
    canvas = base[np.newaxis, np.newaxis, :] * light[:, np.newaxis, np.newaxis]
    canvas = np.repeat(canvas, small_w, axis=1)
    ys, xs = np.mgrid[0:small_h, 0:small_w]
    for _ in range(rng.integers(2, 5)):
        cy, cx = rng.uniform(0, small_h), rng.uniform(0, small_w)
        radius = rng.uniform(0.1, 0.3) * max(small_w, small_h)
        blob = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * radius**2))[..., np.newaxis]
        tint = rng.uniform(-0.15, 0.15, 3).astype(np.float32)
        canvas = canvas + blob.astype(np.float32) * tint
    small = Image.fromarray((np.clip(canvas, 0, 1) * 255).astype(np.uint8))
    pixels = np.asarray(small.resize(size, Image.Resampling.BILINEAR), dtype=np.int16)
    noise = rng.integers(-12, 13, (height, width, 1), dtype=np.int16)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def make_photos(
    folder: Path,
    count: int,
    seed: int = 0,
    labels_file: Path | None = None,
    sizes: tuple[tuple[int, int], ...] = SIZES,
) -> PhotoSet:
    """`count` photos in `folder` (half fire, each of a size drawn from `sizes`) and their
    labels CSV (`labels_file`, default FOLDER/labels.csv)."""
    labels_file = labels_file or folder / LABELS_FILE
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    labels: dict[str, str] = {}
    for index in range(count):
        fire = index % 2 == 0
        kind = "fire" if fire else ("sky" if rng.random() < 0.5 else "forest")
        size = sizes[int(rng.integers(len(sizes)))]
        name = f"photo-{index:04d}.jpg"
        photo(rng, size, kind).save(folder / name, quality=88)
        labels[name] = "fire" if fire else "no fire"
    with labels_file.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["name", "label"])
        writer.writerows(labels.items())
    return PhotoSet(folder, labels, labels_file)
