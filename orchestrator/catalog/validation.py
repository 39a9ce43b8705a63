"""Whole-tree validation: every problem at once, each with its JSON path.

The walk is iterative, so a hostile depth cannot exhaust the stack, and it stops
counting at the node limit, so a hostile size costs bounded time.
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.catalog.registry import Catalog, Operation
from orchestrator.errors import InstructionsInvalid, Problem
from orchestrator.plan import Plan, PlanNode

INSTRUCTION_SHAPE = '{"operation": NAME, "parameters": {NAME: VALUE}}'
ROOT_PATH = "$"


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a hostile tree from being executed."""

    max_depth: int = 32
    max_nodes: int = 10_000


def describe_received(value: Any, limit: int = 60) -> str:
    """A short, JSON-flavoured description of what a user sent."""
    kind = {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        type(None): "null",
    }.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        return kind
    text = json.dumps(value) if kind != type(value).__name__ else repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({kind})"


def close_matches(name: str, options: list[str]) -> str:
    matches = difflib.get_close_matches(name, options, n=3, cutoff=0.6)
    if not matches:
        return ""
    return "; did you mean " + " or ".join(f"'{m}'" for m in matches) + "?"


def is_instruction(value: Any) -> bool:
    """A parameter value that is an object with an "operation" key is nested."""
    return isinstance(value, dict) and "operation" in value


def validate(raw: Any, catalog: Catalog, limits: Limits = Limits()) -> Plan:
    """Check a whole request and return its plan, or raise InstructionsInvalid."""
    return _Validator(catalog, limits).run(raw)


class _Validator:
    def __init__(self, catalog: Catalog, limits: Limits):
        self.catalog = catalog
        self.limits = limits
        self.problems: list[Problem] = []
        self.nodes: dict[str, PlanNode] = {}
        self.count = 0

    def problem(self, path: str, message: str, expected: str | None, received: str | None) -> None:
        self.problems.append(Problem(path, message, expected, received))

    def run(self, raw: Any) -> Plan:
        instructions = self._instruction_list(raw)
        roots: list[str] = []
        if instructions is not None:
            stack: list[tuple[Any, str, int]] = []
            for index in reversed(range(len(instructions))):
                stack.append((instructions[index], f"instructions[{index}]", 1))
            roots = [f"instructions[{i}]" for i in range(len(instructions))]
            while stack:
                value, path, depth = stack.pop()
                self.count += 1
                if self.count > self.limits.max_nodes:
                    self.problem(
                        "instructions",
                        f"the tree has more than {self.limits.max_nodes} instructions",
                        f"at most {self.limits.max_nodes} instructions",
                        "more",
                    )
                    break
                stack.extend(self._node(value, path, depth))
        if self.problems:
            raise InstructionsInvalid(self.problems)
        return Plan(roots=roots, nodes=self.nodes)

    def _instruction_list(self, raw: Any) -> list[Any] | None:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                self.problem(ROOT_PATH, f"not valid JSON: {exc}", "a JSON document", "text")
                return None
        if isinstance(raw, dict):
            extra = sorted(set(raw) - {"instructions"})
            for key in extra:
                self.problem(
                    f"{key}", f"unknown key '{key}'", '{"instructions": [...]}', f"'{key}'"
                )
            if "instructions" not in raw:
                self.problem(
                    "instructions",
                    "missing the instruction list",
                    '{"instructions": [...]}',
                    "nothing",
                )
                return None
            raw = raw["instructions"]
        if not isinstance(raw, list):
            self.problem(
                "instructions",
                "expected a list of instructions",
                "an array of instruction objects",
                describe_received(raw),
            )
            return None
        if not raw:
            self.problem(
                "instructions", "expected at least one instruction", "a non-empty array", "[]"
            )
        return raw

    def _node(self, value: Any, path: str, depth: int) -> list[tuple[Any, str, int]]:
        """Check one instruction; return its nested instructions to visit next."""
        if depth > self.limits.max_depth:
            self.problem(
                path,
                f"instructions are nested deeper than the limit of {self.limits.max_depth}",
                f"at most {self.limits.max_depth} levels",
                f"level {depth}",
            )
            return []
        if not isinstance(value, dict):
            self.problem(
                path, "expected an instruction", INSTRUCTION_SHAPE, describe_received(value)
            )
            return []
        for key in sorted(set(value) - {"operation", "parameters"}):
            self.problem(
                f"{path}.{key}",
                f"unknown key '{key}' in an instruction",
                INSTRUCTION_SHAPE,
                f"'{key}'",
            )
        name = value.get("operation")
        parameters = value.get("parameters", {})
        if not isinstance(parameters, dict):
            self.problem(
                f"{path}.parameters",
                "expected an object of parameters",
                "an object {NAME: VALUE}",
                describe_received(parameters),
            )
            parameters = {}
        nested = {
            key: (val, f"{path}.parameters.{key}", depth + 1)
            for key, val in parameters.items()
            if is_instruction(val)
        }
        op = self._operation(name, path)
        if op is not None:
            self._check_parameters(op, parameters, nested, path)
            self.nodes[path] = PlanNode(
                id=path,
                operation=op.name,
                literals={k: v for k, v in parameters.items() if k not in nested},
                inputs={k: child[1] for k, child in nested.items()},
            )
        return list(reversed(nested.values()))

    def _operation(self, name: Any, path: str) -> Operation | None:
        if not isinstance(name, str):
            self.problem(
                f"{path}.operation",
                "expected an operation name",
                "a string naming an operation",
                "nothing" if name is None else describe_received(name),
            )
            return None
        op = self.catalog.get(name)
        if op is None:
            self.problem(
                f"{path}.operation",
                f"unknown operation '{name}'{close_matches(name, self.catalog.names)}",
                "one of: " + ", ".join(self.catalog.names),
                f"'{name}'",
            )
        return op

    def _check_parameters(
        self,
        op: Operation,
        parameters: dict[str, Any],
        nested: dict[str, tuple[Any, str, int]],
        path: str,
    ) -> None:
        fields = list(op.params.model_fields)
        literals = {}
        for key, val in parameters.items():
            where = f"{path}.parameters.{key}"
            field = op.inputs.get(key)
            if key not in fields:
                self.problem(
                    where,
                    f"unknown parameter '{key}'{close_matches(key, fields)}",
                    "one of: " + ", ".join(fields) if fields else "no parameters",
                    f"'{key}'",
                )
            elif key in nested and field is None:
                self.problem(
                    where,
                    f"parameter '{key}' of '{op.name}' takes a literal, not a nested instruction",
                    _field_type(op, key),
                    "a nested instruction",
                )
            elif key in nested and field is not None:
                child_name = val.get("operation")  # its own problem if not a name
                child_op = self.catalog.get(child_name) if isinstance(child_name, str) else None
                if child_op is not None and not field.fits(child_op.output):
                    self.problem(
                        where,
                        f"the output of '{child_op.name}' ({child_op.output.type_name}) "
                        f"does not fit parameter '{key}' of '{op.name}'",
                        field.accepted_names,
                        child_op.output.type_name,
                    )
            elif field is not None and not field.accepts_literal:
                self.problem(
                    where,
                    f"parameter '{key}' of '{op.name}' takes the output of a nested instruction",
                    f"a nested instruction whose output is {field.accepted_names}",
                    describe_received(val),
                )
            else:
                literals[key] = val
        try:
            # Strict: JSON's types as the published schema says them (no "3" for 3, no
            # 0 for false); a number with no fraction is an integer, as in JSON Schema.
            op.params.model_validate({k: _integral(v) for k, v in literals.items()}, strict=True)
        except ValidationError as exc:
            for error in exc.errors():
                loc = error["loc"]
                key = str(loc[0]) if loc else ""
                if key in parameters and key not in literals:
                    continue  # fed by a nested instruction, or reported above
                where = f"{path}.parameters" + "".join(
                    f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc
                )
                if error["type"] == "missing":
                    self.problem(
                        where,
                        f"missing required parameter '{key}'",
                        _field_type(op, key),
                        "nothing",
                    )
                else:
                    self.problem(
                        where,
                        f"invalid value for parameter '{key}' of '{op.name}': {error['msg']}",
                        _field_type(op, key),
                        describe_received(error.get("input")),
                    )


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _field_type(op: Operation, key: str) -> str:
    """A field's expected type in words, from its JSON Schema."""
    schema = _properties(op.params).get(key, {})
    return _schema_words(schema) or "a value"


@functools.cache
def _properties(params: type[BaseModel]) -> dict[str, Any]:
    properties: dict[str, Any] = params.model_json_schema().get("properties", {})
    return properties


def _schema_words(schema: dict[str, Any]) -> str:
    words = {
        "integer": "an integer",
        "number": "a number",
        "string": "a string",
        "boolean": "a boolean",
        "array": "an array",
        "object": "an object",
    }
    if "x-constellation-type" in schema:
        return f"a nested instruction whose output is {schema['x-constellation-type']}"
    if "anyOf" in schema:
        return " or ".join(filter(None, (_schema_words(s) for s in schema["anyOf"])))
    if "enum" in schema:
        return "one of: " + ", ".join(json.dumps(v) for v in schema["enum"])
    text = words.get(schema.get("type", ""), "")
    bounds = []
    if "minimum" in schema:
        bounds.append(f">= {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        bounds.append(f"> {schema['exclusiveMinimum']}")
    if "maximum" in schema:
        bounds.append(f"<= {schema['maximum']}")
    if bounds and text:
        text += " " + " and ".join(bounds)
    return text
