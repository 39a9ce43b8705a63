"""The run's artifact store: a local folder per run, a folder per instruction.

Operations write files through a DatasetWriter and hand on the resulting
Dataset reference; nothing big travels in memory or through Dagster's IO.
"""

from __future__ import annotations

import mimetypes
import re
import shutil
from pathlib import Path, PurePosixPath

from orchestrator.catalog.values import DataItem, Dataset, write_manifest
from orchestrator.errors import ArtifactError, UnsafePath
from orchestrator.paths import relative_path, shown

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def media_type_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class ArtifactStore:
    """Folders under `root`: `root/RUN_ID/NNN-OPERATION/` for each instruction."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    def run_folder(self, run_id: str) -> Path:
        if not run_id or _UNSAFE.sub("", run_id) != run_id:
            raise ArtifactError(f"run id {run_id!r} is not usable as a folder name")
        return self.root / run_id

    def node_folder(self, run_id: str, index: int, operation: str) -> Path:
        folder = self.run_folder(run_id) / f"{index:03d}-{operation}"
        if folder.exists():
            shutil.rmtree(folder)  # a retried attempt starts clean
        folder.mkdir(parents=True)
        return folder

    def delete_run(self, run_id: str) -> None:
        shutil.rmtree(self.run_folder(run_id), ignore_errors=True)


class DatasetWriter:
    """Collects files written under one folder into a Dataset with a manifest."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.files = folder / "files"
        self.files.mkdir(parents=True, exist_ok=True)
        self._items: dict[str, DataItem] = {}

    def path_for(self, name: str) -> Path:
        """Where to write the item called `name` (a relative, normalised path)."""
        relative = safe_relative_path(name)
        target = self.files / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def add(self, name: str, media_type: str | None = None) -> DataItem:
        """Record the file already written at `path_for(name)`."""
        path = self.path_for(name)
        item = DataItem(
            name=name,
            path=str(path.relative_to(self.folder)),
            size=path.stat().st_size,
            media_type=media_type or media_type_of(name),
        )
        self._items[name] = item
        return item

    def finish(self, cls: type[Dataset] = Dataset, order: list[str] | None = None) -> Dataset:
        names = order if order is not None else sorted(self._items)
        dataset = cls(root=str(self.folder), items=tuple(self._items[n] for n in names))
        write_manifest(dataset, self.folder)
        return dataset


def safe_relative_path(name: str) -> PurePosixPath:
    """`name` as a relative path that cannot leave its folder, or ArtifactError."""
    try:
        return relative_path(name)
    except UnsafePath as exc:
        raise ArtifactError(
            f"item name {shown(name)} is not a safe relative path: {exc.reason}"
        ) from exc
