"""Three fire detectors with different input contracts, and the reference that runs them directly.

One task, fire vs no fire, so several models can be compared on one data set. Each model
reads the per-channel means of its image and applies a fixed linear layer:

    margin = red - (green + blue) / 2      (colours on [0, 1])
    fire logit - no-fire logit = gain * (margin - threshold)

The contracts are those of real image servers:

- `vit-fire` (also served as `EdBianchi--vit-fire-detection`, the seed pipeline's model):
  `pixel_values` FP32 [-1, 3, 224, 224], NCHW, ImageNet-normalised; `logits` FP32 [-1, 2].
  The layer is written in normalised space, as a trained ViT's would be, so a client that
  skips or botches the normalisation gets wrong answers on some photos.
- `bytes-fire`: BYTES [-1] of encoded image files (as Hugging Face runtimes take them),
  decoded and preprocessed inside the server; `label` BYTES [-1] and `score` FP32 [-1].
- `uint8-fire`: UINT8 [-1, -1, -1, 3] raw pixels of any size (one per request);
  `probabilities` FP32 [-1, 2].

This module needs only numpy and Pillow: the MLServer and KServe runtimes import it, and
the tests run the same functions in the project's own environment as the reference.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

LABELS = ("no fire", "fire")
SIDE = 224
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
COLOUR_WEIGHTS = np.array([1.0, -0.5, -0.5], dtype=np.float32)  # red - (green + blue) / 2


@dataclass(frozen=True)
class Detector:
    """The linear layer over colour means: `gain * (margin - threshold)`."""

    gain: float
    threshold: float

    def fire_minus_no_fire(self, colour_means: np.ndarray) -> np.ndarray:
        """[N, 3] channel means on [0, 1] -> [N] logit difference."""
        margin = colour_means.astype(np.float32) @ COLOUR_WEIGHTS
        return np.float32(self.gain) * (margin - np.float32(self.threshold))

    def logits(self, colour_means: np.ndarray) -> np.ndarray:
        half = self.fire_minus_no_fire(colour_means) / np.float32(2)
        return np.stack([-half, half], axis=1).astype(np.float32)

    def normalised_layer(self) -> tuple[np.ndarray, np.float32]:
        """The same layer over ImageNet-normalised channel means: weights [3] and bias."""
        weights = self.gain * COLOUR_WEIGHTS * IMAGENET_STD
        bias = self.gain * (float(COLOUR_WEIGHTS @ IMAGENET_MEAN) - self.threshold)
        return weights.astype(np.float32), np.float32(bias)


VIT = Detector(gain=12.0, threshold=0.14)
BYTES = Detector(gain=10.0, threshold=0.08)
UINT8 = Detector(gain=8.0, threshold=0.12)

FIRE_DETECTION_MODEL = "EdBianchi--vit-fire-detection"
VIT_MODELS = ("vit-fire", FIRE_DETECTION_MODEL)


def tensor(name: str, datatype: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape}


# What each model declares in its V2 metadata (`GET /v2/models/{name}`).
SIGNATURES: dict[str, dict[str, list[dict[str, Any]]]] = {
    "vit-fire": {
        "inputs": [tensor("pixel_values", "FP32", [-1, 3, SIDE, SIDE])],
        "outputs": [tensor("logits", "FP32", [-1, 2])],
    },
    "bytes-fire": {
        "inputs": [tensor("image", "BYTES", [-1])],
        "outputs": [tensor("label", "BYTES", [-1]), tensor("score", "FP32", [-1])],
    },
    "uint8-fire": {
        "inputs": [tensor("pixels", "UINT8", [-1, -1, -1, 3])],
        "outputs": [tensor("probabilities", "FP32", [-1, 2])],
    },
}
SIGNATURES[FIRE_DETECTION_MODEL] = SIGNATURES["vit-fire"]


class ModelInputError(ValueError):
    """The request does not fit the model; the message says what it declared and what came."""


# The models themselves, on decoded tensors (what the servers run).


def vit_logits(pixel_values: np.ndarray) -> np.ndarray:
    """`vit-fire`: [N, 3, 224, 224] FP32 ImageNet-normalised -> logits [N, 2]."""
    declared = f"pixel_values FP32 [-1, 3, {SIDE}, {SIDE}] (NCHW, ImageNet-normalised)"
    if pixel_values.ndim != 4 or pixel_values.shape[1:] != (3, SIDE, SIDE):
        layout = " (NHWC? this model takes NCHW)" if pixel_values.shape[-1:] == (3,) else ""
        raise ModelInputError(f"expected {declared}, got shape {list(pixel_values.shape)}{layout}")
    if pixel_values.dtype != np.float32:
        raise ModelInputError(f"expected {declared}, got datatype {pixel_values.dtype}")
    weights, bias = VIT.normalised_layer()
    means = pixel_values.mean(axis=(2, 3), dtype=np.float64).astype(np.float32)
    half = (means @ weights + bias) / np.float32(2)
    return np.stack([-half, half], axis=1).astype(np.float32)


def bytes_labels(files: list[bytes]) -> tuple[list[str], np.ndarray]:
    """`bytes-fire`: encoded image files -> labels and the label's probability."""
    means = np.stack([decoded_colour_means(file) for file in files])
    probabilities = softmax(BYTES.logits(means))
    best = probabilities.argmax(axis=1)
    return [LABELS[i] for i in best], probabilities.max(axis=1).astype(np.float32)


def uint8_probabilities(pixels: np.ndarray) -> np.ndarray:
    """`uint8-fire`: [N, H, W, 3] UINT8 of any size -> probabilities [N, 2]."""
    if pixels.ndim != 4 or pixels.shape[-1] != 3 or pixels.dtype != np.uint8:
        raise ModelInputError(
            f"expected pixels UINT8 [-1, -1, -1, 3] (NHWC), got {pixels.dtype} {list(pixels.shape)}"
        )
    means = pixels.mean(axis=(1, 2), dtype=np.float64) / 255
    return softmax(UINT8.logits(means))


def decoded_colour_means(file: bytes) -> np.ndarray:
    """The bytes model's own preprocessing: decode, RGB, 224x224 stretch, [0, 1] means."""
    try:
        with Image.open(io.BytesIO(file)) as image:
            resized = image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    except (OSError, ValueError) as exc:
        problem = f"expected an encoded image file, got {len(file)} bytes: {exc}"
        raise ModelInputError(problem) from exc
    pixels = np.asarray(resized, dtype=np.float32) / np.float32(255)
    means: np.ndarray = pixels.mean(axis=(0, 1), dtype=np.float64)
    return means


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
    return probabilities


# The reference: each model run directly from an image file, preprocessing done by hand.


def pixel_values(path: Path) -> np.ndarray:
    """The correct ViT input for one file: [1, 3, 224, 224] FP32, ImageNet-normalised."""
    with Image.open(path) as image:
        resized = image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    scaled = np.asarray(resized, dtype=np.float32) / np.float32(255)
    normalised = (scaled - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)


def raw_pixels(path: Path) -> np.ndarray:
    """The UINT8 model's input for one file: [1, H, W, 3]."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)[np.newaxis]


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float


def predict_vit(path: Path) -> Prediction:
    """What `vit-fire` (and `EdBianchi--vit-fire-detection`) answers for this file."""
    probabilities = softmax(vit_logits(pixel_values(path)))[0]
    return Prediction(LABELS[int(probabilities.argmax())], float(probabilities.max()))


def predict_bytes(path: Path) -> Prediction:
    """What `bytes-fire` answers for this file."""
    labels, scores = bytes_labels([path.read_bytes()])
    return Prediction(labels[0], float(scores[0]))


def predict_uint8(path: Path) -> Prediction:
    """What `uint8-fire` answers for this file."""
    probabilities = uint8_probabilities(raw_pixels(path))[0]
    return Prediction(LABELS[int(probabilities.argmax())], float(probabilities.max()))


PREDICTORS = {
    "vit-fire": predict_vit,
    FIRE_DETECTION_MODEL: predict_vit,
    "bytes-fire": predict_bytes,
    "uint8-fire": predict_uint8,
}
