"""What the import operations share: safe item names, and a downloaded file as data set items."""

from __future__ import annotations

from pathlib import Path

from orchestrator.archives import ArchiveLimits, extract_archive, strip_archive_suffix
from orchestrator.artifacts import DatasetWriter, media_type_of, safe_relative_path
from orchestrator.errors import ArtifactError, OperationError


def file_name(name: str, fallback: str) -> str:
    """A remote file's name usable as one item name: no folders, never empty."""
    flat = name.replace("/", "_").replace("\\", "_").strip().lstrip("~")
    return flat if flat not in ("", ".", "..") else fallback


def item_name(name: str, source: str) -> str:
    """`name` (a relative path from a remote listing) normalised, or OperationError."""
    try:
        return safe_relative_path(name).as_posix()
    except ArtifactError as exc:
        raise OperationError(f"{source}: {name!r} is not a safe relative file name") from exc


class ItemNames:
    """Refuses two remote files that would land on the same item name."""

    def __init__(self) -> None:
        self._taken: dict[str, str] = {}

    def claim(self, name: str, source: str) -> None:
        folded = name.casefold()  # case-insensitive file systems would merge them too
        if folded in self._taken:
            raise OperationError(
                f"{source} and {self._taken[folded]} would both become the item {name!r}"
            )
        self._taken[folded] = source


def add_archive(
    writer: DatasetWriter,
    archive: Path,
    folder: str,
    limits: ArchiveLimits,
    names: ItemNames,
    source: str,
) -> int:
    """Extract a downloaded archive into the data set under `folder` ('' for the root).

    Returns the number of items added; the archive file itself is removed afterwards.
    """
    target = writer.files / folder if folder else writer.files
    if folder and target.exists():
        raise OperationError(f"{source}: the folder {folder!r} is already taken by another file")
    try:
        extracted = extract_archive(archive, target, limits, source)
    finally:
        archive.unlink(missing_ok=True)
    for file in extracted:
        name = f"{folder}/{file.name}" if folder else file.name
        names.claim(name, f"{source} entry {file.name!r}")
        writer.add(name, media_type_of(name))
    return len(extracted)


def archive_folder(name: str) -> str:
    """The folder an archive's entries go to when several sources share a data set."""
    return strip_archive_suffix(name) or name
