"""What an operation gets besides its parameters: services, a folder, a logger."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.artifacts import ArtifactStore, DatasetWriter


@dataclass(frozen=True)
class Services:
    """The configured outside world. A connector's field is None when not configured."""

    artifacts: ArtifactStore
    data_root: Path | None = None
    workers: int = 2  # threads an operation may use for CPU-bound work
    # Connectors to outside systems (orchestrator/connectors/), None when not configured.
    s3: Any = None  # S3 client (issue 3)
    drive: Any = None  # Google Drive client (issue 3)
    model_server: Any = None  # Open Inference Protocol client (issue 4)


@dataclass(frozen=True)
class OperationContext:
    """Handed to an operation: its run, its own artifact folder and the services."""

    run_id: str
    node_id: str
    folder: Path
    services: Services
    log: logging.Logger | logging.LoggerAdapter
    cancelled: threading.Event = field(default_factory=threading.Event)

    def dataset_writer(self) -> DatasetWriter:
        return DatasetWriter(self.folder)
