"""Dagster resources: one module per outside system, secrets only via dg.EnvVar."""

from orchestrator.resources.storage import ArtifactStoreResource, DataRootResource

__all__ = ["ArtifactStoreResource", "DataRootResource"]
