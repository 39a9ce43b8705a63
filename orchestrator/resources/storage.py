"""Storage resources: the artifact store and the data root."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from orchestrator.artifacts import ArtifactStore, LocalCache, LocalStore, S3Store
from orchestrator.settings import env_field

if TYPE_CHECKING:
    from orchestrator.connectors.s3 import S3Client

GiB = 2**30


class ArtifactStoreResource(dg.ConfigurableResource[Any]):
    """Where runs keep their data sets: a local folder, or an S3 prefix that every machine
    reads (then at the endpoint and with the credentials of the `s3` resource)."""

    store_uri: str = env_field(
        "CONSTELLATION_ARTIFACT_STORE",
        "",
        description="A local folder, or s3://bucket/prefix; empty: the local folder `root`.",
    )
    root: str = env_field(
        "CONSTELLATION_ARTIFACT_ROOT",
        "var/artifacts",
        description="Local folder for run data when no CONSTELLATION_ARTIFACT_STORE is set.",
    )
    cache: str = env_field(
        "CONSTELLATION_ARTIFACT_CACHE",
        "var/artifact-cache",
        description="With an S3 store: the local folder operations work in and copies are kept.",
    )
    cache_bytes: int = env_field(
        "CONSTELLATION_ARTIFACT_CACHE_BYTES",
        10 * GiB,
        ge=0,
        description="With an S3 store: most bytes of published folders kept in the cache.",
    )

    @property
    def is_remote(self) -> bool:
        return self.store_uri.startswith("s3://")

    def store(self, s3: S3Client | None = None) -> ArtifactStore:
        """The configured store; an S3 store transfers with `s3` (the `s3` resource's client)."""
        if not self.is_remote:
            return LocalStore(Path(self.store_uri or self.root))
        if s3 is None:
            from orchestrator.resources.s3 import S3Resource

            s3 = S3Resource().client()
        return S3Store(s3, self.store_uri, LocalCache(Path(self.cache), self.cache_bytes))


class DataRootResource(dg.ConfigurableResource[Any]):
    """The only local folder `import_from_local` may read."""

    root: str = env_field(
        "CONSTELLATION_DATA_ROOT",
        "",
        description="Local folder import_from_local may read; unset: local imports refused.",
    )

    def path(self) -> Path | None:
        return Path(self.root) if self.root else None
