"""Runs a plan with the semantics of DESIGN §1.

- top-level instructions run in the order given;
- nested instructions run before the instruction they feed, independent
  siblings concurrently;
- after a failure the later top-level instructions are skipped, except cleanup
  operations, which always run, also when the run is interrupted;
- the outcome carries the first error.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.catalog.registry import Catalog
from orchestrator.catalog.values import Value
from orchestrator.context import OperationContext, Services
from orchestrator.errors import ConstellationError, TransientError
from orchestrator.events import EventKind, InstructionEvent
from orchestrator.plan import Plan, PlanNode

EventSink = Callable[[InstructionEvent], None]
RESULTS_FILE = "results.json"


class NodeFailed(Exception):
    """An instruction failed; `message` is what the user is told."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class InstructionResult:
    """What became of one top-level instruction."""

    path: str
    operation: str
    status: str  # succeeded | failed | skipped | canceled
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    output: dict[str, Any] | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


@dataclass
class RunOutcome:
    results: list[InstructionResult]
    values: dict[str, Value] = field(default_factory=dict)
    first_error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.first_error is None

    def as_json(self) -> list[dict[str, Any]]:
        return [asdict(r) | {"duration_s": r.duration_s} for r in self.results]


class PlanExecutor:
    """Executes one plan for one run."""

    def __init__(
        self,
        plan: Plan,
        catalog: Catalog,
        services: Services,
        run_id: str,
        emit: EventSink,
        log: logging.Logger | logging.LoggerAdapter | None = None,
        max_parallel: int = 4,
    ):
        self.plan = plan
        self.catalog = catalog
        self.services = services
        self.run_id = run_id
        self.emit = emit
        self.log = log or logging.getLogger("constellation.execution")
        self.max_parallel = max_parallel
        self.cancelled = threading.Event()
        self._index = {node_id: i for i, node_id in enumerate(plan.nodes)}
        self._root_of: dict[str, str] = {}
        for root in plan.roots:
            for node in plan.subtree(root):
                self._root_of[node.id] = root

    def run(self) -> RunOutcome:
        outcome = RunOutcome(results=[])
        with ThreadPoolExecutor(self.max_parallel, thread_name_prefix="instruction") as pool:
            try:
                for root in self.plan.roots:
                    self._run_root(root, pool, outcome)
            except BaseException:
                # Interrupted (the run was canceled): tell the running operations to
                # stop, then still run the cleanup operations that have not run yet.
                self.cancelled.set()
                outcome.first_error = outcome.first_error or "the run was canceled"
                done = {result.path for result in outcome.results}
                for root in self.plan.roots:
                    operation = self.plan.nodes[root].operation
                    if root in done:
                        continue
                    if self.catalog[operation].cleanup:
                        self._run_root(root, pool, outcome, cleanup_only=True)
                    else:
                        outcome.results.append(InstructionResult(root, operation, "canceled"))
                raise
            finally:
                self._write_results(outcome)
        return outcome

    def _run_root(
        self, root: str, pool: ThreadPoolExecutor, outcome: RunOutcome, cleanup_only: bool = False
    ) -> None:
        node = self.plan.nodes[root]
        op = self.catalog[node.operation]
        if (outcome.first_error or cleanup_only) and not op.cleanup:
            self._event("skipped", node, error="skipped after an earlier failure")
            outcome.results.append(InstructionResult(root, node.operation, "skipped"))
            return
        started = time.time()
        try:
            value = self._run_tree(root, pool)
        except NodeFailed as exc:
            outcome.first_error = outcome.first_error or exc.message
            outcome.results.append(
                InstructionResult(root, node.operation, "failed", started, time.time(), exc.message)
            )
        else:
            outcome.values[root] = value
            outcome.results.append(
                InstructionResult(
                    root, node.operation, "succeeded", started, time.time(), output=value.summary()
                )
            )

    def _run_tree(self, root: str, pool: ThreadPoolExecutor) -> Value:
        nodes = self.plan.subtree(root)
        if len(nodes) == 1:
            return self._run_node(nodes[0], {})
        values: dict[str, Value] = {}
        waiting = {node.id: set(node.inputs.values()) for node in nodes}
        parents: dict[str, list[str]] = defaultdict(list)
        for node in nodes:
            for child in node.inputs.values():
                parents[child].append(node.id)
        running: dict[Future[Value], str] = {}
        failure: NodeFailed | None = None

        def start_ready() -> None:
            for node_id in [n for n, deps in waiting.items() if not deps]:
                del waiting[node_id]
                running[pool.submit(self._run_node, self.plan.nodes[node_id], values)] = node_id

        start_ready()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                node_id = running.pop(future)
                try:
                    values[node_id] = future.result()
                except NodeFailed as exc:
                    failure = failure or exc
                else:
                    for parent in parents[node_id]:
                        waiting[parent].discard(node_id)
            if failure is None:
                start_ready()
        if failure is not None:
            raise failure
        return values[root]

    def _run_node(self, node: PlanNode, values: dict[str, Value]) -> Value:
        op = self.catalog[node.operation]
        arguments = {**node.literals, **{k: values[child] for k, child in node.inputs.items()}}
        params = op.params.model_validate(arguments)
        attempt = 1
        self._event("started", node)
        started = time.perf_counter()
        while True:
            context = OperationContext(
                run_id=self.run_id,
                node_id=node.id,
                folder=self.services.artifacts.node_folder(
                    self.run_id, self._index[node.id], node.operation
                ),
                services=self.services,
                log=self.log,
                cancelled=self.cancelled,
            )
            try:
                value = op.fn(params, context)
            except TransientError as exc:
                if attempt >= op.retry.max_attempts:
                    message = f"{exc} (after {attempt} attempts)"
                    raise self._failed(node, started, attempt, message) from exc
                delay = op.retry.delay(attempt)
                self._event(
                    "retrying", node, attempt=attempt, error=f"{exc}; retry in {delay:.1f} s"
                )
                time.sleep(delay)
                attempt += 1
            except ConstellationError as exc:
                raise self._failed(node, started, attempt, str(exc)) from exc
            except Exception as exc:  # an operation's own bug: report it, keep the traceback
                self.log.exception("%s %s raised", node.id, node.operation)
                raise self._failed(node, started, attempt, f"{type(exc).__name__}: {exc}") from exc
            else:
                self._event(
                    "succeeded",
                    node,
                    attempt=attempt,
                    duration_s=time.perf_counter() - started,
                    output=value.summary(),
                )
                return value

    def _failed(self, node: PlanNode, started: float, attempt: int, error: str) -> NodeFailed:
        message = f"{node.id} ({node.operation}): {error}"
        self._event(
            "failed", node, attempt=attempt, duration_s=time.perf_counter() - started, error=error
        )
        return NodeFailed(message)

    def _event(self, kind: EventKind, node: PlanNode, **fields: Any) -> None:
        self.emit(
            InstructionEvent(
                kind=kind,
                path=node.id,
                operation=node.operation,
                root=self._root_of[node.id],
                at=time.time(),
                **fields,
            )
        )

    def _write_results(self, outcome: RunOutcome) -> None:
        folder = self.services.artifacts.run_folder(self.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RESULTS_FILE).write_text(json.dumps(outcome.as_json(), indent=2))
