"""Items encoded for the model as the fit says, and a request's rows made its tensors.

Numbers (JSON/CSV/.npy) are read by `readers` as arrays of rows, so a request
is one array. Every other fit (images, files as bytes, sizes, names) encodes
each item as one row: an object array holding, per input, that item's value
(its fitted pixels, its file's bytes, ...). A request's tensors stack them:
one C copy per input, into the row-major array the client sends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from orchestrator.catalog.values import DataItem
from orchestrator.connectors.model_server import Tensor
from orchestrator.errors import OperationError
from orchestrator.operations.model.batching import ItemBlock, RequestBatch
from orchestrator.operations.model.fitting import (
    DATATYPE_OF,
    NUMPY_TYPES,
    Fit,
    Sample,
)
from orchestrator.operations.model.pixels import fitted_pixels, image_size
from orchestrator.operations.model.readers import first_row, kind_of, read_all

NEEDS_FILE = frozenset({"pixels", "bytes", "size"})


def sample_of(root: str, items: list[DataItem]) -> Sample | None:
    """What the fit needs of the first item (for numbers, of the first with rows); None for
    an empty data set."""
    if not items:
        return None
    first = items[0]
    kind = kind_of(first)
    if kind in ("json", "csv", "npy"):
        found = first_row(root, items, "auto")
        if found is None:
            return Sample(first.name, kind, nbytes=first.size)
        name, row = found
        return Sample(name, kind, row=row, nbytes=first.size)
    if kind == "image":
        [data] = read_all(root, [first])
        return Sample(first.name, kind, size=image_size(data, first.name), nbytes=len(data))
    return Sample(first.name, kind, nbytes=first.size)


def encode_blocks(
    root: str, chunk: list[DataItem], first: int, group: int, fit: Fit
) -> list[ItemBlock]:
    """Consecutive items (the first numbered `first`) as one encoded row each."""
    files: list[bytes | None]
    if any(one.source in NEEDS_FILE for one in fit.inputs):
        files = list(read_all(root, chunk))
    else:
        files = [None] * len(chunk)
    blocks = []
    for offset, (item, data) in enumerate(zip(chunk, files, strict=True)):
        values, shape = _encoded(fit, item, data)
        rows = np.empty(1, dtype=object)
        rows[0] = values
        blocks.append(ItemBlock(first + offset, rows, item.name, group, tensor_shape=shape))
    return blocks


def _encoded(
    fit: Fit, item: DataItem, data: bytes | None
) -> tuple[tuple[Any, ...], tuple[int, ...] | None]:
    """The item's value for each input (None for constants) and its pixels' shape."""
    values: list[Any] = []
    size: tuple[int, int] | None = None
    shape: tuple[int, ...] | None = None
    for one in fit.inputs:
        if one.source == "pixels" and one.pixels is not None and data is not None:
            if kind_of(item) != "image":
                raise OperationError(
                    f"item {item.name!r} ({item.media_type}) is not an image: input "
                    f"{one.name!r} takes pixels"
                )
            pixels, size = fitted_pixels(data, one.pixels, item.name)
            shape = shape or pixels.shape
            values.append(pixels)
        elif one.source == "bytes":
            values.append(data)
        elif one.source == "name":
            values.append(item.name.encode())
        elif one.source == "size" and data is not None:
            size = size or image_size(data, item.name)
            values.append(np.asarray(size, dtype=NUMPY_TYPES[one.datatype]))
        else:
            values.append(None)
    return tuple(values), shape


def request_tensors(fit: Fit, batch: RequestBatch) -> list[Tensor]:
    """The request's input tensors, in the fit's order."""
    rows = batch.array()
    count = batch.rows
    tensors = []
    for index, one in enumerate(fit.inputs):
        data: np.ndarray | list[Any]
        if one.source == "rows":
            data = rows
            datatype = DATATYPE_OF[rows.dtype.name]
            shape = rows.shape
        elif one.value is not None:
            data = np.ascontiguousarray(np.broadcast_to(one.value, (count, *one.value.shape)))
            datatype, shape = one.datatype, data.shape
        elif one.datatype == "BYTES":
            data = [row[index] for row in rows]
            datatype, shape = "BYTES", (count, *(one.row_shape or ()))
        else:
            data = np.stack([row[index] for row in rows])
            datatype, shape = one.datatype, data.shape
        if not fit.batched:  # one item, shaped as declared: no batch dimension
            shape = shape[1:] or (1,)
        tensors.append(Tensor(one.name, datatype, tuple(shape), _shaped(data, shape)))
    return tensors


def _shaped(data: np.ndarray | list[Any], shape: tuple[int, ...]) -> np.ndarray | list[Any]:
    return data.reshape(shape) if isinstance(data, np.ndarray) else data


def describe_tensors(tensors: list[Tensor]) -> str:
    """Tensors as an error names them: 'pixel_values' [13, 3, 224, 224] FP32, ..."""
    return ", ".join(f"{t.name!r} {list(t.shape)} {t.datatype}" for t in tensors)
