"""Warm run workers: Dagster runs executed by Celery workers that imported the code once.

`launcher.WarmRunLauncher` is the instance's run launcher (deploy/dagster.yaml): it sends
each dequeued run to the broker (dagster-celery's CeleryRunLauncher), cancels runs so that
their cleanup still runs, and tells run monitoring why a worker's run died.
`app` is what `celery -A workers.app worker` runs: the same Celery app, with the code
location imported before the pool forks, so every run starts in a warm process.
"""
