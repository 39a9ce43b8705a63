"""Dagster resources: one per outside system, the one place its settings are written.

Each field names its CONSTELLATION_* environment variable (`env_field`), read when
the resource is made; run config overrides it; secrets are bound with dg.EnvVar in
orchestrator/definitions.py. A resource makes its connector (orchestrator/connectors/),
which reads the resource's fields; `services_from_resources` makes a run's `Services`.
"""

from __future__ import annotations

from orchestrator.context import Services
from orchestrator.resources.google_drive import GoogleDriveResource
from orchestrator.resources.model_server import ModelServerResource
from orchestrator.resources.s3 import S3Resource
from orchestrator.resources.storage import ArtifactStoreResource, DataRootResource
from orchestrator.settings import OrchestratorSettings

__all__ = [
    "ArtifactStoreResource",
    "DataRootResource",
    "GoogleDriveResource",
    "ModelServerResource",
    "S3Resource",
    "services_from_resources",
]


def services_from_resources(
    settings: OrchestratorSettings,
    artifact_store: ArtifactStoreResource | None = None,
    data_root: DataRootResource | None = None,
    s3: S3Resource | None = None,
    google_drive: GoogleDriveResource | None = None,
    model_server: ModelServerResource | None = None,
) -> Services:
    """A run's services from its resources; each one left out is made from the environment.

    The caller owns the result: close it (`with`) to close the model server's connections.
    """
    s3_client = (s3 or S3Resource()).client(max_concurrency=2 * settings.workers)
    return Services(
        artifacts=(artifact_store or ArtifactStoreResource()).store(s3_client),
        data_root=(data_root or DataRootResource()).path(),
        workers=settings.workers,
        archive_limits=settings.archive_limits,
        s3=s3_client,
        drive=(google_drive or GoogleDriveResource()).client(),
        model_server=(model_server or ModelServerResource()).client(),
    )
