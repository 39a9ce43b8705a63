"""Plug-in operations: discovery, the schema from annotations, broken files, reload."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.catalog import validate
from orchestrator.errors import InstructionsInvalid
from orchestrator.local_run import run_instructions
from orchestrator.operations import CATALOG
from orchestrator.plugins import PluginCatalog, folders_from_env, with_plugin_problems

SAMPLES = Path(__file__).resolve().parents[3] / "samples" / "plugins"
BUILTINS = [CATALOG[name] for name in ("import_from_local", "resize_image", "dict_to_list")]

SCALE = '''
    """Scale numbers."""
    from typing import Literal

    from pydantic import BaseModel

    from orchestrator.catalog.values import Dataset
    from orchestrator.context import OperationContext


    class Window(BaseModel):
        left: int = 0
        right: int = 10


    def step_fn(
        data: Dataset,
        ctx: OperationContext,
        factor: float,
        mode: Literal["up", "down"] = "up",
        label: str = "x",
        strict: bool = False,
        window: Window = Window(),
        count: int = 3,
    ) -> Dataset:
        """Multiply every number of a data set."""
        return data
'''


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def catalog_of(*folders: Path) -> PluginCatalog:
    return PluginCatalog(BUILTINS, lambda: list(folders))


def test_a_step_fn_becomes_an_operation_named_after_its_file(tmp_path: Path) -> None:
    write(tmp_path, "scale.py", SCALE)
    catalog = catalog_of(tmp_path)

    entry = catalog["scale"].describe()

    assert catalog.problems == []
    assert entry["description"] == "Multiply every number of a data set."
    assert entry["output"] == "dataset"
    assert entry["inputs"] == {"data": ["dataset"]}
    schema = entry["parameters"]
    assert schema["required"] == ["data", "factor"]  # ctx is the context, not a parameter
    properties = schema["properties"]
    assert set(properties) == {"data", "factor", "mode", "label", "strict", "window", "count"}
    assert properties["factor"]["type"] == "number"
    assert properties["mode"] == {"default": "up", "enum": ["up", "down"], "title": "Mode",
                                  "type": "string"}  # fmt: skip
    assert (properties["strict"]["type"], properties["count"]["type"]) == ("boolean", "integer")
    assert properties["window"]["default"] == {"left": 0, "right": 10}
    assert schema["additionalProperties"] is False


def test_a_plugin_is_validated_like_a_built_in(tmp_path: Path) -> None:
    write(tmp_path, "scale.py", SCALE)
    catalog = catalog_of(tmp_path)
    nested = {"operation": "import_from_local", "parameters": {"path": "x"}}

    validate([{"operation": "scale", "parameters": {"factor": 2, "data": nested}}], catalog)
    with pytest.raises(InstructionsInvalid) as caught:
        validate([{"operation": "scale", "parameters": {"factor": 2, "mode": "sideways"}}], catalog)

    paths = sorted(problem.path for problem in caught.value.problems)
    assert paths == ["instructions[0].parameters.data", "instructions[0].parameters.mode"]


def test_an_operation_declared_with_the_decorator_is_found_too(tmp_path: Path) -> None:
    write(
        tmp_path,
        "twice.py",
        '''
        from pydantic import BaseModel

        from orchestrator.catalog.registry import operation
        from orchestrator.catalog.values import Dataset
        from orchestrator.operations.images import resize_image  # imported: not declared here


        class TwiceParams(BaseModel):
            data: Dataset


        @operation(name="twice", output=Dataset)
        def twice(params: TwiceParams, ctx) -> Dataset:
            """Hand the data on."""
            return params.data
        ''',
    )
    catalog = catalog_of(tmp_path)

    assert catalog.problems == []
    assert catalog.names[-1:] == ["twice"]
    assert catalog.plugin_names == ["twice"]


def test_broken_plugins_are_reported_with_file_and_line_and_the_rest_load(tmp_path: Path) -> None:
    syntax = write(tmp_path, "a_syntax.py", "x = 1\ndef f(:\n    pass\n")
    crash = write(tmp_path, "b_crash.py", "import os\n\nraise RuntimeError('no model here')\n")
    missing = write(tmp_path, "c_missing.py", "import not_a_module_anywhere\n")
    annotation = write(
        tmp_path,
        "d_annotation.py",
        "from orchestrator.catalog.values import Dataset\n\n\n"
        "def step_fn(data: Dataset, window: 'Undefined') -> Dataset:\n    return data\n",
    )
    output = write(tmp_path, "e_output.py", "def step_fn(x: int) -> int:\n    return x\n")
    untyped = write(
        tmp_path,
        "f_untyped.py",
        "from orchestrator.catalog.values import Dataset\n\ndef step_fn(data) -> Dataset:\n"
        "    return data\n",
    )
    clash = write(
        tmp_path,
        "resize_image.py",
        "from orchestrator.catalog.values import Dataset\n\n\n"
        "def step_fn(data: Dataset) -> Dataset:\n    return data\n",
    )
    write(tmp_path, "scale.py", SCALE)
    catalog = catalog_of(tmp_path)

    found = [(p.file, p.line, p.message) for p in catalog.problems]

    assert found == [
        (str(syntax), 2, "syntax error: invalid syntax"),
        (str(crash), 3, "RuntimeError: no model here"),
        (str(missing), 1, "ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
        (str(annotation), 4, "step_fn: an annotation cannot be evaluated: "
                             "NameError: name 'Undefined' is not defined"),
        (str(output), 1, "step_fn: the return annotation must be an operation output type "
                         "(Batches, Comparison, Dataset, DeployedModel, ItemList, Predictions, "
                         "S3Objects), got int"),
        (str(untyped), 3, "step_fn: parameter 'data' has no annotation"),
        (str(clash), 4, "operation 'resize_image' is refused: the name is a built-in operation"),
    ]  # fmt: skip
    assert "scale" in catalog
    assert catalog["resize_image"] is CATALOG["resize_image"]


def test_reload_picks_up_added_changed_and_removed_files(tmp_path: Path) -> None:
    path = write(tmp_path, "scale.py", SCALE)
    catalog = catalog_of(tmp_path)
    assert "factor" in catalog["scale"].params.model_fields

    path.write_text(textwrap.dedent(SCALE).replace("factor: float", "ratio: float"))
    write(tmp_path, "other.py", SCALE)
    catalog.reload()
    assert "ratio" in catalog["scale"].params.model_fields
    assert "other" in catalog

    path.unlink()
    catalog.reload()
    assert "scale" not in catalog
    assert catalog.names == [*(op.name for op in BUILTINS), "other"]


def test_the_folders_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONSTELLATION_PLUGINS_DIR", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert folders_from_env() == [tmp_path / "a", tmp_path / "b"]
    monkeypatch.setenv("CONSTELLATION_PLUGINS_DIR", "")
    assert folders_from_env() == []


def test_the_dagster_job_names_broken_plugins(tmp_path: Path) -> None:
    from orchestrator.jobs import build_execute_job

    write(tmp_path, "bad.py", "def f(:\n")
    job = with_plugin_problems(build_execute_job, catalog_of(tmp_path))

    assert f"`{tmp_path / 'bad.py'}:1: syntax error: invalid syntax`" in (job.description or "")
    assert job.metadata["plugin_problems"].value[0]["line"] == 1  # type: ignore[attr-defined]
    assert with_plugin_problems(build_execute_job, catalog_of()) is build_execute_job


def test_the_sample_grayscale_plugin_runs_in_a_pipeline(tmp_path: Path) -> None:
    photos = tmp_path / "data" / "photos"
    photos.mkdir(parents=True)
    Image.new("RGBA", (6, 4), (200, 10, 10, 128)).save(photos / "red.png")
    catalog = PluginCatalog([CATALOG[name] for name in CATALOG.names], lambda: [SAMPLES])
    pipeline = [
        {
            "operation": "grayscale",
            "parameters": {
                "keep_alpha": True,
                "data": {"operation": "import_from_local", "parameters": {"path": "photos"}},
            },
        }
    ]

    run = run_instructions(
        pipeline,
        data_root=tmp_path / "data",
        artifact_root=tmp_path / "artifacts",
        operations=[catalog["grayscale"]],
    )

    assert run.status == "SUCCESS", run.error
    grey = run.values["instructions[0]"]
    with Image.open(grey.path_of(grey.items[0])) as image:  # type: ignore[attr-defined]
        assert (image.mode, image.size) == ("LA", (6, 4))


def test_refresh_reloads_only_when_a_file_changed(tmp_path: Path) -> None:
    path = write(tmp_path, "scale.py", SCALE)
    catalog = catalog_of(tmp_path)
    first = catalog["scale"]

    assert catalog.refresh() is False
    assert catalog["scale"] is first
    path.write_text(textwrap.dedent(SCALE).replace("factor: float", "ratio: float") + "\n")
    assert catalog.refresh() is True
    assert "ratio" in catalog["scale"].params.model_fields
