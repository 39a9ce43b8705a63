"""The published request body is the catalog's contract: what validates, and only that."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from api.config import Settings
from api.main import create_app
from api.openapi import request_schemas
from orchestrator.catalog import Catalog, Dataset, operation, validate
from orchestrator.context import OperationContext
from orchestrator.errors import InstructionsInvalid
from orchestrator.samples import load_samples, sample_catalog

CATALOG = sample_catalog()  # the built-ins and the sample plug-in, as `make run` serves


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(Settings(api_keys=[], allow_open_access=True))
    app.state.catalog = CATALOG
    return app.openapi()


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
    refs = [member["$ref"] for member in data["oneOf"]]
    assert refs[-1] == "#/components/schemas/Ref", "a ref may feed it too"
    fitting = sorted(ref.rsplit(".", 1)[1] for ref in refs[:-1])
    assert fitting == sorted(
        op.name for op in map(CATALOG.__getitem__, CATALOG.names) if op.output.type_name in
        {"dataset", "list", "batches"}
    )  # fmt: skip


SHARED = [
    {**local("photos"), "id": "photos"},
    {"operation": "dict_to_list", "parameters": {"data": {"ref": "photos"}}},
    {"operation": "resize_image", "parameters": {"width": 8, "data": {"ref": "photos"}}},
]


def test_ids_and_refs_fit_the_published_schema(body: Draft202012Validator) -> None:
    assert accepted_by_the_catalog({"instructions": SHARED})
    body.validate({"instructions": SHARED})


@pytest.mark.parametrize(
    "instructions",
    [
        [{**local("x"), "id": "a b"}],  # not an id
        [{**local("x"), "id": 3}],
        [{"operation": "dict_to_list", "parameters": {"data": {"ref": "a", "path": "x"}}}],
        [{"operation": "dict_to_list", "parameters": {"data": {"ref": 3}}}],
        [{"ref": "photos"}],  # a ref is a parameter value, not an instruction
        [
            {**local("x"), "id": "a"},
            {"operation": "import_from_local", "parameters": {"path": {"ref": "a"}}},
        ],  # a literal takes no ref
    ],
)
def test_what_the_catalog_refuses_of_refs_the_schema_refuses(
    body: Draft202012Validator, instructions: list[Any]
) -> None:
    assert not accepted_by_the_catalog({"instructions": instructions})
    assert not body.is_valid({"instructions": instructions})


class GatherParams(BaseModel):
    items: list[Dataset] = Field(min_length=2)


@operation(name="gather", output=Dataset)
def gather(params: GatherParams, ctx: OperationContext) -> Dataset:
    """A test-only operation with a list of values."""
    raise AssertionError


def test_a_list_of_values_takes_an_array_of_instructions_and_refs() -> None:
    catalog = Catalog([CATALOG["import_from_local"], gather])
    schemas = request_schemas(catalog)
    items = schemas["gather.Params"]["properties"]["items"]
    assert items["type"] == "array" and items["minItems"] == 2
    assert items["items"] == {
        "oneOf": [
            {"$ref": "#/components/schemas/Instruction.import_from_local"},
            {"$ref": "#/components/schemas/Instruction.gather"},
            {"$ref": "#/components/schemas/Ref"},
        ]
    }
    validator = Draft202012Validator(
        {"$ref": "#/components/schemas/ExecuteRequest", "components": {"schemas": schemas}}
    )
    good = [{**local("a"), "id": "a"}, {"operation": "gather",
            "parameters": {"items": [{"ref": "a"}, local("b")]}}]  # fmt: skip
    assert validator.is_valid({"instructions": good})
    assert validate({"instructions": good}, catalog)
    bad = [{"operation": "gather", "parameters": {"items": [{"ref": "a"}, "b"]}}]
    assert not validator.is_valid({"instructions": bad})
