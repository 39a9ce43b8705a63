"""An encoded image becomes one row of a pixel input, as `PixelFit` says.

All per-image work is in C, one pass each: Pillow decodes (a large JPEG in
draft mode, so the DCT already scales it down and the full size is never
decoded), converts to RGB or L and resamples (bilinear, what ViT and
torchvision preprocessing use);
numpy transposes, casts and normalises in one multiply-add into the output.
Pillow releases the GIL while it decodes and resamples, so readers on several
threads use every core.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from orchestrator.errors import OperationError
from orchestrator.operations.model.fitting import PixelFit

# Draft mode decodes at a reduced scale no smaller than the size asked for: the area the
# resample reads. 1 keeps a 1920x1080 photo fitted to 224x224 at 480x270, where the
# DCT's scaling averages like a box filter and the bilinear resample then halves it.
DRAFT_MARGIN = 1


def image_size(data: bytes, name: str) -> tuple[int, int]:
    """The image's [height, width], read from its header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError) as exc:
        raise OperationError(f"cannot read {name!r} as an image: {exc}") from exc
    return height, width


def fitted_pixels(data: bytes, fit: PixelFit, name: str) -> tuple[np.ndarray, tuple[int, int]]:
    """The image in `data` as one row of the input `fit` describes, and its original
    [height, width]."""
    from PIL import Image, UnidentifiedImageError

    mode = "L" if fit.channels == 1 else "RGB"
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if fit.size is None:
                decoded = image if image.mode == mode else image.convert(mode)
                pixels = np.asarray(decoded)
            else:
                pixels = np.asarray(_resized(image, mode, fit))
    except (UnidentifiedImageError, OSError) as exc:
        raise OperationError(f"cannot read {name!r} as an image: {exc}") from exc
    return _arranged(pixels, fit), (height, width)


def _resized(image: Any, mode: str, fit: PixelFit) -> Any:
    """The image at `fit.size` by `fit.resize`: stretched, centre-cropped or letterboxed."""
    from PIL import Image

    assert fit.size is not None
    target_h, target_w = fit.size
    width, height = image.size
    if fit.resize == "stretch":
        inner = (target_w, target_h)
        box = (0.0, 0.0, float(width), float(height))
        need = inner
    else:
        fits = max if fit.resize == "crop" else min
        scale = fits(target_w / width, target_h / height)
        if fit.resize == "crop":
            inner = (target_w, target_h)
            crop_w, crop_h = target_w / scale, target_h / scale
            left, top = (width - crop_w) / 2, (height - crop_h) / 2
            box = (left, top, left + crop_w, top + crop_h)
        else:
            inner = (max(1, round(width * scale)), max(1, round(height * scale)))
            box = (0.0, 0.0, float(width), float(height))
        need = (math.ceil(width * scale), math.ceil(height * scale))
    image.draft(mode, (need[0] * DRAFT_MARGIN, need[1] * DRAFT_MARGIN))
    reduced = image.size[0] / width  # what the draft decodes at: the box follows
    decoded = image if image.mode == mode else image.convert(mode)
    if fit.resize == "crop":  # cut first: the resample must not reach outside the centre
        decoded = decoded.crop(tuple(round(side * reduced) for side in box))
    resized = decoded.resize(inner, Image.Resampling.BILINEAR)
    if fit.resize != "pad" or inner == (target_w, target_h):
        return resized
    canvas = Image.new(mode, (target_w, target_h), 0)
    canvas.paste(resized, ((target_w - inner[0]) // 2, (target_h - inner[1]) // 2))
    return canvas


def _arranged(pixels: np.ndarray, fit: PixelFit) -> np.ndarray:
    """[H, W, C] (or [H, W]) UINT8 pixels in the input's layout, datatype and scale, in one
    C pass into a contiguous array."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, np.newaxis]
    if fit.channels_first:
        pixels = pixels.transpose(2, 0, 1)
    if not fit.channel_axis:
        pixels = pixels[..., 0]
    if fit.scale is None or fit.offset is None:
        return np.ascontiguousarray(pixels, dtype=fit.dtype)
    shape = (-1, 1, 1) if fit.channels_first else (-1,)
    work = np.float64 if fit.dtype == np.float64 else np.float32
    scale = fit.scale.astype(work).reshape(shape) if fit.channel_axis else fit.scale[0]
    offset = fit.offset.astype(work).reshape(shape) if fit.channel_axis else fit.offset[0]
    out = np.empty(pixels.shape, work)
    np.multiply(pixels, scale, out=out)
    out += offset
    return out if out.dtype == fit.dtype else out.astype(fit.dtype)
