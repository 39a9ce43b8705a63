"""Saved pipeline definitions: every problem with its JSON path, at save and at run."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import InstructionsInvalid
from orchestrator.operations import CATALOG
from orchestrator.saved import bind, check_definition


def resize(width: Any = 64, path: Any = "examples") -> dict[str, Any]:
    return {
        "name": "thumbs",
        "parameters": {
            "width": {"type": "integer", "default": 64, "description": "Pixels."},
            "folder": {"type": "string"},
        },
        "instructions": [
            {
                "operation": "resize_image",
                "parameters": {
                    "width": width,
                    "height": 32,
                    "data": {"operation": "import_from_local", "parameters": {"path": path}},
                },
            }
        ],
    }


GOOD = resize({"param": "width"}, {"param": "folder"})


def problems(body: Any) -> list[tuple[str, str]]:
    with pytest.raises(InstructionsInvalid) as caught:
        check_definition(body, CATALOG)
    return [(p.path, p.message) for p in caught.value.problems]


def test_a_good_definition_is_kept_with_its_parameters() -> None:
    definition = check_definition(GOOD, CATALOG)
    assert definition.parameters_dict()["width"] == {
        "type": "integer",
        "description": "Pixels.",
        "default": 64,
    }
    assert definition.document == {"instructions": GOOD["instructions"]}


def test_unknown_and_unused_parameters_are_problems_with_paths() -> None:
    body = resize({"param": "widht"}, "examples")
    assert problems(body) == [
        (
            "instructions[0].parameters.width.param",
            "unknown parameter 'widht'; did you mean 'width'?",
        ),
        ("parameters.width", "parameter 'width' is declared but no placeholder uses it"),
        ("parameters.folder", "parameter 'folder' is declared but no placeholder uses it"),
    ]


def test_declarations_are_checked() -> None:
    body = {
        **GOOD,
        "parameters": {
            "width": {"type": "int", "default": 1},
            "folder": {"type": "string", "default": 3, "extra": 1},
        },
    }
    found = problems(body)
    assert ("parameters.width.type", "unknown parameter type; did you mean 'integer'?") in found
    assert len(found) == 3
    assert ("parameters.folder.extra", "unknown key 'extra' in a parameter") in found
    assert (
        "parameters.folder.default",
        "the default of parameter 'folder' is not of its type",
    ) in found


def test_a_declared_type_the_operation_cannot_take_is_a_problem() -> None:
    body = {**GOOD, "parameters": {**GOOD["parameters"], "width": {"type": "string"}}}
    [(path, message)] = problems(body)
    assert path == "instructions[0].parameters.width"
    assert message.startswith("parameter 'width' is declared string, but parameter 'width'")


def test_a_default_that_breaks_the_operation_is_reported_where_it_is_used() -> None:
    body = {
        **GOOD,
        "parameters": {**GOOD["parameters"], "width": {"type": "integer", "default": 0}},
    }
    with pytest.raises(InstructionsInvalid) as caught:
        check_definition(body, CATALOG)
    [problem] = caught.value.problems
    assert problem.path == "instructions[0].parameters.width"
    assert problem.received == "0 (integer) (the default of parameter 'width')"


def test_bind_fills_arguments_and_defaults() -> None:
    definition = check_definition(GOOD, CATALOG)
    bound = bind(definition.parameters, definition.document, {"folder": "photos"}, CATALOG)
    step = bound["instructions"][0]["parameters"]
    assert step["width"] == 64
    assert step["data"]["parameters"]["path"] == "photos"


def test_bad_arguments_are_problems_at_their_paths() -> None:
    definition = check_definition(GOOD, CATALOG)
    with pytest.raises(InstructionsInvalid) as caught:
        bind(definition.parameters, definition.document, {"width": "wide", "colour": 1}, CATALOG)
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("arguments.colour", "unknown argument 'colour'"),
        ("arguments.width", "argument 'width' has the wrong type"),
        ("arguments.folder", "missing argument 'folder'"),
    ]
    with pytest.raises(InstructionsInvalid) as caught:
        bind(definition.parameters, definition.document, {"width": 0, "folder": "x"}, CATALOG)
    [problem] = caught.value.problems
    assert problem.path == "arguments.width"
    assert "(used at instructions[0].parameters.width)" in problem.message
