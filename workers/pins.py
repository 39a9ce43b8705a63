"""The versions whose private parts this package relies on (tests/unit/workers check them).

`tasks.execute_run` calls dagster's `_execute_run_command_body` (what dagster-celery's own
task and `dagster api execute_run` call), and the launcher reads dagster-celery's task-id
tag and task name. A new Dagster or dagster-celery must pass those tests before it is used.
"""

DAGSTER_VERSION = "1.13.27"
DAGSTER_CELERY_VERSION = "0.29.27"
