"""Dagster resources: one module per outside system, secrets only via dg.EnvVar."""

from orchestrator.resources.google_drive import GoogleDriveResource
from orchestrator.resources.model_server import ModelServerResource
from orchestrator.resources.s3 import S3Resource
from orchestrator.resources.storage import ArtifactStoreResource, DataRootResource

__all__ = [
    "ArtifactStoreResource",
    "DataRootResource",
    "GoogleDriveResource",
    "ModelServerResource",
    "S3Resource",
]
