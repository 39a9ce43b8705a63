"""model_inference: every item of a data set through a deployed model, one record per item."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog.registry import operation
from orchestrator.catalog.values import Batches, Dataset, Predictions, write_manifest
from orchestrator.context import OperationContext
from orchestrator.operations.model.batching import RowSpec, chunks
from orchestrator.operations.model.lifecycle import ModelName, model_server, server_model_name
from orchestrator.operations.model.readers import Datatype, first_row
from orchestrator.operations.model.records import PREDICTIONS_FILE, RecordWriter
from orchestrator.operations.model.sending import InferenceRequests


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
    spec = RowSpec.of_first(first_row(data.root, items, params.datatype), batch_size)
    requests = InferenceRequests(
        ctx,
        client,
        served,
        root=data.root,
        items=items,
        spec=spec,
        datatype=params.datatype,
        input_name=params.input_name,
        concurrency=concurrency,
    )
    with (ctx.folder / PREDICTIONS_FILE).open("w", encoding="utf-8") as out:
        records = RecordWriter(out, items)
        requests.run(chunks(groups, spec.per_request), records.add)
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
        f"requests (<= {spec.per_request} rows, {concurrency} in flight)"
    )
    return predictions
