"""The plan as a DAG, and its outline: what a run logs first and GET /runs/{id} reads back."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from orchestrator.catalog import Catalog, Dataset, operation, validate
from orchestrator.context import OperationContext
from orchestrator.events import parse_plan, plan_message
from orchestrator.plan import Plan


class LeafParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


class PairParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    left: Dataset
    right: Dataset


class ManyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Dataset]


@operation(name="leaf", output=Dataset)
def leaf(params: LeafParams, ctx: OperationContext) -> Dataset:
    """Plans are not run here."""
    raise AssertionError


@operation(name="pair", output=Dataset)
def pair(params: PairParams, ctx: OperationContext) -> Dataset:
    """Plans are not run here."""
    raise AssertionError


@operation(name="many", output=Dataset)
def many(params: ManyParams, ctx: OperationContext) -> Dataset:
    """Plans are not run here."""
    raise AssertionError


CATALOG = Catalog([leaf, pair, many])


@st.composite
def documents(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Trees of leaf/pair/many whose ids are shared through refs by later instructions
    (never by one's own tree, so no cycle), lists of values included."""
    names = itertools.count()
    shared: list[str] = []
    instructions = []

    def value(depth: int, usable: list[str]) -> Any:
        if usable and draw(st.booleans()):
            return {"ref": draw(st.sampled_from(usable))}
        return node(depth + 1, usable)

    def node(depth: int, usable: list[str]) -> dict[str, Any]:
        kind = draw(st.sampled_from(["leaf", "pair", "many"] if depth < 3 else ["leaf"]))
        if kind == "leaf":
            parameters: dict[str, Any] = {"name": f"n{next(names)}"}
        elif kind == "pair":
            parameters = {"left": value(depth, usable), "right": value(depth, usable)}
        else:
            count = draw(st.integers(0, 3))
            parameters = {"items": [value(depth, usable) for _ in range(count)]}
        instruction: dict[str, Any] = {"operation": kind, "parameters": parameters}
        if draw(st.booleans()):
            instruction["id"] = label = f"id-{next(names)}"
            created.append(label)
        return instruction

    for _ in range(draw(st.integers(1, 4))):
        created: list[str] = []
        instructions.append(node(0, list(shared)))
        shared += created
    return instructions


def shape(plan: Plan) -> dict[str, Any]:
    return {n.id: (n.operation, n.inputs, n.label) for n in plan.nodes.values()}


@settings(max_examples=200, deadline=None)
@given(documents())
def test_the_outline_carries_ids_and_refs_there_and_back(document: list[dict[str, Any]]) -> None:
    plan = validate(document, CATALOG)
    carried = parse_plan(plan_message("planned", plan))
    assert carried is not None
    assert carried.roots == plan.roots
    assert shape(carried) == shape(plan)
    assert carried.describe() == plan.describe()
    assert carried.order == plan.order
    position = {node_id: i for i, node_id in enumerate(plan.order)}
    for node in plan.nodes.values():
        assert all(position[child] < position[node.id] for child in node.children())


def test_the_outline_is_compact_and_names_refs_by_path() -> None:
    document = [
        {"operation": "leaf", "parameters": {"name": "a"}, "id": "photos"},
        {
            "operation": "many",
            "parameters": {"items": [{"ref": "photos"}, {"operation": "leaf", "parameters": {}}]},
        },
    ]
    document[1]["parameters"]["items"][1]["parameters"] = {"name": "b"}
    assert validate(document, CATALOG).outline() == [
        ["leaf", {}, "photos"],
        ["many", {"items": {"list": [{"ref": "instructions[0]"}, ["leaf", {}]]}}],
    ]


def test_an_outline_from_before_refs_is_still_read() -> None:
    carried = Plan.from_outline([["pair", {"left": ["leaf", {}], "right": ["leaf", {}]}]])
    assert carried.nodes["instructions[0]"].inputs == {
        "left": "instructions[0].parameters.left",
        "right": "instructions[0].parameters.right",
    }


def test_an_outline_with_a_ref_to_nowhere_is_not_a_plan() -> None:
    assert parse_plan('planned\nconstellation-plan: [["pair", {"left": {"ref": "x"}}]]') is None
    assert parse_plan('planned\nconstellation-plan: [["pair", []]]') is None
