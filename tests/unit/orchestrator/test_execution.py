"""How a plan runs (`run_plan`), with a small in-memory catalog."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from orchestrator.artifacts import LocalStore
from orchestrator.catalog import Catalog, Dataset, RetryPolicy, operation, validate
from orchestrator.context import OperationContext, Services
from orchestrator.errors import OperationError, TransientError
from orchestrator.events import InstructionEvent, parse_message
from orchestrator.execution import RunOutcome, run_plan

calls: list[str] = []
lock = threading.Lock()
BARRIER_TIMEOUT_S = 30  # generous: the barrier breaks only if the siblings never meet
barriers: dict[int, threading.Barrier] = {}


def barrier(parties: int) -> threading.Barrier:
    with lock:
        return barriers.setdefault(parties, threading.Barrier(parties, timeout=BARRIER_TIMEOUT_S))


class MakeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    meet: int = 0  # wait until this many `make`s with `meet` have started (a barrier)
    fail: bool = False


class JoinParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    left: Dataset
    right: Dataset


class CleanupParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str


def record(entry: str) -> None:
    with lock:
        calls.append(entry)


@operation(name="make", output=Dataset)
def make(params: MakeParams, ctx: OperationContext) -> Dataset:
    """Write one file called `name`, after meeting `meet` siblings; fail on request."""
    record(f"start {params.name}")
    if params.meet:
        barrier(params.meet).wait()  # BrokenBarrierError if the others never start
    if params.fail:
        raise OperationError(f"{params.name} failed on purpose")
    writer = ctx.dataset_writer()
    writer.path_for(params.name).write_text(params.name)
    writer.add(params.name)
    record(f"end {params.name}")
    return writer.finish()


@operation(name="join", output=Dataset)
def join(params: JoinParams, ctx: OperationContext) -> Dataset:
    """Both inputs' items, as one data set."""
    record("join")
    items = params.left.items + params.right.items
    return Dataset(root=params.left.root, items=items)


@operation(name="cleanup", output=Dataset, cleanup=True)
def cleanup(params: CleanupParams, ctx: OperationContext) -> Dataset:
    """Always runs."""
    record(f"cleanup {params.name}")
    return Dataset(root=str(ctx.folder), items=())


@operation(name="failing_cleanup", output=Dataset, cleanup=True)
def failing_cleanup(params: CleanupParams, ctx: OperationContext) -> Dataset:
    """A cleanup operation that runs after a failure, and fails too."""
    record(f"cleanup {params.name}")
    raise OperationError(f"cleanup of {params.name} failed too")


attempts = {"flaky": 0}


@operation(name="flaky", output=Dataset, retry=RetryPolicy(max_attempts=3, backoff_seconds=0.01))
def flaky(params: CleanupParams, ctx: OperationContext) -> Dataset:
    """Fails transiently twice, then succeeds."""
    attempts["flaky"] += 1
    if attempts["flaky"] < 3:
        raise TransientError("server busy")
    return Dataset(root=str(ctx.folder), items=())


@operation(name="buggy", output=Dataset)
def buggy(params: CleanupParams, ctx: OperationContext) -> Dataset:
    """An operation with a bug."""
    return {}["missing"]  # type: ignore[no-any-return]


class GatherParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Dataset]


@operation(name="gather", output=Dataset)
def gather(params: GatherParams, ctx: OperationContext) -> Dataset:
    """Every input's items, in order: a list-of-values parameter."""
    record("gather")
    items = tuple(item for data in params.items for item in data.items)
    return Dataset(root=params.items[0].root, items=items)


class ReleaseParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: Dataset


@operation(name="release", output=Dataset, cleanup=True)
def release(params: ReleaseParams, ctx: OperationContext) -> Dataset:
    """A cleanup operation fed by another instruction."""
    record(f"release {','.join(item.name for item in params.data.items)}")
    return params.data


class Interrupt(BaseException):
    """Stands in for what Dagster raises in the op when a run is terminated."""


@operation(name="interrupted", output=Dataset)
def interrupted(params: CleanupParams, ctx: OperationContext) -> Dataset:
    """The run is told to stop while this runs."""
    raise Interrupt()


CATALOG = Catalog(
    [interrupted, make, join, cleanup, failing_cleanup, flaky, buggy, gather, release]
)


def run(document: Any, tmp_path: Path) -> tuple[RunOutcome, list[InstructionEvent]]:
    calls.clear()
    barriers.clear()
    events: list[InstructionEvent] = []
    plan = validate(document, CATALOG)
    services = Services(artifacts=LocalStore(tmp_path))
    return run_plan(plan, CATALOG, services, "run1", emit=events.append), events


def mk(name: str, **extra: Any) -> dict[str, Any]:
    return {"operation": "make", "parameters": {"name": name, **extra}}


def test_nested_run_first_and_independent_siblings_run_concurrently(tmp_path: Path) -> None:
    document = [
        {
            "operation": "join",
            "parameters": {"left": mk("a", meet=2), "right": mk("b", meet=2)},
        }
    ]
    outcome, _ = run(document, tmp_path)

    # Each sibling waits at a barrier for the other: run one after the other, they never meet.
    assert outcome.succeeded, outcome.first_error
    assert calls[-1] == "join"
    assert set(calls[:2]) == {"start a", "start b"}, "siblings start before either ends"
    assert [item.name for item in outcome.values["instructions[0]"].items] == ["a", "b"]


def test_top_level_in_order_and_cleanup_runs_after_a_failure(tmp_path: Path) -> None:
    document = [
        mk("first"),
        mk("second", fail=True),
        mk("third"),
        {"operation": "cleanup", "parameters": {"name": "model"}},
    ]
    outcome, events = run(document, tmp_path)

    assert calls == ["start first", "end first", "start second", "cleanup model"]
    assert [r.status for r in outcome.results] == ["succeeded", "failed", "skipped", "succeeded"]
    assert outcome.first_error == "instructions[1] (make): second failed on purpose"
    assert [(e.path, e.kind) for e in events if e.kind != "started"] == [
        ("instructions[0]", "succeeded"),
        ("instructions[1]", "failed"),
        ("instructions[2]", "skipped"),
        ("instructions[3]", "succeeded"),
    ]


def test_a_nested_failure_fails_its_instruction_with_the_nested_path(tmp_path: Path) -> None:
    document = [{"operation": "join", "parameters": {"left": mk("a"), "right": mk("b", fail=True)}}]
    outcome, _ = run(document, tmp_path)
    assert "join" not in calls
    assert outcome.first_error == "instructions[0].parameters.right (make): b failed on purpose"


def test_the_first_error_wins_over_a_later_cleanup_failure(tmp_path: Path) -> None:
    document = [mk("x", fail=True), {"operation": "failing_cleanup", "parameters": {"name": "y"}}]
    outcome, _ = run(document, tmp_path)
    assert calls == ["start x", "cleanup y"]
    assert [r.status for r in outcome.results] == ["failed", "failed"]
    assert outcome.results[1].error == "instructions[1] (failing_cleanup): cleanup of y failed too"
    assert outcome.first_error == "instructions[0] (make): x failed on purpose"


def test_transient_errors_are_retried_by_policy(tmp_path: Path) -> None:
    attempts["flaky"] = 0
    outcome, events = run([{"operation": "flaky", "parameters": {"name": "f"}}], tmp_path)
    assert outcome.succeeded
    assert [e.kind for e in events] == ["started", "retrying", "retrying", "succeeded"]
    assert events[-1].attempt == 3


def test_a_bug_in_an_operation_is_reported_with_its_type(tmp_path: Path) -> None:
    outcome, _ = run([{"operation": "buggy", "parameters": {"name": "y"}}], tmp_path)
    assert outcome.first_error == "instructions[0] (buggy): KeyError: 'missing'"


def test_events_round_trip_through_log_messages(tmp_path: Path) -> None:
    _, events = run([mk("a")], tmp_path)
    for event in events:
        assert parse_message(event.to_message()) == event
    assert events[-1].to_message().startswith("instructions[0] make succeeded in ")
    assert parse_message("an ordinary log line") is None


def test_results_are_recorded_in_the_run_folder(tmp_path: Path) -> None:
    outcome, _ = run([mk("a")], tmp_path)
    results = (tmp_path / "run1" / "results.json").read_text()
    assert '"status": "succeeded"' in results
    assert json.loads(results) == outcome.run_results().model_dump(mode="json")
    assert json.loads(results)["status"] == "SUCCESS"


def join_of(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {"operation": "join", "parameters": {"left": left, "right": right}}


def test_the_nested_steps_of_a_skipped_instruction_are_skipped(tmp_path: Path) -> None:
    outcome, _ = run([mk("x", fail=True), join_of(mk("a"), mk("b"))], tmp_path)
    skipped = outcome.detail.instructions[1]
    assert skipped.status == "skipped"
    assert [s.status for s in skipped.steps] == ["skipped", "skipped"]
    assert outcome.status == "FAILURE"


def test_an_interrupt_cancels_the_run_and_the_cleanup_still_runs(tmp_path: Path) -> None:
    document = [
        mk("a"),
        {"operation": "interrupted", "parameters": {"name": "i"}},
        join_of(mk("b"), mk("c")),
        {"operation": "cleanup", "parameters": {"name": "model"}},
    ]
    calls.clear()
    plan = validate(document, CATALOG)
    services = Services(artifacts=LocalStore(tmp_path))
    with pytest.raises(Interrupt):
        run_plan(plan, CATALOG, services, "run1", interrupts=(Interrupt,))

    assert calls == ["start a", "end a", "cleanup model"]
    results = json.loads((tmp_path / "run1" / "results.json").read_text())
    assert results["status"] == "CANCELED"
    assert [r["status"] for r in results["results"]] == [
        "succeeded",
        "canceled",
        "canceled",
        "succeeded",
    ]


def test_an_operation_that_is_canceled_fails_its_instruction(tmp_path: Path) -> None:
    @operation(name="stops", output=Dataset)
    def stops(params: CleanupParams, ctx: OperationContext) -> Dataset:
        ctx.cancelled.set()
        ctx.check_canceled()
        raise AssertionError("check_canceled() did not raise")

    catalog = Catalog([stops])
    plan = validate([{"operation": "stops", "parameters": {"name": "s"}}], catalog)
    outcome = run_plan(plan, catalog, Services(artifacts=LocalStore(tmp_path)), "run1")
    assert outcome.first_error == "instructions[0] (stops): canceled"


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "~/x", ".."])
def test_item_names_cannot_escape_their_folder(tmp_path: Path, name: str) -> None:
    outcome, _ = run([mk(name)], tmp_path)
    assert "is not a safe relative path" in outcome.first_error


# Sharing an output: a node used through refs runs once; its failure fails every consumer.


def ref(name: str) -> dict[str, str]:
    return {"ref": name}


def names(outcome: RunOutcome, root: str) -> list[str]:
    value = outcome.values[root]
    assert isinstance(value, Dataset)
    return [item.name for item in value.items]


def test_a_shared_output_is_computed_once_for_all_its_consumers(tmp_path: Path) -> None:
    document = [
        {**mk("photos"), "id": "photos"},
        join_of(ref("photos"), ref("photos")),
        {"operation": "gather", "parameters": {"items": [ref("photos"), mk("b"), ref("photos")]}},
    ]
    outcome, events = run(document, tmp_path)

    assert outcome.succeeded, outcome.first_error
    assert calls.count("start photos") == 1
    assert [e.path for e in events if e.kind == "started"].count("instructions[0]") == 1
    assert names(outcome, "instructions[1]") == ["photos", "photos"]
    assert names(outcome, "instructions[2]") == ["photos", "b", "photos"]
    first, second, third = outcome.detail.instructions
    assert (first.id, first.status, second.steps) == ("photos", "succeeded", [])
    assert second.model_dump()["inputs"] == {
        "left": {"path": "instructions[0]", "ref": "photos"},
        "right": {"path": "instructions[0]", "ref": "photos"},
    }
    assert [s.path for s in third.steps] == ["instructions[2].parameters.items[1]"]
    assert third.model_dump()["inputs"]["items"][1] == {
        "path": "instructions[2].parameters.items[1]",
        "ref": None,
    }
    assert outcome.run_results().results[0].id == "photos"


def test_a_node_shared_inside_one_tree_runs_once_before_both_consumers(tmp_path: Path) -> None:
    shared = {**mk("x"), "id": "x"}
    document = [join_of(join_of(shared, ref("x")), ref("x"))]
    outcome, _ = run(document, tmp_path)
    assert outcome.succeeded, outcome.first_error
    assert calls == ["start x", "end x", "join", "join"]
    assert names(outcome, "instructions[0]") == ["x", "x", "x"]
    assert len(outcome.detail.instructions[0].steps) == 2, "each instruction shown once"


def test_a_top_level_instruction_used_earlier_runs_first_and_not_again(tmp_path: Path) -> None:
    document = [mk("first"), join_of(ref("later"), mk("b")), {**mk("later"), "id": "later"}]
    outcome, events = run(document, tmp_path)
    assert outcome.succeeded, outcome.first_error
    assert calls.index("end first") < calls.index("start later") < calls.index("join")
    assert calls.count("start later") == 1
    assert [r.status for r in outcome.results] == ["succeeded"] * 3
    assert names(outcome, "instructions[2]") == ["later"]
    assert [e.root for e in events if e.path == "instructions[2]"] == ["instructions[2]"] * 2


def test_a_shared_failure_fails_every_consumer_and_the_cleanup_still_runs(
    tmp_path: Path,
) -> None:
    document = [
        {**mk("photos", fail=True), "id": "photos"},
        join_of(ref("photos"), mk("b")),
        {"operation": "gather", "parameters": {"items": [mk("c"), ref("photos")]}},
        {"operation": "cleanup", "parameters": {"name": "model"}},
        {"operation": "release", "parameters": {"data": ref("photos")}},
    ]
    outcome, events = run(document, tmp_path)

    assert calls == ["start photos", "cleanup model"], "nothing runs on a failed output"
    error = "instructions[0] (make): photos failed on purpose"
    assert [(r.status, r.error) for r in outcome.results] == [
        ("failed", error),
        ("failed", error),
        ("failed", error),
        ("succeeded", None),
        ("failed", error),
    ]
    assert outcome.first_error == error
    assert [e.kind for e in events if e.path == "instructions[0]"] == ["started", "failed"]
    assert not [e for e in events if e.kind == "skipped"], "they failed, not skipped"


def test_a_cleanup_runs_what_it_needs_from_a_skipped_instruction(tmp_path: Path) -> None:
    document = [
        mk("x", fail=True),
        join_of({**mk("model"), "id": "model"}, mk("y")),
        {"operation": "release", "parameters": {"data": ref("model")}},
    ]
    outcome, _ = run(document, tmp_path)
    assert calls == ["start x", "start model", "end model", "release model"]
    assert [r.status for r in outcome.results] == ["failed", "skipped", "succeeded"]
    steps = {s.path: s.status for s in outcome.detail.instructions[1].steps}
    assert steps == {
        "instructions[1].parameters.left": "succeeded",
        "instructions[1].parameters.right": "skipped",
    }


def test_independent_consumers_of_a_shared_output_run_concurrently(tmp_path: Path) -> None:
    document = [
        join_of(
            join_of({**mk("s"), "id": "s"}, mk("a", meet=2)),
            join_of(ref("s"), mk("b", meet=2)),
        )
    ]
    outcome, _ = run(document, tmp_path)
    assert outcome.succeeded, outcome.first_error
    assert calls.count("start s") == 1
    assert names(outcome, "instructions[0]") == ["s", "a", "s", "b"]
