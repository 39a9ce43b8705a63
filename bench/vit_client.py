"""The hand-written client bench_vit compares model_inference with.

What a person who knows the model would write for one ViT-shaped model
(FP32 [-1, 3, 224, 224], ImageNet normalisation) and one server that speaks
the binary tensor extension: JPEG draft decoding (the decoder scales by 1/2,
1/4 or 1/8 while it decodes), one bilinear resize to 224 x 224, the
normalisation as one numpy expression, NCHW by a transpose, and each
request's tensor sent as raw bytes after its JSON header. `concurrency`
threads each read, encode and send a batch of images; the main thread writes
one JSON line per image.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

SIDE = 224
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255


def pixels(path: Path) -> np.ndarray:
    """One image as [3, 224, 224] FP32, stretched and ImageNet-normalised."""
    with Image.open(path) as image:
        image.draft("RGB", (SIDE, SIDE))
        rgb = image.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR)
    array = (np.asarray(rgb, dtype=np.float32) - MEAN) / STD
    return array.transpose(2, 0, 1)


def binary_request(name: str, batch: np.ndarray, output: str) -> tuple[bytes, int]:
    """A V2 request with `batch` as binary data: (body, JSON header length)."""
    raw = np.ascontiguousarray(batch, dtype="<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "shape": list(batch.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": output, "parameters": {"binary_data": True}}],
        }
    ).encode()
    return header + raw, len(header)


def binary_outputs(response: httpx.Response, rows: int) -> np.ndarray:
    """The first output of a V2 answer as [rows, k] FP32, binary or JSON."""
    length = response.headers.get("inference-header-content-length")
    body = response.content
    header = json.loads(body[: int(length)] if length else body)
    output = header["outputs"][0]
    if length:
        raw = body[int(length) : int(length) + output["parameters"]["binary_data_size"]]
        return np.frombuffer(raw, dtype="<f4").reshape(rows, -1)
    return np.asarray(output["data"], dtype=np.float32).reshape(rows, -1)


def classify(
    folder: Path,
    out: Path,
    url: str,
    model: str,
    *,
    input_name: str,
    output_name: str,
    batch_size: int,
    concurrency: int,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Every image of `folder` through the model; one JSON line per image in `out`."""
    names = sorted(os.listdir(folder))
    batches = [names[i : i + batch_size] for i in range(0, len(names), batch_size)]
    limits = httpx.Limits(max_connections=concurrency)
    with (
        httpx.Client(base_url=url, timeout=120, limits=limits, transport=transport) as http,
        ThreadPoolExecutor(concurrency) as pool,
    ):

        def send(batch: list[str]) -> tuple[list[str], np.ndarray]:
            tensor = np.stack([pixels(folder / name) for name in batch])
            body, header_length = binary_request(input_name, tensor, output_name)
            answer = http.post(
                f"/v2/models/{model}/infer",
                content=body,
                headers={
                    "content-type": "application/octet-stream",
                    "inference-header-content-length": str(header_length),
                    "accept-encoding": "identity",
                },
            )
            answer.raise_for_status()
            return batch, binary_outputs(answer, len(batch))

        with out.open("w", encoding="utf-8") as lines:
            for batch, scores in pool.map(send, batches):
                for name, row in zip(batch, scores.tolist(), strict=True):
                    lines.write(json.dumps({"name": name, "outputs": {output_name: row}}) + "\n")
    return len(names)
