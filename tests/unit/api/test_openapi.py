"""The published request body is the catalog's contract: what validates, and only that."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from api.config import Settings
from api.main import create_app
from orchestrator.catalog import validate
from orchestrator.errors import InstructionsInvalid
from orchestrator.operations import CATALOG
from orchestrator.samples import load_samples


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings(api_keys=[], allow_open_access=True)).openapi()


@pytest.fixture(scope="module")
def body(document: dict[str, Any]) -> Draft202012Validator:
    """The request body schema of POST /execute, with the document's components."""
    schema = document["paths"]["/execute"]["post"]["requestBody"]["content"]["application/json"]
    assert (
        schema
        == document["paths"]["/validate"]["post"]["requestBody"]["content"]["application/json"]
    )
    return Draft202012Validator({**schema["schema"], "components": document["components"]})


def local(path: str) -> dict[str, Any]:
    return {"operation": "import_from_local", "parameters": {"path": path}}


BATCHES = {"operation": "batch_formatted_data", "parameters": {"data": local("x")}}
S3_KEY = {"bucket": "abc", "key": "k"}


def accepted_by_the_catalog(instructions: Any) -> bool:
    try:
        validate(instructions, CATALOG)
    except InstructionsInvalid:
        return False
    return True


@pytest.mark.parametrize("name", sorted(load_samples()))
def test_every_sample_fits_the_published_schema(body: Draft202012Validator, name: str) -> None:
    body.validate(load_samples()[name].document)


@pytest.mark.parametrize(
    "instructions",
    [
        [{}],  # no operation: what schemathesis found the old schema let through
        [{"operation": "no_such_operation"}],
        [{"operation": "dict_to_list"}],  # a required parameter is missing
        [{"operation": "import_from_local", "parameters": {"path": "x"}, "extra": 1}],
        [local("../../etc/passwd")],
        [local("/etc")],
        [{"operation": "resize_image", "parameters": {"data": "photos"}}],  # not nested
        [{"operation": "import_from_local", "parameters": {"path": local("x")}}],  # not literal
        [{"operation": "resize_image", "parameters": {"data": BATCHES}}],  # does not fit
        [{"operation": "import_from_s3", "parameters": {"bucket": "abc"}}],  # key or prefix
        [{"operation": "import_from_s3", "parameters": {**S3_KEY, "prefix": ""}}],
        [],
    ],
)
def test_what_the_catalog_refuses_the_schema_refuses(
    body: Draft202012Validator, instructions: list[Any]
) -> None:
    assert not accepted_by_the_catalog({"instructions": instructions})
    assert not body.is_valid({"instructions": instructions})


def test_each_instruction_is_one_of_the_operations_by_name(document: dict[str, Any]) -> None:
    instruction = document["components"]["schemas"]["Instruction"]
    assert instruction["discriminator"]["propertyName"] == "operation"
    assert sorted(instruction["discriminator"]["mapping"]) == sorted(CATALOG.names)
    assert len(instruction["oneOf"]) == len(CATALOG.names)


def test_a_value_parameter_takes_the_instructions_whose_output_fits(
    document: dict[str, Any],
) -> None:
    data = document["components"]["schemas"]["model_inference.Params"]["properties"]["data"]
    fitting = sorted(ref["$ref"].rsplit(".", 1)[1] for ref in data["oneOf"])
    assert fitting == sorted(
        op.name for op in map(CATALOG.__getitem__, CATALOG.names) if op.output.type_name in
        {"dataset", "list", "batches"}
    )  # fmt: skip
