"""deploy_model and delete_model, and the names a model has: ours and the server's."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog.registry import operation
from orchestrator.catalog.values import DeployedModel
from orchestrator.connectors.model_server import ModelServerClient
from orchestrator.context import OperationContext
from orchestrator.errors import OperationError, RepositoryUnsupported

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")

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
    """The run's model server client; an operation error when none is configured."""
    client = ctx.services.model_server
    if client is None:
        raise OperationError(
            "no model server is configured (set CONSTELLATION_MODEL_SERVER_URL "
            "or the model_server resource's url)"
        )
    return client


class DeployModelParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = ModelName
    ready_timeout_s: float = Field(
        300.0, gt=0, le=3600, description="Seconds to wait for the model to become ready."
    )


@operation(name="deploy_model", output=DeployedModel, side_effects=True)
def deploy_model(params: DeployModelParams, ctx: OperationContext) -> DeployedModel:
    """Make a model ready on the model server: nothing to do when it already is, else load
    it from the server's repository and wait until it is ready to serve."""
    client = model_server(ctx)
    served = server_model_name(params.model)
    where = f"model {params.model!r} on {client.url} as {served!r}"
    state = "ready"
    if client.model_ready(served):
        ctx.log.info(f"{where} is already ready: not loaded again")
    else:
        try:
            client.load(served)
        except RepositoryUnsupported as exc:
            if not client.model_ready(served):
                raise OperationError(
                    f"{where} is not ready (GET /v2/models/{served}/ready), and the server "
                    f"cannot load it: {exc}. Serve the model on that server first."
                ) from exc
            state = "served without a repository extension"
            ctx.log.info(f"{where}: {state}")
        else:
            client.wait_until_ready(served, params.ready_timeout_s)
    version = _served_version(client, served)
    ctx.log.info(f"{where}: ready ({version})")
    return DeployedModel(
        model=params.model, served_name=served, version=version, server=client.url, state=state
    )


def _served_version(client: ModelServerClient, served: str) -> str | None:
    """The version being served: from the model's metadata, else the repository index
    where the server has one (it is optional), else None."""
    versions = client.metadata(served).versions
    if versions:
        return versions[-1]
    for entry in client.repository_index() or ():
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
    side_effects=True,
)
def delete_model(params: DeleteModelParams, ctx: OperationContext) -> DeployedModel:
    """Unload a model from the model server. Runs even after a failure; a model that is not
    loaded is not an error, nor a server that cannot unload models (a warning says so)."""
    client = model_server(ctx)
    served = server_model_name(params.model)
    try:
        state = "unloaded" if client.unload(served) else "not loaded"
    except RepositoryUnsupported as exc:
        state = "not unloaded"
        ctx.log.warning(f"model {params.model!r} ({served!r}) could not be unloaded: {exc}")
    else:
        ctx.log.info(f"model {params.model!r} ({served!r}) on {client.url}: {state}")
    return DeployedModel(model=params.model, served_name=served, server=client.url, state=state)
