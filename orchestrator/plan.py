"""A validated instruction document as a DAG of nodes keyed by their JSON path.

Each instruction of the document is one node, keyed by where it is written
(`instructions[1].parameters.data`). A parameter is fed by a nested instruction
written in place, or by a `{"ref": ID}` to an instruction written elsewhere: then
the edge points at that node's path, so a node may feed several consumers and
still runs once. A list parameter is fed by several nodes, in order.

The outline (`outline()`, `from_outline()`) is the plan without its literals,
compact enough to travel with the run in its log:

    node   := [operation, {parameter: input}] | [operation, {parameter: input}, id]
    input  := node | {"ref": PATH} | {"list": [input, ...]}

Paths follow from the nesting; a ref names the path of the node it uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

Inputs = dict[str, str | list[str]]


def root_of(node_id: str) -> str:
    """The top-level instruction a node is written in: `instructions[2]` for any path under it."""
    return node_id.split(".", 1)[0]


def written_at(parent: str, name: str, index: int | None = None) -> str:
    """The path of an instruction nested in place in `parent`'s parameter `name`."""
    path = f"{parent}.parameters.{name}"
    return path if index is None else f"{path}[{index}]"


class PlanNode(BaseModel):
    """One instruction: its literal parameters and the nodes feeding the others."""

    model_config = ConfigDict(frozen=True)

    id: str  # the instruction's JSON path, e.g. "instructions[1].parameters.data"
    operation: str
    literals: dict[str, Any]
    inputs: Inputs  # parameter -> the node feeding it (a list parameter: the nodes, in order)
    label: str | None = None  # the document's "id" of this instruction, by which refs name it
    cache: bool = True  # the document's "cache": false opts out of reusing earlier outputs

    def edges(self) -> Iterator[tuple[str, int | None, str]]:
        """(parameter, index in a list parameter or None, node feeding it), in order."""
        for name, fed in self.inputs.items():
            if isinstance(fed, str):
                yield name, None, fed
            else:
                for index, child in enumerate(fed):
                    yield name, index, child

    def children(self) -> list[str]:
        return [child for _, _, child in self.edges()]

    def is_ref(self, name: str, index: int | None, child: str) -> bool:
        """Whether that input comes through a ref (the node lies elsewhere), not nested here."""
        return child != written_at(self.id, name, index)


class Plan(BaseModel):
    """Top-level instructions in order; every node, and the edges between them."""

    roots: list[str]
    nodes: dict[str, PlanNode]

    def subtree(self, root_id: str) -> list[PlanNode]:
        """The nodes written under (and including) `root_id`, children before parents.

        Refs are not followed: a shared node belongs to the tree it is written in.
        """
        order: list[PlanNode] = []
        stack = [(root_id, False)]
        while stack:
            node_id, expanded = stack.pop()
            node = self.nodes[node_id]
            if expanded:
                order.append(node)
                continue
            stack.append((node_id, True))
            stack.extend(
                (child, False)
                for name, index, child in node.edges()
                if not node.is_ref(name, index, child)
            )
        return order

    def dependencies(self, node_id: str, done: AbstractSet[str] = frozenset()) -> list[str]:
        """Every node `node_id` needs, refs followed, each once, children before parents;
        nodes in `done` (and what only they need) are left out."""
        order: list[str] = []
        seen: set[str] = set()
        stack = [(node_id, False)]
        while stack:
            current, expanded = stack.pop()
            if expanded:
                order.append(current)
                continue
            if current in seen or current in done:
                continue
            seen.add(current)
            stack.append((current, True))
            stack.extend((child, False) for child in reversed(self.nodes[current].children()))
        return order

    @cached_property
    def order(self) -> list[str]:
        """Every node, children before parents (refs followed): a topological order."""
        order: list[str] = []
        done: set[str] = set()
        for root in self.roots:
            needed = self.dependencies(root, done)
            order.extend(needed)
            done.update(needed)
        return order

    def outline(self) -> list[Any]:
        """The plan's shape without its literals (see the module docstring)."""

        def shape(node_id: str) -> list[Any]:
            node = self.nodes[node_id]
            inputs: dict[str, Any] = {}
            for name, fed in node.inputs.items():
                if isinstance(fed, str):
                    inputs[name] = link(node, name, None, fed)
                else:
                    inputs[name] = {"list": [link(node, name, i, c) for i, c in enumerate(fed)]}
            return [node.operation, inputs] + ([node.label] if node.label is not None else [])

        def link(node: PlanNode, name: str, index: int | None, child: str) -> Any:
            return {"ref": child} if node.is_ref(name, index, child) else shape(child)

        return [shape(root) for root in self.roots]

    @classmethod
    def from_outline(cls, outline: list[Any]) -> Plan:
        """The plan an `outline()` describes, with empty literals: enough to report a run."""
        nodes: dict[str, PlanNode] = {}
        roots = [f"instructions[{index}]" for index in range(len(outline))]
        stack: list[tuple[str, list[Any]]] = list(zip(roots, outline, strict=True))
        while stack:
            node_id, (operation, children, *label) = stack.pop()
            inputs: Inputs = {}
            for name, child in children.items():
                if isinstance(child, dict) and "list" in child:
                    paths = [
                        _linked(written_at(node_id, name, i), item, stack)
                        for i, item in enumerate(child["list"])
                    ]
                    inputs[name] = paths
                else:
                    inputs[name] = _linked(written_at(node_id, name), child, stack)
            nodes[node_id] = PlanNode(
                id=node_id,
                operation=operation,
                literals={},
                inputs=inputs,
                label=label[0] if label else None,
            )
        missing = {c for n in nodes.values() for c in n.children()} - set(nodes)
        if missing:
            raise ValueError(f"the outline refers to nodes it does not have: {sorted(missing)}")
        return cls(roots=roots, nodes=nodes)

    def describe(self) -> list[dict[str, Any]]:
        """The plan as the API's `/validate` shows it: each instruction once, with its id;
        an input through a ref as `{"ref": ID, "path": PATH}`."""
        return [self._describe(root) for root in self.roots]

    def _describe(self, node_id: str) -> dict[str, Any]:
        node = self.nodes[node_id]

        def link(name: str, index: int | None, child: str) -> dict[str, Any]:
            if node.is_ref(name, index, child):
                return {"ref": self.nodes[child].label, "path": child}
            return self._describe(child)

        inputs: dict[str, Any] = {}
        for name, fed in node.inputs.items():
            if isinstance(fed, str):
                inputs[name] = link(name, None, fed)
            else:
                inputs[name] = [link(name, i, child) for i, child in enumerate(fed)]
        described: dict[str, Any] = {"path": node.id, "operation": node.operation}
        if node.label is not None:
            described["id"] = node.label
        described["inputs"] = inputs
        return described


def _linked(path: str, child: Any, stack: list[tuple[str, list[Any]]]) -> str:
    """The path of an outline input: where a ref points, or `path` for a nested node."""
    if isinstance(child, dict):
        target = child["ref"]
        if not isinstance(target, str):
            raise TypeError(f"a ref in the outline is not a path: {target!r}")
        return target
    stack.append((path, child))
    return path
