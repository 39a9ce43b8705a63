"""A saved pipeline's definition: declared parameters and `{"param": NAME}` placeholders.

`check_definition` runs when a pipeline is saved: the body's shape, each declaration,
each placeholder (an unknown name, a declared parameter no placeholder uses) and the
instructions themselves, validated with the catalog after each placeholder is replaced
by its parameter's default (or, without one, by a stand-in whose problems are not
reported: the argument is checked when the pipeline runs). `bind` runs when it runs:
the arguments against the declarations, then the instructions they make. Every
problem has its JSON path, as `validate` reports them.
"""

from __future__ import annotations

import copy
import functools
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from orchestrator.catalog.registry import Catalog
from orchestrator.catalog.validation import (
    Limits,
    close_matches,
    describe_received,
    is_instruction,
    validate,
)
from orchestrator.errors import InstructionsInvalid, Problem

NAME_PATTERN = "^[A-Za-z0-9_-]{1,64}$"
NAME_REGEX = re.compile(NAME_PATTERN)
NAME_WORDS = "1 to 64 letters, digits, '_' or '-'"
PLACEHOLDER_SHAPE = '{"param": NAME}'
DECLARATION_SHAPE = '{"type": TYPE, "default": VALUE, "description": TEXT}'
TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
}
# What replaces a placeholder without a default while the instructions are checked at save.
STAND_INS: dict[str, Any] = {
    "string": "x",
    "integer": 1,
    "number": 1,
    "boolean": False,
    "array": [],
    "object": {},
}
DEFAULT_LIMITS = Limits()
BODY_KEYS = ("name", "description", "parameters", "instructions")


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    description: str = ""
    has_default: bool = False
    default: Any = None

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.has_default:
            shown["default"] = self.default
        return shown

    @classmethod
    def from_dict(cls, name: str, raw: dict[str, Any]) -> Parameter:
        return cls(
            name, raw["type"], raw.get("description", ""), "default" in raw, raw.get("default")
        )


@dataclass(frozen=True)
class Placeholder:
    path: str  # where it is written, e.g. instructions[0].parameters.width
    name: str
    operation: str | None  # set when it is the value of an operation's parameter
    parameter: str | None


@dataclass(frozen=True)
class Definition:
    """A checked definition: what a version stores."""

    description: str
    parameters: dict[str, Parameter]
    document: dict[str, Any]

    def parameters_dict(self) -> dict[str, Any]:
        return {name: p.as_dict() for name, p in self.parameters.items()}


def is_placeholder(value: Any) -> bool:
    return isinstance(value, dict) and "param" in value and "operation" not in value


def type_fits(kind: str, value: Any) -> bool:
    """JSON's types: booleans are not numbers; 3.0 is an integer, as in JSON Schema."""
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "number":
        return isinstance(value, int | float)
    expected = {"string": str, "array": list, "object": dict}.get(kind)
    return expected is not None and isinstance(value, expected)


def parameters_from_dicts(raw: dict[str, Any]) -> dict[str, Parameter]:
    return {name: Parameter.from_dict(name, spec) for name, spec in raw.items()}


def check_name(name: Any, path: str = "name") -> list[Problem]:
    if isinstance(name, str) and NAME_REGEX.fullmatch(name):
        return []
    return [Problem(path, "invalid name", NAME_WORDS, describe_received(name))]


def check_definition(
    body: Any, catalog: Catalog, limits: Limits = DEFAULT_LIMITS, *, name_required: bool = True
) -> Definition:
    """The definition in a POST/PUT body, or InstructionsInvalid with every problem."""
    if not isinstance(body, dict):
        raise InstructionsInvalid(
            [
                Problem(
                    "$",
                    "expected a pipeline",
                    '{"name": NAME, "parameters": {...}, "instructions": [...]}',
                    describe_received(body),
                )
            ]
        )
    problems: list[Problem] = []
    for key in sorted(set(body) - set(BODY_KEYS)):
        problems.append(
            Problem(
                key,
                f"unknown key '{key}'{close_matches(key, list(BODY_KEYS))}",
                "one of: " + ", ".join(BODY_KEYS),
                f"'{key}'",
            )
        )
    if name_required or "name" in body:
        problems += check_name(body.get("name"))
    description = body.get("description", "")
    if not isinstance(description, str):
        problems.append(
            Problem("description", "expected text", "a string", describe_received(description))
        )
        description = ""
    parameters = _declarations(body.get("parameters", {}), problems)
    if "instructions" not in body:
        problems.append(
            Problem("instructions", "missing the instruction list", "an array", "nothing")
        )
        raise InstructionsInvalid(problems)
    document = {"instructions": body["instructions"]}
    placeholders = find_placeholders(document, problems)
    used = {p.name for p in placeholders}
    declared = list(parameters)
    # A name declared badly is reported at its declaration, not again at each use.
    written = list(body["parameters"]) if isinstance(body.get("parameters"), dict) else []
    for placeholder in placeholders:
        if placeholder.name not in written:
            problems.append(
                Problem(
                    f"{placeholder.path}.param",
                    f"unknown parameter '{placeholder.name}'"
                    f"{close_matches(placeholder.name, declared)}",
                    "a declared parameter: " + ", ".join(declared)
                    if declared
                    else 'a parameter declared under "parameters" (none is)',
                    f"'{placeholder.name}'",
                )
            )
    for name in written:
        if name not in used:
            problems.append(
                Problem(
                    f"parameters.{name}",
                    f"parameter '{name}' is declared but no placeholder uses it",
                    f'{{"param": "{name}"}} somewhere in the instructions',
                    "no placeholder",
                )
            )
    problems += _type_mismatches(placeholders, parameters, catalog)
    values = {
        name: p.default if p.has_default else STAND_INS[p.type] for name, p in parameters.items()
    }
    quiet = [
        p for p in placeholders if p.name not in parameters or not parameters[p.name].has_default
    ]
    for problem in _instruction_problems(document, placeholders, values, catalog, limits):
        if any(_under(problem.path, q.path) for q in quiet):
            continue
        source = next((p for p in placeholders if _under(problem.path, p.path)), None)
        if source is not None:
            problem = Problem(
                problem.path,
                problem.message,
                problem.expected,
                f"{problem.received} (the default of parameter '{source.name}')",
            )
        problems.append(problem)
    if problems:
        raise InstructionsInvalid(problems)
    return Definition(description, parameters, document)


def bind(
    parameters: dict[str, Parameter],
    document: dict[str, Any],
    arguments: Any,
    catalog: Catalog,
    limits: Limits = DEFAULT_LIMITS,
) -> dict[str, Any]:
    """The instructions with the arguments (or defaults) in place, validated; or
    InstructionsInvalid with problems at `arguments.NAME` for what the arguments caused."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise InstructionsInvalid(
            [
                Problem(
                    "arguments", "expected an object", "{NAME: VALUE}", describe_received(arguments)
                )
            ]
        )
    problems: list[Problem] = []
    declared = list(parameters)
    for name in arguments:
        if name not in parameters:
            problems.append(
                Problem(
                    f"arguments.{name}",
                    f"unknown argument '{name}'{close_matches(name, declared)}",
                    "one of: " + ", ".join(declared) if declared else "no arguments",
                    f"'{name}'",
                )
            )
    values: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if name in arguments:
            value = arguments[name]
            if not type_fits(parameter.type, value):
                problems.append(
                    Problem(
                        f"arguments.{name}",
                        f"argument '{name}' has the wrong type",
                        TYPE_WORDS[parameter.type],
                        describe_received(value),
                    )
                )
            values[name] = value
        elif parameter.has_default:
            values[name] = parameter.default
        else:
            problems.append(
                Problem(
                    f"arguments.{name}",
                    f"missing argument '{name}'"
                    + (f": {parameter.description}" if parameter.description else ""),
                    TYPE_WORDS[parameter.type],
                    "nothing",
                )
            )
    if problems:
        raise InstructionsInvalid(problems)
    placeholders = find_placeholders(document, [])
    bound: dict[str, Any] = substitute(document, values)
    try:
        validate(bound, catalog, limits)
    except InstructionsInvalid as exc:
        raise InstructionsInvalid(
            [_to_argument(p, placeholders, arguments) for p in exc.problems]
        ) from exc
    return bound


def _to_argument(
    problem: Problem, placeholders: list[Placeholder], arguments: dict[str, Any]
) -> Problem:
    """A problem inside an argument's value, reported at `arguments.NAME`."""
    for placeholder in placeholders:
        if placeholder.name in arguments and _under(problem.path, placeholder.path):
            rest = problem.path[len(placeholder.path) :]
            return Problem(
                f"arguments.{placeholder.name}{rest}",
                f"{problem.message} (used at {problem.path})",
                problem.expected,
                problem.received,
            )
    return problem


def _declarations(raw: Any, problems: list[Problem]) -> dict[str, Parameter]:
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                "parameters",
                "expected an object of parameters",
                f"{{NAME: {DECLARATION_SHAPE}}}",
                describe_received(raw),
            )
        )
        return {}
    found: dict[str, Parameter] = {}
    for name, spec in raw.items():
        path = f"parameters.{name}"
        if not NAME_REGEX.fullmatch(name):
            problems.append(Problem(path, "invalid parameter name", NAME_WORDS, f"'{name}'"))
            continue
        if not isinstance(spec, dict):
            problems.append(
                Problem(path, "expected a declaration", DECLARATION_SHAPE, describe_received(spec))
            )
            continue
        for key in sorted(set(spec) - {"type", "default", "description"}):
            problems.append(
                Problem(
                    f"{path}.{key}",
                    f"unknown key '{key}' in a parameter",
                    DECLARATION_SHAPE,
                    f"'{key}'",
                )
            )
        kind = spec.get("type")
        if kind not in TYPE_WORDS:
            problems.append(
                Problem(
                    f"{path}.type",
                    "unknown parameter type"
                    + (close_matches(kind, list(TYPE_WORDS)) if isinstance(kind, str) else ""),
                    "one of: " + ", ".join(TYPE_WORDS),
                    "nothing" if kind is None else describe_received(kind),
                )
            )
            continue
        description = spec.get("description", "")
        if not isinstance(description, str):
            problems.append(
                Problem(
                    f"{path}.description",
                    "expected text",
                    "a string",
                    describe_received(description),
                )
            )
            description = ""
        if "default" in spec and not type_fits(kind, spec["default"]):
            problems.append(
                Problem(
                    f"{path}.default",
                    f"the default of parameter '{name}' is not of its type",
                    TYPE_WORDS[kind],
                    describe_received(spec["default"]),
                )
            )
            continue
        found[name] = Parameter(name, kind, description, "default" in spec, spec.get("default"))
    return found


def find_placeholders(document: Any, problems: list[Problem]) -> list[Placeholder]:
    """Every `{"param": NAME}` in the document, in order, with its JSON path; malformed
    ones are problems. A placeholder directly under an instruction's "parameters" also
    names that operation and parameter."""
    found: list[Placeholder] = []
    stack: list[tuple[Any, str, str | None, str | None]] = [(document, "", None, None)]
    while stack:
        value, path, operation, parameter = stack.pop()
        if is_placeholder(value):
            extra = sorted(set(value) - {"param"})
            for key in extra:
                problems.append(
                    Problem(
                        f"{path}.{key}",
                        f"unknown key '{key}' in a placeholder",
                        PLACEHOLDER_SHAPE,
                        f"'{key}'",
                    )
                )
            name = value["param"]
            if not isinstance(name, str):
                problems.append(
                    Problem(
                        f"{path}.param",
                        "expected the name of a parameter",
                        NAME_WORDS,
                        describe_received(name),
                    )
                )
                continue
            found.append(Placeholder(path, name, operation, parameter))
        elif isinstance(value, dict):
            children: list[tuple[Any, str, str | None, str | None]] = []
            for key, child in value.items():
                child_path = f"{path}.{key}" if path else str(key)
                if (
                    key == "parameters"
                    and is_instruction(value)
                    and isinstance(child, dict)
                    and not is_placeholder(child)
                ):
                    op = value["operation"] if isinstance(value["operation"], str) else None
                    for name, grandchild in child.items():
                        children.append((grandchild, f"{child_path}.{name}", op, name))
                else:
                    children.append((child, child_path, None, None))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(
                (item, f"{path}[{index}]", None, None)
                for index, item in reversed(list(enumerate(value)))
            )
    return found


def substitute(document: Any, values: dict[str, Any]) -> Any:
    """A copy of the document with each placeholder replaced by its value."""
    if is_placeholder(document):
        return copy.deepcopy(values[document["param"]])
    if isinstance(document, dict):
        return {key: substitute(child, values) for key, child in document.items()}
    if isinstance(document, list):
        return [substitute(item, values) for item in document]
    return document


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith((f"{prefix}.", f"{prefix}["))


def _instruction_problems(
    document: dict[str, Any],
    placeholders: list[Placeholder],
    values: dict[str, Any],
    catalog: Catalog,
    limits: Limits,
) -> list[Problem]:
    filled = substitute(document, {**{p.name: None for p in placeholders}, **values})
    try:
        validate(filled, catalog, limits)
    except InstructionsInvalid as exc:
        return list(exc.problems)
    return []


def _schema_types(schema: dict[str, Any]) -> set[str] | None:
    """The JSON types a parameter's schema accepts; None when it says nothing."""
    if "x-constellation-type" in schema:
        return {"object"}  # a nested instruction
    if "anyOf" in schema:
        kinds: set[str] = set()
        for option in schema["anyOf"]:
            option_kinds = _schema_types(option)
            if option_kinds is None:
                return None
            kinds |= option_kinds
        return kinds
    if "enum" in schema:
        return {_json_type(v) for v in schema["enum"]}
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind, "integer"} if kind == "number" else {kind}
    return None


@functools.cache
def _properties(params: type[BaseModel]) -> dict[str, Any]:
    """An operation's parameter schemas, made once per operation."""
    properties: dict[str, Any] = params.model_json_schema().get("properties", {})
    return properties


def _json_type(value: Any) -> str:
    for kind in ("boolean", "integer", "number", "string", "array", "object"):
        if type_fits(kind, value):
            return kind
    return "null"


def _type_mismatches(
    placeholders: list[Placeholder], parameters: dict[str, Parameter], catalog: Catalog
) -> list[Problem]:
    """A parameter's declared type that the operation parameter it feeds cannot take."""
    problems = []
    for placeholder in placeholders:
        declared = parameters.get(placeholder.name)
        op = catalog.get(placeholder.operation) if placeholder.operation else None
        if declared is None or op is None or placeholder.parameter not in op.params.model_fields:
            continue
        schema = _properties(op.params).get(placeholder.parameter, {})
        accepted = _schema_types(schema)
        if accepted is None or declared.type in accepted:
            continue
        problems.append(
            Problem(
                placeholder.path,
                f"parameter '{placeholder.name}' is declared {declared.type}, but parameter "
                f"'{placeholder.parameter}' of '{op.name}' takes "
                + " or ".join(TYPE_WORDS.get(k, k) for k in sorted(accepted)),
                " or ".join(sorted(accepted)),
                f"{declared.type} (parameter '{placeholder.name}')",
            )
        )
    return problems
