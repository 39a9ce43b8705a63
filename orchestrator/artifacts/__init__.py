"""The run's artifact store: one interface (`ArtifactStore`), a local folder (`LocalStore`,
the embedded default) or an S3 prefix (`S3Store`, several machines), chosen by
configuration (orchestrator/resources/storage.py).

Operations write files through a DatasetWriter into their working folder and hand
on the resulting reference; nothing big travels in memory or through Dagster's IO.
"""

from orchestrator.artifacts.cache import LocalCache
from orchestrator.artifacts.local import LocalStore
from orchestrator.artifacts.s3 import S3Store, parse_s3_uri
from orchestrator.artifacts.store import (
    MANIFEST,
    ArtifactStore,
    check_key,
    check_run_id,
    join,
    node_name,
)
from orchestrator.artifacts.writer import DatasetWriter, media_type_of, safe_relative_path

__all__ = [
    "MANIFEST",
    "ArtifactStore",
    "DatasetWriter",
    "LocalCache",
    "LocalStore",
    "S3Store",
    "check_key",
    "check_run_id",
    "join",
    "media_type_of",
    "node_name",
    "parse_s3_uri",
    "safe_relative_path",
]
