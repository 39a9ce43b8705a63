"""The values that flow between operations: small references, never payloads.

A data set is a folder of files in the run's artifact store plus a manifest of
its items; operations hand each other the reference and stream the files.
Each value class names its `type_name`, which the catalog uses to check that a
nested instruction's output fits the parameter it feeds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

SUMMARY_ITEM_LIMIT = 20


class Value(BaseModel):
    """Base of every operation output. Subclasses set `type_name`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type_name: ClassVar[str] = "value"
    type_description: ClassVar[str] = "an operation's output"

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # In the operation palette a value parameter is fed by a nested instruction,
        # so its schema says which output types fit rather than the reference's fields.
        return {
            "title": cls.__name__,
            "description": f"output of a nested instruction: {cls.type_description}",
            "x-constellation-type": cls.type_name,
        }

    def summary(self) -> dict[str, Any]:
        """A small JSON summary, recorded as the instruction's result."""
        return {"type": self.type_name, **self.model_dump(mode="json")}


class DataItem(BaseModel):
    """One file of a data set: its name (the key users see) and where it lies."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: str  # relative to the data set's root
    size: int
    media_type: str = "application/octet-stream"
    mtime: float | None = None  # an imported file's modification time when imported


class Dataset(Value):
    """A keyed collection of files under `root`, in manifest order."""

    type_name: ClassVar[str] = "dataset"
    type_description: ClassVar[str] = "a data set (files keyed by name)"

    root: str
    items: tuple[DataItem, ...]

    def path_of(self, item: DataItem) -> Path:
        return Path(self.root) / item.path

    @property
    def total_bytes(self) -> int:
        return sum(item.size for item in self.items)

    def summary(self) -> dict[str, Any]:
        names = [item.name for item in self.items[:SUMMARY_ITEM_LIMIT]]
        return {
            "type": self.type_name,
            "count": len(self.items),
            "bytes": self.total_bytes,
            "items": names,
            "more_items": max(0, len(self.items) - len(names)),
            "artifact": self.root,
        }


class ItemList(Dataset):
    """A data set whose manifest order is the list order (what `dict_to_list` makes)."""

    type_name: ClassVar[str] = "list"
    type_description: ClassVar[str] = "an ordered list of data items"


class Batches(Value):
    """Consecutive batches of the items of one data set."""

    type_name: ClassVar[str] = "batches"
    type_description: ClassVar[str] = "a list of batches of data items"

    root: str
    batches: tuple[tuple[DataItem, ...], ...]

    def path_of(self, item: DataItem) -> Path:
        return Path(self.root) / item.path

    def summary(self) -> dict[str, Any]:
        sizes = [len(batch) for batch in self.batches]
        return {
            "type": self.type_name,
            "count": len(self.batches),
            "items": sum(sizes),
            "batch_sizes": sizes[:SUMMARY_ITEM_LIMIT],
            "artifact": self.root,
        }


def write_manifest(value: Value, folder: Path) -> Path:
    """Store a value's reference beside its files, so an artifact explains itself."""
    path = folder / "manifest.json"
    path.write_text(json.dumps({"type": value.type_name, **value.model_dump(mode="json")}))
    return path


class S3Objects(Value):
    """Objects written to one S3 bucket (what `export_to_s3` makes)."""

    type_name: ClassVar[str] = "s3_objects"
    type_description: ClassVar[str] = "objects in an S3 bucket"

    bucket: str
    keys: tuple[str, ...]
    total_bytes: int

    def summary(self) -> dict[str, Any]:
        keys = list(self.keys[:SUMMARY_ITEM_LIMIT])
        return {
            "type": self.type_name,
            "bucket": self.bucket,
            "count": len(self.keys),
            "bytes": self.total_bytes,
            "keys": keys,
            "more_keys": max(0, len(self.keys) - len(keys)),
        }


class DeployedModel(Value):
    """A model on the model server: the name asked for and the one it is served under."""

    type_name: ClassVar[str] = "model"
    type_description: ClassVar[str] = "a model on the model server"

    model: str  # as the user named it, e.g. "EdBianchi/vit-fire-detection"
    served_name: str  # as the server knows it, e.g. "EdBianchi--vit-fire-detection"
    version: str | None = None
    server: str  # base URL, without credentials
    # deploy_model: "ready", or "served without a repository extension" (the server cannot
    # load models; this one it serves). delete_model: "unloaded", "not loaded" (it was not),
    # or "not unloaded" (the server cannot unload models).
    state: str


class PredictionOutput(BaseModel):
    """One output tensor of a model, per input row."""

    model_config = ConfigDict(frozen=True)

    name: str
    datatype: str
    shape: tuple[int, ...]  # of one row's output, e.g. () or (3,)


class Predictions(Value):
    """A model's predictions: one JSON Lines record per input item, keyed by its name."""

    type_name: ClassVar[str] = "predictions"
    type_description: ClassVar[str] = "model predictions, one record per input item"

    model: str
    served_name: str
    count: int  # items (= records)
    rows: int  # tensor rows sent (an item is one row or a table of rows)
    requests: int
    outputs: tuple[PredictionOutput, ...]
    root: str
    path: str  # relative to root: the JSON Lines file
    seconds: float | None = None  # the inference's wall time, metadata to last record

    @property
    def file(self) -> Path:
        return Path(self.root) / self.path

    def summary(self) -> dict[str, Any]:
        return {
            "type": self.type_name,
            "model": self.model,
            "count": self.count,
            "rows": self.rows,
            "requests": self.requests,
            "outputs": [output.model_dump(mode="json") for output in self.outputs],
            "seconds": self.seconds,
            "artifact": str(self.file),
        }


class ModelScore(BaseModel):
    """One model's line of a comparison: how many items it predicted, how well, how fast."""

    model_config = ConfigDict(frozen=True)

    model: str  # as the comparison names it (made unique when a model is compared twice)
    items: int  # items it has a prediction for
    missing: int  # compared items it has none for
    accuracy: float | None = None  # over the items with a truth label it predicted
    macro_f1: float | None = None
    seconds: float | None = None  # its inference time
    rows_per_second: float | None = None


class Agreement(BaseModel):
    """How often two models predicted the same label, over the items both predicted."""

    model_config = ConfigDict(frozen=True)

    models: tuple[str, str]
    items: int
    agreed: int

    @property
    def rate(self) -> float | None:
        return self.agreed / self.items if self.items else None


class Disagreement(BaseModel):
    """An item the models predicted differently: each model's label (None: no prediction)."""

    model_config = ConfigDict(frozen=True)

    name: str
    truth: str | None
    predictions: tuple[str | None, ...]  # in the comparison's model order


class Comparison(Value):
    """Several models' predictions over the same items, side by side (`compare_predictions`).

    The value holds the compact table; `table` (JSON) has every figure and every
    item, `report` is the HTML page a person opens.
    """

    type_name: ClassVar[str] = "comparison"
    type_description: ClassVar[str] = "a comparison of several models' predictions"

    items: int  # items predicted by at least one model
    labelled: int  # of them, with a truth label (0 without truth)
    models: tuple[ModelScore, ...]
    agreement: tuple[Agreement, ...]  # every pair of models
    disagreements: int
    examples: tuple[Disagreement, ...]  # the first disagreements, at most SUMMARY_ITEM_LIMIT
    root: str
    table: str  # relative to root
    report: str  # relative to root

    def summary(self) -> dict[str, Any]:
        models = [score.model for score in self.models]
        return {
            "type": self.type_name,
            "items": self.items,
            "labelled": self.labelled,
            "models": [score.model_dump(mode="json") for score in self.models],
            "agreement": [
                {"models": list(pair.models), "items": pair.items, "rate": pair.rate}
                for pair in self.agreement
            ],
            "disagreements": self.disagreements,
            "examples": [
                {
                    "name": example.name,
                    "truth": example.truth,
                    "predictions": dict(zip(models, example.predictions, strict=True)),
                }
                for example in self.examples
            ],
            "more_disagreements": self.disagreements - len(self.examples),
            "artifact": str(Path(self.root) / self.table),
            "report": str(Path(self.root) / self.report),
        }
