"""The fit: which of a model's declared inputs gets what, in which shape and datatype.

Decided once, before any inference request, from the model's V2 metadata
(each input's name, datatype, shape), model_inference's parameters and the
data set's first item. Whatever cannot fit is refused here, naming the
declared input, what would be offered and the parameter that would fix it.

The rule, input by input:
- Which input: the one declared input, or `input_name`, or each of `inputs`
  ({NAME: SOURCE}); a model declaring several inputs needs `inputs`. A model
  declaring none gets "input-0".
- What feeds it (its source): BYTES inputs (or `datatype: BYTES`) get each
  item's file as it is; otherwise images get their pixels, JSON/CSV/.npy
  items their numbers ("rows"). `inputs` may also ask for "size" (the image's
  original [H, W]), "name" (BYTES) or a constant.
- Pixels: a declared 4-D shape with 3 (or 1) channels at axis 1 is NCHW, at
  axis 3 NHWC; 3-D without a batch dimension likewise (CHW, HWC), and
  [-1, H, W] is a batch of grayscale images. The `layout` parameter decides
  what the shape does not (auto: NHWC, said in the log). A fixed H x W (or
  `image_size`) is met by resizing (`resize`: stretch, crop, pad); with a
  variable one each image keeps its size and requests hold images of one size.
- Datatype: the `datatype` parameter, else the declared one, else UINT8 for
  pixels and the reader's own for rows (FP64 for JSON/CSV).
- Scale (float pixel inputs only): explicit `mean`/`std`, else `normalize`,
  else (auto) the mean/std or normalize the input's metadata parameters state,
  else imagenet; integer inputs get 0-255 as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeAlias

import numpy as np

from orchestrator.connectors.model_server import ModelMetadata, TensorSpec
from orchestrator.errors import OperationError
from orchestrator.operations.model.batching import MAX_REQUEST_VALUES
from orchestrator.operations.model.parameters import Constant, ModelInferenceParams, SourceName

DEFAULT_INPUT_NAME = "input-0"

NUMPY_TYPES = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}
DATATYPE_OF = {numpy: v2 for v2, numpy in NUMPY_TYPES.items()}
PIXEL_TYPES = frozenset(NUMPY_TYPES) - {"BOOL"}

PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {  # mean, std on [0, 1]
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "[-1,1]": ((0.5,), (0.5,)),
    "[0,1]": ((0.0,), (1.0,)),
}

Kind = Literal["image", "json", "csv", "npy", "other"]
Resolved: TypeAlias = SourceName | Constant  # a source once "auto" is decided
FitSource = Literal[SourceName, "constant"]


@dataclass(frozen=True)
class Sample:
    """What the fit needs of the data set's first item: its kind, and its first row
    (numbers) or its [H, W] (an image); None when the data set is empty."""

    name: str
    kind: Kind
    row: np.ndarray | None = None
    size: tuple[int, int] | None = None
    nbytes: int = 0  # its file's size


@dataclass(frozen=True)
class PixelFit:
    """How an image becomes one row of a pixel input.

    `size` (H, W) every image is resized to by `resize`, None: each its own.
    `channels` 1 (grayscale) or 3 (RGB); `channel_axis` False for [.., H, W]
    inputs; `channels_first` for CHW; `batched` False for a declared CHW or HWC
    (no batch dimension: one image a request). Values are `pixel * scale +
    offset` per channel, or the pixels as they are when `scale` is None.
    """

    size: tuple[int, int] | None = None
    batched: bool = True
    resize: str = "stretch"
    channels: int = 3
    channel_axis: bool = True
    channels_first: bool = False
    dtype: np.dtype[Any] = field(default_factory=lambda: np.dtype("uint8"))
    scale: np.ndarray | None = None
    offset: np.ndarray | None = None

    def row_shape(self, size: tuple[int, int]) -> tuple[int, ...]:
        """One image's row shape, for an image of `size` (H, W) before resizing."""
        height, width = self.size or size
        if not self.channel_axis:
            return (height, width)
        if self.channels_first:
            return (self.channels, height, width)
        return (height, width, self.channels)


RAW_PIXELS = PixelFit()  # [H, W, 3] UINT8 as decoded


@dataclass(frozen=True)
class InputFit:
    """One input of the request: its name, V2 datatype and what feeds it. `row_shape` is
    one row's shape when it is fixed (bytes, name, size, constants); `value` a constant;
    `fixed_rows` the batch dimension the model declares for it, when it fixes one."""

    name: str
    datatype: str
    source: FitSource
    row_shape: tuple[int, ...] | None = None
    pixels: PixelFit | None = None
    value: np.ndarray | None = None
    fixed_rows: int | None = None


@dataclass(frozen=True)
class Fit:
    """Every input of the requests. `batched`: tensors lead with the rows' count (else one
    item per request, shaped as declared); `max_rows`: a batch size the model fixes."""

    inputs: tuple[InputFit, ...]
    batched: bool = True
    max_rows: int | None = None
    notes: tuple[str, ...] = ()

    @property
    def numeric(self) -> bool:
        """Whether the items are read as numbers (readers.read_blocks), not encoded."""
        return any(one.source == "rows" for one in self.inputs)

    @property
    def rows_input(self) -> InputFit:
        return next(one for one in self.inputs if one.source == "rows")

    def per_request(self, sample: Sample | None, batch_size: int) -> int:
        """Rows per request: `batch_size`, fewer to keep a request within MAX_REQUEST_VALUES
        (a file's bytes count as a value each 4 bytes, like FP32) or the model's own size."""
        limit = batch_size if self.batched else 1
        if self.max_rows:
            limit = min(limit, self.max_rows)
        if sample is None:
            return limit
        values = 0
        for one in self.inputs:
            if one.source == "rows" and sample.row is not None:
                values += sample.row.size
            elif one.pixels is not None:
                values += math.prod(one.pixels.row_shape(sample.size or (1, 1)))
            elif one.source == "bytes":
                values += sample.nbytes // 4
            elif one.row_shape is not None:
                values += math.prod(one.row_shape)
        return min(limit, max(1, MAX_REQUEST_VALUES // max(1, values)))


def fit_model(
    model: str,
    metadata: ModelMetadata,
    params: ModelInferenceParams,
    sample: Sample | None,
) -> Fit:
    """The fit of the data to `model`, by the rule in this module's docstring; raises
    OperationError for what cannot fit, before anything is sent."""
    declared = {spec.name: spec for spec in metadata.inputs}
    wanted = _wanted_inputs(model, metadata.inputs, params)
    notes: list[str] = []
    fits: list[InputFit] = []
    for name, source in wanted.items():
        spec = declared.get(name, TensorSpec(name, "", ()))
        resolved = _resolve(spec, source, params, sample)
        fits.append(_Fitter(model, spec, params, sample, notes).fit(resolved))
    batched = all(one.pixels is None or one.pixels.batched for one in fits)
    fixed = [one.fixed_rows for one in fits if one.fixed_rows]
    sources = [one.source for one in fits]
    if "rows" in sources and any(s not in ("rows", "constant") for s in sources):
        raise OperationError(
            f"model {model!r}: numbers (rows) can share a request only with constants; "
            f"inputs were asked for {dict(zip(wanted, sources, strict=True))}"
        )
    if sources.count("rows") > 1:
        raise OperationError(f"model {model!r}: only one input can take the items' rows")
    unfed = [spec.name for spec in metadata.inputs if spec.name not in wanted]
    if unfed:
        notes.append(f"declared inputs not sent: {', '.join(map(repr, unfed))}")
    return Fit(tuple(fits), batched, min(fixed) if fixed and batched else None, tuple(notes))


def describe(spec: TensorSpec) -> str:
    """A declared input as messages name it: 'pixel_values' FP32 [-1, 3, 224, 224]."""
    shape = list(spec.shape) if spec.shape else "(no shape declared)"
    return f"{spec.name!r} {spec.datatype or '(no datatype declared)'} {shape}"


def describe_fit(one: InputFit) -> str:
    """An input's fit in words, for the log."""
    if one.pixels is None:
        what = "a constant" if one.value is not None else one.source
        return f"{one.name!r} {one.datatype} <- {what}"
    pixels = one.pixels
    size = f"resized to {list(pixels.size)} ({pixels.resize})" if pixels.size else "own size"
    layout = (
        "HW" if not pixels.channel_axis else "CHW" if pixels.channels_first else "HWC"
    ) + f", {pixels.channels} channel(s)"
    scale = "as they are (0-255)" if pixels.scale is None else "scaled and normalised"
    return f"{one.name!r} {one.datatype} <- pixels {size}, {layout}, {scale}"


def _wanted_inputs(
    model: str, declared: Sequence[TensorSpec], params: ModelInferenceParams
) -> dict[str, Resolved | Literal["auto"]]:
    names = [spec.name for spec in declared]
    listing = ", ".join(describe(spec) for spec in declared)
    wanted: dict[str, Resolved | Literal["auto"]]
    if params.inputs is not None:
        wanted = dict(params.inputs)
    elif params.input_name is not None:
        wanted = {params.input_name: "auto"}
    elif len(declared) > 1:
        raise OperationError(
            f"model {model!r} declares {len(declared)} inputs ({listing}): say what feeds "
            'each with the parameter inputs, e.g. {"' + names[0] + '": "pixels"}'
        )
    else:
        wanted = {names[0] if names else DEFAULT_INPUT_NAME: "auto"}
    unknown = [name for name in wanted if names and name not in names]
    if unknown:
        raise OperationError(
            f"model {model!r} declares no input {unknown[0]!r}; it declares {listing}"
        )
    return wanted


def _resolve(
    spec: TensorSpec,
    source: Resolved | Literal["auto"],
    params: ModelInferenceParams,
    sample: Sample | None,
) -> Resolved:
    """An input's source once "auto" is decided: bytes for BYTES inputs, else by the first
    item's kind."""
    if source != "auto":
        return source
    if params.datatype == "BYTES" or spec.datatype == "BYTES":
        return "bytes"
    if sample is None or sample.kind in ("json", "csv", "npy"):
        return "rows"
    if sample.kind == "image":
        return "pixels"
    raise OperationError(
        f"item {sample.name!r} cannot be sent to input {describe(spec)}: expected an image, "
        ".json, .csv or .npy file (or a BYTES input, or datatype: BYTES, for files as they are)"
    )


@dataclass
class _Fitter:
    """Fits one declared input to its source; `notes` collects what the log should say."""

    model: str
    spec: TensorSpec
    params: ModelInferenceParams
    sample: Sample | None
    notes: list[str]

    def refuse(self, offered: str, why: str, fix: str) -> OperationError:
        return OperationError(
            f"model {self.model!r} input {describe(self.spec)} cannot take {offered}: {why}; {fix}"
        )

    def _leading(self, rank: int) -> int | None:
        """The declared batch dimension when the declared shape has `rank` axes (one of them
        the batch's) and fixes it; None when it is variable or not declared."""
        shape = self.spec.shape
        return shape[0] if len(shape) == rank and shape[0] > 0 else None

    def fit(self, source: Resolved) -> InputFit:
        if isinstance(source, Constant):
            return self._constant(source)
        if source in ("bytes", "name"):
            return self._bytes(source)
        if source == "size":
            return self._size()
        if source == "rows":
            return self._rows()
        return self._pixels()

    def _declared_type(self, default: str) -> str:
        """The datatype asked for: the parameter, else the declared one, else `default`."""
        asked = self.params.datatype
        if asked not in ("auto", "BYTES"):
            if self.spec.datatype and asked != self.spec.datatype:
                self.notes.append(
                    f"input {self.spec.name!r}: sent as {asked} (datatype), "
                    f"though it declares {self.spec.datatype}"
                )
            return asked
        return self.spec.datatype or default

    def _bytes(self, source: SourceName) -> InputFit:
        what = "each item's file as it is" if source == "bytes" else "each item's name"
        if self.spec.datatype not in ("", "BYTES"):
            fix = (
                "leave inputs to auto (pixels or rows) or set datatype to what it declares"
                if source == "bytes"
                else "map it to another source with inputs"
            )
            raise self.refuse(f"BYTES [n] ({what})", "it does not take BYTES", fix)
        row_shape = (1,) if len(self.spec.shape) == 2 else ()
        return InputFit(self.spec.name, "BYTES", source, row_shape, fixed_rows=self._leading(1))

    def _size(self) -> InputFit:
        datatype = self.spec.datatype or "INT64"
        per_row = self.spec.shape[1:]
        if datatype not in PIXEL_TYPES or (per_row and per_row not in ((2,), (-1,))):
            raise self.refuse(
                "INT64 [n, 2] (each image's [height, width])",
                "it takes another shape or datatype",
                "map it to another source with inputs",
            )
        return InputFit(self.spec.name, datatype, "size", (2,), fixed_rows=self._leading(2))

    def _constant(self, constant: Constant) -> InputFit:
        value = np.asarray(constant.value, dtype=np.float64)
        integral = bool(np.all(value == np.round(value)))
        datatype = self.spec.datatype or ("INT64" if integral else "FP64")
        if datatype not in NUMPY_TYPES:
            raise self.refuse(
                f"the constant {constant.value}", f"it takes {datatype}", "map it to bytes or name"
            )
        per_row = self.spec.shape[1:]
        if per_row and all(n > 0 for n in per_row):
            if value.size != math.prod(per_row):
                raise self.refuse(
                    f"the constant {constant.value} ({value.size} values a row)",
                    f"each row holds {math.prod(per_row)} values",
                    "give a value of that size in inputs",
                )
            value = value.reshape(per_row)
        value = value.astype(NUMPY_TYPES[datatype])
        return InputFit(
            self.spec.name,
            datatype,
            "constant",
            value.shape,
            value=value,
            fixed_rows=self._leading(value.ndim + 1),
        )

    def _rows(self) -> InputFit:
        datatype = self._declared_type("")
        row = self.sample.row if self.sample else None
        fixed_rows = None
        if datatype == "BYTES":
            raise self.refuse(
                "numbers", "it takes BYTES", "send the files as they are with datatype: BYTES"
            )
        if datatype and datatype not in NUMPY_TYPES:
            raise self.refuse("numbers", f"{datatype} is not a numeric datatype", "set datatype")
        if row is not None and self.spec.shape:
            declared = self.spec.shape
            per_row = declared[1:] if len(declared) == row.ndim + 1 else declared
            fixed_rows = self._leading(row.ndim + 1)
            if len(per_row) != row.ndim or any(
                d > 0 and d != n for d, n in zip(per_row, row.shape, strict=True)
            ):
                offered = DATATYPE_OF.get(row.dtype.name, row.dtype.name)
                raise self.refuse(
                    f"{datatype or offered} {[-1, *row.shape]} (the rows of "
                    f"{self.sample.name if self.sample else ''!r})",
                    "the shapes differ",
                    "give it items whose rows have the declared shape",
                )
        return InputFit(self.spec.name, datatype, "rows", fixed_rows=fixed_rows)

    def _pixels(self) -> InputFit:
        if self.sample is not None and self.sample.kind != "image":
            raise self.refuse(
                f"the pixels of {self.sample.name!r}",
                "that item is not an image",
                "map the input to rows or bytes with inputs",
            )
        datatype = self._declared_type("UINT8")
        size = self.sample.size if self.sample and self.sample.size else (0, 0)
        if datatype not in PIXEL_TYPES:
            raise self.refuse(
                f"pixels [n, {size[0]}, {size[1]}, 3]",
                f"it takes {datatype}",
                "for encoded files use a BYTES input (inputs: bytes), else set datatype",
            )
        pixels = self._geometry(size)
        dtype = np.dtype(NUMPY_TYPES[datatype])
        scale, offset = self._scale(dtype, pixels)
        pixels = replace(pixels, dtype=dtype, scale=scale, offset=offset)
        fixed = self.spec.shape[0] if pixels.batched and self.spec.shape else 0
        return InputFit(
            self.spec.name, datatype, "pixels", pixels=pixels, fixed_rows=max(fixed, 0) or None
        )

    def _geometry(self, size: tuple[int, int]) -> PixelFit:
        """Layout, channels and the size to resize to, from the declared shape."""
        shape = self.spec.shape
        layout: str = self.params.layout
        height, width = size
        offered = f"pixels [n, {height}, {width}, 3]"
        if not shape:
            pixels = PixelFit()
        elif len(shape) == 4:
            first, last = shape[1] in (1, 3), shape[3] in (1, 3)
            if layout == "auto" and first != last:
                layout = "NCHW" if first else "NHWC"
            elif layout == "auto":
                layout = "NHWC"
                self.notes.append(
                    f"input {describe(self.spec)}: layout not decidable from the shape, sent "
                    "as NHWC (set layout to NCHW if it is not)"
                )
            axis = 1 if layout == "NCHW" else 3
            pixels = PixelFit(channels_first=layout == "NCHW", channels=self._channels(shape[axis]))
            hw = shape[2:] if layout == "NCHW" else shape[1:3]
        elif len(shape) == 3:
            first, last = shape[0] in (1, 3), shape[2] in (1, 3)
            if layout == "auto" and first != last:
                layout = "NCHW" if first else "NHWC"
            elif layout == "auto" and shape[0] == -1:
                layout = "NHW"
            elif layout == "auto":
                layout = "NHWC"
                self.notes.append(
                    f"input {describe(self.spec)}: layout not decidable from the shape, sent "
                    "as HWC (set layout to NCHW if it is CHW)"
                )
            if layout == "NHW":
                pixels = PixelFit(channels=1, channel_axis=False)
                hw = shape[1:]
            else:
                axis = 0 if layout == "NCHW" else 2
                pixels = PixelFit(
                    batched=False,
                    channels_first=layout == "NCHW",
                    channels=self._channels(shape[axis]),
                )
                hw = shape[1:] if layout == "NCHW" else shape[:2]
        else:
            raise self.refuse(
                offered,
                "an image is 3-D (HWC, CHW or NHW) or 4-D (NHWC, NCHW)",
                "resize and flatten the images into .npy rows, or map it to bytes with inputs",
            )
        target = self._target(hw if shape else (-1, -1), offered)
        return replace(pixels, size=target, resize=self.params.resize)

    def _channels(self, declared: int) -> int:
        if declared in (1, 3):
            return declared
        if declared == -1:
            return 3
        raise self.refuse(
            "pixels with 3 (RGB) or 1 (grayscale) channels",
            f"it declares {declared} channels",
            "set layout if the channels are on the other axis",
        )

    def _target(self, hw: Sequence[int], offered: str) -> tuple[int, int] | None:
        if self.params.image_size is not None:
            height, width = self.params.image_size
            if all(n > 0 for n in hw) and tuple(hw) != (height, width):
                self.notes.append(
                    f"input {describe(self.spec)}: images resized to {[height, width]} "
                    "(image_size), not the declared size"
                )
            return height, width
        if all(n > 0 for n in hw):
            return hw[0], hw[1]
        if any(n > 0 for n in hw):
            raise self.refuse(
                offered,
                "it fixes one of height and width only",
                "give image_size: [height, width]",
            )
        return None

    def _scale(
        self, dtype: np.dtype[Any], pixels: PixelFit
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Per-channel (scale, offset) making `pixel * scale + offset` what the input wants;
        (None, None) for the pixels as they are."""
        params, stated = self.params, self.spec.parameters
        floating = dtype.kind == "f"
        mean: Sequence[float]
        std: Sequence[float]
        if params.mean is not None and params.std is not None:
            mean, std, how = params.mean, params.std, "mean/std"
        elif params.normalize != "auto":
            mean, std, how = *_preset(params.normalize), f"normalize {params.normalize}"
        elif _stated(stated) is not None:
            mean, std = _stated(stated) or ((), ())
            how = "the model's metadata"
        elif floating:
            mean, std, how = *_preset("imagenet"), "normalize auto"
        else:
            return None, None
        if not mean:  # "none"
            return None, None
        if not floating:
            raise self.refuse(
                f"pixels normalised by {how}",
                f"{dtype.name} cannot hold normalised values",
                "set normalize to none (or auto), or datatype to FP32",
            )
        if max(*mean, *std) > 1:  # given on the 0-255 scale
            mean, std = [m / 255 for m in mean], [s / 255 for s in std]
        channels = pixels.channels
        mean_c, std_c = _per_channel(mean, channels), _per_channel(std, channels)
        scale = 1 / (255 * std_c)
        offset = -mean_c / std_c
        return scale, offset


def _preset(name: str) -> tuple[Sequence[float], Sequence[float]]:
    """A normalize preset's (mean, std) on [0, 1]; ((), ()) for "none"."""
    if name == "none":
        return (), ()
    return PRESETS[name]


def _stated(parameters: Mapping[str, Any]) -> tuple[Sequence[float], Sequence[float]] | None:
    """The normalisation an input's metadata parameters state: `mean` and `std` lists, or
    `normalize` naming a preset; None when they state none."""
    mean, std, preset = parameters.get("mean"), parameters.get("std"), parameters.get("normalize")
    try:
        if mean is not None and std is not None:
            return [float(m) for m in _listed(mean)], [float(s) for s in _listed(std)]
    except (TypeError, ValueError):
        return None
    if isinstance(preset, str) and (preset in PRESETS or preset == "none"):
        return _preset(preset)
    return None


def _listed(value: Any) -> list[Any]:
    """A metadata parameter as a list: V2 parameters are often strings ("0.5,0.5,0.5")."""
    if isinstance(value, str):
        return [part for part in value.replace("[", "").replace("]", "").split(",") if part]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _per_channel(values: Sequence[float], channels: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if len(array) == channels:
        return array
    if len(array) == 1:
        return np.repeat(array, channels)
    if channels == 1:  # RGB statistics for a grayscale input: their mean
        return np.asarray([array.mean()])
    raise OperationError(f"{len(array)} mean/std values for {channels} channels: give 1 or 3")
