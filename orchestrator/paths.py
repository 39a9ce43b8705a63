"""Where a name from outside may land: the one owner of path sanitising.

Names arrive from archive entries, remote listings (S3 keys), operations (item
names) and requests (local paths under the data root). They are checked here, and
each caller words the refusal for its user (an archive entry, an item, a path):

- `relative_path(name)`: the name as a relative POSIX path that cannot leave the
  folder it is placed under: no absolute path or drive letter, no `..`, no leading
  `~`, no control character (a NUL would cut the name short), no undecodable bytes,
  and within the file system's limits on one name and on a whole path, counted in
  UTF-8 bytes as the kernel counts them.
- `NameLimits.below(folder)`: those limits for names placed under `folder`, read
  with `os.pathconf` and less the folder's own length.
- `resolve_inside(root, path)`: `path` with links followed, refused unless it stays
  inside `root`.
- `shown(name)`: a name as quoted in a message, cut short when it is long.

Refusals raise UnsafePath whose `reason` never contains a path of the server.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from orchestrator.errors import UnsafePath

NAME_MAX_BYTES = 255  # one file or folder name (ext4, xfs, btrfs, tmpfs, APFS, NTFS in UTF-16)
PATH_MAX_BYTES = 4096  # a whole path, as Linux counts it (the final NUL included)
SHOWN_CHARACTERS = 60


@dataclass(frozen=True)
class NameLimits:
    """How long one name (`name_bytes`) and a whole relative path (`path_bytes`) may be."""

    name_bytes: int = NAME_MAX_BYTES
    path_bytes: int = PATH_MAX_BYTES

    @classmethod
    def below(cls, folder: Path) -> NameLimits:
        """The limits for relative paths placed under `folder`, an existing folder."""
        name_max = _pathconf(folder, "PC_NAME_MAX", NAME_MAX_BYTES)
        path_max = _pathconf(folder, "PC_PATH_MAX", PATH_MAX_BYTES)
        # The kernel counts the folder, a separator and the terminating NUL in PATH_MAX.
        used = len(os.fsencode(folder.resolve())) + 2
        return cls(name_bytes=name_max, path_bytes=max(path_max - used, 0))


def _pathconf(folder: Path, name: str, default: int) -> int:
    try:
        value = os.pathconf(folder, name)
    except (OSError, ValueError):  # no such setting on this platform or file system
        return default
    return value if value > 0 else default


def shown(name: str) -> str:
    """`name` quoted for a message (as repr does), cut short with its length when long."""
    if len(name) <= SHOWN_CHARACTERS:
        return repr(name)
    return f"{name[:SHOWN_CHARACTERS] + '…'!r} ({len(name)} characters)"


DEFAULT_LIMITS = NameLimits()


def relative_path(name: str, limits: NameLimits = DEFAULT_LIMITS) -> PurePosixPath:
    """`name` as a normalised relative path that stays inside its folder, or UnsafePath.

    Backslashes count as separators (archives written on Windows use them); `.` and
    empty parts are dropped, so `./a//b` is `a/b`.
    """
    for char in name:
        category = unicodedata.category(char)
        if category == "Cc":
            raise UnsafePath(f"the name contains a control character (U+{ord(char):04X})")
        if category == "Cs":  # an undecodable byte, kept by surrogateescape
            raise UnsafePath("the name is not valid UTF-8")
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if path.is_absolute() or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafePath("absolute paths are not allowed")
    if ".." in path.parts:
        raise UnsafePath("'..' would leave the target folder")
    if posix.startswith("~"):
        raise UnsafePath("a leading '~' would read as a home folder")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise UnsafePath("empty name")
    for part in parts:
        size = len(os.fsencode(part))
        if size > limits.name_bytes:
            raise UnsafePath(
                f"the file or folder name {shown(part)} is {size} bytes long (UTF-8), more than "
                f"the file system's limit of {limits.name_bytes} bytes"
            )
    relative = PurePosixPath(*parts)
    size = len(os.fsencode(relative.as_posix()))
    if size > limits.path_bytes:
        raise UnsafePath(
            f"the path is {size} bytes long (UTF-8), more than the {limits.path_bytes} bytes "
            "the file system allows below the target folder"
        )
    return relative


def resolve_inside(root: Path, path: str | os.PathLike[str]) -> Path:
    """`root / path` resolved (links followed), or UnsafePath when it leaves `root`."""
    base = root.resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        raise UnsafePath("resolves outside its folder")
    return target
