"""resize_image: shrink images to model size, fast.

Two things make it fast: JPEG draft mode decodes at a reduced scale (the DCT
does the first downscale, so a 1920x1080 photo is never decoded full size), and
Pillow releases the GIL while decoding and resampling, so threads use every core.
The draft keeps at least twice the target size, so the final resample still
sees enough pixels for the same quality as a full decode.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog.registry import operation, pure
from orchestrator.catalog.values import DataItem, Dataset
from orchestrator.concurrency import ordered_map
from orchestrator.context import OperationContext
from orchestrator.errors import OperationError

DRAFT_MARGIN = 2  # decode at >= 2x the target size, then resample
FORMATS = {
    "jpeg": ("JPEG", "image/jpeg"),
    "png": ("PNG", "image/png"),
    "webp": ("WEBP", "image/webp"),
}


class ResizeImageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Dataset = Field(description="Images to resize (JPEG, PNG, WebP, ...).")
    width: int = Field(224, ge=1, le=16_384, description="Target width in pixels.")
    height: int = Field(224, ge=1, le=16_384, description="Target height in pixels.")
    resample: Literal["nearest", "bilinear", "bicubic", "lanczos"] = Field(
        "bicubic", description="Resampling filter."
    )
    format: Literal["same", "jpeg", "png", "webp"] = Field(
        "same", description="Output format; 'same' keeps each image's own."
    )
    quality: int = Field(95, ge=1, le=100, description="JPEG/WebP quality.")


def resize_file(source: Path, target: Path, params: ResizeImageParams) -> str:
    """Resize one image file; returns the media type written."""
    from PIL import Image, UnidentifiedImageError

    size = (params.width, params.height)
    try:
        with Image.open(source) as image:
            image.draft("RGB", (size[0] * DRAFT_MARGIN, size[1] * DRAFT_MARGIN))
            fmt = image.format if params.format == "same" else FORMATS[params.format][0]
            decoded: Image.Image = image
            if image.mode not in ("RGB", "L", "RGBA"):
                decoded = image.convert("RGBA" if "A" in image.mode else "RGB")
            resized = decoded.resize(size, Image.Resampling[params.resample.upper()])
    except (UnidentifiedImageError, OSError) as exc:
        raise OperationError(f"cannot read {source.name!r} as an image: {exc}") from exc
    fmt = fmt or "PNG"
    if fmt == "JPEG" and resized.mode == "RGBA":
        resized = resized.convert("RGB")
    resized.save(target, fmt, quality=params.quality)
    return Image.MIME.get(fmt, "application/octet-stream")


@operation(name="resize_image", output=Dataset, cache_key=pure)
def resize_image(params: ResizeImageParams, ctx: OperationContext) -> Dataset:
    """Resize every image of a data set to width x height, keeping names and order."""
    writer = ctx.dataset_writer()
    data = params.data

    def one(item: DataItem) -> str:
        ctx.check_canceled()
        return resize_file(data.path_of(item), writer.path_for(item.name), params)

    workers = max(1, ctx.services.workers)
    with ThreadPoolExecutor(workers, thread_name_prefix="resize") as pool:
        # two images a thread submitted at once: none waits, and memory stays flat
        for done, (item, media_type) in enumerate(
            ordered_map(pool, one, data.items, 2 * workers), 1
        ):
            writer.add(item.name, media_type)
            ctx.progress(done, len(data.items))
    resized = writer.finish(order=[item.name for item in data.items])
    return type(data)(root=resized.root, items=resized.items)
