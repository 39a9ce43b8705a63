"""POST /runs/{id}/rerun's logic (api/reruns.py) against a Dagster held in memory."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
import yaml

from api.dagster import DagsterClient, RunRecord
from api.errors import InvalidRequest, RunNotEnded
from api.reruns import rerun
from api.submissions import TAG_IDEMPOTENCY_KEY, run_config
from orchestrator.catalog.validation import Limits
from orchestrator.operations import CATALOG

DOCUMENT = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "x"}}]}


class FakeDagster:
    def __init__(self, old: RunRecord) -> None:
        self.old = old
        self.launched: list[tuple[dict[str, Any], dict[str, str]]] = []

    async def get_run(self, run_id: str, *, config: bool = False) -> RunRecord:
        assert run_id == self.old.run_id and config
        return self.old

    async def launch_run(self, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        self.launched.append((run_config, tags))
        return "new-run"


def old_run(status: str = "FAILURE", document: Any = DOCUMENT) -> RunRecord:
    tags = {
        TAG_IDEMPOTENCY_KEY: "k1",
        "constellation/pipeline": "photos",
        "dagster/priority": "5",
    }
    config = yaml.safe_dump(run_config(document))
    return RunRecord("old-run", status, 0.0, 1.0, 2.0, tags, config)


def call(dagster: FakeDagster, mode: Any = "failure") -> str:
    return asyncio.run(rerun(cast(DagsterClient, dagster), CATALOG, Limits(), "old-run", mode))


def test_a_rerun_launches_the_same_instructions_tagged_with_the_old_run() -> None:
    dagster = FakeDagster(old_run())
    assert call(dagster) == "new-run"
    [(config, tags)] = dagster.launched
    assert config == run_config(DOCUMENT)
    assert tags["constellation/rerun-of"] == "old-run"
    assert tags["constellation/rerun"] == "failure"
    assert tags["constellation/pipeline"] == "photos"  # carried over
    assert TAG_IDEMPOTENCY_KEY not in tags and "dagster/priority" not in tags


def test_a_rerun_of_all_says_so() -> None:
    dagster = FakeDagster(old_run("SUCCESS"))
    call(dagster, "all")
    assert dagster.launched[0][1]["constellation/rerun"] == "all"


def test_a_run_that_has_not_ended_is_not_rerun() -> None:
    dagster = FakeDagster(old_run("STARTED"))
    with pytest.raises(RunNotEnded, match=r"run 'old-run' is STARTED: it can be rerun once"):
        call(dagster)
    assert dagster.launched == []


def test_instructions_that_no_longer_validate_are_422_with_paths() -> None:
    bad = {"instructions": [{"operation": "gone_operation", "parameters": {}}]}
    dagster = FakeDagster(old_run(document=bad))
    with pytest.raises(InvalidRequest) as caught:
        call(dagster)
    assert [p.path for p in caught.value.problems] == ["instructions[0].operation"]


def test_a_run_without_instructions_is_refused() -> None:
    record = RunRecord("old-run", "FAILURE", 0.0, None, None, {}, "ops: {}\n")
    with pytest.raises(InvalidRequest, match="names no instructions in its run config"):
        call(FakeDagster(record))
