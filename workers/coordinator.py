"""PromptRunCoordinator: Dagster's QueuedRunCoordinator, without the wait for an idle queue.

The daemon dequeues at most once a second (and waits in 0.5 s steps, dagster/_daemon/
daemon.py), which alone was half of a short run's turnaround. This coordinator, when a
run is submitted, launches it at once if nothing is waiting in the queue, no tag
concurrency limits are configured, and fewer than `max_concurrent_runs` runs are in
progress; otherwise the run is queued as before and the daemon dequeues it. Runs keep
the limit (counted from storage, as the daemon counts), FIFO order (nothing overtakes a
queued run), the UI and cancel. Like Dagster's own dequeuer, two launches at the same
instant may both see the last free slot; a lock makes that impossible within a process.
"""

from __future__ import annotations

import threading

from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.dagster_run import (
    IN_PROGRESS_RUN_STATUSES,
    DagsterRun,
    DagsterRunStatus,
    RunsFilter,
)

_LAUNCHING = threading.Lock()


class PromptRunCoordinator(QueuedRunCoordinator):
    """Launch on submit when a slot is free and the queue is empty; else queue."""

    def slot_free(self) -> bool:
        config = self.get_run_queue_config()
        if config.tag_concurrency_limits:
            return False  # the daemon's accounting of tag limits is not repeated here
        queued = self._instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus.QUEUED]))
        if queued:
            return False
        in_progress = self._instance.get_runs_count(RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES))
        return in_progress < config.max_concurrent_runs

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        if run.status == DagsterRunStatus.NOT_STARTED:
            with _LAUNCHING:
                if self.slot_free():
                    return self._instance.launch_run(run.run_id, context.workspace)
        return super().submit_run(context)
