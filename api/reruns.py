"""Rerunning a run: its own instructions again, as a new run tagged with the old one's id.

What the new run reuses is decided where it runs (orchestrator/rerun.py): from failure,
every instruction the old run finished whose artifacts are still there; `all`, nothing.
The old run's own tags (e.g. a saved pipeline's name and version) go with it, except
those that belong to one run only (its idempotency key, removal marker, Dagster's own).
"""

from __future__ import annotations

from typing import Any

import yaml

from api.dagster import DagsterClient, RunRecord
from api.errors import InvalidRequest, RunNotEnded
from api.submissions import (
    TAG_IDEMPOTENCY_KEY,
    TAG_REQUEST_SHA256,
    plan_or_422,
    raw_input_of,
    request_digest,
    run_config,
)
from orchestrator.catalog.registry import Catalog
from orchestrator.catalog.validation import Limits
from orchestrator.report import TERMINAL_RUN_STATUSES
from orchestrator.rerun import RERUN_MODE_TAG, RERUN_OF_TAG, RerunMode, rerun_tags
from orchestrator.retention import ARTIFACTS_TAG
from orchestrator.saved.tags import TAG_SCHEDULED_AT, TAG_SOURCE

ONE_RUN_TAGS = frozenset(
    {
        TAG_IDEMPOTENCY_KEY,
        TAG_REQUEST_SHA256,
        TAG_SOURCE,
        TAG_SCHEDULED_AT,
        ARTIFACTS_TAG,
        RERUN_OF_TAG,
        RERUN_MODE_TAG,
    }
)


def instructions_of(record: RunRecord) -> Any:
    """The instruction document the run was started with; InvalidRequest if it has none."""
    try:
        config = yaml.safe_load(record.run_config_yaml or "") or {}
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"the run config of run {record.run_id!r} is not YAML") from exc
    document = raw_input_of(config) if isinstance(config, dict) else None
    if document is None:
        raise InvalidRequest(
            f"run {record.run_id!r} names no instructions in its run config "
            "(ops.generate_dynamic_job_configs.config.raw_input): nothing to run again"
        )
    return document


def carried_tags(record: RunRecord) -> dict[str, str]:
    """The old run's tags the rerun keeps (Constellation's own, not one run's)."""
    return {
        key: value
        for key, value in record.tags.items()
        if key.startswith("constellation/") and key not in ONE_RUN_TAGS
    }


async def rerun(
    dagster: DagsterClient, catalog: Catalog, limits: Limits, run_id: str, mode: RerunMode
) -> str:
    """Start the rerun of an ended run; its id. RunNotFound, RunNotEnded (409), or
    InvalidRequest (422) when its instructions no longer validate."""
    record = await dagster.get_run(run_id, config=True)
    if record.status not in TERMINAL_RUN_STATUSES:
        raise RunNotEnded(
            f"run {run_id!r} is {record.status}: it can be rerun once it ended "
            "(cancel it first with POST /runs/{id}/cancel)"
        )
    document = instructions_of(record)
    plan_or_422(document, catalog, limits)
    tags = {
        **carried_tags(record),
        TAG_SOURCE: "api",
        TAG_REQUEST_SHA256: request_digest(document),
        **rerun_tags(run_id, mode),
    }
    return await dagster.launch_run(run_config(document), tags)
