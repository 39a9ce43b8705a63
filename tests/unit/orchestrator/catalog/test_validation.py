"""Whole-tree validation: exact messages, JSON paths, limits."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.catalog import Limits, validate
from orchestrator.errors import InstructionsInvalid, Problem
from orchestrator.operations import CATALOG


def problems(document: Any, limits: Limits | None = None) -> list[Problem]:
    with pytest.raises(InstructionsInvalid) as caught:
        validate(document, CATALOG, limits or Limits())
    return caught.value.problems


def local(path: str = "x") -> dict[str, Any]:
    return {"operation": "import_from_local", "parameters": {"path": path}}


def test_a_valid_tree_becomes_a_plan_keyed_by_json_path() -> None:
    plan = validate(
        {
            "instructions": [
                {
                    "operation": "batch_formatted_data",
                    "parameters": {
                        "batch_size": 8,
                        "data": {"operation": "dict_to_list", "parameters": {"data": local()}},
                    },
                }
            ]
        },
        CATALOG,
    )
    assert plan.roots == ["instructions[0]"]
    assert [n.id for n in plan.subtree("instructions[0]")] == [
        "instructions[0].parameters.data.parameters.data",
        "instructions[0].parameters.data",
        "instructions[0]",
    ]
    assert plan.nodes["instructions[0]"].literals == {"batch_size": 8}
    assert plan.nodes["instructions[0]"].inputs == {"data": "instructions[0].parameters.data"}


def test_a_bare_list_and_a_json_string_are_accepted_like_the_launchpad() -> None:
    assert validate([local()], CATALOG).roots == ["instructions[0]"]
    assert validate(
        '{"instructions": [{"operation": "import_from_local", "parameters": {"path": "x"}}]}',
        CATALOG,
    ).roots == ["instructions[0]"]


def test_unknown_operation_names_close_matches() -> None:
    (problem,) = problems({"instructions": [{"operation": "dict_to_lst", "parameters": {}}]})
    assert problem.path == "instructions[0].operation"
    assert problem.message == "unknown operation 'dict_to_lst'; did you mean 'dict_to_list'?"
    assert problem.received == "'dict_to_lst'"
    assert problem.expected is not None
    assert problem.expected.startswith("one of: import_from_local, ")
    assert "dict_to_list" in problem.expected


def test_missing_and_unknown_parameters() -> None:
    found = problems(
        {
            "instructions": [
                {"operation": "resize_image", "parameters": {"data": local(), "widht": 3}},
                {"operation": "import_from_local"},
            ]
        }
    )
    assert [(p.path, p.message) for p in found] == [
        ("instructions[0].parameters.widht", "unknown parameter 'widht'; did you mean 'width'?"),
        ("instructions[1].parameters.path", "missing required parameter 'path'"),
    ]
    assert found[0].expected == "one of: data, width, height, resample, format, quality"
    assert found[1].expected == "a string"
    assert found[1].received == "nothing"


def test_wrong_literal_type_says_expected_and_received() -> None:
    (problem,) = problems(
        [{"operation": "resize_image", "parameters": {"data": local(), "width": "wide"}}]
    )
    assert problem.path == "instructions[0].parameters.width"
    assert problem.message.startswith(
        "invalid value for parameter 'width' of 'resize_image': Input should be a valid integer"
    )
    assert problem.expected == "an integer >= 1 and <= 16384"
    assert problem.received == '"wide" (string)'


def test_nested_output_that_does_not_fit_its_parameter() -> None:
    batches = {"operation": "batch_formatted_data", "parameters": {"data": local()}}
    (problem,) = problems([{"operation": "resize_image", "parameters": {"data": batches}}])
    assert problem.path == "instructions[0].parameters.data"
    assert problem.message == (
        "the output of 'batch_formatted_data' (batches) does not fit parameter 'data' "
        "of 'resize_image'"
    )
    assert (problem.expected, problem.received) == ("dataset", "batches")


def test_literal_where_a_nested_instruction_is_needed_and_vice_versa() -> None:
    found = problems(
        [
            {"operation": "dict_to_list", "parameters": {"data": "files.zip"}},
            {"operation": "import_from_local", "parameters": {"path": local()}},
        ]
    )
    assert [(p.path, p.message, p.received) for p in found] == [
        (
            "instructions[0].parameters.data",
            "parameter 'data' of 'dict_to_list' takes the output of a nested instruction",
            '"files.zip" (string)',
        ),
        (
            "instructions[1].parameters.path",
            "parameter 'path' of 'import_from_local' takes a literal, not a nested instruction",
            "a nested instruction",
        ),
    ]


def test_every_problem_is_reported_at_once_deep_in_the_tree() -> None:
    deep = {
        "operation": "dict_to_list",
        "parameters": {
            "data": {"operation": "dict_to_list", "parameters": {"data": {"operation": "nope"}}}
        },
    }
    found = problems(
        [deep, {"operation": "resize_image", "parameters": {"data": local(), "height": 0}}]
    )
    assert [p.path for p in found] == [
        "instructions[0].parameters.data.parameters.data.operation",
        "instructions[1].parameters.height",
    ]


def test_malformed_documents() -> None:
    assert [(p.path, p.message) for p in problems({"instr": []})] == [
        ("instr", "unknown key 'instr'"),
        ("instructions", "missing the instruction list"),
    ]
    assert problems({"instructions": []})[0].message == "expected at least one instruction"
    (problem,) = problems({"instructions": [42]})
    assert (problem.path, problem.message, problem.received) == (
        "instructions[0]",
        "expected an instruction",
        "42 (integer)",
    )
    (problem,) = problems(
        {
            "instructions": [
                {"operation": "dict_to_list", "extra": 1, "parameters": {"data": local()}}
            ]
        }
    )
    assert problem.path == "instructions[0].extra"


def test_depth_and_node_limits() -> None:
    tree: dict[str, Any] = local()
    for _ in range(10):
        tree = {"operation": "dict_to_list", "parameters": {"data": tree}}
    (problem,) = problems([tree], Limits(max_depth=5))
    assert problem.message == "instructions are nested deeper than the limit of 5"
    assert problem.path.count(".parameters.data") == 5

    (problem,) = problems([local()] * 11, Limits(max_nodes=10))
    assert (problem.path, problem.message) == (
        "instructions",
        "the tree has more than 10 instructions",
    )


def test_hostile_depth_does_not_exhaust_the_stack() -> None:
    tree: dict[str, Any] = local()
    for _ in range(5000):
        tree = {"operation": "dict_to_list", "parameters": {"data": tree}}
    (problem,) = problems([tree])
    assert "deeper than the limit of 32" in problem.message


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "/", "..", "a/../b", "a/.."])
def test_a_local_path_that_may_leave_the_data_root_is_refused_before_any_run(path: str) -> None:
    found = problems([local(path)])
    assert [(p.path, p.message, p.expected, p.received) for p in found] == [
        (
            "instructions[0].parameters.path",
            f"invalid value for parameter 'path' of 'import_from_local': {path!r} is absolute "
            "or has a '..' segment: give a path relative to the data root, without '..'",
            "a string",
            f'"{path}" (string)',
        )
    ]


@pytest.mark.parametrize("path", ["photos", "photos/2024/a.jpg", ".", "a..b/c", "..hidden", "~"])
def test_a_relative_path_inside_the_data_root_is_accepted(path: str) -> None:
    assert validate([local(path)], CATALOG).roots == ["instructions[0]"]


def test_the_published_pattern_says_what_the_check_does() -> None:
    from orchestrator.operations.local import INSIDE_PATTERN, inside_by_name

    pattern = re.compile(INSIDE_PATTERN)
    samples = ["a", "/a", "..", "../a", "a/..", "a/../b", "a/..\n", "..\n", "\n..", "a/...",
               ".../a", "a//..", "", "./..", "a/b/"]  # fmt: skip
    for sample in samples:
        assert (pattern.search(sample) is not None) == inside_by_name(sample), sample

    @given(st.text(alphabet="./a\n", max_size=12))
    def agree(sample: str) -> None:
        assert (pattern.search(sample) is not None) == inside_by_name(sample)

    agree()


def test_a_nested_instruction_whose_operation_is_not_a_name_is_one_problem() -> None:
    found = problems([{"operation": "dict_to_list", "parameters": {"data": {"operation": {}}}}])
    assert [(p.path, p.message) for p in found] == [
        ("instructions[0].parameters.data.operation", "expected an operation name")
    ]


def test_parameters_take_json_types_as_published_not_coerced_ones() -> None:
    for extract in (0, "true"):
        parameters = {"file_id": "abc", "extract_archives": extract}
        drive = {"operation": "import_from_google_drive", "parameters": parameters}
        assert [p.path for p in problems([drive])] == [
            "instructions[0].parameters.extract_archives"
        ]
    resize: dict[str, Any] = {"operation": "resize_image", "parameters": {"data": local()}}
    resize["parameters"]["width"] = "64"
    assert [p.path for p in problems([resize])] == ["instructions[0].parameters.width"]
    resize["parameters"]["width"] = 64.0  # a number with no fraction is an integer
    assert validate([resize], CATALOG).roots == ["instructions[0]"]
