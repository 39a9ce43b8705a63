"""compare_predictions: several models' predictions over the same items, side by side."""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.catalog.registry import operation
from orchestrator.catalog.values import (
    SUMMARY_ITEM_LIMIT,
    Comparison,
    Dataset,
    ModelScore,
    Predictions,
)
from orchestrator.context import OperationContext
from orchestrator.errors import OperationError
from orchestrator.operations.compare.metrics import Table, compare
from orchestrator.operations.compare.predicted import display_names, read_labels
from orchestrator.operations.compare.report import render
from orchestrator.operations.compare.truth import read_truth
from orchestrator.operations.local import DataRootPath, resolve_under
from orchestrator.paths import shown

TABLE_FILE = "comparison.json"
REPORT_FILE = "report.html"
MAX_MODELS = 20


class ComparePredictionsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    predictions: list[Predictions] = Field(
        min_length=2,
        max_length=MAX_MODELS,
        description="The predictions of two or more models over the same items (model_inference "
        'outputs, e.g. {"ref": ID}); items are matched by name.',
    )
    truth: Dataset | None = Field(
        None, description="A data set holding one CSV or JSON file: item name -> true label."
    )
    truth_file: DataRootPath | None = Field(
        None,
        description="Or: a CSV or JSON file of true labels under the data root "
        "(CONSTELLATION_DATA_ROOT), relative, without '..'.",
    )
    label_key: str = Field(
        "label",
        min_length=1,
        description="The record field holding the predicted label; a record without it is "
        "read from its first output (a class index, or the index of the highest score).",
    )

    @model_validator(mode="after")
    def _one_truth(self) -> ComparePredictionsParams:
        if self.truth is not None and self.truth_file is not None:
            raise ValueError("give truth or truth_file, not both")
        return self


def load_truth(params: ComparePredictionsParams, ctx: OperationContext) -> dict[str, str] | None:
    """The true labels from the data set or the file under the data root, or None."""
    if params.truth is not None:
        items = params.truth.items
        if len(items) != 1:
            raise OperationError(
                f"truth holds {len(items)} files: give a data set of one CSV or JSON file"
            )
        return read_truth(params.truth.path_of(items[0]), shown(items[0].name), params.label_key)
    if params.truth_file is not None:
        root = ctx.services.data_root
        if root is None:
            raise OperationError("truth_file needs a data root (set CONSTELLATION_DATA_ROOT)")
        file = resolve_under(root, params.truth_file)
        if not file.is_file():
            raise OperationError(
                f"truth_file {params.truth_file!r} is not a file under the data root"
            )
        return read_truth(file, repr(params.truth_file), params.label_key)
    return None


@operation(name="compare_predictions", output=Comparison)
def compare_predictions(params: ComparePredictionsParams, ctx: OperationContext) -> Comparison:
    """Compare the predictions of several models over the same items: per model accuracy,
    per-class precision, recall and F1 and a confusion matrix (with truth labels), pairwise
    agreement, the items where they disagree, inference time and rows/s. Writes
    comparison.json (every figure and item) and report.html (a self-contained page)."""
    truth = load_truth(params, ctx)
    names = display_names(params.predictions)
    models = []
    for name, predictions in zip(names, params.predictions, strict=True):
        ctx.check_canceled()
        models.append(read_labels(predictions, name, params.label_key))
    table = compare(models, truth)
    (ctx.folder / TABLE_FILE).write_text(json.dumps(table.as_json(), indent=1), encoding="utf-8")
    (ctx.folder / REPORT_FILE).write_text(render(table), encoding="utf-8")
    comparison = _value(table, str(ctx.folder))
    if truth is not None and table.items and not table.labelled:
        ctx.log.warning(
            f"no predicted item has a truth label: items are matched by name, e.g. "
            f"{table.items[0]!r} (predictions) and {next(iter(truth))!r} (truth)"
        )
    for model in table.models:
        if model.missing:
            ctx.log.warning(f"{model.name!r} has no prediction for {len(model.missing)} items")
    ctx.log.info(
        f"compared {len(models)} models over {len(table.items)} items "
        f"({table.labelled} with truth): {len(table.disagreements)} disagreements"
    )
    return comparison


def _value(table: Table, root: str) -> Comparison:
    return Comparison(
        items=len(table.items),
        labelled=table.labelled,
        models=tuple(
            ModelScore(
                model=m.name,
                items=len(m.labels.labels),
                missing=len(m.missing),
                accuracy=m.accuracy,
                macro_f1=m.macro_f1,
                seconds=m.labels.source.seconds,
                rows_per_second=m.labels.rows_per_second,
            )
            for m in table.models
        ),
        agreement=tuple(table.agreement),
        disagreements=len(table.disagreements),
        examples=tuple(table.disagreements[:SUMMARY_ITEM_LIMIT]),
        root=root,
        table=TABLE_FILE,
        report=REPORT_FILE,
    )
