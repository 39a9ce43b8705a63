"""Caching across runs and reruns from failure, through in-process runs (orchestrator.local_run)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from orchestrator.artifacts import LocalCache, LocalStore, S3Store
from orchestrator.cache import INDEX, CacheIndex
from orchestrator.catalog import Dataset, operation, validate
from orchestrator.catalog.registry import pure
from orchestrator.context import OperationContext, Services
from orchestrator.errors import InstructionsInvalid, OperationError
from orchestrator.execution import run_plan
from orchestrator.local_run import LocalRun, run_instructions
from orchestrator.operations import CATALOG
from orchestrator.resources import S3Resource
from orchestrator.retention import forget_cached
from testkit.dagster_stack import make_images
from testkit.fake_model_server import FakeModelServer
from testkit.moto_server import MotoServer

CALLS: list[str] = []  # what the plug-in operations below did, in order


class FinishParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Dataset
    flag: str = "fail"


@operation(name="finish", output=Dataset, cache_key=pure)
def finish(params: FinishParams, ctx: OperationContext) -> Dataset:
    """Fails while the file named by `flag` exists in the data root; else passes its input on."""
    CALLS.append("finish")
    root = ctx.services.data_root
    if root is not None and (root / params.flag).exists():
        raise OperationError("told to fail")
    return params.data


class NoteParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: Dataset


@operation(name="note", output=Dataset, side_effects=True)
def note(params: NoteParams, ctx: OperationContext) -> Dataset:
    """Tells the outside world (here: CALLS); never cached."""
    CALLS.append("note")
    return params.data


def resized(width: int = 16, cache: bool = True) -> dict[str, Any]:
    imported: dict[str, Any] = {"operation": "import_from_local", "parameters": {"path": "in"}}
    if not cache:
        imported["cache"] = False
    return {
        "operation": "resize_image",
        "parameters": {"width": width, "height": 12, "data": imported},
    }


def run(tmp_path: Path, *instructions: dict[str, Any], **options: Any) -> LocalRun:
    return run_instructions(
        {"instructions": list(instructions)},
        data_root=tmp_path / "data",
        artifact_root=tmp_path / "artifacts",
        operations=[finish, note],
        **options,
    )


def states(run: LocalRun) -> list[tuple[str, str]]:
    """(path, status) of every instruction and nested instruction, parents first."""
    found = []
    for instruction in run.detail.instructions:
        found.append((instruction.path, instruction.status))
        found.extend((step.path, step.status) for step in reversed(instruction.steps))
    return found


@pytest.fixture
def photos(tmp_path: Path) -> list[Path]:
    CALLS.clear()
    return make_images(tmp_path / "data" / "in", 3, size=(64, 48))


def test_a_second_run_reuses_every_output_and_says_cached(
    tmp_path: Path, photos: list[Path]
) -> None:
    first = run(tmp_path, resized())
    second = run(tmp_path, resized())

    assert first.status == second.status == "SUCCESS"
    assert states(first) == [
        ("instructions[0]", "succeeded"),
        ("instructions[0].parameters.data", "succeeded"),
    ]
    assert states(second) == [
        ("instructions[0]", "cached"),
        ("instructions[0].parameters.data", "cached"),
    ]
    assert [(e.kind, e.cached_from) for e in second.events] == [
        ("cached", first.run_id),
        ("cached", first.run_id),
    ]
    # the same files: the first run's artifact, read by key
    assert second.results.results[0].output == first.results.results[0].output
    assert second.results.results[0].output["artifact"].startswith(f"{first.run_id}/")  # type: ignore[index]
    assert second.values["instructions[0]"].items == first.values["instructions[0]"].items  # type: ignore[attr-defined]
    headline = second.events[0].headline()
    assert "cached in " in headline and f"(the output of run {first.run_id})" in headline


def test_a_changed_file_is_a_miss_for_the_import_and_everything_after_it(
    tmp_path: Path, photos: list[Path]
) -> None:
    first = run(tmp_path, resized())
    stat = photos[0].stat()
    os.utime(photos[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = run(tmp_path, resized())
    third = run(tmp_path, resized())

    assert states(second) == [
        ("instructions[0]", "succeeded"),
        ("instructions[0].parameters.data", "succeeded"),
    ]
    assert second.results.results[0].output["artifact"].startswith(f"{second.run_id}/")  # type: ignore[index]
    assert {e.cached_from for e in third.events} == {second.run_id}  # the new version's
    assert first.run_id not in {e.cached_from for e in third.events}


def test_a_changed_parameter_reruns_only_what_it_changes(
    tmp_path: Path, photos: list[Path]
) -> None:
    run(tmp_path, resized(width=16))
    wider = run(tmp_path, resized(width=20))

    assert states(wider) == [
        ("instructions[0]", "succeeded"),
        ("instructions[0].parameters.data", "cached"),
    ]
    assert wider.values["instructions[0]"].items[0].size > 0  # type: ignore[attr-defined]


def test_cache_false_runs_the_instruction_and_what_it_feeds(
    tmp_path: Path, photos: list[Path]
) -> None:
    run(tmp_path, resized())
    again = run(tmp_path, resized(cache=False))

    assert states(again) == [
        ("instructions[0]", "succeeded"),
        ("instructions[0].parameters.data", "succeeded"),
    ]


def test_cache_must_be_a_boolean(tmp_path: Path) -> None:
    document = resized()
    document["parameters"]["data"]["cache"] = "no"
    with pytest.raises(InstructionsInvalid) as caught:
        run(tmp_path, document)
    [problem] = caught.value.problems
    assert problem.as_dict() == {
        "path": "instructions[0].parameters.data.cache",
        "message": "expected true or false",
        "expected": "a boolean (false: run it even if an earlier run made the same output)",
        "received": '"no" (string)',
    }


def test_operations_with_side_effects_always_run(tmp_path: Path, photos: list[Path]) -> None:
    noted = {"operation": "note", "parameters": {"data": resized()}}
    run(tmp_path, noted)
    second = run(tmp_path, noted)

    assert CALLS == ["note", "note"]
    assert states(second)[0] == ("instructions[0]", "succeeded")
    assert states(second)[1] == ("instructions[0].parameters.data", "cached")


def test_entries_go_with_the_artifacts(tmp_path: Path, photos: list[Path]) -> None:
    first = run(tmp_path, resized())
    store = LocalStore(tmp_path / "artifacts")
    assert len(list((tmp_path / "artifacts" / INDEX).iterdir())) == 2

    forget_cached(store, first.run_id)  # what retention does before delete_run
    store.delete_run(first.run_id)
    assert list((tmp_path / "artifacts" / INDEX).iterdir()) == []
    second = run(tmp_path, resized())

    assert [e.kind for e in second.events if e.kind != "progress"] == ["started", "succeeded"] * 2


def test_a_removed_artifact_is_a_miss_even_with_its_entry(
    tmp_path: Path, photos: list[Path]
) -> None:
    first = run(tmp_path, resized())
    LocalStore(tmp_path / "artifacts").delete_run(first.run_id)  # entries left behind
    second = run(tmp_path, resized())

    assert states(second) == [
        ("instructions[0]", "succeeded"),
        ("instructions[0].parameters.data", "succeeded"),
    ]


def test_a_rerun_from_failure_reuses_what_succeeded(tmp_path: Path, photos: list[Path]) -> None:
    flag = tmp_path / "data" / "fail"
    flag.write_text("")
    document = [
        {**resized(cache=False), "id": "small"},  # no cache: only the rerun can reuse it
        {"operation": "note", "parameters": {"data": {"ref": "small"}}},
        {"operation": "finish", "parameters": {"data": {"ref": "small"}}},
    ]
    failed = run(tmp_path, *document)
    flag.unlink()
    rerun = run(tmp_path, *document, rerun_of=failed.run_id)

    assert failed.status == "FAILURE" and rerun.status == "SUCCESS"
    assert states(failed) == [
        ("instructions[0]", "succeeded"),
        ("instructions[0].parameters.data", "succeeded"),
        ("instructions[1]", "succeeded"),
        ("instructions[2]", "failed"),
    ]
    assert states(rerun) == [
        ("instructions[0]", "cached"),
        ("instructions[0].parameters.data", "cached"),
        ("instructions[1]", "succeeded"),  # side effects: it runs again
        ("instructions[2]", "succeeded"),
    ]
    assert CALLS == ["note", "finish", "note", "finish"]
    assert {e.cached_from for e in rerun.events if e.kind == "cached"} == {failed.run_id}


def test_a_rerun_runs_again_what_is_gone(tmp_path: Path, photos: list[Path]) -> None:
    flag = tmp_path / "data" / "fail"
    flag.write_text("")
    document = [{"operation": "finish", "parameters": {"data": resized(cache=False)}}]
    failed = run(tmp_path, *document)
    nodes = json.loads((tmp_path / "artifacts" / failed.run_id / "nodes.json").read_text())
    resize_folder = (
        tmp_path / "artifacts" / nodes["nodes"]["instructions[0].parameters.data"]["artifact"]
    )
    (resize_folder / "manifest.json").unlink()  # its artifact is gone
    flag.unlink()
    rerun = run(tmp_path, *document, rerun_of=failed.run_id)

    assert states(rerun) == [
        ("instructions[0]", "succeeded"),
        ("instructions[0].parameters.data", "succeeded"),
        ("instructions[0].parameters.data.parameters.data", "cached"),
    ]


def test_a_rerun_of_all_reads_no_cache(tmp_path: Path, photos: list[Path]) -> None:
    run(tmp_path, resized())
    again = run(tmp_path, resized(), use_cache=False)
    after = run(tmp_path, resized())

    assert {status for _, status in states(again)} == {"succeeded"}
    assert {e.cached_from for e in after.events} == {again.run_id}  # its outputs did enter


def test_the_index_is_shared_through_the_store(tmp_path: Path, photos: list[Path]) -> None:
    first = run(tmp_path, resized())
    index = CacheIndex(LocalStore(tmp_path / "artifacts"))
    nodes = index.read_nodes(first.run_id)
    key = nodes["instructions[0]"].key
    assert key is not None
    found = index.lookup(key)
    assert found is not None and found.run_id == first.run_id
    assert found.artifact == nodes["instructions[0]"].artifact


def test_workers_on_two_machines_share_the_cache_through_an_s3_store(
    moto: MotoServer, tmp_path: Path, photos: list[Path]
) -> None:
    boto3.client("s3", endpoint_url=moto.url).create_bucket(Bucket="runs")

    def machine(name: str) -> Services:
        client = S3Resource(endpoint_url=moto.url).client()
        cache = LocalCache(tmp_path / name, 50 * 2**20)  # each its own local copies
        return Services(S3Store(client, "s3://runs/pre", cache), data_root=tmp_path / "data")

    document = {
        "instructions": [{"operation": "batch_formatted_data", "parameters": {"data": resized()}}]
    }
    first = run_instructions(document, services=machine("a"))
    second = run_instructions(document, services=machine("b"))
    batches = second.values["instructions[0]"]

    assert {status for _, status in states(second)} == {"cached"}
    assert {e.cached_from for e in second.events} == {first.run_id}
    # machine b reads the files machine a made: a checkout downloads them
    store_b = machine("b").artifacts
    key = store_b.key_of(batches.root)  # type: ignore[attr-defined]
    assert key is not None and key.startswith(f"{first.run_id}/")
    folder = store_b.checkout(key)
    assert sorted(p.name for p in (folder / "files").iterdir()) == [p.name for p in photos]

    forget_cached(store_b, first.run_id)
    store_b.delete_run(first.run_id)
    third = run_instructions(document, services=machine("c"))
    assert {status for _, status in states(third)} == {"succeeded"}


def test_model_inference_is_keyed_by_the_served_models_version(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "rows"
    folder.mkdir(parents=True)
    for index in range(3):
        (folder / f"{index}.json").write_text(json.dumps([1.0, 2.0, 3.0, float(index)]))
    version: list[str] = ["3"]

    def versioned(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path == "/v2/models/iris" and version:
            body = {"name": "iris", "versions": version, "platform": "fake", "inputs": []}
            return httpx.Response(200, json=body)
        return None

    server = FakeModelServer(intercept=versioned)
    services = Services(
        artifacts=LocalStore(tmp_path / "artifacts"),
        data_root=tmp_path / "data",
        model_server=server.client(),
    )
    rows = {"operation": "import_from_local", "parameters": {"path": "rows"}}
    document = {
        "instructions": [
            {"operation": "deploy_model", "parameters": {"model": "iris"}},
            {"operation": "model_inference", "parameters": {"model": "iris", "data": rows}},
            {"operation": "delete_model", "parameters": {"model": "iris"}},
        ]
    }

    def statuses_of(run_id: str) -> tuple[list[str], int]:
        before = len(server.infer_batches)
        outcome = run_plan(validate(document, CATALOG), CATALOG, services, run_id)
        found = [i.status for i in outcome.detail.instructions]
        return found, len(server.infer_batches) - before

    first = statuses_of("r1")
    same_version = statuses_of("r2")
    version[0] = "4"
    new_version = statuses_of("r3")
    version.clear()  # a model that names no version
    unversioned = [statuses_of("r4"), statuses_of("r5")]

    assert first == (["succeeded"] * 3, 1)
    assert same_version == (["succeeded", "cached", "succeeded"], 0)  # deploy, delete: run
    assert new_version == (["succeeded"] * 3, 1)
    assert unversioned == [(["succeeded"] * 3, 1)] * 2
