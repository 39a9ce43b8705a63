"""The Dagster code location `orchestrator`.

Each resource is the one configuration of its outside system; its fields default
to the CONSTELLATION_* variables their descriptions name (orchestrator/resources/).
Secrets are bound here with dg.EnvVar, so the launchpad shows a variable's name,
never its value; one left unset keeps the field's default (for the S3 keys,
boto3's usual chain: AWS_PROFILE, an instance role).
"""

import os
from typing import Any

import dagster as dg

from orchestrator.jobs import build_execute_job
from orchestrator.operations import CATALOG
from orchestrator.plugins import with_plugin_problems
from orchestrator.resources import (
    ArtifactStoreResource,
    DataRootResource,
    GoogleDriveResource,
    ModelServerResource,
    S3Resource,
)
from orchestrator.retention_job import artifact_retention, remove_artifacts_job
from orchestrator.schedules import saved_schedules


def secrets(**variables: str) -> dict[str, Any]:
    """`field=dg.EnvVar(NAME)` for each of `field=NAME` whose variable is set."""
    return {field: dg.EnvVar(name) for field, name in variables.items() if os.environ.get(name)}


defs = dg.Definitions(
    # Broken plug-ins are named on the job's page; the other operations keep working.
    jobs=[with_plugin_problems(build_execute_job, CATALOG), remove_artifacts_job],
    schedules=[artifact_retention],
    sensors=[saved_schedules],
    resources={
        "artifact_store": ArtifactStoreResource(),
        "data_root": DataRootResource(),
        "s3": S3Resource(
            **secrets(
                access_key_id="AWS_ACCESS_KEY_ID",
                secret_access_key="AWS_SECRET_ACCESS_KEY",
                session_token="AWS_SESSION_TOKEN",
            )
        ),
        "google_drive": GoogleDriveResource(),
        # The URL may carry credentials (http://user:password@host): a secret too.
        "model_server": ModelServerResource(**secrets(url="CONSTELLATION_MODEL_SERVER_URL")),
    },
)
