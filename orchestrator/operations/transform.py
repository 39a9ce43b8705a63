"""Operations that reshape a data set's manifest without copying its files."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog.registry import operation, pure
from orchestrator.catalog.values import Batches, Dataset, ItemList
from orchestrator.context import OperationContext


class DictToListParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Dataset = Field(description="The data set whose items become a list.")


@operation(name="dict_to_list", output=ItemList, cache_key=pure)
def dict_to_list(params: DictToListParams, ctx: OperationContext) -> ItemList:
    """Turn a data set (items keyed by name) into a list ordered by item name."""
    items = tuple(sorted(params.data.items, key=lambda item: item.name))
    return ItemList(root=params.data.root, items=items)


class BatchParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Dataset = Field(description="The items to batch, in their order.")
    batch_size: int = Field(32, ge=1, le=100_000, description="Items per batch.")


@operation(name="batch_formatted_data", output=Batches, cache_key=pure)
def batch_formatted_data(params: BatchParams, ctx: OperationContext) -> Batches:
    """Split a data set's items, in order, into batches of `batch_size` (the last may be short)."""
    items = params.data.items
    size = params.batch_size
    batches = tuple(items[i : i + size] for i in range(0, len(items), size))
    return Batches(root=params.data.root, batches=batches)
