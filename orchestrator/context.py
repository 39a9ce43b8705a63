"""What an operation gets besides its parameters: services, a folder, a logger."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.archives import ArchiveLimits
from orchestrator.artifacts import ArtifactStore, DatasetWriter
from orchestrator.errors import Canceled

if TYPE_CHECKING:  # the connector modules load their libraries only when used
    from orchestrator.connectors.google_drive import DriveClient
    from orchestrator.connectors.model_server import ModelServerClient
    from orchestrator.connectors.s3 import S3Client


@dataclass(frozen=True)
class Services:
    """The configured outside world. A connector's field is None when not configured.

    A context manager: `with Services(...) as services:` closes the connectors at the end.
    """

    artifacts: ArtifactStore
    data_root: Path | None = None
    workers: int = 2  # threads an operation may use for CPU-bound work
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)  # per downloaded archive
    # Connectors to outside systems (orchestrator/connectors/), None when not configured.
    s3: S3Client | None = None
    drive: DriveClient | None = None
    model_server: ModelServerClient | None = None

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connectors that hold connections (the model server's HTTP client)."""
        if self.model_server is not None:
            self.model_server.close()


ProgressSink = Callable[[int, int | None, str], None]  # (done, total, unit)
PROGRESS_INTERVAL_S = 0.25  # at most ~4 progress events per second per instruction


class ProgressThrottle:
    """Passes on at most one progress report per `interval` seconds, and always the last
    one (done == total), so a reader sees steady progress without a flood of events."""

    def __init__(
        self,
        sink: ProgressSink,
        interval: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sink = sink
        self.interval = interval
        self.clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int | None, unit: str) -> None:
        now = self.clock()
        final = total is not None and done >= total
        with self._lock:
            if not final and self._last is not None and now - self._last < self.interval:
                return
            self._last = now
        self.sink(done, total, unit)


@dataclass(frozen=True)
class OperationContext:
    """Handed to an operation: its run, its own artifact folder and the services."""

    run_id: str
    node_id: str
    folder: Path
    services: Services
    log: logging.Logger | logging.LoggerAdapter[Any]
    cancelled: threading.Event = field(default_factory=threading.Event)
    progress_sink: ProgressSink | None = None  # throttled already (`ProgressThrottle`)

    def check_canceled(self) -> None:
        """Raise `Canceled` if the run was canceled; long loops call it between steps."""
        if self.cancelled.is_set():
            raise Canceled()

    def progress(self, done: int, total: int | None = None, unit: str = "items") -> None:
        """Report how far a long operation is (`done` of `total` `unit`s), e.g. after each
        batch. Cheap to call often: reports are throttled to a few per second, the last
        one (done == total) always goes out, as a "progress" instruction event."""
        if self.progress_sink is not None:
            self.progress_sink(done, total, unit)

    def dataset_writer(self) -> DatasetWriter:
        return DatasetWriter(self.folder)
