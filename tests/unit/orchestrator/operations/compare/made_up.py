"""Predictions of made-up models, written as model_inference writes them."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.catalog.values import PredictionOutput, Predictions


def write_predictions(
    folder: Path,
    model: str,
    labels: Mapping[str, Any],
    seconds: float | None = None,
    label_key: str = "label",
) -> Predictions:
    """A Predictions value under `folder` whose records carry `labels` (item -> label);
    a dict instead of a label is written as the record's outputs, with no label."""
    folder.mkdir(parents=True)
    with (folder / "predictions.jsonl").open("w") as out:
        for name, label in labels.items():
            if isinstance(label, dict):
                record = {"name": name, "outputs": label}
            else:
                record = {"name": name, label_key: label, "score": 0.9, "outputs": {"p": [0.9]}}
            out.write(json.dumps(record) + "\n")
    return Predictions(
        model=model,
        served_name=model.replace("/", "--"),
        count=len(labels),
        rows=len(labels),
        requests=1,
        outputs=(PredictionOutput(name="p", datatype="FP32", shape=(1,)),),
        root=str(folder),
        path="predictions.jsonl",
        seconds=seconds,
    )


def photo_set(count: int = 40, seed: int = 3) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Truth for `count` photos of three classes, and three models' labels of them:
    one good, one fair, one that confuses smoke with fire."""
    rng = random.Random(seed)
    classes = ["fire", "normal", "smoke"]
    truth = {f"photos/{i:03d}.jpg": classes[i % 3] for i in range(count)}
    models = []
    for error_rate in (0.05, 0.2, 0.35):
        labels = {}
        for name, label in truth.items():
            if rng.random() < error_rate:
                label = "fire" if label == "smoke" else rng.choice(classes)
            labels[name] = label
        models.append(labels)
    return truth, models
