"""Writing a data set: files under one local folder, collected into a Dataset with a manifest."""

from __future__ import annotations

import mimetypes
from pathlib import Path, PurePosixPath

from orchestrator.catalog.values import DataItem, Dataset, write_manifest
from orchestrator.errors import ArtifactError, UnsafePath
from orchestrator.paths import relative_path, shown


def media_type_of(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


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
