"""model_inference: every item of a data set through a deployed model, one record per item."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from orchestrator.catalog.registry import operation
from orchestrator.catalog.values import Dataset, Predictions, write_manifest
from orchestrator.context import OperationContext
from orchestrator.operations.model.batching import RequestBatch, RowSpec, chunks
from orchestrator.operations.model.encoding import sample_of
from orchestrator.operations.model.fitting import NUMPY_TYPES, Fit, Sample, describe_fit, fit_model
from orchestrator.operations.model.labels import check_labels, label_map
from orchestrator.operations.model.lifecycle import model_server, server_model_name
from orchestrator.operations.model.parameters import ModelInferenceParams
from orchestrator.operations.model.records import PREDICTIONS_FILE, RecordWriter
from orchestrator.operations.model.sending import InferenceRequests

if TYPE_CHECKING:
    from orchestrator.connectors.model_server import Tensor

PARTIAL_SUFFIX = ".partial"  # predictions.jsonl while it is written; renamed on success


def model_version(params: ModelInferenceParams, ctx: OperationContext) -> Any:
    """The cache key's source version: the server, the served model's versions (its
    metadata) and the labels a labels_file holds; None for a model that names no version
    (a model replaced under the same name could not be told apart)."""
    client = model_server(ctx)
    versions = client.metadata(server_model_name(params.model)).versions
    if not versions:
        return None
    labels = label_map(params, ctx) if params.labels_file is not None else None
    return [client.url, list(versions), None if labels is None else list(labels.labels)]


@operation(name="model_inference", output=Predictions, cache_key=model_version)
def model_inference(params: ModelInferenceParams, ctx: OperationContext) -> Predictions:
    """Run a deployed model on every item of a data set, in batched requests, several in
    flight; writes one prediction record per item (JSON Lines, keyed by item name).

    The model's metadata is read first: with the parameters and the first item
    it decides how each item is encoded for each declared input (`fitting`), and
    what cannot fit is refused before any request is sent.

    `concurrency` worker threads each take a request's worth of items, read them
    (one thread per core at a time) and send them, as a hand-tuned client
    would; a chunk that makes several requests, because its items are tables,
    is sent by all senders at once. At most `concurrency` requests are in
    flight. This thread writes the records, in order, to a temporary file that
    becomes predictions.jsonl only when every request succeeded.
    """
    started = time.monotonic()
    client = model_server(ctx)
    served = server_model_name(params.model)
    batch_size = params.batch_size or client.config.batch_size
    concurrency = params.concurrency or client.config.concurrency
    data = params.data
    groups = [list(data.items)] if isinstance(data, Dataset) else [list(b) for b in data.batches]
    items = [item for group in groups for item in group]
    metadata = client.metadata(served)  # a model that is not deployed fails here
    sample = sample_of(data.root, items)
    fit = fit_model(params.model, metadata, params, sample)
    labels = label_map(params, ctx)
    if labels is not None:
        check_labels(labels, metadata.outputs)
    for note in fit.notes:
        ctx.log.warning(f"{params.model!r}: {note}")
    ctx.log.info(f"{params.model!r} inputs: " + "; ".join(map(describe_fit, fit.inputs)))
    spec = _row_spec(fit, sample, batch_size)
    requests = InferenceRequests(
        ctx,
        client,
        served,
        root=data.root,
        items=items,
        spec=spec,
        fit=fit,
        concurrency=concurrency,
    )
    final = ctx.folder / PREDICTIONS_FILE
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    try:
        with partial.open("w", encoding="utf-8") as out:
            records = RecordWriter(out, items, labels)

            def written(batch: RequestBatch, tensors: list[Tensor]) -> None:
                records.add(batch, tensors)
                if batch.segments:  # items up to the request's last are written (or begun)
                    ctx.progress(batch.item_span()[1] + 1, len(items))

            requests.run(chunks(groups, spec.per_request), written)
            ctx.progress(len(items), len(items))
        partial.replace(final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    seconds = round(time.monotonic() - started, 6)
    predictions = Predictions(
        model=params.model,
        served_name=served,
        count=len(items),
        rows=records.rows,
        requests=records.requests,
        outputs=records.outputs,
        root=str(ctx.folder),
        path=PREDICTIONS_FILE,
        seconds=seconds,
    )
    write_manifest(predictions, ctx.folder)
    ctx.log.info(
        f"{params.model!r}: {len(items)} items, {records.rows} rows in {records.requests} "
        f"requests (<= {spec.per_request} rows, {concurrency} in flight) in {seconds:.3f} s"
    )
    return predictions


def _row_spec(fit: Fit, sample: Sample | None, batch_size: int) -> RowSpec:
    """What every row must be and how many go in a request: numbers like the first row (in
    the datatype the fit asks for); encoded items are one object each."""
    per_request = fit.per_request(sample, batch_size)
    if not fit.numeric:
        return RowSpec((), np.dtype(object), sample.name if sample else "", per_request)
    first = None
    if sample is not None and sample.row is not None:
        row = sample.row
        datatype = fit.rows_input.datatype
        if datatype:
            row = row.astype(NUMPY_TYPES[datatype], copy=False)
        first = (sample.name, row)
    return replace(RowSpec.of_first(first, batch_size), per_request=per_request)
