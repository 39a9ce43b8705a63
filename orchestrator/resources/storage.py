"""Local storage resources: the artifact store and the data root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from orchestrator.artifacts import ArtifactStore
from orchestrator.settings import env_field


class ArtifactStoreResource(dg.ConfigurableResource[Any]):
    """Where runs write their data sets: one folder per run."""

    root: str = env_field(
        "CONSTELLATION_ARTIFACT_ROOT", "var/artifacts", description="Local folder for run data."
    )

    def store(self) -> ArtifactStore:
        return ArtifactStore(Path(self.root))


class DataRootResource(dg.ConfigurableResource[Any]):
    """The only local folder `import_from_local` may read."""

    root: str = env_field(
        "CONSTELLATION_DATA_ROOT",
        "",
        description="Local folder import_from_local may read; unset: local imports refused.",
    )

    def path(self) -> Path | None:
        return Path(self.root) if self.root else None
