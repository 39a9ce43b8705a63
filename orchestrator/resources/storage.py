"""Local storage resources: the artifact store and the data root."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from orchestrator.artifacts import ArtifactStore
from orchestrator.settings import OrchestratorSettings


class ArtifactStoreResource(dg.ConfigurableResource):
    """Where runs write their data sets: one folder per run."""

    root: str = Field(
        default="",
        description="Local folder. Empty: $CONSTELLATION_ARTIFACT_ROOT, else ./var/artifacts.",
    )

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.root or OrchestratorSettings().artifact_root)


class DataRootResource(dg.ConfigurableResource):
    """The only local folder `import_from_local` may read."""

    root: str = Field(
        default="",
        description="Local folder. Empty: $CONSTELLATION_DATA_ROOT; unset: local imports refused.",
    )

    def path(self) -> Path | None:
        if self.root:
            return Path(self.root)
        return OrchestratorSettings().data_root
