"""Sharing an output: "id" on instructions, {"ref": ID} values, lists of values; exact problems."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog import Catalog, Dataset, Limits, operation, validate
from orchestrator.context import OperationContext
from orchestrator.errors import InstructionsInvalid, Problem
from orchestrator.operations import CATALOG as REAL


class GatherParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Dataset] = Field(min_length=2, max_length=3)


@operation(name="gather", output=Dataset)
def gather(params: GatherParams, ctx: OperationContext) -> Dataset:
    """A test-only operation with a list-of-values parameter."""
    raise AssertionError("never run here")


CATALOG = Catalog([*(REAL[name] for name in REAL.names), gather])


def problems(document: Any) -> list[Problem]:
    with pytest.raises(InstructionsInvalid) as caught:
        validate(document, CATALOG, Limits())
    return caught.value.problems


def local(path: str = "x", **extra: Any) -> dict[str, Any]:
    return {"operation": "import_from_local", "parameters": {"path": path}, **extra}


def to_list(data: Any, **extra: Any) -> dict[str, Any]:
    return {"operation": "dict_to_list", "parameters": {"data": data}, **extra}


def ref(name: Any) -> dict[str, Any]:
    return {"ref": name}


def test_a_ref_points_at_the_node_with_that_id_and_it_is_planned_once() -> None:
    plan = validate(
        [local(id="photos"), to_list(ref("photos")), to_list(to_list(ref("photos")))], CATALOG
    )
    assert sorted(plan.nodes) == [
        "instructions[0]",
        "instructions[1]",
        "instructions[2]",
        "instructions[2].parameters.data",
    ]
    assert plan.nodes["instructions[0]"].label == "photos"
    assert plan.nodes["instructions[1]"].inputs == {"data": "instructions[0]"}
    assert plan.nodes["instructions[2].parameters.data"].inputs == {"data": "instructions[0]"}
    assert plan.describe()[1] == {
        "path": "instructions[1]",
        "operation": "dict_to_list",
        "inputs": {"data": {"ref": "photos", "path": "instructions[0]"}},
    }


def test_a_top_level_instruction_may_use_a_later_one_which_then_runs_first() -> None:
    plan = validate([to_list(ref("photos")), local(id="photos")], CATALOG)
    assert plan.roots == ["instructions[0]", "instructions[1]"]
    assert plan.order == ["instructions[1]", "instructions[0]"]
    assert plan.dependencies("instructions[0]") == ["instructions[1]", "instructions[0]"]


def test_refs_inside_nested_instructions_reach_into_other_trees() -> None:
    document = [
        to_list(to_list(local(id="deep"))),
        {"operation": "resize_image", "parameters": {"data": to_list(ref("deep"))}},
    ]
    plan = validate(document, CATALOG)
    consumer = plan.nodes["instructions[1].parameters.data"]
    assert consumer.inputs == {"data": "instructions[0].parameters.data.parameters.data"}
    assert [n.id for n in plan.subtree("instructions[1]")] == [
        "instructions[1].parameters.data",
        "instructions[1]",
    ], "a shared node belongs to the tree it is written in"


def test_ids_must_be_short_names() -> None:
    found = problems([local(id=""), local(id="a b"), local(id=7), local(id="x" * 65)])
    assert [(p.path, p.message, p.received) for p in found] == [
        ("instructions[0].id", "invalid id", '"" (string)'),
        ("instructions[1].id", "invalid id", '"a b" (string)'),
        ("instructions[2].id", "invalid id", "7 (integer)"),
        ("instructions[3].id", "invalid id", f'"{"x" * 56}... (string)'),
    ]
    assert found[0].expected == "a string of 1 to 64 letters, digits, '_' or '-'"
    assert validate([local(id="Photos_2024-a")], CATALOG).nodes["instructions[0]"].label


def test_duplicate_ids_name_both_instructions() -> None:
    found = problems([local(id="photos"), to_list(local(id="photos"))])
    assert [(p.path, p.message, p.expected, p.received) for p in found] == [
        (
            "instructions[1].parameters.data.id",
            "duplicate id 'photos': instructions[0] has it too",
            "an id no other instruction has",
            "'photos'",
        )
    ]


def test_an_unknown_ref_names_close_matches() -> None:
    found = problems([local(id="photos"), to_list(ref("photo"))])
    assert [(p.path, p.message, p.expected, p.received) for p in found] == [
        (
            "instructions[1].parameters.data.ref",
            "unknown id 'photo'; did you mean 'photos'?",
            "the id of an instruction: photos",
            "'photo'",
        )
    ]
    (problem,) = problems([to_list(ref("photos"))])
    assert problem.expected == "the id of an instruction (no instruction has an id)"


def test_a_ref_is_only_a_ref() -> None:
    found = problems(
        [
            local(id="photos"),
            to_list({"ref": "photos", "path": "x"}),
            to_list(ref(3)),
            ref("photos"),
        ]
    )
    assert [(p.path, p.message, p.received) for p in found] == [
        ("instructions[1].parameters.data.path", "unknown key 'path' in a ref", "'path'"),
        ("instructions[2].parameters.data.ref", "expected the id of an instruction", "3 (integer)"),
        (
            "instructions[3]",
            "expected an instruction, not a ref (a ref is a parameter value)",
            "a ref",
        ),
    ]
    assert found[0].expected == '{"ref": ID}'


def test_a_ref_to_ones_own_ancestor_or_itself_is_a_cycle() -> None:
    (itself,) = problems([to_list(ref("a"), id="a")])
    assert (itself.path, itself.message) == (
        "instructions[0].parameters.data",
        "ref 'a' makes a cycle, each using the next one's output: "
        "instructions[0] -> instructions[0]",
    )
    (ancestor,) = problems([to_list(to_list(ref("a")), id="a")])
    assert (ancestor.path, ancestor.message, ancestor.received) == (
        "instructions[0].parameters.data.parameters.data",
        "ref 'a' makes a cycle, each using the next one's output: "
        "instructions[0] -> instructions[0].parameters.data -> instructions[0]",
        "a cycle of 2 instruction(s)",
    )
    assert ancestor.expected == "a ref to an instruction that does not need this one"


def test_a_cycle_across_top_level_instructions_is_reported_once() -> None:
    found = problems([to_list(ref("b"), id="a"), to_list(to_list(ref("a")), id="b")])
    assert [(p.path, p.message) for p in found] == [
        (
            "instructions[1].parameters.data.parameters.data",
            "ref 'a' makes a cycle, each using the next one's output: "
            "instructions[0] -> instructions[1] -> instructions[1].parameters.data "
            "-> instructions[0]",
        )
    ]


def test_the_output_through_a_ref_must_fit_and_literals_take_no_refs() -> None:
    batches = {"operation": "batch_formatted_data", "parameters": {"data": local()}, "id": "b"}
    found = problems(
        [
            batches,
            {"operation": "resize_image", "parameters": {"data": ref("b")}},
            {"operation": "import_from_local", "parameters": {"path": ref("b")}},
        ]
    )
    assert [(p.path, p.message, p.expected, p.received) for p in found] == [
        (
            "instructions[2].parameters.path",
            "parameter 'path' of 'import_from_local' takes a literal, not a ref",
            "a string",
            "a ref",
        ),
        (
            "instructions[1].parameters.data",
            "the output of 'b' (batch_formatted_data at instructions[0]: batches) does not "
            "fit parameter 'data' of 'resize_image'",
            "dataset",
            "batches",
        ),
    ]


def test_every_problem_of_ids_and_refs_at_once_with_the_others() -> None:
    found = problems(
        [
            local(id="photos"),
            to_list(ref("fotos"), id="photos"),
            {"operation": "resize_image", "parameters": {"data": ref("photos"), "width": 0}},
        ]
    )
    assert [p.path for p in found] == [
        "instructions[1].id",
        "instructions[2].parameters.width",
        "instructions[1].parameters.data.ref",
    ]


# A parameter typed as a list of values takes an array of nested instructions and refs.


def gathered(*items: Any) -> dict[str, Any]:
    return {"operation": "gather", "parameters": {"items": list(items)}}


def test_a_list_of_values_takes_nested_instructions_and_refs_in_order() -> None:
    plan = validate([local(id="a"), gathered(ref("a"), local("b"), ref("a"))], CATALOG)
    assert plan.nodes["instructions[1]"].inputs == {
        "items": ["instructions[0]", "instructions[1].parameters.items[1]", "instructions[0]"]
    }
    assert plan.nodes["instructions[1].parameters.items[1]"].literals == {"path": "b"}
    assert plan.describe()[1]["inputs"]["items"] == [
        {"ref": "a", "path": "instructions[0]"},
        {
            "path": "instructions[1].parameters.items[1]",
            "operation": "import_from_local",
            "inputs": {},
        },
        {"ref": "a", "path": "instructions[0]"},
    ]
    assert CATALOG["gather"].inputs["items"].many


def test_each_element_of_a_list_of_values_is_checked_with_its_index() -> None:
    batches = {"operation": "batch_formatted_data", "parameters": {"data": local()}}
    found = problems(
        [
            local(id="a"),
            gathered(batches, "photos", ref("nope"), local("../up")),
            {"operation": "gather", "parameters": {"items": ref("a")}},
            gathered(ref("a")),
        ]
    )
    assert [(p.path, p.message) for p in found] == [
        (
            "instructions[1].parameters.items",
            "parameter 'items' of 'gather' takes 2 to 3 inputs",
        ),
        (
            "instructions[1].parameters.items[0]",
            "the output of 'batch_formatted_data' (batches) does not fit parameter 'items' "
            "of 'gather'",
        ),
        (
            "instructions[1].parameters.items[1]",
            "each input of parameter 'items' of 'gather' is a nested instruction or a ref",
        ),
        (
            "instructions[1].parameters.items[3].parameters.path",
            "invalid value for parameter 'path' of 'import_from_local': '../up' is absolute or "
            "has a '..' segment: give a path relative to the data root, without '..'",
        ),
        (
            "instructions[2].parameters.items",
            "parameter 'items' of 'gather' takes an array of inputs",
        ),
        ("instructions[3].parameters.items", "parameter 'items' of 'gather' takes 2 to 3 inputs"),
        (
            "instructions[1].parameters.items[2].ref",
            "unknown id 'nope'",
        ),
    ]
    assert found[1].expected == "dataset"
    assert found[2].received == '"photos" (string)'
    assert found[4].expected == ("an array of nested instructions or refs whose output is dataset")
    assert found[5].received == "1"


def test_a_list_of_values_is_not_a_literal() -> None:
    (problem,) = problems([{"operation": "gather", "parameters": {"items": "photos"}}])
    assert (problem.path, problem.message) == (
        "instructions[0].parameters.items",
        "parameter 'items' of 'gather' takes an array of nested instructions or refs",
    )
    (missing,) = problems([{"operation": "gather", "parameters": {}}])
    assert (missing.path, missing.message) == (
        "instructions[0].parameters.items",
        "missing required parameter 'items'",
    )
