"""run_notebook: a Jupyter notebook from CONSTELLATION_NOTEBOOKS_DIR as an operation.

The notebook runs with papermill on a real kernel (ipykernel's `python3`, the
interpreter running this code). Papermill injects, after the cell tagged
`parameters`, the instruction's `parameters` and three names of its own:
`input_dir` (the input data set's folder, "" without one), `input_files` (its
files, in order) and `output_dir` (an empty folder, also the kernel's working
directory). Files written there become the output data set. The executed
notebook is kept in the instruction's artifact folder, also when it fails.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, field_validator

from orchestrator.catalog.registry import operation
from orchestrator.catalog.values import Dataset
from orchestrator.context import OperationContext
from orchestrator.errors import Canceled, OperationError
from orchestrator.plugins import PluginProblem, folders_from_env

NOTEBOOKS_ENV = "CONSTELLATION_NOTEBOOKS_DIR"
KERNEL = "python3"  # ipykernel's own spec: runs sys.executable, the project's interpreter
INJECTED = ("input_dir", "input_files", "output_dir")  # set by run_notebook, not by users
EXECUTED = "executed.ipynb"
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
              dict: "object"}  # fmt: skip
ANNOTATED_TYPES = {"bool": "boolean", "int": "integer", "float": "number", "str": "string",
                   "list": "array", "dict": "object"}  # fmt: skip
WATCH_INTERVAL_S = 0.1


@dataclass(frozen=True)
class NotebookParameter:
    """One name of a notebook's `parameters` cell."""

    name: str
    type: str | None  # JSON Schema type, None when neither annotation nor default says
    default: Any = None
    has_default: bool = False
    help: str = ""

    def schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"title": self.name}
        if self.type is not None:
            schema["type"] = self.type
        if self.has_default:
            schema["default"] = self.default
        if self.help:
            schema["description"] = self.help
        return schema


@dataclass(frozen=True)
class Notebook:
    """A notebook of the folder: its name (the file name), description and parameters."""

    name: str
    path: Path
    description: str
    parameters: dict[str, NotebookParameter] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The entry served by `GET /notebooks`: the parameters as a JSON Schema."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": {
                "type": "object",
                "properties": {name: p.schema() for name, p in self.parameters.items()},
                "additionalProperties": False,
            },
        }


def notebook_folders() -> list[Path]:
    return folders_from_env(NOTEBOOKS_ENV)


def list_notebooks(
    folders: list[Path] | None = None,
) -> tuple[list[Notebook], list[PluginProblem]]:
    """Every notebook with a `parameters` cell in the folders, and the ones that cannot be read."""
    notebooks: dict[str, Notebook] = {}
    problems: list[PluginProblem] = []
    for folder in notebook_folders() if folders is None else folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.ipynb")):
            if path.name in notebooks:
                message = f"notebook {path.name!r} is already in {notebooks[path.name].path.parent}"
                problems.append(PluginProblem(str(path), None, message))
                continue
            try:
                notebooks[path.name] = read_notebook(path)
            except NotebookUnusable as exc:
                problems.append(PluginProblem(str(path), exc.line, str(exc)))
    return list(notebooks.values()), problems


class NotebookUnusable(OperationError):
    """A notebook that cannot be read, or has no cell tagged `parameters`."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def read_notebook(path: Path) -> Notebook:
    """A notebook's description (its first Markdown cell) and declared parameters."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    except Exception as exc:  # nbformat raises JSON, validation and OS errors alike
        raise NotebookUnusable(f"cannot read the notebook: {type(exc).__name__}: {exc}") from exc
    cells = [cell for cell in nb.cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
    if not cells:
        raise NotebookUnusable("no cell is tagged 'parameters' (papermill's parameters cell)")
    markdown = next((cell.source for cell in nb.cells if cell.cell_type == "markdown"), "")
    description = " ".join(" ".join(line.lstrip("#") for line in markdown.splitlines()).split())
    return Notebook(path.name, path, description, parameters_of(cells[0].source))


def parameters_of(source: str) -> dict[str, NotebookParameter]:
    """The names a parameters cell assigns, with types from annotations or defaults."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise NotebookUnusable(
            f"the parameters cell does not parse: {exc.msg}", exc.lineno
        ) from exc
    lines = source.splitlines()
    found: dict[str, NotebookParameter] = {}
    for statement in tree.body:
        target: ast.expr
        value: ast.expr | None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, annotation, value = statement.targets[0], None, statement.value
        elif isinstance(statement, ast.AnnAssign):
            target, annotation, value = statement.target, statement.annotation, statement.value
        else:
            continue
        if not isinstance(target, ast.Name) or target.id in INJECTED:
            continue
        line = lines[statement.lineno - 1]
        help_text = line.split("#", 1)[1].strip() if "#" in line else ""
        kind = ANNOTATED_TYPES.get(ast.unparse(annotation)) if annotation is not None else None
        try:
            default = ast.literal_eval(value) if value is not None else None
            has_default = value is not None
        except ValueError:  # an expression: computed in the notebook, its type unknown
            default, has_default = None, False
        if kind is None and has_default and default is not None:
            kind = JSON_TYPES.get(type(default))
        found[target.id] = NotebookParameter(target.id, kind, default, has_default, help_text)
    return found


def find_notebook(name: str, folders: list[Path] | None = None) -> Notebook:
    """The notebook called `name` (with or without .ipynb) in the folders, or OperationError
    naming the ones there are."""
    folders = notebook_folders() if folders is None else folders
    file_name = name if name.endswith(".ipynb") else f"{name}.ipynb"
    for folder in folders:
        if "/" not in file_name and (folder / file_name).is_file():
            try:
                return read_notebook(folder / file_name)
            except NotebookUnusable as exc:
                raise OperationError(f"notebook {file_name!r} cannot be run: {exc}") from exc
    available = sorted({path.name for folder in folders for path in folder.glob("*.ipynb")})
    names = ", ".join(map(repr, available)) or f"none (set {NOTEBOOKS_ENV})"
    raise OperationError(f"no notebook {name!r} in {NOTEBOOKS_ENV}; available: {names}")


def check_parameters(notebook: Notebook, parameters: dict[str, Any]) -> None:
    """Every parameter is declared by the notebook and of the declared JSON type."""
    for name, value in parameters.items():
        declared = notebook.parameters.get(name)
        if declared is None:
            names = ", ".join(notebook.parameters) or "none"
            raise OperationError(
                f"notebook {notebook.name!r} has no parameter {name!r}; it declares: {names}"
            )
        if declared.type is not None and not _fits(value, declared.type):
            raise OperationError(
                f"notebook {notebook.name!r} parameter {name!r} expects {declared.type}, "
                f"received {value!r}"
            )


def _fits(value: Any, kind: str) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    expected = next(t for t, name in JSON_TYPES.items() if name == kind)
    return isinstance(value, expected)


class RunNotebookParams(BaseModel):
    """Checked against the notebook itself wherever the notebook folders are configured
    (the API and the run worker), so a wrong name or parameter is a 422 with its path."""

    model_config = ConfigDict(extra="forbid")

    notebook: str = Field(
        description="The notebook's file name in CONSTELLATION_NOTEBOOKS_DIR (GET /notebooks).",
        pattern=r"^[^/\\]+$",
        min_length=1,
    )
    parameters: dict[str, JsonValue] = Field(
        default_factory=dict, description="Values for the names of its `parameters` cell."
    )
    data: Dataset | None = Field(
        None, description="Input data set: its folder is `input_dir`, its files `input_files`."
    )
    timeout_s: float = Field(
        600, gt=0, le=86_400, description="Longest the whole notebook may run, in seconds."
    )

    @field_validator("notebook")
    @classmethod
    def _known_notebook(cls, name: str) -> str:
        if notebook_folders():
            try:
                find_notebook(name)
            except OperationError as exc:
                raise ValueError(str(exc)) from exc
        return name

    @field_validator("parameters")
    @classmethod
    def _declared_parameters(cls, parameters: dict[str, Any], info: ValidationInfo) -> Any:
        name = info.data.get("notebook")
        if name and notebook_folders():
            try:
                check_parameters(find_notebook(name), parameters)
            except OperationError as exc:
                raise ValueError(str(exc)) from exc
        return parameters


class KernelWatch:
    """Kills the notebook's kernel when the run is canceled or the time is up, and reports
    the cells done from the executed notebook papermill saves after each cell."""

    def __init__(self, ctx: OperationContext, timeout_s: float, executed: Path):
        self.ctx = ctx
        self.executed = executed
        self._seen: int | None = None  # the executed notebook's mtime last reported
        self.deadline = time.monotonic() + timeout_s
        self.managers: list[Any] = []  # the kernel manager papermill starts, once it does
        self.reason: str | None = None  # "canceled" or "timeout", once the kernel was killed
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="notebook-watch", daemon=True)

    def manager_class(self) -> type:
        """A kernel manager class that tells this watch about each kernel it starts."""
        from jupyter_client.manager import AsyncKernelManager

        managers = self.managers

        class WatchedKernelManager(AsyncKernelManager):
            def __init__(self, **kwargs: Any):
                super().__init__(**kwargs)
                managers.append(self)

        return WatchedKernelManager

    def __enter__(self) -> KernelWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(WATCH_INTERVAL_S):
            if self.ctx.cancelled.is_set():
                self._kill("canceled")
            elif time.monotonic() > self.deadline:
                self._kill("timeout")
            if self.reason is not None:
                return
            self.report_progress()

    def report_progress(self) -> None:
        """`cells` done of the notebook's code cells, when papermill saved it anew."""
        try:
            mtime = self.executed.stat().st_mtime_ns
            if mtime == self._seen:
                return
            cells = json.loads(self.executed.read_text())["cells"]
        except (OSError, ValueError, KeyError):  # not written yet, or being written
            return
        self._seen = mtime
        code = [cell for cell in cells if cell.get("cell_type") == "code"]
        done = sum(
            1 for cell in code if cell.get("metadata", {}).get("papermill", {}).get("end_time")
        )
        self.ctx.progress(done, len(code), "cells")

    def _kill(self, reason: str) -> None:
        for manager in self.managers:
            provisioner = getattr(manager, "provisioner", None)
            pid = getattr(provisioner, "pid", None)
            if pid is not None:
                self.reason = reason
                # the kernel leads its own process group (jupyter_client's launcher)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)


@operation(name="run_notebook", output=Dataset)
def run_notebook(params: RunNotebookParams, ctx: OperationContext) -> Dataset:
    """Run a notebook of CONSTELLATION_NOTEBOOKS_DIR with papermill on a Jupyter kernel: its
    parameters, input data folder and output folder injected; the files it writes to
    `output_dir` are the output data set, the executed notebook is kept beside them."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = find_notebook(params.notebook)
    check_parameters(notebook, params.parameters)
    writer = ctx.dataset_writer()
    output_dir = writer.files
    executed = ctx.folder / EXECUTED
    data = params.data
    injected = {
        **params.parameters,
        "input_dir": data.root if data else "",
        "input_files": [str(data.path_of(item)) for item in data.items] if data else [],
        "output_dir": str(output_dir),
    }
    ctx.check_canceled()
    watch = KernelWatch(ctx, params.timeout_s, executed)
    error: BaseException | None = None
    with watch:
        try:
            papermill.execute_notebook(
                str(notebook.path),
                str(executed),
                parameters=injected,
                kernel_name=KERNEL,
                language="python",
                progress_bar=False,
                cwd=str(output_dir),
                kernel_manager_class=watch.manager_class(),
            )
        except Exception as exc:  # papermill's, nbclient's and the kernel's errors alike
            error = exc
    if error is None and watch.reason is None:
        watch.report_progress()
        for path in sorted(p for p in output_dir.rglob("*") if p.is_file()):
            writer.add(path.relative_to(output_dir).as_posix())
        return writer.finish()
    kept = keep_executed(ctx, executed)
    if watch.reason == "canceled":
        raise Canceled(f"canceled: the notebook's kernel was stopped; {kept}") from error
    if watch.reason == "timeout":
        where = running_cell(executed)
        raise OperationError(
            f"notebook {notebook.name!r} timed out after {params.timeout_s:g} s{where}; {kept}"
        ) from error
    if isinstance(error, PapermillExecutionError):
        raise OperationError(
            f"notebook {notebook.name!r} failed in {cell_name(error.source, error.exec_count)}: "
            f"{error.ename}: {error.evalue}; {kept}"
        ) from error
    raise OperationError(
        f"notebook {notebook.name!r} could not run: {type(error).__name__}: {error}; {kept}"
    ) from error


def keep_executed(ctx: OperationContext, executed: Path) -> str:
    """Store the executed notebook of a failed run (failed folders are not published)."""
    key = ctx.services.artifacts.key_of(ctx.folder)
    if not executed.exists() or key is None:
        return "no executed notebook was written"
    ctx.services.artifacts.write_bytes(
        f"{key}/{EXECUTED}", executed.read_bytes(), "application/x-ipynb+json"
    )
    return f"the executed notebook is kept as {key}/{EXECUTED}"


def cell_name(source: str, execution_count: int | None) -> str:
    """A cell as a user finds it in Jupyter: `In [n]` and its first line."""
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    prompt = f"In [{execution_count}]" if execution_count is not None else "a cell"
    return f"cell {prompt} `{first[:60]}`"


def running_cell(executed: Path) -> str:
    """`, in cell In [n] ...`: the cell that ran when the kernel was stopped, if known."""
    import nbformat

    try:
        cells = nbformat.read(executed, as_version=4).cells  # type: ignore[no-untyped-call]
    except (OSError, ValueError):
        return ""
    started = [cell for cell in cells if cell.metadata.get("papermill", {}).get("start_time")]
    if not started:
        return ""
    return f" in {cell_name(started[-1].source, started[-1].get('execution_count'))}"
