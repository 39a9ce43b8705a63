"""Model names: ours, and the one a V2 server serves a model under."""

from __future__ import annotations

import pytest

from orchestrator.catalog import validate
from orchestrator.errors import InstructionsInvalid, OperationError
from orchestrator.operations import CATALOG
from orchestrator.operations.model.lifecycle import server_model_name


def test_hub_style_names_map_slashes_to_double_dashes():
    assert server_model_name("EdBianchi/vit-fire-detection") == "EdBianchi--vit-fire-detection"
    assert server_model_name("iris") == "iris"
    assert server_model_name("org/team/model.v2") == "org--team--model.v2"
    for bad in ("", "/iris", "iris/", "a//b", "a b", "../x", "a/%2F"):
        with pytest.raises(OperationError, match="is not valid"):
            server_model_name(bad)


def test_validation_refuses_a_model_name_that_cannot_be_served():
    tree = {"instructions": [{"operation": "deploy_model", "parameters": {"model": "a b/c"}}]}
    with pytest.raises(InstructionsInvalid, match=r"instructions\[0\]\.parameters\.model"):
        validate(tree, CATALOG)
