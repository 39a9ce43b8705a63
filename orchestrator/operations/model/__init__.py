"""deploy_model, model_inference, delete_model: a model on an Open Inference Protocol server.

One module per concept, in the order data flows through model_inference:

- `lifecycle`: deploy_model and delete_model; our model names and the server's;
- `inference`: the model_inference operation; `parameters`: its parameters;
- `fitting`: from the model's metadata, what feeds each declared input and how
  (the rule is there); `pixels`: an image fitted to a pixel input;
- `readers`: a numeric item becomes tensor rows (JSON, CSV, .npy: the rule is there);
- `encoding`: every other item encoded as one row per the fit, and a request's tensors;
- `batching`: rows become requests of at most `batch_size` rows and 2**21 values
  (a table may span requests; a `Batches` input never mixes two of its batches);
- `sending`: the threads that read items and send requests, `concurrency` in flight;
- `records`: each item's answer becomes one JSON Lines record in `predictions.jsonl`.

Thread helpers that know nothing of models are in `orchestrator.concurrency`.
"""

from orchestrator.operations.model.batching import (
    Block,
    ItemBlock,
    ItemPart,
    Layout,
    RequestBatch,
    RowSpec,
    RunBlock,
    RunPart,
    request_batches,
)
from orchestrator.operations.model.inference import model_inference
from orchestrator.operations.model.lifecycle import (
    DeleteModelParams,
    DeployModelParams,
    delete_model,
    deploy_model,
    server_model_name,
)
from orchestrator.operations.model.parameters import ModelInferenceParams
from orchestrator.operations.model.readers import ItemRows, read_blocks, read_rows
from orchestrator.operations.model.records import PREDICTIONS_FILE, RecordWriter

__all__ = [
    "PREDICTIONS_FILE",
    "Block",
    "DeleteModelParams",
    "DeployModelParams",
    "ItemBlock",
    "ItemPart",
    "ItemRows",
    "Layout",
    "ModelInferenceParams",
    "RecordWriter",
    "RequestBatch",
    "RowSpec",
    "RunBlock",
    "RunPart",
    "delete_model",
    "deploy_model",
    "model_inference",
    "read_blocks",
    "read_rows",
    "request_batches",
    "server_model_name",
]
