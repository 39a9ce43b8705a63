"""The Dagster code location `orchestrator`."""

import dagster as dg

from orchestrator.jobs import build_execute_job
from orchestrator.resources import (
    ArtifactStoreResource,
    DataRootResource,
    GoogleDriveResource,
    ModelServerResource,
    S3Resource,
)

defs = dg.Definitions(
    jobs=[build_execute_job],
    resources={
        "artifact_store": ArtifactStoreResource(),
        "data_root": DataRootResource(),
        "s3": S3Resource(),
        "google_drive": GoogleDriveResource(),
        "model_server": ModelServerResource(),
    },
)
