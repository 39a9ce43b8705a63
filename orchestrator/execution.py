"""How a plan runs.

- top-level instructions run in the order given;
- nested instructions run before the instruction they feed, independent
  siblings concurrently;
- a ref is a dependency: the instruction it names runs first, whatever its
  place, and once; its output goes to every consumer, its failure fails them
  all. A top-level instruction that ran as an earlier one's dependency is not
  run again at its turn;
- after a failure the later top-level instructions are skipped, except cleanup
  operations, which always run, also when the run is interrupted;
- the outcome carries the first error;
- a node an earlier run already made is reused, not run (event "cached"): in a rerun
  from failure (`rerun_of`), each node the earlier run finished whose artifacts are still
  there; in any run, a node whose cache key (orchestrator/cache.py) has an entry.
  Operations with side effects always run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from orchestrator.artifacts import check_run_id
from orchestrator.cache import CacheIndex, NodeRecord, Reused, node_key
from orchestrator.catalog.registry import Catalog, Operation
from orchestrator.catalog.values import Value
from orchestrator.context import OperationContext, ProgressThrottle, Services
from orchestrator.errors import Canceled, ConstellationError, NodeFailed, TransientError
from orchestrator.events import EventKind, InstructionEvent
from orchestrator.plan import Plan, PlanNode, root_of
from orchestrator.report import InstructionResult, RunDetail, RunFold, RunResults, RunSummary

EventSink = Callable[[InstructionEvent], None]
RESULTS_FILE = "results.json"
# How a run is told to stop: Ctrl-C here; Dagster's run worker raises its own
# DagsterExecutionInterruptedError (jobs.py passes it), neither an Exception.
INTERRUPTS: tuple[type[BaseException], ...] = (KeyboardInterrupt,)


@dataclass
class RunOutcome:
    """A finished run: its report (the shape GET /runs/{id} has), the outputs, the first error."""

    run_id: str
    status: str  # SUCCESS | FAILURE | CANCELED, as Dagster names a run's end
    detail: RunDetail
    values: dict[str, Value] = field(default_factory=dict)
    first_error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.first_error is None

    @property
    def results(self) -> list[InstructionResult]:
        return self.run_results().results

    def run_results(self) -> RunResults:
        """The body of GET /runs/{id}/results, also written to results.json."""
        return self.detail.results()


def run_plan(
    plan: Plan,
    catalog: Catalog,
    services: Services,
    run_id: str,
    *,
    emit: EventSink | None = None,
    log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    max_parallel: int = 4,
    interrupts: tuple[type[BaseException], ...] = INTERRUPTS,
    rerun_of: str | None = None,
    use_cache: bool = True,
) -> RunOutcome:
    """Execute `plan` with `services`; every event goes to `emit` as it happens.

    The one way to run a plan: Dagster's job, `run_instructions`, the tests and
    the benchmarks call it. The caller owns `services` (use it as a context
    manager to close its connectors). A failing instruction does not raise: the
    outcome says FAILURE; `interrupts` (and `Canceled`) cancel the run, which
    runs the remaining cleanup operations, writes results.json and re-raises.
    `rerun_of`: an earlier run of the same plan whose finished nodes are reused;
    `use_cache=False` runs every node (its outputs still enter the cache).
    """
    executor = PlanExecutor(
        plan,
        catalog,
        services,
        run_id,
        emit or (lambda event: None),
        log=log,
        max_parallel=max_parallel,
        interrupts=interrupts,
        rerun_of=rerun_of,
        use_cache=use_cache,
    )
    return executor.run()


@dataclass
class _Progress:
    """The executor's own bookkeeping while a run goes on."""

    done: set[str] = field(default_factory=set)  # top-level instructions that ended
    values: dict[str, Value] = field(default_factory=dict)
    first_error: str | None = None


class PlanExecutor:
    """Executes one plan for one run. `run_plan` is the way to use it."""

    def __init__(
        self,
        plan: Plan,
        catalog: Catalog,
        services: Services,
        run_id: str,
        emit: EventSink,
        log: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        max_parallel: int = 4,
        interrupts: tuple[type[BaseException], ...] = INTERRUPTS,
        rerun_of: str | None = None,
        use_cache: bool = True,
    ):
        self.plan = plan
        self.catalog = catalog
        self.services = services
        self.run_id = run_id
        self.emit = emit
        self.log = log or logging.getLogger("constellation.execution")
        self.max_parallel = max_parallel
        self.interrupts = interrupts
        self.cancelled = threading.Event()
        self._fold = RunFold(plan)
        self._fold_lock = threading.Lock()
        self._created = time.time()
        self._index = {node_id: i for i, node_id in enumerate(plan.nodes)}
        self._outputs: dict[str, Value] = {}  # every node that ran, once: shared outputs
        self._failures: dict[str, NodeFailed] = {}  # every node that failed
        self.index = CacheIndex(services.artifacts)
        self.use_cache = use_cache
        self.rerun_of = rerun_of
        self._earlier = self.index.read_nodes(rerun_of) if rerun_of else {}
        self._keys: dict[str, str | None] = {}  # node -> its cache key, once it finished
        self._finished: dict[str, NodeRecord] = {}  # node -> where its output is (nodes.json)

    def run(self) -> RunOutcome:
        progress = _Progress()
        status = "FAILURE"
        stops: tuple[type[BaseException], ...] = (Canceled, *self.interrupts)
        with ThreadPoolExecutor(self.max_parallel, thread_name_prefix="instruction") as pool:
            try:
                for root in self.plan.roots:
                    self._run_root(root, pool, progress)
                status = "SUCCESS" if progress.first_error is None else "FAILURE"
            except stops:
                # The run was canceled: tell the running operations to stop, then
                # still run the cleanup operations that have not run yet.
                status = "CANCELED"
                self.cancelled.set()
                progress.first_error = progress.first_error or "the run was canceled"
                for root in self.plan.roots:
                    operation = self.plan.nodes[root].operation
                    if root not in progress.done and self.catalog[operation].cleanup:
                        self._run_root(root, pool, progress)
                raise
            finally:
                outcome = self._outcome(status, progress)
                self._write_results(outcome)
        return outcome

    def _outcome(self, status: str, progress: _Progress) -> RunOutcome:
        summary = RunSummary(
            run_id=self.run_id,
            status=status,
            created_at=self._created,
            started_at=self._created,
            ended_at=time.time(),
        )
        with self._fold_lock:
            detail = self._fold.detail(summary, lambda: progress.first_error or "the run failed")
        return RunOutcome(self.run_id, status, detail, progress.values, progress.first_error)

    def _run_root(self, root: str, pool: ThreadPoolExecutor, progress: _Progress) -> None:
        node = self.plan.nodes[root]
        op = self.catalog[node.operation]
        progress.done.add(root)
        if root in self._outputs:  # an earlier instruction used it through a ref: it ran then
            progress.values[root] = self._outputs[root]
            return
        if root in self._failures:
            return
        needed = self.plan.dependencies(root, self._outputs.keys())
        failed = next((self._failures[n] for n in needed if n in self._failures), None)
        if failed is not None:
            # It needs the output of an instruction that failed: it fails with that error.
            progress.first_error = progress.first_error or failed.message
            return
        if progress.first_error and not op.cleanup:
            self._event("skipped", node, error="skipped after an earlier failure")
            return
        try:
            progress.values[root] = self._run_needed(needed, pool)
        except NodeFailed as exc:
            progress.first_error = progress.first_error or exc.message

    def _run_needed(self, needed: list[str], pool: ThreadPoolExecutor) -> Value:
        """Run the nodes `needed` (children before parents, none of them run yet), each
        once, independent ones concurrently; the last one's output. The first failure
        stops new starts and is raised once the running ones end."""
        target = needed[-1]
        if len(needed) == 1:
            self._run_recorded(target)
            return self._outputs[target]
        waiting = {
            n: {c for c in self.plan.nodes[n].children() if c not in self._outputs} for n in needed
        }
        parents: dict[str, list[str]] = defaultdict(list)
        for node_id in needed:
            for child in waiting[node_id]:
                parents[child].append(node_id)
        running: dict[Future[Value], str] = {}
        failure: NodeFailed | None = None

        def start_ready() -> None:
            for node_id in [n for n, deps in waiting.items() if not deps]:
                del waiting[node_id]
                node = self.plan.nodes[node_id]
                arguments = self._arguments(node)
                running[pool.submit(self._run_node, node, arguments)] = node_id

        start_ready()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                node_id = running.pop(future)
                try:
                    self._outputs[node_id] = future.result()
                except NodeFailed as exc:
                    self._failures[node_id] = exc
                    failure = failure or exc
                else:
                    for parent in parents[node_id]:
                        waiting[parent].discard(node_id)
            if failure is None:
                start_ready()
        if failure is not None:
            raise failure
        return self._outputs[target]

    def _run_recorded(self, node_id: str) -> None:
        """Run one node in this thread, recording its output or its failure."""
        node = self.plan.nodes[node_id]
        try:
            self._outputs[node_id] = self._run_node(node, self._arguments(node))
        except NodeFailed as exc:
            self._failures[node_id] = exc
            raise

    def _arguments(self, node: PlanNode) -> dict[str, Any]:
        """The node's parameters: its literals, and the outputs of the nodes feeding it."""
        arguments: dict[str, Any] = dict(node.literals)
        for name, fed in node.inputs.items():
            if isinstance(fed, str):
                arguments[name] = self._outputs[fed]
            else:
                arguments[name] = [self._outputs[child] for child in fed]
        return arguments

    def _run_node(self, node: PlanNode, arguments: dict[str, Any]) -> Value:
        checked_out: list[str] = []
        try:
            local = {name: self._checkout(fed, checked_out) for name, fed in arguments.items()}
            return self._attempts(node, local)
        finally:
            for key in checked_out:
                self.services.artifacts.release(key)

    def _checkout(self, fed: Any, keys: list[str]) -> Any:
        """An input as this machine reads it: a value's root as a local folder (a copy from
        the store's cache when the folder is not here), its key pinned in `keys`."""
        if isinstance(fed, list):
            return [self._checkout(item, keys) for item in fed]
        root = getattr(fed, "root", None)
        if not isinstance(fed, Value) or not isinstance(root, str):
            return fed
        key = self.services.artifacts.key_of(root)
        if key is None:  # files outside the store (e.g. referenced in place)
            return fed
        folder = self.services.artifacts.checkout(key)
        keys.append(key)
        return fed if str(folder) == root else fed.model_copy(update={"root": str(folder)})

    def _attempts(self, node: PlanNode, arguments: dict[str, Any]) -> Value:
        op = self.catalog[node.operation]
        params = op.params.model_validate(arguments)
        started = time.perf_counter()
        reused, cache_key = self._reused(node, op, params)
        if reused is not None:
            self._event(
                "cached",
                node,
                duration_s=time.perf_counter() - started,
                output=published_summary(reused.value, reused.artifact),
                cached_from=reused.run_id,
            )
            return reused.value
        attempt = 1
        self._event("started", node)

        def progress(done: int, total: int | None, unit: str) -> None:
            self._event("progress", node, attempt=attempt, done=done, total=total, unit=unit)

        throttled = ProgressThrottle(progress)
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
                progress_sink=throttled,
            )
            try:
                value = op.fn(params, context)
                key = self.services.artifacts.publish_value(value, context.folder)
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
                self._finish(node, key, cache_key)
                self._event(
                    "succeeded",
                    node,
                    attempt=attempt,
                    duration_s=time.perf_counter() - started,
                    output=published_summary(value, key),
                )
                return value

    def _reused(
        self, node: PlanNode, op: Operation, params: Any
    ) -> tuple[Reused | None, str | None]:
        """An earlier output to use instead of running the node (its artifacts still there),
        and the node's cache key (None: it has none)."""
        if op.side_effects:
            return None, None
        earlier = self._earlier.get(node.id)
        if earlier is not None and earlier.operation == node.operation and self.rerun_of:
            reused = self.index.reuse(earlier.artifact, self.rerun_of)
            if reused is not None:
                self._finish(node, reused.artifact, earlier.key)
                return reused, earlier.key
        key = self._cache_key(node, op, params)
        if key is None or not self.use_cache:
            return None, key
        try:
            reused = self.index.lookup(key)
        except ConstellationError as exc:  # an unreadable index is a miss, not a failure
            self.log.warning("%s: cache lookup failed: %s", node.id, exc)
            return None, key
        if reused is None or reused.run_id == self.run_id:  # within a run, refs share
            return None, key
        self._finish(node, reused.artifact, key)
        return reused, key

    def _cache_key(self, node: PlanNode, op: Operation, params: Any) -> str | None:
        """The node's cache key, or None: not cacheable, `"cache": false`, an input without
        a key, or a source that cannot tell its version."""
        if op.cache_key is None or not node.cache:
            return None
        inputs: dict[str, Any] = {}
        for name, fed in node.inputs.items():
            keys = [self._keys.get(child) for child in ([fed] if isinstance(fed, str) else fed)]
            if any(key is None for key in keys):
                return None
            inputs[name] = keys[0] if isinstance(fed, str) else keys
        context = OperationContext(
            run_id=self.run_id,
            node_id=node.id,
            folder=self.services.artifacts.run_folder(self.run_id),
            services=self.services,
            log=self.log,
            cancelled=self.cancelled,
        )
        try:
            source = op.cache_key(params, context)
        except ConstellationError as exc:  # the operation itself will say what is wrong
            self.log.info("%s: no cache key (%s)", node.id, exc)
            return None
        if source is None:
            return None
        parameters = params.model_dump(mode="json", exclude=set(node.inputs))
        return node_key(op, parameters, inputs, source)

    def _finish(self, node: PlanNode, artifact: str, cache_key: str | None) -> None:
        """Record where the node's output is; a new output with a key enters the cache."""
        self._keys[node.id] = cache_key
        self._finished[node.id] = NodeRecord(
            operation=node.operation, artifact=artifact, key=cache_key
        )
        if cache_key is None or artifact.split("/", 1)[0] != self.run_id:
            return
        try:
            self.index.record(cache_key, artifact, self.run_id, node.id, node.operation)
        except ConstellationError as exc:  # the run goes on; only the next one misses
            self.log.warning("%s: cache entry not written: %s", node.id, exc)

    def _failed(self, node: PlanNode, started: float, attempt: int, error: str) -> NodeFailed:
        message = f"{node.id} ({node.operation}): {error}"
        self._event(
            "failed", node, attempt=attempt, duration_s=time.perf_counter() - started, error=error
        )
        return NodeFailed(message)

    def _event(self, kind: EventKind, node: PlanNode, **fields: Any) -> None:
        event = InstructionEvent(
            kind=kind,
            path=node.id,
            operation=node.operation,
            root=root_of(node.id),
            at=time.time(),
            **fields,
        )
        with self._fold_lock:
            self._fold.add(event)
        self.emit(event)

    def _write_results(self, outcome: RunOutcome) -> None:
        body = outcome.run_results().model_dump_json(indent=2).encode()
        self.services.artifacts.write_bytes(f"{check_run_id(self.run_id)}/{RESULTS_FILE}", body)
        self.index.write_nodes(self.run_id, dict(self._finished))


def published_summary(value: Value, key: str) -> dict[str, Any]:
    """The value's summary as every machine reads it: its files by store key (`artifact`,
    the instruction's folder, with manifest.json), never a local path."""
    summary = value.summary()
    if "artifact" in summary or hasattr(value, "root"):
        summary["artifact"] = key
    report = getattr(value, "report", None)
    if "report" in summary and isinstance(report, str):
        summary["report"] = f"{key}/{report}"
    return summary
