"""run_notebook on a real kernel: parameters and folders injected, failure, timeout, cancel."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from pydantic import ValidationError

from orchestrator.artifacts import LocalStore
from orchestrator.context import OperationContext, Services
from orchestrator.errors import Canceled, OperationError
from orchestrator.local_run import run_instructions
from orchestrator.operations.notebooks import (
    RunNotebookParams,
    list_notebooks,
    parameters_of,
    run_notebook,
)
from orchestrator.samples import SAMPLE_NOTEBOOKS
from orchestrator.testing import make_dataset, run_operation

PARAMETERS = 'greeting = "hello"  # what to write\ntimes: int = 2\nratio = 0.5\nloud = False\n'


def write_notebook(folder: Path, name: str, *cells: str, parameters: str = PARAMETERS) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell(f"# {name}\nA test notebook."),
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        *(nbformat.v4.new_code_cell(cell) for cell in cells),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def notebooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    monkeypatch.setenv("CONSTELLATION_NOTEBOOKS_DIR", str(folder))
    return folder


def executed_cells(tmp_path: Path) -> list[Any]:
    (path,) = (tmp_path / "artifacts").rglob("executed.ipynb")
    return list(nbformat.read(path, as_version=4).cells)


def test_parameters_data_and_output_folder_are_injected(notebooks: Path, tmp_path: Path) -> None:
    write_notebook(
        notebooks,
        "echo",
        "import json, os\n"
        "names = [os.path.basename(f) for f in input_files]\n"
        "open(os.path.join(output_dir, 'out.json'), 'w').write(json.dumps("
        "{'greeting': greeting, 'times': times, 'names': names, 'input_dir': input_dir}))\n"
        "os.makedirs('nested', exist_ok=True)\n"
        "open('nested/relative.txt', 'w').write(greeting * times)",
    )
    data = make_dataset(tmp_path / "in", {"a.txt": "x", "b.txt": "y"})

    output = run_operation(
        run_notebook,
        {"notebook": "echo.ipynb", "parameters": {"greeting": "hi", "times": 3}},
        inputs={"data": data},
        artifact_root=tmp_path / "artifacts",
    )

    assert [item.name for item in output.items] == ["nested/relative.txt", "out.json"]  # type: ignore[attr-defined]
    written = json.loads(output.path_of(output.items[1]).read_text())  # type: ignore[attr-defined]
    assert written == {"greeting": "hi", "times": 3, "names": ["a.txt", "b.txt"],
                       "input_dir": data.root}  # fmt: skip
    assert output.path_of(output.items[0]).read_text() == "hihihi"  # type: ignore[attr-defined]
    injected = executed_cells(tmp_path)[2]
    assert "injected-parameters" in injected.metadata["tags"]


def test_a_failing_cell_is_named_and_the_executed_notebook_kept(
    notebooks: Path, tmp_path: Path
) -> None:
    write_notebook(notebooks, "fails", "x = 1", "raise ValueError(f'bad {greeting}')", "y = 2")

    with pytest.raises(OperationError) as caught:
        run_operation(run_notebook, {"notebook": "fails"}, artifact_root=tmp_path / "artifacts")

    assert str(caught.value) == (
        "notebook 'fails.ipynb' failed in cell In [4] `raise ValueError(f'bad {greeting}')`: "
        "ValueError: bad hello; the executed notebook is kept as "
        "test-run/000-run_notebook/executed.ipynb"
    )
    cells = {cell.source: cell for cell in executed_cells(tmp_path)}
    assert cells["raise ValueError(f'bad {greeting}')"].outputs[0]["ename"] == "ValueError"
    assert cells["y = 2"].execution_count is None  # the cells after it did not run


def test_a_notebook_that_runs_too_long_is_stopped(notebooks: Path, tmp_path: Path) -> None:
    write_notebook(notebooks, "slow", "import time", "time.sleep(60)")
    started = time.monotonic()

    expected = r"timed out after 3 s in cell In \[4\] `time.sleep\(60\)`; the executed notebook"
    with pytest.raises(OperationError, match=expected):
        run_operation(
            run_notebook, {"notebook": "slow", "timeout_s": 3}, artifact_root=tmp_path / "artifacts"
        )

    assert time.monotonic() - started < 30  # not the minute the cell asks for


def test_cancel_stops_the_kernel(notebooks: Path, tmp_path: Path) -> None:
    write_notebook(notebooks, "busy", "import os, time", "open('pid', 'w').write(str(os.getpid()))",
                   "time.sleep(60)")  # fmt: skip
    store = LocalStore(tmp_path / "artifacts")
    folder = store.node_folder("run", 0, "run_notebook")
    ctx = OperationContext("run", "instructions[0]", folder, Services(artifacts=store),
                           log=logging.getLogger("test"))  # fmt: skip
    pid_file = folder / "files" / "pid"
    threading.Thread(target=lambda: (wait_for(pid_file.exists), ctx.cancelled.set())).start()

    with pytest.raises(Canceled, match="the notebook's kernel was stopped"):
        run_notebook.fn(run_notebook.params.model_validate({"notebook": "busy"}), ctx)

    pid = int(pid_file.read_text())
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists())  # the kernel process is gone
    assert (folder / "executed.ipynb").exists()


def wait_for(condition: Any, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_unknown_notebooks_and_parameters_are_refused(notebooks: Path, tmp_path: Path) -> None:
    write_notebook(notebooks, "echo", "pass")
    root = tmp_path / "artifacts"

    with pytest.raises(ValidationError, match=r"no notebook 'nope' in CONSTELLATION_NOTEBOOKS_DIR; "
                                              r"available: 'echo.ipynb'"):  # fmt: skip
        run_operation(run_notebook, {"notebook": "nope"}, artifact_root=root)
    with pytest.raises(ValidationError, match="has no parameter 'colour'; it declares: greeting, "
                                              "times, ratio, loud"):  # fmt: skip
        run_operation(run_notebook, {"notebook": "echo", "parameters": {"colour": 1}},
                      artifact_root=root)  # fmt: skip
    (notebooks / "echo.ipynb").unlink()  # gone between validation and the run
    params = RunNotebookParams.model_construct(notebook="echo", parameters={}, data=None,
                                               timeout_s=5)  # fmt: skip
    store = LocalStore(root)
    ctx = OperationContext("run", "instructions[0]", store.node_folder("run", 0, "run_notebook"),
                           Services(artifacts=store), log=logging.getLogger("test"))  # fmt: skip
    with pytest.raises(OperationError, match="no notebook 'echo' in CONSTELLATION_NOTEBOOKS_DIR"):
        run_notebook.fn(params, ctx)


def test_notebooks_are_listed_with_their_declared_parameters(notebooks: Path) -> None:
    write_notebook(notebooks, "echo", "pass")
    (notebooks / "plain.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    (notebooks / "torn.ipynb").write_text("{not json")

    found, problems = list_notebooks()

    assert [n.describe() for n in found] == [{
        "name": "echo.ipynb",
        "description": "echo A test notebook.",
        "parameters": {"type": "object", "additionalProperties": False, "properties": {
            "greeting": {"title": "greeting", "type": "string", "default": "hello",
                         "description": "what to write"},
            "times": {"title": "times", "type": "integer", "default": 2},
            "ratio": {"title": "ratio", "type": "number", "default": 0.5},
            "loud": {"title": "loud", "type": "boolean", "default": False},
        }},
    }]  # fmt: skip
    assert [(Path(p.file).name, p.message.split(":")[0]) for p in problems] == [
        ("plain.ipynb", "no cell is tagged 'parameters' (papermill's parameters cell)"),
        ("torn.ipynb", "cannot read the notebook"),
    ]


def test_injected_names_are_not_user_parameters() -> None:
    found = parameters_of("input_dir = ''\noutput_dir = '.'\nwhen = compute()\nn = 1\n")
    assert {name: (p.type, p.has_default) for name, p in found.items()} == {
        "when": (None, False),
        "n": ("integer", True),
    }


def test_the_sample_notebook_summarises_an_imported_data_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSTELLATION_NOTEBOOKS_DIR", str(SAMPLE_NOTEBOOKS))
    (tmp_path / "data" / "docs").mkdir(parents=True)
    (tmp_path / "data" / "docs" / "a.txt").write_text("hello")
    (tmp_path / "data" / "docs" / "b.csv").write_text("x,y\n1,2\n")
    pipeline = [
        {
            "operation": "batch_formatted_data",
            "parameters": {
                "batch_size": 1,
                "data": {
                    "operation": "run_notebook",
                    "parameters": {
                        "notebook": "summarise.ipynb",
                        "parameters": {"top": 1},
                        "data": {"operation": "import_from_local", "parameters": {"path": "docs"}},
                    },
                },
            },
        }
    ]

    run = run_instructions(pipeline, data_root=tmp_path / "data", artifact_root=tmp_path / "art")

    assert run.status == "SUCCESS", run.error
    assert run.values["instructions[0]"].summary()["batch_sizes"] == [1, 1]
    (summary,) = (tmp_path / "art").rglob("summary.json")
    assert json.loads(summary.read_text())["largest"] == [{"name": "b.csv", "bytes": 8}]


def test_validation_names_a_wrong_notebook_or_parameter_with_its_path(notebooks: Path) -> None:
    from orchestrator.catalog import validate
    from orchestrator.errors import InstructionsInvalid
    from orchestrator.operations import CATALOG

    write_notebook(notebooks, "echo", "pass")
    good = {"operation": "run_notebook", "parameters": {"notebook": "echo", "parameters": {}}}
    validate([good], CATALOG)

    with pytest.raises(InstructionsInvalid) as caught:
        validate(
            [
                {"operation": "run_notebook", "parameters": {"notebook": "nope"}},
                {"operation": "run_notebook",
                 "parameters": {"notebook": "echo", "parameters": {"times": "many"}}},
            ],
            CATALOG,
        )  # fmt: skip

    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("instructions[0].parameters.notebook",
         "invalid value for parameter 'notebook' of 'run_notebook': Value error, no notebook "
         "'nope' in CONSTELLATION_NOTEBOOKS_DIR; available: 'echo.ipynb'"),
        ("instructions[1].parameters.parameters",
         "invalid value for parameter 'parameters' of 'run_notebook': Value error, notebook "
         "'echo.ipynb' parameter 'times' expects integer, received 'many'"),
    ]  # fmt: skip


def test_progress_counts_the_cells_done(notebooks: Path, tmp_path: Path) -> None:
    write_notebook(notebooks, "steps", "import time", "time.sleep(0.5)", "x = 1")
    store = LocalStore(tmp_path / "artifacts")
    reports: list[tuple[int, int | None, str]] = []
    ctx = OperationContext(
        "run",
        "instructions[0]",
        store.node_folder("run", 0, "run_notebook"),
        Services(artifacts=store),
        log=logging.getLogger("test"),
        progress_sink=lambda done, total, unit: reports.append((done, total, unit)),
    )

    run_notebook.fn(run_notebook.params.model_validate({"notebook": "steps"}), ctx)

    assert reports[-1] == (5, 5, "cells")  # parameters, injected parameters and three cells
    assert len(reports) >= 2 and reports[0][0] < 5  # reported while it ran, not only at the end
