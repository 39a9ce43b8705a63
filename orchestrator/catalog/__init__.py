"""The operation catalog: registry, value types and validation."""

from orchestrator.catalog.registry import Catalog, Operation, RetryPolicy, operation
from orchestrator.catalog.validation import Limits, validate
from orchestrator.catalog.values import Batches, DataItem, Dataset, ItemList, Value

__all__ = [
    "Batches",
    "Catalog",
    "DataItem",
    "Dataset",
    "ItemList",
    "Limits",
    "Operation",
    "RetryPolicy",
    "Value",
    "operation",
    "validate",
]
