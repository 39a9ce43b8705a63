"""deploy_model and delete_model on servers that implement only part of the repository
extension: no index, a model already loaded, no repository extension at all."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from orchestrator.execution import RunOutcome
from testkit.fake_model_server import FakeModelServer
from testkit.pipelines import run_pipeline

DEPLOY = {"operation": "deploy_model", "parameters": {"model": "iris"}}
DELETE = {"operation": "delete_model", "parameters": {"model": "iris"}}


def run(server: FakeModelServer, tmp_path: Path, *instructions: dict[str, Any]) -> RunOutcome:
    with server.client() as client:
        return run_pipeline(list(instructions), tmp_path, model_server=client)


def summary(outcome: RunOutcome, index: int) -> dict[str, Any]:
    return outcome.values[f"instructions[{index}]"].summary()


def test_deploy_loads_a_model_that_is_not_ready_and_takes_the_version_from_the_index(tmp_path):
    server = FakeModelServer()
    outcome = run(server, tmp_path, DEPLOY)
    assert outcome.succeeded, outcome.first_error
    assert server.loaded == {"iris"}
    assert summary(outcome, 0) | {"server": "-"} == {
        "type": "model",
        "model": "iris",
        "served_name": "iris",
        "version": "7",
        "server": "-",
        "state": "ready",
    }


def test_a_server_without_a_repository_index_still_deploys_without_a_version(tmp_path):
    server = FakeModelServer(index=False)
    outcome = run(server, tmp_path, DEPLOY)
    assert outcome.succeeded, outcome.first_error
    assert "POST /v2/repository/index" in server.requests
    assert summary(outcome, 0)["version"] is None and summary(outcome, 0)["state"] == "ready"


def test_a_model_already_ready_is_not_loaded_again(tmp_path, caplog):
    server = FakeModelServer(loaded={"iris"})
    with caplog.at_level(logging.INFO):
        outcome = run(server, tmp_path, DEPLOY)
    assert outcome.succeeded, outcome.first_error
    assert not any(request.endswith("/load") for request in server.requests)
    assert summary(outcome, 0)["state"] == "ready"
    assert "is already ready: not loaded again" in caplog.text


def test_without_a_repository_extension_a_served_model_deploys_and_is_left_loaded(tmp_path, caplog):
    server = FakeModelServer(repository_extension=False, loaded={"iris"})
    with caplog.at_level(logging.INFO):
        outcome = run(server, tmp_path, DEPLOY, DELETE)
    assert outcome.succeeded, outcome.first_error
    assert summary(outcome, 0)["state"] == "ready"
    assert summary(outcome, 1)["state"] == "not unloaded"
    assert server.loaded == {"iris"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "model 'iris' ('iris') could not be unloaded: model 'iris' on model server "
        "http://model-server.test:8080: the server has no model repository extension "
        "(POST /v2/repository/models/iris/unload answered HTTP 404 Not Found)"
    ]


def test_without_a_repository_extension_a_model_that_becomes_ready_is_served_without_one(
    tmp_path, caplog
):
    """The server cannot load; the model is ready by the time deploy asks again."""
    server = FakeModelServer(repository_extension=False)

    def ready_after_the_load_refusal(request):
        if request.url.path.endswith("/load"):
            server.loaded.add("iris")

    server.intercept = ready_after_the_load_refusal
    with caplog.at_level(logging.INFO):
        outcome = run(server, tmp_path, DEPLOY)
    assert outcome.succeeded, outcome.first_error
    assert summary(outcome, 0)["state"] == "served without a repository extension"
    assert "served without a repository extension" in caplog.text


def test_without_a_repository_extension_a_model_not_served_fails_naming_what_was_tried(tmp_path):
    server = FakeModelServer(repository_extension=False)
    outcome = run(server, tmp_path, DEPLOY)
    assert outcome.first_error == (
        "instructions[0] (deploy_model): model 'iris' on http://model-server.test:8080 as "
        "'iris' is not ready (GET /v2/models/iris/ready), and the server cannot load it: "
        "model 'iris' on model server http://model-server.test:8080: the server has no model "
        "repository extension (POST /v2/repository/models/iris/load answered HTTP 404 Not "
        "Found). Serve the model on that server first."
    )


@pytest.mark.parametrize("status", [404, 503])
def test_an_unknown_model_fails_at_once_with_one_message(tmp_path, status):
    """MLServer answers a load of an unknown model 404, KServe 503: neither is retried."""
    server = FakeModelServer(load_unknown_status=status)
    deploy = {"operation": "deploy_model", "parameters": {"model": "nope"}}
    outcome = run(server, tmp_path, deploy)
    assert [r for r in server.requests if r.endswith("/load")] == [
        "POST /v2/repository/models/nope/load"
    ]
    error = outcome.first_error or ""
    assert "attempts" not in error
    if status == 503:
        assert error == (
            "instructions[0] (deploy_model): model 'nope' on model server "
            "http://model-server.test:8080: the server could not load this model (is it in its "
            "model repository, under this name?): HTTP 503 Model with name nope is not ready."
        )
    else:
        assert error == (
            "instructions[0] (deploy_model): model 'nope' on model server "
            "http://model-server.test:8080: the server does not know this model (not in its "
            "model repository, under this name): Model nope not found"
        )
