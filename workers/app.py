"""`celery -A workers.app worker`: the warm run worker.

The Celery app is the instance's run launcher's own (deploy/dagster.yaml: broker, result
backend, `worker_max_tasks_per_child`), so sender and worker cannot disagree. Before the
pool forks, this module imports the code location and builds its jobs, so each pool
process starts warm; Celery replaces a process after `worker_max_tasks_per_child` runs,
forked again from this warm parent, so memory stays flat.

Importing this module is the worker's start-up (Celery's `-A` needs a module attribute).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from dagster import DagsterInstance

from workers import tasks
from workers.launcher import WarmRunLauncher


def launcher_app() -> Celery:
    """The Celery app of DAGSTER_HOME's run launcher (which must be a WarmRunLauncher)."""
    with DagsterInstance.get() as instance:
        launcher = instance.run_launcher
        if not isinstance(launcher, WarmRunLauncher):
            raise RuntimeError(
                f"DAGSTER_HOME's run_launcher is {type(launcher).__name__}; "
                "the warm worker needs workers.launcher.WarmRunLauncher"
            )
        return launcher.celery


def preload() -> None:
    """Import the code location and build every job once, in the parent process."""
    import dagster._core.execution.api  # noqa: F401  (the execution machinery)

    from orchestrator.definitions import defs

    repository: Any = defs.get_repository_def()
    for job in repository.get_all_jobs():
        job.get_job_snapshot()


app = launcher_app()
tasks.register(app)
preload()
