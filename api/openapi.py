"""The request body of POST /execute and /validate in the OpenAPI document, from the catalog.

FastAPI reads the body itself (api/body.py) and the catalog validates it, so the
published contract is generated from that same catalog, and a generated client or
a fuzzer sees what the API accepts:

    ExecuteRequest            {"instructions": [Instruction, ...]} (at least one)
    Instruction               oneOf the operations, discriminated by "operation"
    Instruction.NAME          {"operation": "NAME", "parameters": NAME.Params, "id": ID}
    NAME.Params               the operation's parameter schema; a parameter fed by a
                              nested instruction takes oneOf the Instruction.OTHER
                              whose output fits it, a Ref (and its literal types, if
                              any); a list of values takes an array of those
    Ref                       {"ref": ID}: the output of the instruction with that id

`add_request_schemas` lays these over the document FastAPI builds. What JSON Schema
cannot say stays with validation: the depth and node limits, the body size, and
whether a ref names an id that exists, once, without a cycle, with a fitting output.
"""

from __future__ import annotations

import copy
from typing import Any

from api.schemas import ExecuteRequest
from orchestrator.catalog.registry import Catalog, Operation
from orchestrator.catalog.validation import ID_PATTERN

COMPONENTS = "#/components/schemas/"
REQUEST = "ExecuteRequest"
INSTRUCTION = "Instruction"
REF = "Ref"
ID_SCHEMA = {"type": "string", "pattern": ID_PATTERN}
VALUE_MARK = "x-constellation-type"  # orchestrator/catalog/values.py: a value, not a literal


def request_body() -> dict[str, Any]:
    """`openapi_extra` of the routes that take instructions: a reference to the schema."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": COMPONENTS + REQUEST}}},
        }
    }


def add_request_schemas(document: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    """`document` (an OpenAPI document) with the instruction schemas in its components."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(request_schemas(catalog))
    return document


def request_schemas(catalog: Catalog) -> dict[str, Any]:
    """Every component schema of the request body, by name."""
    field = ExecuteRequest.model_fields["instructions"]
    refs = {op.name: COMPONENTS + instruction_name(op) for op in operations(catalog)}
    schemas: dict[str, Any] = {
        REQUEST: {
            "title": REQUEST,
            "description": ExecuteRequest.__doc__,
            "type": "object",
            "properties": {
                "instructions": {
                    "description": field.description,
                    "type": "array",
                    "minItems": 1,
                    "items": {"$ref": COMPONENTS + INSTRUCTION},
                    "examples": field.examples,
                }
            },
            "required": ["instructions"],
            "additionalProperties": False,
        },
        INSTRUCTION: {
            "description": "One instruction: an operation of GET /operations and its parameters.",
            "oneOf": [{"$ref": ref} for ref in refs.values()],
            "discriminator": {"propertyName": "operation", "mapping": refs},
        },
        REF: {
            "title": REF,
            "description": 'The output of the instruction whose "id" is ID: {"ref": ID}. '
            "It runs once, before every instruction that uses it.",
            "type": "object",
            "properties": {"ref": ID_SCHEMA},
            "required": ["ref"],
            "additionalProperties": False,
        },
    }
    for op in operations(catalog):
        params, definitions = parameter_schema(op, catalog)
        schemas.update(definitions)
        schemas[params_name(op)] = params
        instruction: dict[str, Any] = {
            "title": instruction_name(op),
            "description": op.description,
            "type": "object",
            "properties": {
                "operation": {"const": op.name},
                "parameters": {"$ref": COMPONENTS + params_name(op)},
                "id": {
                    **ID_SCHEMA,
                    "description": 'Names this instruction, so that {"ref": ID} elsewhere '
                    "uses its output.",
                },
                "cache": {
                    "type": "boolean",
                    "default": True,
                    "description": "false: run it even when an earlier run made the same "
                    "output (same inputs, parameters and source version).",
                },
            },
            "required": ["operation", "parameters"] if params.get("required") else ["operation"],
            "additionalProperties": False,
        }
        schemas[instruction_name(op)] = instruction
    return schemas


def operations(catalog: Catalog) -> list[Operation]:
    return [catalog[name] for name in catalog.names]


def instruction_name(op: Operation) -> str:
    return f"{INSTRUCTION}.{op.name}"


def params_name(op: Operation) -> str:
    return f"{op.name}.Params"


def parameter_schema(op: Operation, catalog: Catalog) -> tuple[dict[str, Any], dict[str, Any]]:
    """The schema of `op`'s parameters and the definitions it refers to, by component name.

    pydantic's schema says "a value" where a nested instruction goes (VALUE_MARK);
    here that becomes oneOf the instructions whose output fits the parameter, or a Ref.
    """
    schema = copy.deepcopy(
        op.params.model_json_schema(ref_template=COMPONENTS + op.name + ".{model}")
    )
    definitions = {f"{op.name}.{name}": s for name, s in schema.pop("$defs", {}).items()}
    values = {COMPONENTS + name for name, s in definitions.items() if VALUE_MARK in s}
    for name, field in op.inputs.items():
        prop = schema["properties"][name]
        fitting = [
            {"$ref": COMPONENTS + instruction_name(other)}
            for other in operations(catalog)
            if field.fits(other.output)
        ] + [{"$ref": COMPONENTS + REF}]
        if field.many:  # an array of inputs (or, if it allows, a literal such as null)
            members = prop.get("anyOf", [prop])
            for array in (m for m in members if m.get("type") == "array"):
                array["items"] = {"oneOf": fitting}
            continue
        members = prop.pop("anyOf", None) or [{"$ref": prop.pop("$ref")}]
        literals = [m for m in members if m.get("$ref") not in values]
        for key in ("title", VALUE_MARK):
            prop.pop(key, None)
        prop["oneOf"] = fitting + literals
    for name in [n for n in definitions if COMPONENTS + n in values]:
        del definitions[name]
    return schema, definitions
