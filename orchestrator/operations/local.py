"""import_from_local: a file or folder under the configured data root."""

from __future__ import annotations

import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.catalog.registry import operation
from orchestrator.catalog.values import Dataset
from orchestrator.context import OperationContext
from orchestrator.errors import OperationError, PathOutsideDataRoot, UnsafePath
from orchestrator.paths import resolve_inside


class ImportFromLocalParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        min_length=1,
        description="A file or folder, relative to the server's data root "
        "(CONSTELLATION_DATA_ROOT). Paths resolving outside the root are refused.",
    )


def resolve_under(root: Path, path: str) -> Path:
    """`path` resolved inside `root` (links followed), or PathOutsideDataRoot."""
    try:
        return resolve_inside(root, path)
    except UnsafePath as exc:
        raise PathOutsideDataRoot(f"path {path!r} resolves outside the data root") from exc


@operation(name="import_from_local", output=Dataset)
def import_from_local(params: ImportFromLocalParams, ctx: OperationContext) -> Dataset:
    """Import a file or a folder (recursively) from the server's data root as a data set."""
    root = ctx.services.data_root
    if root is None:
        raise OperationError("no data root is configured (set CONSTELLATION_DATA_ROOT)")
    source = resolve_under(root, params.path)
    if not source.exists():
        raise OperationError(f"path {params.path!r} does not exist under the data root")
    writer = ctx.dataset_writer()
    if source.is_file():
        files = [(source, source.name)]
    else:
        files = [
            (p, p.relative_to(source).as_posix()) for p in sorted(source.rglob("*")) if p.is_file()
        ]
    for file, name in files:
        ctx.check_canceled()
        resolve_under(root, str(file))  # a link inside the folder must not lead out of the root
        shutil.copyfile(file, writer.path_for(name))
        writer.add(name)
    return writer.finish()
