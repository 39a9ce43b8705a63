"""The artifact store's one interface, whatever holds the bytes.

Operations write into a local working folder (`node_folder`); when an instruction
succeeds the executor `publish`es that folder, and from then on it is known by its
store key, `RUN_ID/NNN-OPERATION`, on every machine: an operation elsewhere gets a
local copy with `checkout`, the API reads its files by key (`size`, `read`).
A key is a relative POSIX path; nothing outside the store names a local path.

A run whose artifacts were removed (`delete_run`) keeps a marker, so readers can
tell "removed" (`removed(run_id)`) from "never there".
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from orchestrator.catalog.values import Value, write_manifest
from orchestrator.errors import ArtifactError, UnsafePath
from orchestrator.paths import relative_path, shown

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MANIFEST = "manifest.json"


def check_run_id(run_id: str) -> str:
    if not run_id or _UNSAFE.sub("", run_id) != run_id or run_id.startswith("."):
        raise ArtifactError(f"run id {run_id!r} is not usable as a folder name")
    return run_id


def check_key(key: str) -> str:
    """`key` as a normalised relative key, or ArtifactError (no `..`, no absolute path)."""
    try:
        return str(relative_path(key))
    except UnsafePath as exc:
        raise ArtifactError(f"key {shown(key)} is not a safe relative key: {exc.reason}") from exc


def join(key: str, *parts: str) -> str:
    return check_key(str(PurePosixPath(key, *parts)))


def node_name(index: int, operation: str) -> str:
    return f"{index:03d}-{operation}"


class ArtifactStore(ABC):
    """Local working folders for the operations, published by key for every reader."""

    @abstractmethod
    def working_root(self) -> Path:
        """The local folder under which working folders are made (key = path below it)."""

    def run_folder(self, run_id: str) -> Path:
        return self.working_root() / check_run_id(run_id)

    def node_folder(self, run_id: str, index: int, operation: str) -> Path:
        """A fresh local folder for one attempt of one instruction."""
        import shutil

        folder = self.run_folder(run_id) / node_name(index, operation)
        if folder.exists():
            shutil.rmtree(folder)  # a retried attempt starts clean
        folder.mkdir(parents=True)
        return folder

    def key_of(self, folder: Path | str) -> str | None:
        """The key of a local working folder, None when it is not one of this store's."""
        try:
            relative = Path(folder).resolve().relative_to(self.working_root())
        except ValueError:
            return None
        return check_key(relative.as_posix()) if relative.parts else None

    def publish_value(self, value: Value, folder: Path) -> str:
        """Write the value's manifest (roots as keys) into its folder, publish the folder;
        its key. The manifest tells a reader of the key what the files are."""
        root = getattr(value, "root", None)
        if isinstance(root, str):
            root_key = self.key_of(root)
            if root_key is not None:
                value = value.model_copy(update={"root": root_key})
        write_manifest(value, folder)
        return self.publish(folder)

    @abstractmethod
    def publish(self, folder: Path) -> str:
        """Make a working folder's files readable by key on every machine; the key."""

    @abstractmethod
    def checkout(self, key: str) -> Path:
        """A local folder holding the files under `key`; pinned until `release(key)`."""

    def release(self, key: str) -> None:
        """`checkout`'s folder may go again (from a bounded cache); a local store keeps it."""
        return None

    @abstractmethod
    def write_bytes(self, key: str, data: bytes, media_type: str = "application/json") -> None:
        """Store a small file under `key` (e.g. RUN_ID/results.json)."""

    @abstractmethod
    def size(self, key: str) -> int | None:
        """The size of the file at `key`, None when there is none."""

    @abstractmethod
    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes of the file at `key` from `start` up to `end` (exclusive), streamed."""

    def read_bytes(self, key: str) -> bytes | None:
        """A small file whole; None when there is none."""
        if self.size(key) is None:
            return None
        return b"".join(self.read(key))

    def presigned_url(self, key: str, media_type: str, seconds: int) -> str | None:
        """A URL anyone may GET the file with for `seconds`; None where the store has none."""
        return None

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the small file at `key` (e.g. a cache entry); nothing when there is none."""

    @abstractmethod
    def delete_run(self, run_id: str) -> None:
        """Remove every artifact of the run (the run's `constellation/artifacts=removed`
        tag, orchestrator/retention.py, is what says so to readers)."""

    def describe(self) -> dict[str, Any]:
        return {"type": type(self).__name__}
