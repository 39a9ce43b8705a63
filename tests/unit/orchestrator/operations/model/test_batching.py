"""Rows cut into requests: at most per_request rows, items in order, groups kept apart."""

from __future__ import annotations

import numpy as np

from orchestrator.operations.model.batching import (
    ItemBlock,
    ItemPart,
    Layout,
    RowSpec,
    RunBlock,
    RunPart,
    request_batches,
)


def spec(values: int, per_request: int) -> RowSpec:
    """Rows of `values` FP64 numbers, `per_request` to a request."""
    return RowSpec((values,), np.dtype("float64"), "item0", per_request)


def test_batches_hold_at_most_batch_size_rows_and_respect_group_boundaries():
    sizes = {0: 1, 1: 5, 2: 1, 3: 1}  # item index -> rows; item 1 is a table

    def block(index: int, group: int) -> ItemBlock:
        layout = Layout.TABLE if index == 1 else Layout.ROW
        return ItemBlock(index, np.zeros((sizes[index], 2)), f"item{index}", group, layout)

    blocks = [block(0, 0), block(1, 0), block(2, 0), block(3, 1)]
    batches = list(request_batches(blocks, spec(2, 3)))
    assert [b.rows for b in batches] == [3, 3, 1, 1]
    assert [[(s.item, s.rows, s.last) for s in b.segments] for b in batches] == [
        [(0, 1, True), (1, 2, False)],
        [(1, 3, True)],
        [(2, 1, True)],
        [(3, 1, True)],
    ]


def test_a_run_of_one_row_items_is_cut_like_single_items():
    run = RunBlock(0, np.zeros((5, 2)), "item0")  # items 0..4, one row each
    table = ItemBlock(5, np.zeros((2, 2)), "item5", layout=Layout.TABLE)
    batches = list(request_batches([run, table], spec(2, 3)))
    assert [b.rows for b in batches] == [3, 3, 1]
    assert [[(type(s), s.item, s.rows) for s in b.segments] for b in batches] == [
        [(RunPart, 0, 3)],
        [(RunPart, 3, 2), (ItemPart, 5, 1)],
        [(ItemPart, 5, 1)],
    ]
    assert [s.last_item for s in batches[1].segments] == [4, 5]
