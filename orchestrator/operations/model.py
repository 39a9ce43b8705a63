"""deploy_model, model_inference, delete_model: a model on an Open Inference Protocol server.

How a data item becomes tensor rows, by media type (then file suffix):

- an image (`image/*`): decoded with Pillow and converted to RGB, one row of
  shape [H, W, 3], UINT8 (FP32 on request: the same 0-255 values, not scaled);
- `.json`: a list of numbers is one row; a list of equal-length lists is a table;
- `.csv`: a table, one row per line; a first line that is not numeric is a header;
- `.npy`: a 1-D array is one row, a 2-D array a table;

JSON and CSV become FP64 (no precision lost), `.npy` keeps float32/float64.
Rows of consecutive items are sent together, at most `batch_size` rows and
2**21 values per request (a table may span requests), with `concurrency`
requests in flight; a `Batches` input never mixes two of its batches in one
request. All rows must
have one shape: resize images first (resize_image).

Each item gets one JSON Lines record in `predictions.jsonl`:
`{"name": ITEM, "outputs": {OUTPUT: VALUE}}`, VALUE being the output for its
row, or for a table a list with the output of each of its rows.
"""

from __future__ import annotations

import csv
import json
import operator
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import IO, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog.registry import RetryPolicy, operation
from orchestrator.catalog.values import (
    Batches,
    DataItem,
    Dataset,
    DeployedModel,
    PredictionOutput,
    Predictions,
    write_manifest,
)
from orchestrator.connectors.model_server import ModelServerClient, Tensor
from orchestrator.context import OperationContext
from orchestrator.errors import OperationError

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
PREDICTIONS_FILE = "predictions.jsonl"
DEFAULT_INPUT_NAME = "input-0"
MAX_REQUEST_VALUES = 2**21  # values per request: 13 RGB images of 224x224, ~8 MB of JSON

Datatype = Literal["auto", "UINT8", "FP32", "FP64"]
ModelName = Field(
    min_length=1,
    max_length=200,
    pattern=f"^{MODEL_NAME.pattern}$",
    description="The model's name, e.g. 'iris' or a hub-style 'owner/name' "
    "(served as 'owner--name': each '/' becomes '--').",
)


def server_model_name(model: str) -> str:
    """The name a V2 server serves `model` under: each "/" becomes "--".

    V2 servers route a model name as one URL path segment, so a hub-style
    "owner/name" never reaches the model, not even as %2F. "--" is what the
    Hugging Face cache uses in its folder names for the same purpose, and hub
    names cannot contain "--", so distinct hub names stay distinct:
    "EdBianchi/vit-fire-detection" is served as "EdBianchi--vit-fire-detection".
    A name without "/" is unchanged. The model repository entry (its folder and
    the name in its settings) carries the mapped name.
    """
    if not MODEL_NAME.fullmatch(model):
        raise OperationError(
            f"model name {model!r} is not valid: expected letters, digits, '.', '_', '-', "
            "in one or more parts separated by '/'"
        )
    return model.replace("/", "--")


def model_server(ctx: OperationContext) -> ModelServerClient:
    client = ctx.services.model_server
    if client is None:
        raise OperationError(
            "no model server is configured (set CONSTELLATION_MODEL_SERVER_URL "
            "or the model_server resource's url)"
        )
    return client


# --- deploy_model and delete_model ------------------------------------------------------


class DeployModelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = ModelName
    ready_timeout_s: float = Field(
        300.0, gt=0, le=3600, description="Seconds to wait for the model to become ready."
    )


@operation(name="deploy_model", output=DeployedModel, retry=RetryPolicy(max_attempts=2))
def deploy_model(params: DeployModelParams, ctx: OperationContext) -> DeployedModel:
    """Load a model from the model server's repository and wait until it is ready to serve."""
    client = model_server(ctx)
    served = server_model_name(params.model)
    client.load(served)
    client.wait_until_ready(served, params.ready_timeout_s)
    version = _served_version(client, served)
    ctx.log.info(f"model {params.model!r} ready on {client.url} as {served!r} ({version})")
    return DeployedModel(
        model=params.model, served_name=served, version=version, server=client.url, state="ready"
    )


def _served_version(client: ModelServerClient, served: str) -> str | None:
    """The version being served: from the model's metadata, else the repository index."""
    versions = client.metadata(served).versions
    if versions:
        return versions[-1]
    for entry in client.repository_index():
        if entry.get("name") == served and entry.get("version"):
            return str(entry["version"])
    return None


class DeleteModelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = ModelName


@operation(
    name="delete_model",
    output=DeployedModel,
    cleanup=True,
    retry=RetryPolicy(max_attempts=3, backoff_seconds=1.0),
)
def delete_model(params: DeleteModelParams, ctx: OperationContext) -> DeployedModel:
    """Unload a model from the model server. Runs even after a failure; a model that is not
    loaded is not an error."""
    client = model_server(ctx)
    served = server_model_name(params.model)
    unloaded = client.unload(served)
    state = "unloaded" if unloaded else "not loaded"
    ctx.log.info(f"model {params.model!r} ({served!r}) on {client.url}: {state}")
    return DeployedModel(model=params.model, served_name=served, server=client.url, state=state)


# --- model_inference --------------------------------------------------------------------


class ModelInferenceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = ModelName
    data: Dataset | Batches = Field(
        description="Items to predict on: images, .json, .csv or .npy files (see the rule above)."
    )
    batch_size: int | None = Field(
        None, ge=1, le=100_000, description="Rows per request; default: the resource's (1024)."
    )
    concurrency: int | None = Field(
        None, ge=1, le=64, description="Requests in flight; default: the resource's (4)."
    )
    input_name: str | None = Field(
        None,
        min_length=1,
        description="The model's input tensor; default: its first declared input, else 'input-0'.",
    )
    datatype: Datatype = Field(
        "auto",
        description="Tensor datatype; auto: UINT8 for images, FP64 for JSON/CSV, .npy's own float.",
    )


@dataclass(frozen=True)
class ItemRows:
    """An item's tensor rows: `rows[i]` is one row; a table's record lists one output per row."""

    name: str
    rows: np.ndarray
    table: bool


@dataclass(frozen=True)
class Block:
    """Tensor rows of consecutive items of one group (`group` numbers them).

    Either one item's rows (`run` False; a table when `table`), or a run of
    items of one row each: `rows[k]` is item `first + k`'s only row. `name` is
    the first item's, for messages.
    """

    first: int
    rows: np.ndarray
    name: str
    group: int = 0
    table: bool = False
    run: bool = False


@dataclass(frozen=True)
class Segment:
    """Rows of one item inside a request, `last` when they complete the item; or, with
    `run`, `rows` consecutive items from `item` of one row each (each complete)."""

    item: int
    rows: int
    last: bool
    table: bool
    run: bool = False

    @property
    def last_item(self) -> int:
        return self.item + self.rows - 1 if self.run else self.item


@dataclass
class RequestBatch:
    """The rows of one inference request and which items they belong to."""

    parts: list[np.ndarray] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    rows: int = 0


@dataclass(frozen=True)
class RowSpec:
    """What every row must be, taken from the data set's first row (`first` names its
    item): its shape and dtype; and so how many rows a request holds: `batch_size`,
    fewer when MAX_REQUEST_VALUES would be passed."""

    shape: tuple[int, ...]
    dtype: np.dtype | None
    first: str
    per_request: int

    @classmethod
    def of_first(
        cls, root: str, items: list[DataItem], datatype: Datatype, batch_size: int
    ) -> RowSpec:
        for index, item in enumerate(items):  # usually the first item has rows
            for block in read_blocks(root, [item], index, 0, datatype):
                if len(block.rows):
                    row = block.rows[0]
                    per_request = min(batch_size, max(1, MAX_REQUEST_VALUES // max(1, row.size)))
                    return cls(row.shape, row.dtype, item.name, per_request)
        return cls((), None, "", batch_size)  # no rows at all: nothing to send

    def check(self, block: Block) -> None:
        rows = block.rows
        if len(rows) and (rows.shape[1:] != self.shape or rows.dtype != self.dtype):
            raise OperationError(
                f"item {block.name!r} has rows of shape {list(rows.shape[1:])} {rows.dtype}, "
                f"the first item {self.first!r} {list(self.shape)} {self.dtype}: all rows "
                "need one shape and datatype (resize images first)"
            )


@operation(name="model_inference", output=Predictions)
def model_inference(params: ModelInferenceParams, ctx: OperationContext) -> Predictions:
    """Run a deployed model on every item of a data set, in batched requests, several in
    flight; writes one prediction record per item (JSON Lines, keyed by item name).

    `concurrency` worker threads each take a request's worth of items, read them
    (one thread per core at a time) and send them, as a hand-tuned client
    would; a chunk that makes several requests, because its items are tables,
    is sent by all senders at once. At most `concurrency` requests are in
    flight. This thread writes the records, in order.
    """
    client = model_server(ctx)
    served = server_model_name(params.model)
    batch_size = params.batch_size or client.config.batch_size
    concurrency = params.concurrency or client.config.concurrency
    data = params.data
    groups = [list(data.items)] if isinstance(data, Dataset) else [list(b) for b in data.batches]
    items = [item for group in groups for item in group]
    rows = RowSpec.of_first(data.root, items, params.datatype, batch_size)
    in_flight = threading.BoundedSemaphore(concurrency)
    reading = threading.BoundedSemaphore(min(concurrency, usable_cores()))
    with (
        (ctx.folder / PREDICTIONS_FILE).open("w", encoding="utf-8") as out,
        ThreadPoolExecutor(concurrency, thread_name_prefix="inference") as workers,
        ThreadPoolExecutor(concurrency, thread_name_prefix="inference-send") as senders,
    ):
        # Asked while the first items are read: it names the model's input, and a model
        # that is not deployed fails the operation before any request is sent.
        described = senders.submit(client.metadata, served)

        def send(batch: RequestBatch) -> list[Tensor]:
            ctx.check_canceled()
            if batch.rows == 0:
                return []
            input_name = params.input_name or next(
                iter(described.result().input_names), DEFAULT_INPUT_NAME
            )
            array = batch.parts[0] if len(batch.parts) == 1 else np.concatenate(batch.parts)
            tensor = Tensor(
                input_name, DATATYPE_OF[array.dtype.name], array.shape, array.ravel().tolist()
            )
            try:
                with in_flight:
                    return client.infer(served, [tensor])
            except OperationError as exc:
                first = items[batch.segments[0].item].name
                last = items[batch.segments[-1].last_item].name
                raise type(exc)(
                    f"items {first!r}..{last!r} (tensor {input_name!r} {list(array.shape)} "
                    f"{tensor.datatype}): {exc}"
                ) from exc

        def read_and_send(chunk: tuple[int, int, int]) -> tuple[list[RequestBatch], list | None]:
            """A chunk's requests, and their answers when it made just one (else None)."""
            ctx.check_canceled()
            group, start, stop = chunk
            with reading:
                blocks = read_blocks(data.root, items[start:stop], start, group, params.datatype)
            batches = list(request_batches(blocks, rows))
            return batches, [send(batches[0])] if len(batches) == 1 else None

        # twice as many chunks as workers: a worker that is done takes the next at once
        chunks = ordered_map(
            workers, read_and_send, _chunks(groups, rows.per_request), 2 * concurrency
        )
        records = RecordWriter(out, items)
        with closing(chunks):
            for _, (batches, answers) in chunks:
                if answers is not None:
                    for batch, outputs in zip(batches, answers, strict=True):
                        records.add(batch, outputs)
                    continue
                with closing(ordered_map(senders, send, batches, concurrency)) as answered:
                    for batch, outputs in answered:
                        records.add(batch, outputs)
        described.result()  # also when there was nothing to send
    predictions = Predictions(
        model=params.model,
        served_name=served,
        count=len(items),
        rows=records.rows,
        requests=records.requests,
        outputs=records.outputs,
        root=str(ctx.folder),
        path=PREDICTIONS_FILE,
    )
    write_manifest(predictions, ctx.folder)
    ctx.log.info(
        f"{params.model!r}: {len(items)} items, {records.rows} rows in {records.requests} "
        f"requests (<= {rows.per_request} rows, {concurrency} in flight)"
    )
    return predictions


def usable_cores() -> int:
    """Cores this process may run on: as many threads read items at once. More only take
    turns at the GIL between system calls (4 threads read 5,000 small JSON files in
    ~25 ms, 2 in ~19 ms, on 2 cores)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


DATATYPE_OF = {"uint8": "UINT8", "float32": "FP32", "float64": "FP64"}
NUMPY_TYPES = {"UINT8": "uint8", "FP32": "float32", "FP64": "float64"}
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


MEDIA_KINDS = {"application/json": "json", "text/csv": "csv"}
SUFFIX_KINDS = {".json": "json", ".csv": "csv", ".npy": "npy"} | dict.fromkeys(
    IMAGE_SUFFIXES, "image"
)
_media_type = operator.attrgetter("media_type")


def _kind(item: DataItem) -> str:
    """Which rule of this module's docstring reads `item`: by its media type when that is
    an image, JSON or CSV type, else by its file suffix."""
    media_type = item.media_type
    if media_type.startswith("image/"):
        return "image"
    return MEDIA_KINDS.get(media_type) or SUFFIX_KINDS.get(_suffix(item.name), "other")


def _all_json(items: list[DataItem]) -> bool:
    """Whether every item is read as JSON; by media type alone first, a C loop."""
    if all(map("application/json".__eq__, map(_media_type, items))):
        return True
    return all(_kind(item) == "json" for item in items)


def _suffix(name: str) -> str:
    """`os.path.splitext(name)[1].lower()` in a third of its time."""
    stem, dot, extension = name.rpartition("/")[2].rpartition(".")
    return f".{extension.lower()}" if dot and stem.strip(".") else ""


def read_rows(path: str | os.PathLike[str], item: DataItem, datatype: Datatype) -> ItemRows:
    """One item as tensor rows, by the rule in this module's docstring.

    Called once per item, so it stays on cheap string paths (no pathlib).
    """
    kind = _kind(item)
    if kind == "json":
        folder, name = os.path.split(path)
        [content] = _read_all(folder, [item.model_copy(update={"path": name})])
        return _json_rows(_parse_json(content, item), item, datatype)
    try:
        if kind == "image":
            rows, table, auto = _image_rows(path, item.name), False, "UINT8"
        elif kind == "npy":
            array = np.load(path, allow_pickle=False)
            rows, table = _row_or_table(array, item)
            auto = "FP32" if array.dtype == np.float32 else "FP64"
        elif kind == "csv":
            rows, table, auto = _csv_rows(path), True, "FP64"
        else:
            raise OperationError(
                f"item {item.name!r} ({item.media_type}) cannot be sent to a model: "
                "expected an image, .json, .csv or .npy file"
            )
    except (ValueError, TypeError) as exc:  # numpy/csv: not numbers, ragged rows
        raise _not_rows(item, exc) from exc
    wanted = auto if datatype == "auto" else datatype
    return ItemRows(item.name, rows.astype(NUMPY_TYPES[wanted], copy=False), table)


def read_blocks(
    root: str, chunk: list[DataItem], first: int, group: int, datatype: Datatype
) -> list[Block]:
    """Consecutive items (the first numbered `first`) as blocks: one run when every item is
    a JSON file holding one row, all of one length; otherwise one block per item."""
    if _all_json(chunk):
        contents = _read_all(root, chunk)
        array = _json_run(contents)
        if array is not None:
            wanted = "FP64" if datatype == "auto" else datatype
            rows = array.astype(NUMPY_TYPES[wanted], copy=False)
            return [Block(first, rows, chunk[0].name, group, run=True)]
        # item by item: the rule names the item that is not a row
        each = [
            _json_rows(_parse_json(content, item), item, datatype)
            for content, item in zip(contents, chunk, strict=True)
        ]
    else:
        each = [read_rows(os.path.join(root, item.path), item, datatype) for item in chunk]
    return [
        Block(first + k, one.rows, one.name, group, table=one.table) for k, one in enumerate(each)
    ]


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


def _read_all(root: str, items: list[DataItem]) -> list[bytes]:
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
    rows, table = _row_or_table(array, item)
    wanted = "FP64" if datatype == "auto" else datatype
    return ItemRows(item.name, rows.astype(NUMPY_TYPES[wanted], copy=False), table)


def _not_rows(item: DataItem, exc: Exception) -> OperationError:
    return OperationError(f"item {item.name!r} is not numeric rows: {exc}")


def _image_rows(path: str | os.PathLike[str], name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise OperationError(f"cannot read {name!r} as an image: {exc}") from exc
    return pixels[np.newaxis]


def _row_or_table(array: np.ndarray, item: DataItem) -> tuple[np.ndarray, bool]:
    if array.ndim == 1:
        return array[None, :], False
    if array.ndim == 2:
        return array, True
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


def _chunks(groups: list[list[DataItem]], size: int) -> Iterator[tuple[int, int, int]]:
    """(group, start, stop): the global indices of at most `size` items of one group."""
    start = 0
    for number, group in enumerate(groups):
        for offset in range(0, len(group), size):
            yield number, start + offset, start + min(offset + size, len(group))
        start += len(group)


def request_batches(blocks: Iterable[Block], spec: RowSpec) -> Iterator[RequestBatch]:
    """Requests of at most `spec.per_request` rows (at least one), items in order, never
    mixing two groups; every block's rows checked against `spec`."""
    limit = spec.per_request
    batch, group = RequestBatch(), None
    for block in blocks:
        if block.group != group:
            if batch.segments:
                yield batch
            batch, group = RequestBatch(), block.group
        spec.check(block)
        rows = block.rows
        start = 0
        while True:
            take = min(limit - batch.rows, len(rows) - start)
            if take:
                batch.parts.append(rows[start : start + take])
            if block.run:
                if take:
                    batch.segments.append(Segment(block.first + start, take, True, False, True))
            else:
                done = start + take == len(rows)
                batch.segments.append(Segment(block.first, take, done, block.table))
            start += take
            batch.rows += take
            if batch.rows == limit:
                yield batch
                batch = RequestBatch()
            if start == len(rows):
                break
    if batch.segments:
        yield batch


class RecordWriter:
    """Writes one JSON Lines record per item as its rows' outputs come back, in order.

    A record is what `json.dumps({"name": ..., "outputs": {...}})` makes, put
    together from pieces: each output is encoded once per request.
    """

    def __init__(self, out: IO[str], items: list[DataItem]):
        self._out = out
        self._items = items
        self._pieces: dict[str, list[list]] = {}  # JSON output name -> rows of an open item
        self.rows = 0
        self.requests = 0
        self.outputs: tuple[PredictionOutput, ...] = ()

    def add(self, batch: RequestBatch, tensors: list[Tensor]) -> None:
        arrays = {json.dumps(tensor.name): self._rows(tensor, batch.rows) for tensor in tensors}
        if tensors and not self.outputs:
            self.outputs = tuple(
                PredictionOutput(name=t.name, datatype=t.datatype, shape=t.shape[1:])
                for t in tensors
            )
        keys = list(arrays)
        texts: list[list[str]] | None = None  # for runs: each row's JSON text
        per_row: list[list] | None = None  # for items of several rows: each row's value
        offset = 0
        for segment in batch.segments:
            end = offset + segment.rows
            if segment.run:
                texts = texts or [_json_texts(rows) for rows in arrays.values()]
                run = self._items[segment.item : segment.item + segment.rows]
                columns = [column[offset:end] for column in texts]
                self._out.write(_records(keys, [item.name for item in run], columns))
            else:
                per_row = per_row or [rows.tolist() for rows in arrays.values()]
                for key, values in zip(keys, per_row, strict=True):
                    self._pieces.setdefault(key, []).extend(values[offset:end])
                if segment.last:
                    self._out.write(self._record(self._items[segment.item], segment.table))
            offset = end
        self.rows += batch.rows
        self.requests += batch.rows > 0

    def _record(self, item: DataItem, table: bool) -> str:
        """The finished item's JSON Lines record; its rows are dropped."""
        values = [[json.dumps(rows if table else rows[0])] for rows in self._pieces.values()]
        line = _records(list(self._pieces), [item.name], values)
        self._pieces = {}
        return line

    @staticmethod
    def _rows(tensor: Tensor, rows: int) -> np.ndarray:
        if not tensor.shape or tensor.shape[0] != rows:
            raise OperationError(
                f"the model answered output {tensor.name!r} with shape {list(tensor.shape)} "
                f"for {rows} input rows"
            )
        try:
            return np.asarray(tensor.data).reshape(tensor.shape)
        except ValueError as exc:
            raise OperationError(
                f"output {tensor.name!r}: data does not fit shape {list(tensor.shape)}: {exc}"
            ) from exc


def _json_texts(rows: np.ndarray) -> list[str]:
    """`json.dumps` of each row's value; for rows of numbers, one call for them all."""
    if rows.size and rows.ndim <= 2 and rows.dtype.kind in "biuf":
        flat = json.dumps(rows.ravel().tolist())[1:-1].split(", ")  # numbers hold no ", "
        if rows.ndim == 1:
            return flat
        width = rows.shape[1]
        if width == 1:
            return [f"[{text}]" for text in flat]
        return ["[" + ", ".join(flat[i : i + width]) + "]" for i in range(0, len(flat), width)]
    return [json.dumps(value) for value in rows.tolist()]


PLAIN_TEXT = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but quote and backslash: JSON as is


def _records(keys: list[str], names: list[str], columns: list[list[str]]) -> str:
    """The JSON Lines records of items `names`, `columns` holding each output's JSON text
    per item: what json.dumps makes of `{"name": ..., "outputs": {KEY: ...}}` for each.

    `keys` are the output names, JSON-encoded. The records are joined from
    pieces in one C loop; names that need no escaping are just quoted.
    """
    if PLAIN_TEXT.fullmatch("".join(names)):
        start, after_name = '{"name": "', '", "outputs": {'
    else:
        start, after_name, names = '{"name": ', ', "outputs": {', [json.dumps(n) for n in names]
    glue = [f"{after_name}{key}: " if i == 0 else f", {key}: " for i, key in enumerate(keys)]
    streams: list[Iterable[str]] = [repeat(start), names]
    for before, column in zip(glue, columns, strict=True):
        streams += [repeat(before), column]
    streams.append(repeat("}}\n" if keys else after_name + "}}\n"))
    return "".join(chain.from_iterable(zip(*streams, strict=False)))  # names end the repeats


In = TypeVar("In")
Out = TypeVar("Out")


def ordered_map(
    pool: ThreadPoolExecutor, fn: Callable[[In], Out], inputs: Iterable[In], window: int
) -> Generator[tuple[In, Out], None, None]:
    """`fn` over `inputs` in `pool`, results in input order; at most `window` calls are
    submitted (waiting or running) at once.

    Unlike `Executor.map` it reads `inputs` lazily, so memory stays flat; on an
    error the calls not yet started are canceled.
    """
    running: deque[tuple[In, Future[Out]]] = deque()
    try:
        for value in inputs:
            running.append((value, pool.submit(fn, value)))
            if len(running) >= window:
                done, future = running.popleft()
                yield done, future.result()
        while running:
            done, future = running.popleft()
            yield done, future.result()
    finally:
        for _, future in running:
            future.cancel()
