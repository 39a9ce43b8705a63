"""Whole-document validation: every problem at once, each with its JSON path.

The walk is iterative, so a hostile depth cannot exhaust the stack, and it stops
counting at the node limit, so a hostile size costs bounded time.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.catalog.registry import Catalog, InputField, Operation
from orchestrator.errors import InstructionsInvalid, Problem
from orchestrator.plan import Plan, PlanNode

INSTRUCTION_SHAPE = '{"operation": NAME, "parameters": {NAME: VALUE}}'
REF_SHAPE = '{"ref": ID}'
ID_PATTERN = "^[A-Za-z0-9_-]{1,64}$"  # an instruction's "id"; the OpenAPI document says it too
ID_REGEX = re.compile(ID_PATTERN)
ID_WORDS = "a string of 1 to 64 letters, digits, '_' or '-'"
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


def is_ref(value: Any) -> bool:
    """A parameter value `{"ref": ID}` uses the output of the instruction with that id."""
    return isinstance(value, dict) and "ref" in value and "operation" not in value


def validate(raw: Any, catalog: Catalog, limits: Limits = Limits()) -> Plan:
    """Check a whole request and return its plan, or raise InstructionsInvalid.

    Sharing an output: an instruction may carry `"id"`, and a parameter value
    `{"ref": ID}` anywhere else uses that instruction's output. A ref is a
    dependency: the referenced instruction runs first, whatever its place, and
    once. So a top-level instruction may use a later one's output: that later
    instruction then runs before it, and is not run again at its own turn.
    Unknown and duplicate ids, refs that make a cycle (a ref to the instruction's
    own ancestor is one) and outputs that do not fit through a ref are problems.
    """
    return _Validator(catalog, limits).run(raw)


@dataclass
class _Draft:
    """A node while the walk goes on: its ref inputs are filled in once every id is known."""

    operation: str
    literals: dict[str, Any]
    inputs: dict[str, Any]  # parameter -> path, or a list of paths; None where a ref goes
    label: str | None
    cache: bool = True  # the instruction's "cache" (false: never reuse an earlier run's output)


@dataclass(frozen=True)
class _Ref:
    """A `{"ref": ID}` found in the walk, to resolve once every id is known."""

    path: str  # where the ref is written
    target: str  # the id it names
    consumer: str  # the node it feeds
    key: str
    index: int | None
    field: InputField
    operation: str  # the consumer's


class _Validator:
    def __init__(self, catalog: Catalog, limits: Limits):
        self.catalog = catalog
        self.limits = limits
        self.problems: list[Problem] = []
        self.drafts: dict[str, _Draft] = {}
        self.ids: dict[str, str] = {}  # id -> the path of the instruction that has it
        self.operations: dict[str, str] = {}  # path -> operation, where it is known
        self.refs: list[_Ref] = []
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
            self._resolve_refs()
            self._find_cycles()
        if self.problems:
            raise InstructionsInvalid(self.problems)
        nodes = {
            path: PlanNode(
                id=path,
                operation=draft.operation,
                literals=draft.literals,
                inputs=draft.inputs,
                label=draft.label,
                cache=draft.cache,
            )
            for path, draft in self.drafts.items()
        }
        return Plan(roots=roots, nodes=nodes)

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
        if is_ref(value):
            self.problem(
                path,
                "expected an instruction, not a ref (a ref is a parameter value)",
                INSTRUCTION_SHAPE,
                "a ref",
            )
            return []
        if not isinstance(value, dict):
            self.problem(
                path, "expected an instruction", INSTRUCTION_SHAPE, describe_received(value)
            )
            return []
        for key in sorted(set(value) - {"operation", "parameters", "id", "cache"}):
            self.problem(
                f"{path}.{key}",
                f"unknown key '{key}' in an instruction",
                INSTRUCTION_SHAPE,
                f"'{key}'",
            )
        label = self._label(value, path)
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
        op = self._operation(name, path)
        nested: list[tuple[Any, str, int]] = []
        if op is None:
            # Its parameters cannot be checked, but the instructions nested in them can.
            for key, val in parameters.items():
                if is_instruction(val):
                    nested.append((val, f"{path}.parameters.{key}", depth + 1))
            return list(reversed(nested))
        self.operations[path] = op.name
        draft = _Draft(op.name, {}, {}, label)
        draft.cache = self._cache(value, path)
        self.drafts[path] = draft
        literals = self._check_parameters(op, parameters, path, depth, draft, nested)
        draft.literals = literals
        return list(reversed(nested))

    def _label(self, value: dict[str, Any], path: str) -> str | None:
        """The instruction's "id", if it has a valid one; registered for refs."""
        if "id" not in value:
            return None
        label = value["id"]
        if not isinstance(label, str) or not ID_REGEX.fullmatch(label):
            self.problem(f"{path}.id", "invalid id", ID_WORDS, describe_received(label))
            return None
        first = self.ids.setdefault(label, path)
        if first != path:
            self.problem(
                f"{path}.id",
                f"duplicate id '{label}': {first} has it too",
                "an id no other instruction has",
                f"'{label}'",
            )
        return label

    def _cache(self, value: dict[str, Any], path: str) -> bool:
        """The instruction's "cache" flag: true unless it says false."""
        if "cache" not in value:
            return True
        cache = value["cache"]
        if not isinstance(cache, bool):
            self.problem(
                f"{path}.cache",
                "expected true or false",
                "a boolean (false: run it even if an earlier run made the same output)",
                describe_received(cache),
            )
            return True
        return cache

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
        path: str,
        depth: int,
        draft: _Draft,
        nested: list[tuple[Any, str, int]],
    ) -> dict[str, Any]:
        """Check each parameter; record the nodes and refs feeding them; return the literals."""
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
                if is_instruction(val):
                    nested.append((val, where, depth + 1))
            elif field is None and (is_instruction(val) or is_ref(val)):
                kind = "a nested instruction" if is_instruction(val) else "a ref"
                self.problem(
                    where,
                    f"parameter '{key}' of '{op.name}' takes a literal, not {kind}",
                    _field_type(op, key),
                    kind,
                )
                if is_instruction(val):
                    nested.append((val, where, depth + 1))
            elif field is not None and field.many and isinstance(val, list):
                self._check_length(op, key, val, where)
                draft.inputs[key] = [
                    self._input(op, field, key, i, item, f"{where}[{i}]", path, depth, nested)
                    for i, item in enumerate(val)
                ]
            elif field is not None and field.many and (is_instruction(val) or is_ref(val)):
                self.problem(
                    where,
                    f"parameter '{key}' of '{op.name}' takes an array of inputs",
                    _many_words(field),
                    "a nested instruction" if is_instruction(val) else "a ref",
                )
                if is_instruction(val):
                    nested.append((val, where, depth + 1))
            elif field is not None and (is_instruction(val) or is_ref(val)):
                draft.inputs[key] = self._input(
                    op, field, key, None, val, where, path, depth, nested
                )
            elif field is not None and not field.accepts_literal:
                words = (
                    "an array of nested instructions or refs"
                    if field.many
                    else ("the output of a nested instruction")
                )
                self.problem(
                    where,
                    f"parameter '{key}' of '{op.name}' takes {words}",
                    _many_words(field)
                    if field.many
                    else (f"a nested instruction or a ref whose output is {field.accepted_names}"),
                    describe_received(val),
                )
            else:
                literals[key] = val
        self._check_literals(op, parameters, literals, path)
        return literals

    def _input(
        self,
        op: Operation,
        field: InputField,
        key: str,
        index: int | None,
        val: Any,
        where: str,
        path: str,
        depth: int,
        nested: list[tuple[Any, str, int]],
    ) -> str | None:
        """One input of a value parameter: the path of the node feeding it (None for a ref,
        resolved later); a nested instruction is queued for the walk."""
        if is_instruction(val):
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
            nested.append((val, where, depth + 1))
            return where
        if is_ref(val):
            for extra in sorted(set(val) - {"ref"}):
                self.problem(
                    f"{where}.{extra}", f"unknown key '{extra}' in a ref", REF_SHAPE, f"'{extra}'"
                )
            target = val["ref"]
            if not isinstance(target, str):
                self.problem(
                    f"{where}.ref",
                    "expected the id of an instruction",
                    ID_WORDS,
                    describe_received(target),
                )
                return None
            self.refs.append(_Ref(where, target, path, key, index, field, op.name))
            return None
        self.problem(
            where,
            f"each input of parameter '{key}' of '{op.name}' is a nested instruction or a ref",
            f"a nested instruction or a ref whose output is {field.accepted_names}",
            describe_received(val),
        )
        return None

    def _check_length(self, op: Operation, key: str, val: list[Any], where: str) -> None:
        schema = _properties(op.params).get(key, {})
        low, high = schema.get("minItems"), schema.get("maxItems")
        if (low is not None and len(val) < low) or (high is not None and len(val) > high):
            self.problem(
                where,
                f"parameter '{key}' of '{op.name}' takes {_count_words(low, high)} inputs",
                f"{_count_words(low, high)} inputs",
                f"{len(val)}",
            )

    def _check_literals(
        self,
        op: Operation,
        parameters: dict[str, Any],
        literals: dict[str, Any],
        path: str,
    ) -> None:
        try:
            # Strict: JSON's types as the published schema says them (no "3" for 3, no
            # 0 for false); a number with no fraction is an integer, as in JSON Schema.
            op.params.model_validate({k: _integral(v) for k, v in literals.items()}, strict=True)
        except ValidationError as exc:
            for error in exc.errors():
                loc = error["loc"]
                key = str(loc[0]) if loc else ""
                if key in parameters and key not in literals:
                    continue  # fed by a nested instruction or a ref, or reported above
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

    def _resolve_refs(self) -> None:
        """Point each ref at the node with its id, checking that its output fits."""
        ids = list(self.ids)
        for ref in self.refs:
            target = self.ids.get(ref.target)
            if target is None:
                self.problem(
                    f"{ref.path}.ref",
                    f"unknown id '{ref.target}'{close_matches(ref.target, ids)}",
                    "the id of an instruction: " + ", ".join(ids)
                    if ids
                    else ("the id of an instruction (no instruction has an id)"),
                    f"'{ref.target}'",
                )
                continue
            consumer = self.drafts[ref.consumer]
            if ref.index is None:
                consumer.inputs[ref.key] = target
            else:
                consumer.inputs[ref.key][ref.index] = target
            operation = self.operations.get(target)
            output = self.catalog[operation].output if operation else None
            if output is not None and not ref.field.fits(output):
                self.problem(
                    ref.path,
                    f"the output of '{ref.target}' ({operation} at {target}: {output.type_name}) "
                    f"does not fit parameter '{ref.key}' of '{ref.operation}'",
                    ref.field.accepted_names,
                    output.type_name,
                )

    def _find_cycles(self) -> None:
        """Refs that make a node need its own output: each cycle once, at a ref on it."""
        refs = {(r.consumer, r.key, r.index): r for r in self.refs}
        state: dict[str, bool] = {}  # path -> finished (False while on the current path)
        for start in self.drafts:
            if start in state:
                continue
            state[start] = False
            trail: list[tuple[str, _Ref | None]] = [(start, None)]  # node, the ref that led there
            stack = [iter(self._edges(start, refs))]
            while stack:
                step = next(stack[-1], None)
                if step is None:
                    state[trail.pop()[0]] = True
                    stack.pop()
                    continue
                child, ref = step
                if child not in state:
                    state[child] = False
                    trail.append((child, ref))
                    stack.append(iter(self._edges(child, refs)))
                elif not state[child]:
                    loop = trail[[n for n, _ in trail].index(child) :]
                    self._cycle([n for n, _ in loop] + [child], [r for _, r in loop[1:]] + [ref])

    def _edges(
        self, path: str, refs: dict[tuple[str, str, int | None], _Ref]
    ) -> list[tuple[str, _Ref | None]]:
        draft = self.drafts.get(path)
        if draft is None:
            return []
        edges: list[tuple[str, _Ref | None]] = []
        for key, fed in draft.inputs.items():
            for index, child in enumerate(fed) if isinstance(fed, list) else [(None, fed)]:
                if child in self.drafts:
                    edges.append((child, refs.get((path, key, index))))
        return edges

    def _cycle(self, paths: list[str], via: list[_Ref | None]) -> None:
        ref = next(r for r in reversed(via) if r is not None)  # a cycle always has one
        self.problem(
            ref.path,
            f"ref '{ref.target}' makes a cycle, each using the next one's output: "
            + " -> ".join(paths),
            "a ref to an instruction that does not need this one",
            f"a cycle of {len(paths) - 1} instruction(s)",
        )


def _many_words(field: InputField) -> str:
    return f"an array of nested instructions or refs whose output is {field.accepted_names}"


def _count_words(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low} to {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


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
