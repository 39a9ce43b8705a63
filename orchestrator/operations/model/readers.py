"""Items read as tensor rows, by media type (then file suffix):

- an image (`image/*`): decoded with Pillow and converted to RGB, one row of
  shape [H, W, 3], UINT8 (another datatype on request: the same 0-255 values);
  model_inference itself fits images to the model instead (`fitting`, `pixels`);
- `.json`: a list of numbers is one row; a list of equal-length lists is a table;
- `.csv`: a table, one row per line; a first line that is not numeric is a header;
- `.npy`: a 1-D array is one row, a 2-D array a table;

JSON and CSV become FP64 (no precision lost), `.npy` keeps float32/float64,
unless a datatype is asked for (model_inference asks for the declared one).
All rows must have one shape.

This is model_inference's hot path: a request's worth of small JSON files is
read and parsed with a few C loops (see `read_blocks`).
"""

from __future__ import annotations

import csv
import json
import operator
import os
import re
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from orchestrator.catalog.values import DataItem
from orchestrator.errors import OperationError
from orchestrator.operations.model.batching import Block, ItemBlock, Layout, RunBlock
from orchestrator.operations.model.fitting import NUMPY_TYPES, RAW_PIXELS, Kind
from orchestrator.operations.model.pixels import fitted_pixels

# "auto" or a numeric V2 datatype (a key of NUMPY_TYPES)
Datatype = str
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
MEDIA_KINDS: dict[str, Kind] = {"application/json": "json", "text/csv": "csv"}
SUFFIX_KINDS: dict[str, Kind] = {".json": "json", ".csv": "csv", ".npy": "npy"}
SUFFIX_KINDS |= dict.fromkeys(IMAGE_SUFFIXES, "image")
_media_type = operator.attrgetter("media_type")


@dataclass(frozen=True)
class ItemRows:
    """An item's tensor rows: `rows[i]` is one row."""

    name: str
    rows: np.ndarray
    layout: Layout


def read_rows(path: str | os.PathLike[str], item: DataItem, datatype: Datatype) -> ItemRows:
    """One item as tensor rows, by the rule in this module's docstring.

    Called once per item, so it stays on cheap string paths (no pathlib).
    """
    kind = kind_of(item)
    if kind == "json":
        folder, name = os.path.split(path)
        [content] = read_all(folder, [item.model_copy(update={"path": name})])
        return _json_rows(_parse_json(content, item), item, datatype)
    try:
        if kind == "image":
            rows, layout, auto = _image_rows(path, item.name), Layout.ROW, "UINT8"
        elif kind == "npy":
            array = np.load(path, allow_pickle=False)
            rows, layout = _row_or_table(array, item)
            auto = "FP32" if array.dtype == np.float32 else "FP64"
        elif kind == "csv":
            rows, layout, auto = _csv_rows(path), Layout.TABLE, "FP64"
        else:
            raise OperationError(
                f"item {item.name!r} ({item.media_type}) cannot be sent to a model: "
                "expected an image, .json, .csv or .npy file"
            )
    except (ValueError, TypeError) as exc:  # numpy/csv: not numbers, ragged rows
        raise _not_rows(item, exc) from exc
    wanted = auto if datatype == "auto" else datatype
    return ItemRows(item.name, rows.astype(NUMPY_TYPES[wanted], copy=False), layout)


def read_blocks(
    root: str, chunk: list[DataItem], first: int, group: int, datatype: Datatype
) -> list[Block]:
    """Consecutive items (the first numbered `first`) as blocks: one run when every item is
    a JSON file holding one row, all of one length; otherwise one block per item.

    Why the run: a request's worth of one-row JSON files is read in one loop
    (`read_all`) and parsed as one document (`_json_run`), three times faster
    than item by item.
    """
    if _all_json(chunk):
        contents = read_all(root, chunk)
        array = _json_run(contents)
        if array is not None:
            wanted = "FP64" if datatype == "auto" else datatype
            return [
                RunBlock(first, array.astype(NUMPY_TYPES[wanted], copy=False), chunk[0].name, group)
            ]
        # item by item: the rule names the item that is not a row
        each = [
            _json_rows(_parse_json(content, item), item, datatype)
            for content, item in zip(contents, chunk, strict=True)
        ]
    else:
        each = [read_rows(os.path.join(root, item.path), item, datatype) for item in chunk]
    return [
        ItemBlock(first + k, one.rows, one.name, group, one.layout) for k, one in enumerate(each)
    ]


def first_row(
    root: str, items: list[DataItem], datatype: Datatype
) -> tuple[str, np.ndarray] | None:
    """The data set's first row, with its item's name; None when no item has rows."""
    for index, item in enumerate(items):  # usually the first item has rows
        for block in read_blocks(root, [item], index, 0, datatype):
            if len(block.rows):
                return item.name, block.rows[0]
    return None


def kind_of(item: DataItem) -> Kind:
    """Which rule of this module's docstring reads `item`: by its media type when that is
    an image, JSON or CSV type, else by its file suffix."""
    media_type = item.media_type
    if media_type.startswith("image/"):
        return "image"
    return MEDIA_KINDS.get(media_type) or SUFFIX_KINDS.get(_suffix(item.name), "other")


def _all_json(items: list[DataItem]) -> bool:
    """Whether every item is read as JSON; by media type alone first, a C loop (the usual
    case costs no Python work per item)."""
    if all(map("application/json".__eq__, map(_media_type, items))):
        return True
    return all(kind_of(item) == "json" for item in items)


def _suffix(name: str) -> str:
    """`os.path.splitext(name)[1].lower()` in a third of its time (called once per item)."""
    stem, dot, extension = name.rpartition("/")[2].rpartition(".")
    return f".{extension.lower()}" if dot and stem.strip(".") else ""


# A file holding one flat JSON list and nothing else (strings inside fail as numbers later).
ONE_FLAT_LIST = re.compile(rb"\s*\[[^\[\]]*\]\s*")
LIST_ENDS = (b"]", b"]\n", b"]\r\n")


def _json_run(contents: list[bytes]) -> np.ndarray | None:
    """JSON files each holding one list of numbers, all of one length, as (files, n) FP64;
    None when any is something else.

    They are parsed as one document, `[c1,c2,...]`: three times faster than one
    json.loads per file. Its k-th row is file k's list when each file is one
    bracket pair with no brackets inside: each starts with "[" and ends with
    "]" (checked in C loops; else ONE_FLAT_LIST, which allows white space
    around), and the document holds one more pair than there are files.
    """
    if not (
        all(map(bytes.startswith, contents, repeat(b"[")))
        and all(map(bytes.endswith, contents, repeat(LIST_ENDS)))
    ) and not all(map(ONE_FLAT_LIST.fullmatch, contents)):
        return None
    document = b"[" + b",".join(contents) + b"]"
    pairs = len(contents) + 1
    if document.count(b"[") != pairs or document.count(b"]") != pairs:
        return None
    try:
        array = np.asarray(json.loads(document), dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    return array if array.ndim == 2 and len(array) == len(contents) else None


READ_AHEAD_LIMIT = 1 << 20  # bytes asked for in the first read, whatever the manifest says


def read_all(root: str, items: list[DataItem]) -> list[bytes]:
    """The items' bytes, read the cheapest way Python has: each opened relative to the open
    folder and read with one os.read sized by the manifest (a short read of a regular
    file is its end). ~4 us a small file, half what open().read() costs; this loop is
    model_inference's hot path, so it stays inline."""
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise OperationError(f"cannot open the data set's folder: {exc.strerror or exc}") from exc
    contents: list[bytes] = []
    item = None
    try:
        for item in items:
            fd = os.open(item.path, os.O_RDONLY, dir_fd=folder)
            try:
                want = item.size + 1 if 0 <= item.size < READ_AHEAD_LIMIT else READ_AHEAD_LIMIT
                content = os.read(fd, want)
                if len(content) == want:  # larger than its manifest says, or than the limit
                    content = _read_rest(fd, content)
            finally:
                os.close(fd)
            contents.append(content)
    except OSError as exc:
        name = item.name if item else root
        raise OperationError(f"cannot read item {name!r}: {exc.strerror or exc}") from exc
    finally:
        os.close(folder)
    return contents


def _read_rest(fd: int, start: bytes) -> bytes:
    """`start` and the rest of the open file, joined once (no copy per piece)."""
    parts = [start]
    while part := os.read(fd, READ_AHEAD_LIMIT):
        parts.append(part)
    return b"".join(parts)


def _parse_json(content: bytes, item: DataItem) -> object:
    try:
        return json.loads(content)
    except ValueError as exc:
        raise _not_rows(item, exc) from exc


def _json_rows(value: object, item: DataItem, datatype: Datatype) -> ItemRows:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError) as exc:  # not numbers, ragged rows
        raise _not_rows(item, exc) from exc
    rows, layout = _row_or_table(array, item)
    wanted = "FP64" if datatype == "auto" else datatype
    return ItemRows(item.name, rows.astype(NUMPY_TYPES[wanted], copy=False), layout)


def _not_rows(item: DataItem, exc: Exception) -> OperationError:
    return OperationError(f"item {item.name!r} is not numeric rows: {exc}")


def _image_rows(path: str | os.PathLike[str], name: str) -> np.ndarray:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise OperationError(f"cannot read item {name!r}: {exc.strerror or exc}") from exc
    pixels, _ = fitted_pixels(data, RAW_PIXELS, name)
    return pixels[np.newaxis]


def _row_or_table(array: np.ndarray, item: DataItem) -> tuple[np.ndarray, Layout]:
    if array.ndim == 1:
        return array[None, :], Layout.ROW
    if array.ndim == 2:
        return array, Layout.TABLE
    raise OperationError(
        f"item {item.name!r} has {array.ndim} dimensions: expected a row (1) or a table (2)"
    )


def _csv_rows(path: str | os.PathLike[str]) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as file:
        lines = [line for line in csv.reader(file) if line]
    if lines:
        try:
            [float(value) for value in lines[0]]
        except ValueError:
            lines = lines[1:]  # a header
    return np.asarray([[float(value) for value in line] for line in lines], dtype=np.float64)
