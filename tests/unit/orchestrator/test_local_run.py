"""In-process runs (orchestrator.local_run) and the operation helpers (orchestrator.testing)."""

from __future__ import annotations

import ast
import json
import tempfile
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from orchestrator.catalog import Dataset, ItemList, operation
from orchestrator.context import OperationContext
from orchestrator.errors import InstructionsInvalid, OperationError
from orchestrator.events import InstructionEvent
from orchestrator.local_run import catalog_with, run_instructions
from orchestrator.operations import CATALOG
from orchestrator.operations.transform import dict_to_list
from orchestrator.report import RunResults
from orchestrator.testing import make_dataset, run_operation
from testkit.dagster_stack import make_images


class ShoutParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Dataset
    suffix: str = "!"


@operation(name="shout", output=Dataset)
def shout(params: ShoutParams, ctx: OperationContext) -> Dataset:
    """Upper-case every text file."""
    writer = ctx.dataset_writer()
    for item in params.data.items:
        text = params.data.path_of(item).read_text()
        writer.path_for(item.name).write_text(text.upper() + params.suffix)
        writer.add(item.name, item.media_type)
    return writer.finish()


def images_pipeline(folder: str) -> dict:
    return {
        "instructions": [
            {
                "operation": "batch_formatted_data",
                "parameters": {
                    "batch_size": 2,
                    "data": {
                        "operation": "resize_image",
                        "parameters": {
                            "width": 16,
                            "height": 12,
                            "data": {
                                "operation": "import_from_local",
                                "parameters": {"path": folder},
                            },
                        },
                    },
                },
            },
            {"operation": "import_from_local", "parameters": {"path": folder}},
        ]
    }


def test_run_instructions_returns_what_the_api_returns(tmp_path: Path) -> None:
    make_images(tmp_path / "data" / "three", 3, size=(64, 48))
    seen: list[InstructionEvent] = []

    run = run_instructions(
        images_pipeline("three"),
        data_root=tmp_path / "data",
        artifact_root=tmp_path / "artifacts",
        on_event=seen.append,
    )

    assert run.status == "SUCCESS" and run.succeeded and run.error is None
    body = json.loads(run.results.model_dump_json())
    assert RunResults.model_validate(body) == run.results
    assert body["run_id"] == run.run_id and body["complete"] is True
    batches, imported = body["results"]
    assert batches["status"] == imported["status"] == "succeeded"
    assert batches["output"]["batch_sizes"] == [2, 1]
    assert imported["output"]["items"] == ["img-000.jpg", "img-001.jpg", "img-002.jpg"]
    first = run.detail.instructions[0]
    assert [s.operation for s in first.steps] == ["import_from_local", "resize_image"]
    assert all(s.status == "succeeded" and s.duration_s is not None for s in first.steps)
    assert seen == run.events and {e.kind for e in seen} == {"started", "progress", "succeeded"}
    # each import and resize of three images ends with its final progress event
    finals = [(e.operation, e.done, e.total) for e in seen if e.kind == "progress" and e.done == 3]
    assert set(finals) == {("import_from_local", 3, 3), ("resize_image", 3, 3)}
    resized = run.values["instructions[0]"]
    assert Path(resized.root).is_relative_to(tmp_path / "artifacts" / run.run_id)


def test_a_failing_instruction_fails_the_run_like_dagster_does(tmp_path: Path) -> None:
    make_images(tmp_path / "two", 2)
    document = {
        "instructions": [
            {"operation": "import_from_local", "parameters": {"path": "two"}},
            {"operation": "import_from_local", "parameters": {"path": "no-such-folder"}},
            {"operation": "import_from_local", "parameters": {"path": "two"}},
        ]
    }

    run = run_instructions(document, data_root=tmp_path, artifact_root=tmp_path / "artifacts")

    assert run.status == "FAILURE"
    assert [r.status for r in run.results.results] == ["succeeded", "failed", "skipped"]
    assert run.error == (
        "instructions[1] (import_from_local): path 'no-such-folder' does not exist under the "
        "data root"
    )


def test_invalid_instructions_raise_with_every_problem(tmp_path: Path) -> None:
    document = {
        "instructions": [
            {"operation": "dict_to_lst", "parameters": {}},
            {"operation": "resize_image", "parameters": {"width": "wide", "data": 3}},
        ]
    }
    with pytest.raises(InstructionsInvalid) as caught:
        run_instructions(document, artifact_root=tmp_path)
    assert [p.path for p in caught.value.problems] == [
        "instructions[0].operation",
        "instructions[1].parameters.data",
        "instructions[1].parameters.width",
    ]
    assert not any(tmp_path.iterdir()), "nothing runs when validation fails"


def test_extra_operations_join_the_catalog_for_one_run(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    document = {
        "instructions": [
            {
                "operation": "shout",
                "parameters": {
                    "suffix": "?",
                    "data": {"operation": "import_from_local", "parameters": {"path": "notes"}},
                },
            }
        ]
    }

    run = run_instructions(
        document, data_root=tmp_path, artifact_root=tmp_path / "artifacts", operations=[shout]
    )

    assert run.status == "SUCCESS", run.error
    shouted = run.values["instructions[0]"]
    assert isinstance(shouted, Dataset)
    assert shouted.path_of(shouted.items[0]).read_text() == "HELLO?"
    assert "shout" not in CATALOG, "the shared catalog is left alone"


def test_catalog_with_refuses_a_second_operation_of_the_same_name() -> None:
    with pytest.raises(ValueError, match="'dict_to_list' is registered twice"):
        catalog_with([dict_to_list])


def test_run_operation_returns_the_output(tmp_path: Path) -> None:
    notes = make_dataset(tmp_path / "in", {"b.txt": "bee", "a.txt": b"ay"})

    output = run_operation(shout, {"suffix": "."}, inputs={"data": notes}, artifact_root=tmp_path)

    assert isinstance(output, Dataset)
    assert [i.name for i in notes.items] == ["b.txt", "a.txt"], "make_dataset keeps the order"
    assert {i.name: output.path_of(i).read_text() for i in output.items} == {
        "a.txt": "AY.",
        "b.txt": "BEE.",
    }
    assert Path(output.root).is_relative_to(tmp_path / "test-run")


def test_run_operation_lets_errors_through(tmp_path: Path) -> None:
    with pytest.raises(OperationError, match="no data root is configured"):
        run_operation(CATALOG["import_from_local"], {"path": "x"}, artifact_root=tmp_path)


def test_run_operation_validates_parameters(tmp_path: Path) -> None:
    notes = make_dataset(tmp_path / "in", {"a.txt": "a"})
    with pytest.raises(ValueError, match="suffx"):
        run_operation(shout, {"suffx": "?"}, inputs={"data": notes}, artifact_root=tmp_path)


def test_run_operation_checks_the_declared_output_type(tmp_path: Path) -> None:
    @operation(name="lies", output=ItemList)
    def lies(params: ShoutParams, ctx: OperationContext) -> Dataset:
        return params.data

    notes = make_dataset(tmp_path / "in", {"a.txt": "a"})
    with pytest.raises(TypeError, match="lies returned Dataset, but declares output=ItemList"):
        run_operation(lies, inputs={"data": notes}, artifact_root=tmp_path)


def test_run_operation_without_a_root_uses_a_new_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    notes = make_dataset(tmp_path / "in", {"a.txt": "a"})

    output = run_operation(shout, inputs={"data": notes})

    (store,) = (tmp_path / "tmp").iterdir()
    assert Path(output.root).is_relative_to(store / "test-run")


def test_the_orchestrator_never_imports_the_api() -> None:
    """Dependencies point one way: api -> orchestrator."""
    package = Path(__file__).resolve().parents[3] / "orchestrator"
    wrong = []
    for module in package.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            wrong += [f"{module.name}: {n}" for n in names if n == "api" or n.startswith("api.")]
    assert wrong == []
