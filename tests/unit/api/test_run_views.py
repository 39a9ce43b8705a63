"""A run as GET /runs/{id} shows it: why it failed when no instruction says, and the
incremental reading of its log."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from api.dagster import LogLine, LogPage, RunRecord
from api.errors import RunNotFound
from api.run_views import RunReports, build_detail, plan_of, run_failure
from api.submissions import run_config
from orchestrator.artifacts import LocalStore
from orchestrator.catalog.validation import Limits, validate
from orchestrator.context import Services
from orchestrator.events import InstructionEvent, parse_message, parse_plan, plan_message
from orchestrator.execution import run_plan
from orchestrator.operations import CATALOG
from orchestrator.plan import Plan
from orchestrator.report import RunDetail


def line(kind: str, message: str, error: str | None = None) -> LogLine:
    return LogLine(message=message, timestamp=0.0, step_key=None, kind=kind, error=error)


def test_a_step_error_comes_first() -> None:
    lines = [
        line("ExecutionStepFailureEvent", "step failed", error="instructions[0].operation: ..."),
        line("RunFailureEvent", "Execution of run for build_execute_job failed."),
    ]
    assert run_failure(lines) == "instructions[0].operation: ..."


def test_a_killed_worker_is_named_rather_than_the_generic_failure() -> None:
    lines = [
        line("EngineEvent", "Executing steps in process (pid: 1)"),
        line(
            "EngineEvent",
            "[DagsterApiServer] Run execution process for r was terminated by signal 9",
        ),
        line(
            "RunFailureEvent",
            "This run has been marked as failed from outside the execution context.",
        ),
    ]
    assert run_failure(lines).endswith("terminated by signal 9")


def test_the_first_canceling_reason_explains_a_forced_failure() -> None:
    lines = [
        line("RunCancelingEvent", "Canceling due to exceeding maximum runtime of 60 seconds."),
        line("RunCancelingEvent", "Sending run termination request."),
        line("EngineEvent", "Sending run termination request."),
        line("RunFailureEvent", "This job is being forcibly marked as failed. ..."),
    ]
    assert run_failure(lines) == "Canceling due to exceeding maximum runtime of 60 seconds."


def test_a_specific_run_failure_message_is_kept() -> None:
    lines = [line("RunFailureEvent", "Exceeded maximum runtime of 60 seconds.")]
    assert run_failure(lines) == "Exceeded maximum runtime of 60 seconds."
    assert run_failure([]) == "the run failed"


# GET /runs/{id} polls: RunReports reads each run's log once, incrementally.

DOCUMENT = {
    "instructions": [
        {"operation": "import_from_local", "parameters": {"path": "notes"}},
        {"operation": "import_from_local", "parameters": {"path": "no-such-folder"}},
        {
            "operation": "dict_to_list",
            "parameters": {
                "data": {"operation": "import_from_local", "parameters": {"path": "notes"}}
            },
        },
    ]
}


class FakeDagster:
    """What RunReports asks of DagsterClient, answered from a list of log lines."""

    def __init__(self, record: RunRecord, lines: list[LogLine]):
        self.record = record
        self.lines = lines
        self.pages: list[str | None] = []  # the cursor of every log page asked for
        self.configs = 0

    async def get_run(self, run_id: str, *, config: bool = False) -> RunRecord:
        if run_id != self.record.run_id:
            raise RunNotFound(f"no run with id {run_id!r}")
        self.configs += config
        return self.record

    async def run_log_page(self, run_id: str, cursor: str | None, limit: int = 2) -> LogPage:
        self.pages.append(cursor)
        start = int(cursor or 0)
        page = self.lines[start : start + limit]
        return LogPage(page, str(start + len(page)), start + limit < len(self.lines))


@pytest.fixture
def finished_run(tmp_path: Path) -> tuple[RunRecord, list[LogLine]]:
    """A FAILURE run of DOCUMENT: its record and its Dagster log, plan message first."""
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("a")
    plan = validate(DOCUMENT, CATALOG)
    events: list[InstructionEvent] = []
    services = Services(artifacts=LocalStore(tmp_path / "artifacts"), data_root=tmp_path)
    run_plan(plan, CATALOG, services, "r1", emit=events.append)
    lines = [line("LogMessageEvent", plan_message("planned 3 instruction(s)", plan))]
    lines += [line("LogMessageEvent", event.to_message()) for event in events]
    lines.append(line("RunFailureEvent", "Execution of run for build_execute_job failed."))
    config = yaml.safe_dump(run_config(DOCUMENT))
    record = RunRecord("r1", "FAILURE", 1.0, 1.0, 2.0, {}, run_config_yaml=config)
    return record, lines


def detail_of(reports: RunReports, run_id: str = "r1") -> RunDetail:
    return asyncio.run(reports.detail(run_id))


def reports_for(dagster: FakeDagster) -> RunReports:
    return RunReports(dagster, CATALOG, Limits())  # type: ignore[arg-type]


def test_incremental_reads_give_what_reading_the_whole_log_gives(
    finished_run: tuple[RunRecord, list[LogLine]],
) -> None:
    record, lines = finished_run
    whole = build_detail(record, lines, plan_of(record, CATALOG, Limits()))
    running = replace(record, status="STARTED", ended_at=None)
    dagster = FakeDagster(running, lines[:3])
    reports = reports_for(dagster)

    assert detail_of(reports).instructions[0].status in {"running", "succeeded"}
    dagster.lines, dagster.record = lines, record
    dagster.pages.clear()
    assert detail_of(reports) == whole
    assert dagster.pages[0] == "3", "the second poll starts where the first ended"
    assert dagster.configs == 0, "the plan came from the log, not the run config"
    assert whole.error == (
        "instructions[1] (import_from_local): path 'no-such-folder' does not exist under the "
        "data root"
    )


def test_a_finished_run_is_kept_whole_and_read_again_after_a_restart(
    finished_run: tuple[RunRecord, list[LogLine]],
) -> None:
    record, lines = finished_run
    dagster = FakeDagster(record, lines)
    reports = reports_for(dagster)
    first = detail_of(reports)
    detail_of(reports)  # reads nothing new: from now on the answer is kept
    asked = len(dagster.pages)
    assert detail_of(reports) == first
    assert len(dagster.pages) == asked, "no log read for a finished run already read"
    assert detail_of(reports_for(FakeDagster(record, lines))) == first, "a new process agrees"
    with pytest.raises(RunNotFound):
        detail_of(reports, "gone")


def test_a_queued_run_shows_its_plan_from_the_run_config_read_once(
    finished_run: tuple[RunRecord, list[LogLine]],
) -> None:
    record, _ = finished_run
    dagster = FakeDagster(replace(record, status="QUEUED", ended_at=None), [])
    reports = reports_for(dagster)
    for _ in range(3):
        detail = detail_of(reports)
    assert [i.status for i in detail.instructions] == ["pending"] * 3
    assert dagster.configs == 1


def test_the_nested_steps_of_a_skipped_instruction_are_skipped_after_the_run(
    finished_run: tuple[RunRecord, list[LogLine]],
) -> None:
    record, lines = finished_run
    skipped = detail_of(reports_for(FakeDagster(record, lines))).instructions[2]
    assert skipped.status == "skipped"
    assert [s.status for s in skipped.steps] == ["skipped"]
    canceled = replace(record, status="CANCELED")
    without_skip = [
        line
        for line in lines
        if "skipped" not in line.message or "constellation-plan" in line.message
    ]
    stopped = detail_of(reports_for(FakeDagster(canceled, without_skip))).instructions[2]
    assert stopped.status == "canceled"
    assert [s.status for s in stopped.steps] == ["canceled"]


def test_the_cache_holds_a_bounded_number_of_runs(
    finished_run: tuple[RunRecord, list[LogLine]],
) -> None:
    record, lines = finished_run
    reports = RunReports(FakeDagster(record, lines), CATALOG, Limits(), capacity=1)  # type: ignore[arg-type]
    detail_of(reports)
    assert len(reports._runs) == 1
    reports._state("another")
    assert list(reports._runs) == ["another"]


def test_a_plan_travels_as_its_outline() -> None:
    plan = validate(DOCUMENT, CATALOG)
    carried = parse_plan(plan_message("planned", plan))
    assert carried is not None
    assert carried.roots == plan.roots
    assert {n.id: (n.operation, n.inputs) for n in carried.nodes.values()} == {
        n.id: (n.operation, n.inputs) for n in plan.nodes.values()
    }
    assert parse_plan("planned\nconstellation-plan: [[1]]") is None


def test_every_run_logs_its_plan_first(tmp_path: Path) -> None:
    """Launchpad runs too: the job's first op writes the plan where GET /runs/{id} reads it."""
    import dagster as dg

    from orchestrator.definitions import defs
    from orchestrator.resources import ArtifactStoreResource, DataRootResource

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("a")
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def("build_execute_job").execute_in_process(
        run_config=run_config(DOCUMENT),
        instance=instance,
        resources={
            "artifact_store": ArtifactStoreResource(root=str(tmp_path / "artifacts")),
            "data_root": DataRootResource(root=str(tmp_path)),
        },
        raise_on_error=False,
    )
    messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    plans = [plan for plan in map(parse_plan, messages) if plan is not None]
    events = [i for i, m in enumerate(messages) if parse_message(m) is not None]
    first_plan = next(i for i, m in enumerate(messages) if parse_plan(m) is not None)
    assert len(plans) == 1 and plans[0].roots == validate(DOCUMENT, CATALOG).roots
    assert first_plan < events[0]


SHARED = {
    "instructions": [
        {"operation": "import_from_local", "parameters": {"path": "notes"}, "id": "notes"},
        {"operation": "dict_to_list", "parameters": {"data": {"ref": "notes"}}},
        {
            "operation": "batch_formatted_data",
            "parameters": {
                "batch_size": 1,
                "data": {"operation": "dict_to_list", "parameters": {"data": {"ref": "notes"}}},
            },
        },
    ]
}


def test_a_launchpad_run_with_refs_shows_the_shared_instruction_once(tmp_path: Path) -> None:
    """The launchpad's raw_input and POST /execute's body take one path: the run's own log
    carries the ids and refs, and its fold shows the shared import once, run once."""
    import dagster as dg

    from orchestrator.definitions import defs
    from orchestrator.resources import ArtifactStoreResource, DataRootResource

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("a")
    instance = dg.DagsterInstance.ephemeral()
    config = run_config(SHARED)
    assert config["ops"]["generate_dynamic_job_configs"]["config"]["raw_input"] == SHARED
    result = defs.resolve_job_def("build_execute_job").execute_in_process(
        run_config=config,
        instance=instance,
        resources={
            "artifact_store": ArtifactStoreResource(root=str(tmp_path / "artifacts")),
            "data_root": DataRootResource(root=str(tmp_path)),
        },
    )
    assert result.success
    lines = [line("LogMessageEvent", e.user_message) for e in instance.all_logs(result.run_id)]
    plan = next(p for p in map(parse_plan, (x.message for x in lines)) if p is not None)
    record = RunRecord(result.run_id, "SUCCESS", 1.0, 1.0, 2.0, {})
    detail = build_detail(record, lines, plan)

    shared, direct, batched = detail.instructions
    assert (shared.path, shared.id, shared.status) == ("instructions[0]", "notes", "succeeded")
    assert direct.model_dump()["inputs"] == {"data": {"path": "instructions[0]", "ref": "notes"}}
    assert direct.steps == []
    (nested,) = batched.steps
    assert nested.model_dump()["inputs"] == {"data": {"path": "instructions[0]", "ref": "notes"}}
    started = [parse_message(x.message) for x in lines]
    paths = [e.path for e in started if e is not None and e.kind == "started"]
    assert paths.count("instructions[0]") == 1, "the shared import ran once"
    assert detail == build_detail(record, lines, plan_of_config(config))


def plan_of_config(config: dict[str, object]) -> Plan | None:
    record = RunRecord("r", "SUCCESS", 1.0, 1.0, 2.0, {}, run_config_yaml=yaml.safe_dump(config))
    return plan_of(record, CATALOG, Limits())
