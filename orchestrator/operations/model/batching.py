"""Rows cut into requests: blocks of rows in, request batches out.

A reader turns consecutive items into blocks: an `ItemBlock` holds one item's
rows, a `RunBlock` the only row of each of a run of items. `request_batches`
cuts blocks into requests of at most `RowSpec.per_request` rows, items in
order; a table may span requests, and a `Batches` input never mixes two of its
batches (groups) in one request. Each request remembers, as segments, which
items its rows belong to: an `ItemPart` (some rows of one item) or a `RunPart`
(one row of each of consecutive items).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple, TypeAlias

import numpy as np

from orchestrator.catalog.values import DataItem
from orchestrator.errors import OperationError

MAX_REQUEST_VALUES = 2**21  # values per request: 13 RGB images of 224x224, ~8 MB of JSON


class Layout(Enum):
    """How an item's rows make its record."""

    ROW = "row"  # one row: the record holds its outputs
    TABLE = "table"  # rows: the record lists the outputs of each


@dataclass(frozen=True)
class ItemBlock:
    """One item's rows (the item numbered `first`), in group `group`; `name` is the item's.

    `tensor_shape` is set for an encoded item (its row holds the values of each
    input, `encoding`): the shape of its main tensor's row, its pixels. Items of
    two shapes never share a request, and a request holds at most
    MAX_REQUEST_VALUES values of it.
    """

    first: int
    rows: np.ndarray
    name: str
    group: int = 0
    layout: Layout = Layout.ROW
    tensor_shape: tuple[int, ...] | None = None

    def part(self, start: int, take: int) -> ItemPart:
        return ItemPart(self.first, take, last=start + take == len(self.rows), layout=self.layout)


@dataclass(frozen=True)
class RunBlock:
    """A run of items of one row each, in group `group`: `rows[k]` is item `first + k`'s
    only row (never empty). `name` is the first item's, for messages.

    Why it exists: a request's worth of one-row JSON files is read, checked and
    sliced as one array, with no Python work per item.
    """

    first: int
    rows: np.ndarray
    name: str
    group: int = 0

    def part(self, start: int, take: int) -> RunPart:
        return RunPart(self.first + start, take)


Block: TypeAlias = ItemBlock | RunBlock


@dataclass(frozen=True)
class ItemPart:
    """`rows` rows of item `item` inside a request; `last` when they complete the item."""

    item: int
    rows: int
    last: bool
    layout: Layout

    @property
    def last_item(self) -> int:
        return self.item


@dataclass(frozen=True)
class RunPart:
    """The only row of each of `rows` consecutive items from `item`, each item complete."""

    item: int
    rows: int

    @property
    def last_item(self) -> int:
        return self.item + self.rows - 1


Segment: TypeAlias = ItemPart | RunPart


@dataclass
class RequestBatch:
    """The rows of one inference request and which items they belong to."""

    parts: list[np.ndarray] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    rows: int = 0

    def array(self) -> np.ndarray:
        """The request's rows as one array; a batch of one part is that part, not a copy
        (a run of one-row files usually fills a request by itself)."""
        return self.parts[0] if len(self.parts) == 1 else np.concatenate(self.parts)

    def item_span(self) -> tuple[int, int]:
        """The numbers of the first and the last item with rows in the request."""
        return self.segments[0].item, self.segments[-1].last_item


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
    def of_first(cls, first: tuple[str, np.ndarray] | None, batch_size: int) -> RowSpec:
        """The spec of the data set's first row, given with its item's name, or None when
        the data set has no rows at all (then nothing is sent)."""
        if first is None:
            return cls((), None, "", batch_size)
        name, row = first
        per_request = min(batch_size, max(1, MAX_REQUEST_VALUES // max(1, row.size)))
        return cls(row.shape, row.dtype, name, per_request)

    def check(self, block: Block) -> None:
        rows = block.rows
        if len(rows) and (rows.shape[1:] != self.shape or rows.dtype != self.dtype):
            raise OperationError(
                f"item {block.name!r} has rows of shape {list(rows.shape[1:])} {rows.dtype}, "
                f"the first item {self.first!r} {list(self.shape)} {self.dtype}: all rows "
                "need one shape and datatype"
            )


class Chunk(NamedTuple):
    """Items `start` to `stop` (global numbers, `stop` excluded), all of group `group`."""

    group: int
    start: int
    stop: int


def chunks(groups: list[list[DataItem]], size: int) -> Iterator[Chunk]:
    """The items of every group cut in chunks of at most `size`, in order."""
    start = 0
    for number, group in enumerate(groups):
        for offset in range(0, len(group), size):
            yield Chunk(number, start + offset, start + min(offset + size, len(group)))
        start += len(group)


def request_batches(blocks: Iterable[Block], spec: RowSpec) -> Iterator[RequestBatch]:
    """Requests of at most `spec.per_request` rows (at least one), items in order, never
    mixing two groups or two tensor shapes; every block's rows checked against `spec`."""
    limit = spec.per_request
    batch, key = RequestBatch(), None
    for block in blocks:
        shape = block.tensor_shape if isinstance(block, ItemBlock) else None
        if (block.group, shape) != key:
            if batch.segments:
                yield batch
            batch, key = RequestBatch(), (block.group, shape)
            limit = spec.per_request
            if shape:
                limit = min(limit, max(1, MAX_REQUEST_VALUES // math.prod(shape)))
        spec.check(block)
        rows = block.rows
        start = 0
        while True:  # an item without rows still gets its (empty) part: it has a record
            take = min(limit - batch.rows, len(rows) - start)
            if take:
                batch.parts.append(rows[start : start + take])
            batch.segments.append(block.part(start, take))
            start += take
            batch.rows += take
            if batch.rows == limit:
                yield batch
                batch = RequestBatch()
            if start == len(rows):
                break
    if batch.segments:
        yield batch
