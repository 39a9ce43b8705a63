"""Safe extraction of zip and tar archives, streamed entry by entry to disk.

Every entry is checked before a byte of it is written: its path must stay inside
the target folder (no absolute paths, no `..`), it must be a regular file or a
folder (no links, devices or pipes), and the archive must keep within the limits
on entry count, expanded size and compression ratio. Sizes are enforced on the
bytes actually written, not on what the headers claim. A violation raises
UnsafeArchive naming the entry and the limit, and removes the partial output.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from orchestrator.errors import UnsafeArchive

COPY_BUFFER_BYTES = 1 << 20
RATIO_EXEMPT_BYTES = 1 << 20  # smaller entries compress well legitimately; the total caps them
ARCHIVE_SUFFIXES = (
    ".zip",
    ".tar",
    ".tar.gz",
    ".tgz",
    ".tar.bz2",
    ".tbz2",
    ".tar.xz",
    ".txz",
)


@dataclass(frozen=True)
class ArchiveLimits:
    """What one archive may expand to."""

    max_entries: int = 100_000
    max_total_bytes: int = 50 * 2**30
    max_ratio: float = 200.0


@dataclass(frozen=True)
class ExtractedFile:
    """A regular file written by the extraction: its archive name and size."""

    name: str
    size: int


def is_archive_name(name: str) -> bool:
    """True for file names with a zip or tar suffix (content is not sniffed: a .docx stays one)."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def strip_archive_suffix(name: str) -> str:
    lowered = name.lower()
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def extract_archive(archive: Path, target: Path, limits: ArchiveLimits) -> list[ExtractedFile]:
    """Extract `archive` (zip or tar, any compression) into `target`, a new or empty folder."""
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise ValueError(f"extraction target {target} is not empty")
    try:
        if zipfile.is_zipfile(archive):
            return _Extraction(archive, target, limits).zip()
        if tarfile.is_tarfile(archive):
            return _Extraction(archive, target, limits).tar()
        raise UnsafeArchive(f"{archive.name}: not a zip or tar archive")
    except UnsafeArchive:
        shutil.rmtree(target, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise UnsafeArchive(f"{archive.name}: damaged archive: {exc}") from exc


def entry_path(name: str) -> PurePosixPath:
    """An entry name as a relative path that stays inside the target, or UnsafeArchive."""
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if "\x00" in name:
        raise UnsafeArchive(f"entry {name!r}: the name contains a NUL byte")
    if path.is_absolute() or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchive(f"entry {name!r}: absolute paths are not allowed")
    if ".." in path.parts:
        raise UnsafeArchive(f"entry {name!r}: '..' would leave the target folder")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise UnsafeArchive(f"entry {name!r}: empty name")
    return PurePosixPath(*parts)


class _Extraction:
    """One extraction: the checks shared by zip and tar, and the running totals."""

    def __init__(self, archive: Path, target: Path, limits: ArchiveLimits):
        self.archive = archive
        self.target = target.resolve()
        self.limits = limits
        self.entries = 0
        self.total_bytes = 0
        self.files: dict[PurePosixPath, int] = {}
        self.folders: set[PurePosixPath] = set()

    def zip(self) -> list[ExtractedFile]:
        with zipfile.ZipFile(self.archive) as archive:
            infos = archive.infolist()
            # Headers are checked before anything is written; sizes again while copying.
            for info in infos:
                self._count(info.filename)
                mode = info.external_attr >> 16  # Unix mode, if the writer recorded one
                if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise UnsafeArchive(
                        f"entry {info.filename!r}: {_kind(mode)} entries are not allowed"
                    )
                entry_path(info.filename)
                self._check_ratio(info.filename, info.file_size, info.compress_size)
            declared = sum(info.file_size for info in infos)
            if declared > self.limits.max_total_bytes:
                raise UnsafeArchive(
                    f"{self.archive.name}: expands to {declared} bytes, more than the limit of "
                    f"{self.limits.max_total_bytes} bytes (archive_max_total_bytes)"
                )
            for info in infos:
                if info.is_dir():
                    self._folder(info.filename)
                    continue
                with archive.open(info) as source:
                    self._copy(info.filename, source, self._entry_ratio(info))
        return self._result()

    def tar(self) -> list[ExtractedFile]:
        # Stream mode ("r|*"): members are read in order, never seeking back.
        with (
            self.archive.open("rb") as raw,
            tarfile.open(fileobj=raw, mode="r|*", bufsize=COPY_BUFFER_BYTES) as archive,
        ):
            for member in archive:
                self._count(member.name)
                if member.isdir():
                    self._folder(member.name)
                    continue
                if not member.isreg():
                    raise UnsafeArchive(
                        f"entry {member.name!r}: {_tar_kind(member)} entries are not allowed"
                    )
                source = archive.extractfile(member)
                if source is None:  # pragma: no cover - isreg() members always have data
                    raise UnsafeArchive(f"entry {member.name!r}: no data")
                with source:
                    self._copy(member.name, source, self._stream_ratio(member.name, raw))
        return self._result()

    def _count(self, name: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise UnsafeArchive(
                f"entry {name!r}: {self.archive.name} has more than "
                f"{self.limits.max_entries} entries (archive_max_entries)"
            )

    def _destination(self, name: str) -> tuple[PurePosixPath, Path]:
        relative = entry_path(name)
        destination = self.target / relative
        if not destination.resolve().is_relative_to(self.target):  # defence in depth
            raise UnsafeArchive(f"entry {name!r}: resolves outside the target folder")
        for parent in relative.parents:
            if parent in self.files:
                raise UnsafeArchive(f"entry {name!r}: {str(parent)!r} is a file, not a folder")
        return relative, destination

    def _folder(self, name: str) -> None:
        relative, destination = self._destination(name)
        if relative in self.files:
            raise UnsafeArchive(f"entry {name!r}: a file of that name came first")
        self.folders.add(relative)
        destination.mkdir(parents=True, exist_ok=True)

    def _entry_ratio(self, info: zipfile.ZipInfo) -> Callable[[int], None]:
        return lambda written: self._check_ratio(info.filename, written, info.compress_size)

    def _stream_ratio(self, name: str, raw: IO[bytes]) -> Callable[[int], None]:
        # A compressed tar has no per-entry sizes: compare everything expanded so far
        # with the compressed bytes read so far.
        return lambda written: self._check_ratio(
            name, self.total_bytes + written, raw.tell(), whole=True
        )

    def _copy(self, name: str, source: IO[bytes], check_ratio: Callable[[int], None]) -> None:
        relative, destination = self._destination(name)
        if relative in self.files or relative in self.folders:
            raise UnsafeArchive(f"entry {name!r}: appears twice in the archive")
        destination.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with destination.open("xb") as out:
            while chunk := source.read(COPY_BUFFER_BYTES):
                out.write(chunk)
                written += len(chunk)
                self._check_total(name, self.total_bytes + written)
                check_ratio(written)
        self.total_bytes += written
        self.files[relative] = written

    def _check_total(self, name: str, total: int) -> None:
        if total > self.limits.max_total_bytes:
            raise UnsafeArchive(
                f"entry {name!r}: {self.archive.name} expands to more than the limit of "
                f"{self.limits.max_total_bytes} bytes (archive_max_total_bytes)"
            )

    def _check_ratio(self, name: str, expanded: int, compressed: int, whole: bool = False) -> None:
        """Refuse a likely zip bomb: the entry's own ratio, or with `whole` the archive's
        so far (bytes expanded against compressed bytes read)."""
        if expanded < RATIO_EXEMPT_BYTES:
            return
        ratio = expanded / max(compressed, 1)
        if ratio <= self.limits.max_ratio:
            return
        what = (
            f"{self.archive.name} expands {ratio:.0f} times, more than"
            if whole
            else f"compression ratio {ratio:.0f} exceeds"
        )
        raise UnsafeArchive(
            f"entry {name!r}: {what} the limit of {self.limits.max_ratio:g} (archive_max_ratio); "
            "refusing a likely zip bomb"
        )

    def _result(self) -> list[ExtractedFile]:
        return [ExtractedFile(path.as_posix(), size) for path, size in self.files.items()]


def _kind(mode: int) -> str:
    kinds = {
        stat.S_IFLNK: "symbolic link",
        stat.S_IFCHR: "character device",
        stat.S_IFBLK: "block device",
        stat.S_IFIFO: "named pipe",
        stat.S_IFSOCK: "socket",
    }
    return kinds.get(stat.S_IFMT(mode), "special file")


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "symbolic link"
    if member.islnk():
        return "hard link"
    if member.ischr():
        return "character device"
    if member.isblk():
        return "block device"
    if member.isfifo():
        return "named pipe"
    return "special file"
