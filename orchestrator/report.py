"""What became of a run: its instruction events folded into statuses.

One shape for every reader of a run's outcome: the executor's `RunOutcome`,
`RUN_ID/results.json`, the Dagster Failure metadata, `run_instructions()` and
the API's `GET /runs/{id}` and `GET /runs/{id}/results` all come from `RunFold`
and are these models.

`RunFold` takes events one at a time (`add`), so a reader of a growing log
folds only what is new; `detail()` is cheap to call again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from orchestrator.events import InstructionEvent
from orchestrator.plan import Plan, PlanNode

# The run statuses after which nothing changes any more: the one copy.
TERMINAL_RUN_STATUSES: frozenset[str] = frozenset({"SUCCESS", "FAILURE", "CANCELED"})

InstructionState = Literal[
    "pending", "running", "succeeded", "cached", "failed", "skipped", "canceled", "retrying"
]
UNFINISHED = frozenset({"pending", "running", "retrying"})
# The states with an output: it ran, or an earlier run's output was reused.
DONE_STATES: frozenset[str] = frozenset({"succeeded", "cached"})


class InputLink(BaseModel):
    """Which instruction feeds a parameter; `ref` is set when it is used through a ref."""

    path: str = Field(description="The JSON path of the instruction whose output it is.")
    ref: str | None = Field(None, description='Its id, when used as {"ref": ID}.')


class StepStatus(BaseModel):
    path: str
    operation: str
    id: str | None = Field(None, description='The instruction\'s "id", if it has one.')
    inputs: dict[str, InputLink | list[InputLink]] = Field(
        default_factory=dict, description="The instructions feeding its parameters."
    )
    status: InstructionState
    started_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    attempts: int = 0
    error: str | None = None
    output: dict[str, Any] | None = Field(
        None, description="JSON summary and the store key of its files (`artifact`)."
    )


class InstructionStatus(StepStatus):
    steps: list[StepStatus] = Field(default_factory=list, description="Nested instructions.")


class RunSummary(BaseModel):
    run_id: str
    status: str = Field(description="Dagster's run status: QUEUED, STARTED, SUCCESS, FAILURE, ...")
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    rerun_of: str | None = Field(None, description="The run this one reruns, if it is a rerun.")
    pipeline: str | None = Field(None, description="The saved pipeline it ran, if any.")
    pipeline_version: int | None = Field(None, description="That pipeline's version.")


class InstructionResult(BaseModel):
    path: str
    operation: str
    id: str | None = None
    status: InstructionState
    output: dict[str, Any] | None = None
    error: str | None = None


class RunResults(BaseModel):
    run_id: str
    status: str
    complete: bool = Field(description="True once the run has ended.")
    results: list[InstructionResult]


class RunDetail(RunSummary):
    error: str | None = None
    instructions: list[InstructionStatus]

    def results(self) -> RunResults:
        """Each top-level instruction's output and error: the body of GET /runs/{id}/results."""
        return RunResults(
            run_id=self.run_id,
            status=self.status,
            complete=self.status in TERMINAL_RUN_STATUSES,
            results=[
                InstructionResult(
                    path=i.path,
                    operation=i.operation,
                    id=i.id,
                    status=i.status,
                    output=i.output,
                    error=i.error,
                )
                for i in self.instructions
            ],
        )


class _Step:
    """One node's state, folded from its events as they come."""

    __slots__ = ("attempts", "ended_at", "error", "output", "started_at", "status")

    def __init__(self) -> None:
        self.status: InstructionState = "pending"
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.attempts = 0
        self.error: str | None = None
        self.output: dict[str, Any] | None = None

    def add(self, event: InstructionEvent) -> None:
        if event.kind == "progress":  # how far it is; its status does not change
            return
        if event.kind == "started":
            self.started_at = self.started_at or event.at
            self.status = "running"
            self.attempts = max(self.attempts, 1)
        elif event.kind == "retrying":
            self.status = "retrying"
            self.attempts = event.attempt + 1
            self.error = event.error
        else:
            self.status = event.kind
            self.ended_at = event.at
            self.attempts = max(self.attempts, event.attempt)
            self.error = event.error if event.kind not in DONE_STATES else None
            if event.kind in DONE_STATES:
                self.output = event.output
            if event.kind == "cached":
                self.started_at = self.started_at or event.at - (event.duration_s or 0.0)

    def status_of(self, node: PlanNode, plan: Plan) -> StepStatus:
        return StepStatus(
            path=node.id,
            operation=node.operation,
            id=node.label,
            inputs=_links(node, plan),
            status=self.status,
            started_at=self.started_at,
            ended_at=self.ended_at,
            duration_s=_duration(self.started_at, self.ended_at),
            attempts=self.attempts,
            error=self.error,
            output=self.output if self.status in DONE_STATES else None,
        )


_NOTHING_YET = _Step()


class RunFold:
    """A run's events folded into per-instruction state, one event at a time."""

    def __init__(self, plan: Plan | None):
        self.plan = plan
        self._steps: dict[str, _Step] = {}

    def add(self, event: InstructionEvent) -> None:
        step = self._steps.get(event.path)
        if step is None:
            step = self._steps[event.path] = _Step()
        step.add(event)

    def detail(
        self, summary: RunSummary, run_failure: Callable[[], str] = lambda: "the run failed"
    ) -> RunDetail:
        """The run as GET /runs/{id} shows it. `run_failure` says why a run failed when
        no instruction did (it reads Dagster's log, so it is asked only then)."""
        plan = self.plan
        status = summary.status
        instructions = []
        if plan is not None:
            blockers = self._blockers(plan)
            instructions = [self._instruction(plan, root, status, blockers) for root in plan.roots]
        errors = [i.error for i in instructions if i.status == "failed" and i.error]
        if not errors and status == "FAILURE":
            errors = [run_failure()]
            for instruction in instructions:
                if instruction.status == "running":  # the run died under it
                    instruction.status = "failed"
                    instruction.error = errors[0]
        return RunDetail(
            **summary.model_dump(), error=errors[0] if errors else None, instructions=instructions
        )

    def _blockers(self, plan: Plan) -> dict[str, str]:
        """Node -> the failed node that failed it: itself, or the first failed node it
        needs (nested in it or through a ref). Nodes that nothing failed are absent."""
        blockers: dict[str, str] = {}
        for node_id in plan.order:  # children before parents
            children = (blockers.get(c) for c in plan.nodes[node_id].children())
            blocker = next((b for b in children if b is not None), None)
            step = self._steps.get(node_id)
            if blocker is None and step is not None and step.status == "failed":
                blocker = node_id
            if blocker is not None:
                blockers[node_id] = blocker
        return blockers

    def _instruction(
        self, plan: Plan, root: str, run_status: str, blockers: dict[str, str]
    ) -> InstructionStatus:
        """A top-level instruction's status, folding in the nested instructions under it.

        Its steps are the instructions written inside it; one it uses through a ref
        is shown where it is written, and its failure fails this one too."""
        nodes = plan.subtree(root)  # children first, the root last
        steps = [self._steps.get(n.id, _NOTHING_YET).status_of(n, plan) for n in nodes]
        own = steps.pop()
        status = InstructionStatus(**own.model_dump(), steps=steps)
        started = [s.started_at for s in [own, *steps] if s.started_at]
        status.started_at = min(started) if started else None
        if status.status == "pending" and status.started_at:
            status.status = "running"
        blocker = blockers.get(root)
        if blocker is not None:
            failed = self._steps[blocker]
            status.status = "failed"
            status.error = f"{blocker} ({plan.nodes[blocker].operation}): {failed.error}"
            status.ended_at = failed.ended_at
        if status.status in DONE_STATES:
            status.output = self._steps[root].output
        if run_status in TERMINAL_RUN_STATUSES:
            status.status = _ended(status.status, run_status)
            for step in steps:  # a skipped or canceled instruction's nested steps never ran
                step.status = _ended(step.status, run_status)
        status.duration_s = _duration(status.started_at, status.ended_at)
        return status


def _links(node: PlanNode, plan: Plan) -> dict[str, InputLink | list[InputLink]]:
    """What feeds each parameter of `node`: a nested instruction, or one used through a ref."""
    links: dict[str, InputLink | list[InputLink]] = {}
    for name, index, child in node.edges():
        ref = plan.nodes[child].label if node.is_ref(name, index, child) else None
        link = InputLink(path=child, ref=ref)
        if index is None:
            links[name] = link
        else:
            listed = links.setdefault(name, [])
            assert isinstance(listed, list)
            listed.append(link)
    return links


def _ended(state: InstructionState, run_status: str) -> InstructionState:
    """What an unfinished state means once the run has ended."""
    if run_status == "CANCELED" and state in UNFINISHED:
        return "canceled"
    if state in {"pending", "retrying"}:
        return "skipped"
    return state


def _duration(started: float | None, ended: float | None) -> float | None:
    return ended - started if started and ended else None
