"""Plug-in operations: Python files in CONSTELLATION_PLUGINS_DIR join the catalog.

A plug-in file declares operations with the `@operation` decorator the built-ins
use, or a plain `step_fn(...)`: its annotated parameters become the parameter
model, its return annotation the output type, the file's name the operation's
name. A file that cannot be loaded is a `PluginProblem` with its file and line;
the other operations keep working. Plug-ins are trusted code: loading one runs it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import sys
import traceback
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from orchestrator.catalog.registry import Catalog, Operation
from orchestrator.catalog.values import Value
from orchestrator.context import OperationContext

if TYPE_CHECKING:
    import dagster as dg

PLUGINS_ENV = "CONSTELLATION_PLUGINS_DIR"
STEP_FN = "step_fn"
MODULE_PREFIX = "constellation_plugins"


@dataclass(frozen=True)
class PluginProblem:
    """Why a plug-in file (or one operation in it) is not in the catalog."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message}


def folders_from_env(variable: str = PLUGINS_ENV) -> list[Path]:
    """The folders a variable names, separated by os.pathsep (':'); none when unset."""
    return [Path(part) for part in os.environ.get(variable, "").split(os.pathsep) if part]


def plugin_files(folders: Iterable[Path]) -> Iterator[Path]:
    """Each folder's *.py files in name order, skipping _private ones."""
    for folder in folders:
        if folder.is_dir():
            yield from sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))


class PluginError(Exception):
    """A plug-in operation that cannot be declared; becomes a PluginProblem."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class PluginOperation:
    """An operation a plug-in file declares, and where."""

    operation: Operation
    file: str
    line: int | None


def load_plugins(folders: Iterable[Path]) -> tuple[list[PluginOperation], list[PluginProblem]]:
    """Every operation the files in `folders` declare, and what went wrong with the rest."""
    operations: list[PluginOperation] = []
    problems: list[PluginProblem] = []
    for path in plugin_files(folders):
        try:
            module = import_file(path)
        except SyntaxError as exc:
            problems.append(PluginProblem(str(path), exc.lineno, f"syntax error: {exc.msg}"))
            continue
        except Exception as exc:  # a plug-in's own bug: reported, never raised
            problems.append(PluginProblem(str(path), _line_in(path, exc), _describe(exc)))
            continue
        found, failed = declared_operations(module, path)
        operations += found
        problems += failed
    return operations, problems


def import_file(path: Path) -> types.ModuleType:
    """Execute a plug-in file as a fresh module `constellation_plugins.<stem>`."""
    name = f"{MODULE_PREFIX}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the module's annotations through it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def declared_operations(
    module: types.ModuleType, path: Path
) -> tuple[list[PluginOperation], list[PluginProblem]]:
    """The module's own `@operation`s and its `step_fn`, as catalog entries."""
    found = [
        PluginOperation(value, str(path), _first_line(value.fn))
        for value in vars(module).values()
        if isinstance(value, Operation) and getattr(value.fn, "__module__", None) == module.__name__
    ]
    problems = []
    step_fn = getattr(module, STEP_FN, None)
    if callable(step_fn):
        try:
            op = step_operation(path.stem, step_fn, module)
            found.append(PluginOperation(op, str(path), _first_line(step_fn)))
        except PluginError as exc:
            problems.append(PluginProblem(str(path), exc.line, str(exc)))
    return found, problems


def step_operation(
    name: str, step_fn: Callable[..., Any], module: types.ModuleType | None = None
) -> Operation:
    """An Operation from a plain function: annotations → parameters, return → output.

    A parameter annotated `OperationContext` receives the context instead of a value.
    """
    line = _first_line(step_fn)
    try:
        hints = typing.get_type_hints(step_fn, include_extras=True)
    except Exception as exc:  # NameError, TypeError: an annotation that does not evaluate
        message = f"{STEP_FN}: an annotation cannot be evaluated: {_describe(exc)}"
        raise PluginError(message, line) from exc
    output = hints.get("return")
    if not (isinstance(output, type) and issubclass(output, Value)):
        raise PluginError(
            f"{STEP_FN}: the return annotation must be an operation output type "
            f"({', '.join(sorted(_value_names()))}), got {_shown(output)}",
            line,
        )
    fields: dict[str, Any] = {}
    context_name = None
    for parameter in inspect.signature(step_fn).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise PluginError(f"{STEP_FN}: *{parameter.name} cannot be a parameter", line)
        if parameter.name not in hints:
            raise PluginError(f"{STEP_FN}: parameter {parameter.name!r} has no annotation", line)
        annotation = hints[parameter.name]
        if annotation is OperationContext:
            context_name = parameter.name
            continue
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (annotation, Field(default) if default is not ... else ...)
    params = _parameter_model(name, fields, line)

    def run(arguments: BaseModel, ctx: OperationContext) -> Value:
        values = {field: getattr(arguments, field) for field in fields}
        if context_name is not None:
            values[context_name] = ctx
        result = step_fn(**values)
        if not isinstance(result, output):
            raise TypeError(f"{name}'s {STEP_FN} returned {type(result).__name__}, not {output}")
        return result

    run.__module__ = module.__name__ if module else step_fn.__module__
    run.__qualname__ = f"{name}.{STEP_FN}"
    return Operation(
        name=name,
        description=inspect.cleandoc(step_fn.__doc__ or (module.__doc__ if module else "") or ""),
        params=params,
        output=output,
        fn=run,
    )


def _parameter_model(name: str, fields: dict[str, Any], line: int | None) -> type[BaseModel]:
    title = "".join(part.capitalize() for part in name.split("_")) + "Params"
    try:
        model = create_model(title, __config__=ConfigDict(extra="forbid"), **fields)
        model.model_json_schema()  # an annotation pydantic takes but cannot publish
    except Exception as exc:  # pydantic's schema errors: an unsupported annotation
        message = f"{STEP_FN}: unsupported parameter type: {_describe(exc)}"
        raise PluginError(message, line) from exc
    return model


def _first_line(fn: Callable[..., Any]) -> int | None:
    code = getattr(fn, "__code__", None)
    return code.co_firstlineno if code is not None else None


def _value_names() -> set[str]:
    seen: set[str] = set()
    stack: list[type[Value]] = [Value]
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if cls is not Value:
            seen.add(cls.__name__)
    return seen


def _shown(annotation: Any) -> str:
    if annotation is None:
        return "no annotation"
    return str(getattr(annotation, "__name__", repr(annotation)))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _line_in(path: Path, exc: BaseException) -> int | None:
    """The deepest line of the traceback inside the plug-in file."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return lines[-1] if lines else None


class PluginCatalog(Catalog):
    """The built-ins plus the plug-ins of some folders, loaded on first use.

    `reload()` reads the folders again (what reloading the code location does
    in Dagster's code server: a fresh process imports them anew).
    """

    def __init__(
        self,
        builtins: Iterable[Operation],
        folders: Callable[[], list[Path]] = folders_from_env,
    ):
        self._builtins = list(builtins)
        self._folders = folders
        self._loaded: dict[str, Operation] | None = None
        self._problems: list[PluginProblem] = []
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()
        Catalog(self._builtins)  # refuses a clash among the built-ins now, not on first use

    @property
    def _by_name(self) -> dict[str, Operation]:
        if self._loaded is None:
            self.reload()
        assert self._loaded is not None
        return self._loaded

    @_by_name.setter
    def _by_name(self, table: dict[str, Operation]) -> None:
        self._loaded = table

    def refresh(self) -> bool:
        """Reload if a plug-in file was added, changed or removed since the last load (one
        stat per file); whether it did. The API calls it per request, so its catalog follows
        the files whichever way the code location was reloaded."""
        if self._loaded is not None and self._files_now() == self._fingerprint:
            return False
        self.reload()
        return True

    def _files_now(self) -> tuple[tuple[str, int, int], ...]:
        found = []
        for path in plugin_files(self._folders()):
            with contextlib.suppress(OSError):  # removed while listed: the next call sees it
                stat = path.stat()
                found.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(found)

    def reload(self) -> None:
        """Read the plug-in folders again: new, changed and removed files take effect."""
        self._fingerprint = self._files_now()
        table = {op.name: op for op in self._builtins}
        plugins, problems = load_plugins(self._folders())
        builtin = self._builtin_names
        for found in plugins:
            name = found.operation.name
            if name in table:
                owner = "a built-in operation" if name in builtin else "another plug-in's"
                message = f"operation {name!r} is refused: the name is {owner}"
                problems.append(PluginProblem(found.file, found.line, message))
                continue
            table[name] = found.operation
        self._problems = problems
        self._loaded = table

    @property
    def problems(self) -> list[PluginProblem]:
        """The plug-in files (or operations in them) that could not be loaded."""
        self._by_name  # noqa: B018 (loads the plug-ins on first use)
        return self._problems

    @property
    def _builtin_names(self) -> set[str]:
        return {op.name for op in self._builtins}

    @property
    def plugin_names(self) -> list[str]:
        return [name for name in self.names if name not in self._builtin_names]


def problems_markdown(problems: Iterable[PluginProblem]) -> str:
    """The problems as the Dagster UI shows them in the job's description."""
    return "\n".join(f"- `{problem}`" for problem in problems)


def with_plugin_problems(job: dg.JobDefinition, catalog: Catalog) -> dg.JobDefinition:
    """`job`, its description and metadata naming the plug-ins that could not be loaded.

    The code location still loads (the other operations keep working), and the
    job's page in the Dagster UI says which files are broken and where.
    """
    problems = getattr(catalog, "problems", [])
    if not problems:
        return job
    import dagster as dg

    text = problems_markdown(problems)
    # JobDefinition has no public way to reword its description: _copy is what with_* use
    described = job._copy(
        description=f"{job.description or ''}\n\n**Plug-in problems** ({PLUGINS_ENV}):\n\n{text}",
        metadata={
            **job.metadata,
            "plugin_problems": dg.MetadataValue.json([p.as_dict() for p in problems]),
        },
    )
    return described
