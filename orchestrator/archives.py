"""Safe extraction of zip and tar archives, streamed entry by entry to disk.

Every entry is checked before a byte of it is written: its name must be a path
inside the target folder (`orchestrator.paths`: no absolute paths, no `..`, no
control characters, within the file system's name and path limits), it must be a
regular file or a folder (no links, devices or pipes), and the archive must keep
within the limits on entry count, expanded size and compression ratio.

Sizes are enforced on the bytes actually produced, piece by piece, before each
piece is written: a zip entry against its compressed size; a compressed tar, which
has no per-entry sizes, by decompressing it here (`_Expanding`) so the compressed
bytes consumed and the bytes expanded are known at every step. So a bomb stops
within about a megabyte of disk and memory, whatever its declared sizes.

A violation raises UnsafeArchive naming the entry and the limit; messages about
the whole archive name the `source` the caller gives (an S3 URI, a Drive file),
never a path of the server. A failed extraction removes everything it wrote.
"""

from __future__ import annotations

import bz2
import lzma
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Protocol, TypeVar

from orchestrator.errors import ArtifactError, UnsafeArchive, UnsafePath
from orchestrator.paths import NameLimits, relative_path, resolve_inside, shown

COPY_BUFFER_BYTES = 1 << 20
TAR_BUFFER_BYTES = 64 << 10  # what tarfile reads ahead: small, so data is counted to its entry
# Compressed bytes fed to a decompressor at a time. bz2 and xz do not say how much of
# their input they have used, so the ratio lags by up to one piece: a piece is small
# at first (a bomb is caught within max_ratio x 4 KiB) and grows with what was read,
# to an eighth of it (the ratio then reads at most 12% low), for speed. zlib does say
# (its unconsumed tail), so gzip takes whole pieces at no risk.
MIN_PIECE_BYTES = 4 << 10
MAX_PIECE_BYTES = 256 << 10
RATIO_EXEMPT_BYTES = 1 << 20  # smaller entries compress well legitimately; the total caps them
MAGIC_BYTES = 6  # enough of a file's start to tell gzip, bzip2 and xz apart

_T = TypeVar("_T")
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


def extract_archive(
    archive: Path, target: Path, limits: ArchiveLimits, source: str | None = None
) -> list[ExtractedFile]:
    """Extract `archive` (zip or tar, any compression) into `target`, a new or empty folder.

    `source` names the archive in messages (default: its file name).
    """
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    if any(target.iterdir()):
        raise ArtifactError("the extraction target folder is not empty")
    extraction = _Extraction(archive, target, limits, source or archive.name)
    try:
        if zipfile.is_zipfile(archive):
            return extraction.zip()
        if tarfile.is_tarfile(archive):
            return extraction.tar()
        raise UnsafeArchive(f"{extraction.source}: not a zip or tar archive")
    except BaseException as exc:
        _remove_output(target, created)
        if isinstance(exc, zipfile.BadZipFile | tarfile.TarError | EOFError):
            raise UnsafeArchive(f"{extraction.source}: damaged archive: {exc}") from exc
        raise


def _remove_output(target: Path, created: bool) -> None:
    """Remove what an extraction wrote: the target itself if it made it, else its contents."""
    if created:
        shutil.rmtree(target, ignore_errors=True)
        return
    for child in target.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


class _Decompressor(Protocol):
    """What zlib, bz2 and lzma decompressors share (zlib's through `_Zlib`)."""

    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Zlib:
    """A gzip stream decompressor with the bz2/lzma interface (input it has not used kept)."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._tail = b""

    @property
    def eof(self) -> bool:
        return self._inner.eof

    @property
    def needs_input(self) -> bool:
        return not self._tail

    @property
    def unused_data(self) -> bytes:
        return self._inner.unused_data

    @property
    def pending(self) -> int:
        return len(self._tail)

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        out = self._inner.decompress(self._tail + data, max(max_length, 0))
        self._tail = self._inner.unconsumed_tail
        return out


_COMPRESSIONS: dict[bytes, Callable[[], _Decompressor]] = {
    b"\x1f\x8b": _Zlib,
    b"BZh": bz2.BZ2Decompressor,
    b"\xfd7zXZ\x00": lzma.LZMADecompressor,
}


def _decompressor_for(magic: bytes) -> Callable[[], _Decompressor] | None:
    for prefix, factory in _COMPRESSIONS.items():
        if magic.startswith(prefix):
            return factory
    return None


class _Expanding:
    """A compressed file read as its expanded bytes, in bounded pieces, both sides counted.

    tarfile's own stream mode hands a whole buffer of compressed input to the
    decompressor at once, so a bomb expands in memory before anything can be
    counted. Here every call produces at most what was asked for, `consumed`
    counts the compressed bytes used (exactly for gzip, to within one piece for
    bz2 and xz), and `check(expanded, consumed)` runs after every piece.
    Concatenated streams (pbzip2, multi-member gzip) are read on; bytes after the
    last stream that do not start another are ignored, as gzip does.
    """

    def __init__(
        self,
        raw: IO[bytes],
        factory: Callable[[], _Decompressor],
        check: Callable[[int, int], None],
    ):
        self._raw = raw
        self._factory = factory
        self._check = check
        self._decompressor = factory()
        self._exact = factory is _Zlib
        self._carry = b""  # input read already, for the next stream
        self._fed = 0
        self._done = False
        self.expanded = 0

    @property
    def consumed(self) -> int:
        unused = self._decompressor.pending if isinstance(self._decompressor, _Zlib) else 0
        return self._fed - unused - len(self._carry)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = COPY_BUFFER_BYTES
        pieces: list[bytes] = []
        wanted = size
        while wanted > 0 and not self._done:
            piece = self._piece(wanted)
            if piece:
                pieces.append(piece)
                wanted -= len(piece)
                self.expanded += len(piece)
                self._check(self.expanded, self.consumed)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _piece(self, wanted: int) -> bytes:
        decompressor = self._decompressor
        if decompressor.eof:
            self._next_stream(decompressor.unused_data)
            return b""
        data = b""
        if decompressor.needs_input:
            data, self._carry = self._carry or self._input(), b""
            if not data:
                raise tarfile.ReadError("the compressed data ends early")
        try:
            return decompressor.decompress(data, wanted)
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise tarfile.ReadError(f"invalid compressed data: {exc}") from exc

    def _input(self) -> bytes:
        piece = MAX_PIECE_BYTES if self._exact else self._fed // 8
        data = self._raw.read(min(max(piece, MIN_PIECE_BYTES), MAX_PIECE_BYTES))
        self._fed += len(data)
        return data

    def _next_stream(self, unused: bytes) -> None:
        """After one stream's end: start the next if another follows, else stop."""
        rest = unused
        while len(rest) < MAGIC_BYTES and (more := self._input()):
            rest += more
        if _decompressor_for(rest) is not self._factory:
            self._done = True  # trailing bytes (padding) are ignored
            return
        self._decompressor = self._factory()
        self._carry = rest


class _Extraction:
    """One extraction: the checks shared by zip and tar, and the running totals."""

    def __init__(self, archive: Path, target: Path, limits: ArchiveLimits, source: str):
        self.archive = archive
        self.source = source
        self.target = target.resolve()
        self.names = NameLimits.below(self.target)
        self.limits = limits
        self.entries = 0
        self.total_bytes = 0
        self.current = ""  # the tar member being read, for messages from the stream
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
                        f"entry {shown(info.filename)}: {_kind(mode)} entries are not allowed"
                    )
                self._relative(info.orig_filename)  # zipfile cuts .filename at a NUL
                self._check_ratio(info.filename, info.file_size, info.compress_size)
            declared = sum(info.file_size for info in infos)
            if declared > self.limits.max_total_bytes:
                raise UnsafeArchive(
                    f"{self.source}: expands to {declared} bytes, more than the limit of "
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
        # Stream mode ("r|"): members are read in order, never seeking back; a compressed
        # tar is expanded here, counted piece by piece (see _Expanding).
        with self.archive.open("rb") as raw:
            factory = _decompressor_for(raw.read(MAGIC_BYTES))
            raw.seek(0)
            stream: IO[bytes] | _Expanding = raw
            if factory is not None:
                stream = _Expanding(raw, factory, self._check_stream)
            with tarfile.open(fileobj=stream, mode="r|", bufsize=TAR_BUFFER_BYTES) as archive:  # type: ignore[call-overload]
                for member in archive:
                    self.current = member.name
                    self._count(member.name)
                    if member.isdir():
                        self._folder(member.name)
                        continue
                    if not member.isreg():
                        raise UnsafeArchive(
                            f"entry {shown(member.name)}: {_tar_kind(member)} entries are not "
                            "allowed"
                        )
                    data = archive.extractfile(member)
                    if data is None:  # pragma: no cover - isreg() members always have data
                        raise UnsafeArchive(f"entry {shown(member.name)}: no data")
                    with data:
                        self._copy(member.name, data, lambda written: None)
        return self._result()

    def _check_stream(self, expanded: int, consumed: int) -> None:
        self._check_ratio(self.current, expanded, consumed, whole=True)

    def _count(self, name: str) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise UnsafeArchive(
                f"entry {shown(name)}: {self.source} has more than "
                f"{self.limits.max_entries} entries (archive_max_entries)"
            )

    def _relative(self, name: str) -> PurePosixPath:
        try:
            return relative_path(name, self.names)
        except UnsafePath as exc:
            raise UnsafeArchive(f"entry {shown(name)}: {exc.reason}") from exc

    def _destination(self, name: str) -> tuple[PurePosixPath, Path]:
        relative = self._relative(name)
        try:
            resolve_inside(self.target, relative)  # defence in depth: no link on the way
        except UnsafePath as exc:
            raise UnsafeArchive(f"entry {shown(name)}: resolves outside the target folder") from exc
        for parent in relative.parents:
            if parent in self.files:
                raise UnsafeArchive(f"entry {shown(name)}: {str(parent)!r} is a file, not a folder")
        return relative, self.target / relative

    def _folder(self, name: str) -> None:
        relative, destination = self._destination(name)
        if relative in self.files:
            raise UnsafeArchive(f"entry {shown(name)}: a file of that name came first")
        self.folders.add(relative)
        self._write(name, lambda: destination.mkdir(parents=True, exist_ok=True))

    def _entry_ratio(self, info: zipfile.ZipInfo) -> Callable[[int], None]:
        return lambda written: self._check_ratio(info.filename, written, info.compress_size)

    def _copy(self, name: str, source: IO[bytes], check_ratio: Callable[[int], None]) -> None:
        relative, destination = self._destination(name)
        if relative in self.files or relative in self.folders:
            raise UnsafeArchive(f"entry {shown(name)}: appears twice in the archive")
        self._write(name, lambda: destination.parent.mkdir(parents=True, exist_ok=True))
        written = 0
        with self._write(name, lambda: destination.open("xb")) as out:
            # Each piece is counted before it is written.
            while chunk := source.read(COPY_BUFFER_BYTES):
                written += len(chunk)
                self._check_total(name, self.total_bytes + written)
                check_ratio(written)
                self._write(name, lambda: out.write(chunk))
        self.total_bytes += written
        self.files[relative] = written

    def _write(self, name: str, action: Callable[[], _T]) -> _T:
        """`action()`, with an OSError told without the server path it names."""
        try:
            return action()
        except OSError as exc:
            raise ArtifactError(
                f"{self.source}: entry {shown(name)} could not be written: "
                f"{exc.strerror or type(exc).__name__}"
            ) from exc

    def _check_total(self, name: str, total: int) -> None:
        if total > self.limits.max_total_bytes:
            raise UnsafeArchive(
                f"entry {shown(name)}: {self.source} expands to more than the limit of "
                f"{self.limits.max_total_bytes} bytes (archive_max_total_bytes)"
            )

    def _check_ratio(self, name: str, expanded: int, compressed: int, whole: bool = False) -> None:
        """Refuse a likely zip bomb: the entry's own ratio, or with `whole` the archive's
        so far (bytes expanded against compressed bytes consumed)."""
        if expanded < RATIO_EXEMPT_BYTES:
            return
        ratio = expanded / max(compressed, 1)
        if ratio <= self.limits.max_ratio:
            return
        what = (
            f"{self.source} expands {ratio:.0f} times, more than"
            if whole
            else f"compression ratio {ratio:.0f} exceeds"
        )
        entry = f"entry {shown(name)}: " if name else ""
        raise UnsafeArchive(
            f"{entry}{what} the limit of {self.limits.max_ratio:g} (archive_max_ratio); "
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
