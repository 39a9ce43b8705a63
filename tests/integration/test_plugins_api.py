"""Plug-ins and notebooks through the real stack: listed, run, broken, edited and reloaded."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.samples import load_samples
from stack import Stack
from stack.__main__ import SAMPLES, seed_examples
from testkit.dagster_stack import ApiClient, dagster_graphql, start_stack

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

    (plugins / "shout.py").write_text(textwrap.dedent(SHOUT).replace('"!"', '"?"'))
    assert api.http.post("/operations/reload").status_code == 200
    run_id = api.execute(pipeline).json()["run_id"]
    assert api.wait(run_id)["status"] == "SUCCESS"
    assert api.content(run_id, "instructions[0]", "items/a.txt") == b"HELLO?"
    (plugins / "broken.txt").rename(plugins / "broken.py")
    assert api.http.post("/operations/reload").json()["problems"][0]["line"] == 4
