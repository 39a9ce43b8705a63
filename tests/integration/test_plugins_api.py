"""Plug-ins and notebooks through the real stack: listed, run, broken, edited and reloaded."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.samples import load_samples
from stack import Stack
from stack.__main__ import SAMPLES, seed_examples
from testkit.dagster_stack import ApiClient, dagster_graphql, run_messages, start_stack

pytestmark = pytest.mark.integration

JOB_DESCRIPTION = """
query Job($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { description metadataEntries { label } }
  }
}
"""

SHOUT = '''
    """shout: upper-case every text file."""
    from orchestrator.catalog.values import Dataset
    from orchestrator.context import OperationContext


    def step_fn(data: Dataset, ctx: OperationContext, suffix: str = "!") -> Dataset:
        """Upper-case every text file of a data set."""
        writer = ctx.dataset_writer()
        for item in data.items:
            text = data.path_of(item).read_text()
            writer.path_for(item.name).write_text(text.upper() + suffix)
            writer.add(item.name, "text/plain")
        return writer.finish()
'''


@dataclass
class PluginStack:
    stack: Stack
    api: ApiClient
    plugins: Path  # a plug-in folder the tests edit, besides samples/plugins
    notebooks: Path


@pytest.fixture(scope="session")
def plugin_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginStack]:
    """A SQLite stack with the sample plug-in and notebook folders and an editable one."""
    plugins = tmp_path_factory.mktemp("plugins")
    notebooks = tmp_path_factory.mktemp("notebooks")
    (plugins / "broken.py").write_text("import os\n\n\ndef step_fn(:\n    pass\n")
    env = {
        "CONSTELLATION_PLUGINS_DIR": f"{SAMPLES / 'plugins'}:{plugins}",
        "CONSTELLATION_NOTEBOOKS_DIR": f"{SAMPLES / 'notebooks'}:{notebooks}",
    }
    with ExitStack() as exits:
        stack = start_stack(tmp_path_factory.mktemp("stack-plugins"), "sqlite", exits, env=env)
        seed_examples(stack.data_root)
        api = ApiClient(stack)
        exits.callback(api.http.close)
        yield PluginStack(stack, api, plugins, notebooks)


def operations(api: ApiClient) -> dict[str, object]:
    response = api.http.get("/operations")
    response.raise_for_status()
    return dict(response.json())


def test_the_sample_plugin_is_listed_and_runs_and_a_broken_one_is_named(
    plugin_stack: PluginStack,
) -> None:
    api = plugin_stack.api
    listing = operations(api)
    by_name = {op["name"]: op for op in listing["operations"]}  # type: ignore[attr-defined]

    assert by_name["grayscale"]["inputs"] == {"data": ["dataset"]}
    assert set(by_name["grayscale"]["parameters"]["properties"]) == {"data", "keep_alpha"}
    broken = str(plugin_stack.plugins / "broken.py")
    assert listing["problems"] == [
        {"file": broken, "line": 4, "message": "syntax error: invalid syntax"}
    ]

    detail = api.wait(api.execute(load_samples()["local-grayscale"].document).json()["run_id"])

    assert detail["status"] == "SUCCESS", detail
    output = detail["instructions"][0]["output"]
    assert output["count"] == 4
    job = dagster_graphql(
        plugin_stack.stack.dagster_url,
        JOB_DESCRIPTION,
        selector={
            "repositoryLocationName": "orchestrator",
            "repositoryName": "__repository__",
            "pipelineName": "build_execute_job",
        },
    )["pipelineOrError"]
    assert f"`{broken}:4: syntax error: invalid syntax`" in job["description"]
    messages = run_messages(plugin_stack.stack.dagster_url, detail["run_id"])
    assert f"plug-in not loaded: {broken}:4: syntax error: invalid syntax" in messages


def test_a_plugin_added_and_edited_is_picked_up_on_reload(plugin_stack: PluginStack) -> None:
    api, plugins = plugin_stack.api, plugin_stack.plugins
    texts = plugin_stack.stack.data_root / "texts"
    texts.mkdir(exist_ok=True)
    (texts / "a.txt").write_text("hello")
    pipeline = {
        "instructions": [
            {
                "operation": "shout",
                "parameters": {
                    "data": {"operation": "import_from_local", "parameters": {"path": "texts"}}
                },
            }
        ]
    }
    assert api.execute(pipeline).status_code == 422  # not there yet

    (plugins / "shout.py").write_text(textwrap.dedent(SHOUT))
    (plugins / "broken.py").rename(plugins / "broken.txt")  # fixed by moving it away
    reloaded = api.http.post("/operations/reload")
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["problems"] == []
    assert "shout" in {op["name"] for op in operations(api)["operations"]}  # type: ignore[attr-defined]

    run_id = api.execute(pipeline).json()["run_id"]
    detail = api.wait(run_id)
    assert detail["status"] == "SUCCESS", detail
    assert api.content(run_id, "instructions[0]", "items/a.txt") == b"HELLO!"

    # without a reload: the API re-reads the changed file, the run loads it as it starts
    (plugins / "shout.py").write_text(textwrap.dedent(SHOUT).replace('"!"', '"?"'))
    run_id = api.execute(pipeline).json()["run_id"]
    assert api.wait(run_id)["status"] == "SUCCESS"
    assert api.content(run_id, "instructions[0]", "items/a.txt") == b"HELLO?"
    (plugins / "broken.txt").rename(plugins / "broken.py")
    assert api.http.post("/operations/reload").json()["problems"][0]["line"] == 4


def write_notebook(folder: Path, name: str, *cells: str) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("seconds = 1", metadata={"tags": ["parameters"]}),
        *(nbformat.v4.new_code_cell(cell) for cell in cells),
    ]
    nbformat.write(notebook, folder / f"{name}.ipynb")


def run_notebook(name: str, **parameters: object) -> dict[str, object]:
    return {"operation": "run_notebook", "parameters": {"notebook": name, **parameters}}


def test_the_sample_notebook_summarises_and_feeds_a_later_instruction(
    plugin_stack: PluginStack,
) -> None:
    api = plugin_stack.api
    listed = api.http.get("/notebooks").json()
    summarise = next(n for n in listed["notebooks"] if n["name"] == "summarise.ipynb")
    assert set(summarise["parameters"]["properties"]) == {"title", "top"}
    assert summarise["parameters"]["properties"]["top"]["type"] == "integer"
    refused = api.execute([run_notebook("summarise", parameters={"top": "all"})])
    assert refused.status_code == 422
    assert [p["path"] for p in refused.json()["problems"]] == [
        "instructions[0].parameters.parameters"
    ]

    run_id = api.execute(load_samples()["local-summary"].document).json()["run_id"]
    detail = api.wait(run_id, timeout=120)

    assert detail["status"] == "SUCCESS", detail
    assert detail["instructions"][1]["output"]["items"] == ["summary.csv", "summary.json"]
    summary = json.loads(api.content(run_id, "instructions[1]", "items/summary.json"))
    assert (summary["title"], summary["files"], len(summary["largest"])) == (
        "Example photos, grey",
        4,
        2,
    )


def test_a_failing_notebook_names_its_cell_and_keeps_the_executed_notebook(
    plugin_stack: PluginStack,
) -> None:
    api = plugin_stack.api
    write_notebook(plugin_stack.notebooks, "fails", "x = 1", "1 / 0")

    run_id = api.execute([run_notebook("fails.ipynb")]).json()["run_id"]
    detail = api.wait(run_id, timeout=120)

    assert detail["status"] == "FAILURE"
    error = detail["instructions"][0]["error"]
    key = f"{run_id}/000-run_notebook/executed.ipynb"
    assert error == (
        "instructions[0] (run_notebook): notebook 'fails.ipynb' failed in cell In [4] `1 / 0`: "
        f"ZeroDivisionError: division by zero; the executed notebook is kept as {key}"
    )
    executed = json.loads((plugin_stack.stack.artifact_root / key).read_text())
    assert executed["cells"][-1]["outputs"][0]["ename"] == "ZeroDivisionError"


def test_canceling_a_run_stops_the_notebook_kernel(plugin_stack: PluginStack) -> None:
    api, artifacts = plugin_stack.api, plugin_stack.stack.artifact_root
    write_notebook(
        plugin_stack.notebooks,
        "sleeps",
        "import os, time\nopen('pid', 'w').write(str(os.getpid()))",
        "time.sleep(seconds)",
    )
    run_id = api.execute([run_notebook("sleeps", parameters={"seconds": 120})]).json()["run_id"]
    pid_file = artifacts / run_id / "000-run_notebook" / "files" / "pid"
    assert wait_for(lambda: pid_file.exists() and pid_file.read_text(), 90), api.run(run_id)
    pid = int(pid_file.read_text())

    assert api.http.post(f"/runs/{run_id}/cancel").status_code in (200, 202)
    detail = api.wait(run_id, timeout=60)

    assert detail["status"] == "CANCELED", detail
    assert wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30), "the kernel still runs"
    assert (artifacts / run_id / "000-run_notebook" / "executed.ipynb").exists()


def wait_for(condition: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
