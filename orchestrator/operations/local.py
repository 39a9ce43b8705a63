"""import_from_local: a file or folder under the configured data root, hard-linked into the run.

No bytes are copied (a copy only where the artifact folder is on another file system): a
removed or replaced original leaves the run what it imported, and retention removes only the
links. An original edited in place (the same file, written over) is seen by the run too: a
link is the same file. Each item records the size and modification time its file had.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from orchestrator.artifacts import DatasetWriter, media_type_of
from orchestrator.catalog.registry import operation
from orchestrator.catalog.values import Dataset, write_manifest
from orchestrator.context import OperationContext
from orchestrator.errors import OperationError, PathOutsideDataRoot, UnsafePath
from orchestrator.paths import resolve_inside

# The rule of `inside_by_name`, as the JSON Schema `pattern` the API publishes (ECMA-262 and
# Python `re` read it alike: `(?![\s\S])` is the true end, where `$` would also match before
# a final newline): not absolute, and no '..' segment.
INSIDE_PATTERN = r"^(?!/)(?!([\s\S]*/)?\.\.(/|(?![\s\S])))"


def inside_by_name(path: str) -> bool:
    """Whether `path`, by its name alone, stays under the folder it is relative to:
    not absolute and no '..' segment. Links are checked when the files are read."""
    return not path.startswith("/") and ".." not in path.split("/")


def _inside_the_data_root(path: str) -> str:
    if not inside_by_name(path):
        raise PydanticCustomError(
            "path_outside_data_root",
            "{path} is absolute or has a '..' segment: give a path relative to "
            "the data root, without '..'",
            {"path": repr(path)},
        )
    return path


# A parameter naming a file or folder under the data root: refused at validation when
# absolute or with a '..' segment, and the same rule published as its schema's pattern.
DataRootPath = Annotated[
    str,
    Field(min_length=1, json_schema_extra={"pattern": INSIDE_PATTERN}),
    AfterValidator(_inside_the_data_root),
]


class ImportFromLocalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: DataRootPath = Field(
        description="A file or folder, relative to the server's data root "
        "(CONSTELLATION_DATA_ROOT), without '..'. Absolute paths and '..' are refused when "
        "the instructions are validated; links that lead outside the root, when they run.",
    )


def resolve_under(root: Path, path: str) -> Path:
    """`path` resolved inside `root` (links followed), or PathOutsideDataRoot."""
    try:
        return resolve_inside(root, path)
    except UnsafePath as exc:
        raise PathOutsideDataRoot(f"path {path!r} resolves outside the data root") from exc


def local_version(params: ImportFromLocalParams, ctx: OperationContext) -> list[Any]:
    """The cache key's source version: each file's name, size and mtime (ns), in order."""
    root = ctx.services.data_root
    if root is None:
        raise OperationError("no data root is configured (set CONSTELLATION_DATA_ROOT)")
    base = root.resolve()
    source = resolve_under(base, params.path)
    if source.is_file():
        files = [(source, source.name)]
    elif source.is_dir():
        files = [
            (p, p.relative_to(source).as_posix()) for p in sorted(source.rglob("*")) if p.is_file()
        ]
    else:
        raise OperationError(f"path {params.path!r} does not exist under the data root")
    version: list[Any] = []
    for file, name in files:
        found = file.stat()  # follows links, as the import does
        version.append([name, found.st_size, found.st_mtime_ns])
    return version


@operation(name="import_from_local", output=Dataset, cache_key=local_version)
def import_from_local(params: ImportFromLocalParams, ctx: OperationContext) -> Dataset:
    """Import a file or a folder (recursively) from the server's data root as a data set."""
    root = ctx.services.data_root
    if root is None:
        raise OperationError("no data root is configured (set CONSTELLATION_DATA_ROOT)")
    base = root.resolve()
    source = resolve_under(base, params.path)
    if not source.exists():
        raise OperationError(f"path {params.path!r} does not exist under the data root")
    if source.is_file():
        files = [(source, source.name)]
    else:
        files = [
            (p, p.relative_to(source).as_posix()) for p in sorted(source.rglob("*")) if p.is_file()
        ]
    writer = DatasetWriter(ctx.folder)
    mtimes: dict[str, float] = {}
    for done, (file, name) in enumerate(files, 1):
        ctx.check_canceled()
        # A link inside the folder must not lead out of the root; the item is the file it
        # leads to, so reading it later follows no link.
        target = resolve_under(base, str(file))
        mtimes[name] = target.stat().st_mtime
        _link_or_copy(target, writer.path_for(name))
        writer.add(name, media_type_of(name))
        ctx.progress(done, len(files))
    listed = writer.finish()
    dataset = listed.model_copy(
        update={
            "items": tuple(i.model_copy(update={"mtime": mtimes[i.name]}) for i in listed.items)
        }
    )
    write_manifest(dataset, ctx.folder)  # with the mtimes
    return dataset


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link to the file (no bytes copied: 25 small runs once left 61 MB of copies),
    or a copy where the artifact folder is on another file system."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
