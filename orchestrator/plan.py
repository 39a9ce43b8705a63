"""A validated instruction tree, flattened into nodes keyed by their JSON path."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class PlanNode(BaseModel):
    """One instruction: its literal parameters and the nodes feeding the others."""

    model_config = ConfigDict(frozen=True)

    id: str  # the instruction's JSON path, e.g. "instructions[1].parameters.data"
    operation: str
    literals: dict[str, Any]
    inputs: dict[str, str]  # parameter name -> id of the nested node feeding it


class Plan(BaseModel):
    """Top-level instructions in order, each the root of a tree of nodes."""

    roots: list[str]
    nodes: dict[str, PlanNode]

    def subtree(self, root_id: str) -> list[PlanNode]:
        """Every node under (and including) `root_id`, children before parents."""
        order: list[PlanNode] = []
        stack = [(root_id, False)]
        while stack:
            node_id, expanded = stack.pop()
            node = self.nodes[node_id]
            if expanded:
                order.append(node)
                continue
            stack.append((node_id, True))
            stack.extend((child, False) for child in node.inputs.values())
        return order

    def outline(self) -> list[Any]:
        """The plan's shape without its literals, compact enough to travel with the run
        (in its log): each root as `[operation, {parameter: child}]`. Ids follow from it."""

        def shape(node_id: str) -> list[Any]:
            node = self.nodes[node_id]
            return [node.operation, {name: shape(child) for name, child in node.inputs.items()}]

        return [shape(root) for root in self.roots]

    @classmethod
    def from_outline(cls, outline: list[Any]) -> Plan:
        """The plan an `outline()` describes, with empty literals: enough to report a run."""
        nodes: dict[str, PlanNode] = {}
        roots = [f"instructions[{index}]" for index in range(len(outline))]
        stack = list(zip(roots, outline, strict=True))
        while stack:
            node_id, (operation, children) = stack.pop()
            inputs = {name: f"{node_id}.parameters.{name}" for name in children}
            nodes[node_id] = PlanNode(id=node_id, operation=operation, literals={}, inputs=inputs)
            stack.extend((inputs[name], child) for name, child in children.items())
        return cls(roots=roots, nodes=nodes)

    def describe(self) -> list[dict[str, Any]]:
        """The plan as the API's `/validate` shows it."""
        return [self._describe(root) for root in self.roots]

    def _describe(self, node_id: str) -> dict[str, Any]:
        node = self.nodes[node_id]
        return {
            "path": node.id,
            "operation": node.operation,
            "inputs": {name: self._describe(child) for name, child in node.inputs.items()},
        }
