"""The private parts of Dagster and dagster-celery that workers/ relies on, checked loudly.

A new version of either must pass these before it is used (workers/pins.py says why).
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

from workers import pins


def test_the_pinned_versions_are_installed() -> None:
    assert version("dagster") == pins.DAGSTER_VERSION, "re-check workers/tasks.py, then re-pin"
    assert version("dagster-celery") == pins.DAGSTER_CELERY_VERSION, "re-check workers/launcher.py"


def test_the_run_body_takes_what_tasks_passes() -> None:
    from dagster._cli.api import _execute_run_command_body

    parameters = inspect.signature(_execute_run_command_body).parameters
    assert list(parameters) == [
        "run_id",
        "instance",
        "write_stream_fn",
        "set_exit_code_on_failure",
    ]


def test_the_launcher_sends_what_the_worker_task_receives() -> None:
    from dagster_celery.config import TASK_EXECUTE_JOB_NAME
    from dagster_celery.launcher import CeleryRunLauncher
    from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

    assert TASK_EXECUTE_JOB_NAME == "execute_job"
    assert DAGSTER_CELERY_TASK_ID_TAG == "dagster-celery/task_id"
    source = inspect.getsource(CeleryRunLauncher.launch_run)
    assert "task.si(\n            execute_job_args_packed=" in source, "the task's keyword"
    sending = inspect.getsource(CeleryRunLauncher._launch_celery_task_run)
    assert "DAGSTER_CELERY_TASK_ID_TAG: result.task_id" in sending
    assert list(inspect.signature(CeleryRunLauncher._launch_celery_task_run).parameters) == [
        "self",
        "run",
        "task_signature",
        "routing_key",
    ]


def test_celery_pool_processes_ignore_sigint_so_the_task_restores_it() -> None:
    """Why tasks.execute_run installs a SIGINT handler: billiard's pool ignores SIGINT."""
    import billiard.pool

    # (The test process's own SIGINT handler says nothing: started in the background, as
    # CI starts it, it inherits SIGINT ignored.)
    assert "signal.signal(signal.SIGINT, signal.SIG_IGN)" in inspect.getsource(billiard.pool)


def test_the_daemon_polls_the_queue_at_half_second_granularity() -> None:
    """What bounds the queue's share of a run's turnaround (README, performance)."""
    from dagster._daemon.daemon import IntervalDaemon

    assert "shutdown_event.wait(0.5)" in inspect.getsource(IntervalDaemon.core_loop)


def test_billiard_makes_its_process_multiprocessing_s_current_one() -> None:
    """Why tasks.allow_children puts a multiprocessing main-process object in place: billiard
    sets its own as multiprocessing's current process, which multiprocessing checks before it
    starts a child."""
    import multiprocessing.process

    import billiard.process

    assert "_current_process = _mproc._current_process = process" in inspect.getsource(
        billiard.process._set_current_process
    )
    assert "_config.get('daemon')" in inspect.getsource(multiprocessing.process.BaseProcess.start)
    assert "_current_process = _MainProcess()" in inspect.getsource(multiprocessing.process)
    from workers.tasks import MAIN_PROCESS

    assert MAIN_PROCESS.__name__ == "_MainProcess"
