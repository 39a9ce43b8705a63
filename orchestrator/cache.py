"""Caching across runs: an instruction's output reused by a later run that would make it again.

The key of a node is the SHA-256 of its operation (and `cache_version`), its validated
parameters (defaults included, those fed by other instructions left out), the keys of the
nodes feeding it, and the source version its operation's `cache_key` reports (an S3 ETag,
a Drive md5Checksum, file sizes and mtimes, a model version). A key thus covers everything
upstream: a changed source changes every key below it. An input without a key (made by an
operation that is never cached, or by an instruction with `"cache": false`) leaves its
consumers without one too: they run.

The index lives in the artifact store, so every worker of every machine shares it, local
folder or S3 prefix alike:

    .cache/KEY.json   {"key", "artifact": "RUN_ID/NNN-OPERATION", "run_id", "path", "operation"}
    RUN_ID/nodes.json every node the run finished (ran or reused): its artifact and key,
                      what a rerun from failure reuses

A hit reads the entry and the artifact's manifest (and its files' folder's manifest when
the value points at another instruction's files): an artifact that is gone is a miss, so a
hit never names removed files. Retention forgets a run's entries (`forget_run`) before it
removes the run's artifacts.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.artifacts import MANIFEST, ArtifactStore, check_run_id, join
from orchestrator.catalog.registry import Operation
from orchestrator.catalog.values import Value
from orchestrator.errors import ArtifactError

CACHE_FORMAT = 1  # part of every key: raise it when the key's recipe changes
INDEX = ".cache"  # not a run id (run ids never start with a dot)
NODES_FILE = "nodes.json"


def node_key(op: Operation, parameters: dict[str, Any], inputs: dict[str, Any], source: Any) -> str:
    """The cache key of one node (see the module docstring)."""
    recipe = {
        "format": CACHE_FORMAT,
        "operation": op.name,
        "version": op.cache_version,
        "parameters": parameters,
        "inputs": inputs,
        "source": source,
    }
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class NodeRecord(BaseModel):
    """A node a run finished: where its output is, and its cache key if it had one."""

    operation: str
    artifact: str
    key: str | None = None


class RunNodes(BaseModel):
    """The body of RUN_ID/nodes.json."""

    run_id: str
    nodes: dict[str, NodeRecord]


class CacheEntry(BaseModel):
    """The body of .cache/KEY.json."""

    key: str
    artifact: str
    run_id: str
    path: str
    operation: str
    at: float


@dataclass(frozen=True)
class Reused:
    """An earlier output found for a node: the value, its artifact, the run that made it."""

    value: Value
    artifact: str
    run_id: str


def value_types() -> dict[str, type[Value]]:
    """Every Value class by its `type_name` (subclasses of subclasses too)."""
    found: dict[str, type[Value]] = {}
    stack: list[type[Value]] = [Value]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.type_name, cls)
        stack.extend(cls.__subclasses__())
    return found


class CacheIndex:
    """The cache's entries and the runs' node records, in one artifact store."""

    def __init__(self, store: ArtifactStore):
        self.store = store

    def _read(self, key: str) -> Any:
        raw = self.store.read_bytes(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def entry_key(self, key: str) -> str:
        return join(INDEX, f"{key}.json")

    def lookup(self, key: str) -> Reused | None:
        """The earlier output with cache key `key`, if its artifacts are still there."""
        raw = self._read(self.entry_key(key))
        try:
            entry = None if raw is None else CacheEntry.model_validate(raw)
        except ValidationError:
            return None
        if entry is None:
            return None
        return self.reuse(entry.artifact, entry.run_id)

    def reuse(self, artifact: str, run_id: str) -> Reused | None:
        """The value published at `artifact`, with its root as a local path of this store;
        None when its manifest, or its files' manifest, is gone."""
        manifest = self._read(join(artifact, MANIFEST))
        if not isinstance(manifest, dict):
            return None
        cls = value_types().get(str(manifest.pop("type", "")))
        if cls is None:
            return None
        root = manifest.get("root")
        if isinstance(root, str):
            if root != artifact and self.store.size(join(root, MANIFEST)) is None:
                return None  # the files were another instruction's, since removed
            manifest["root"] = str(self.store.working_root() / root)
        try:
            value = cls.model_validate(manifest)
        except ValidationError:
            return None
        return Reused(value, artifact, run_id)

    def record(self, key: str, artifact: str, run_id: str, path: str, operation: str) -> None:
        entry = CacheEntry(
            key=key,
            artifact=artifact,
            run_id=run_id,
            path=path,
            operation=operation,
            at=time.time(),
        )
        self.store.write_bytes(self.entry_key(key), entry.model_dump_json().encode())

    def write_nodes(self, run_id: str, nodes: dict[str, NodeRecord]) -> None:
        body = RunNodes(run_id=run_id, nodes=nodes).model_dump_json(indent=1).encode()
        self.store.write_bytes(join(check_run_id(run_id), NODES_FILE), body)

    def read_nodes(self, run_id: str) -> dict[str, NodeRecord]:
        """The nodes run `run_id` finished; none when it wrote no record (or it is gone)."""
        raw = self._read(join(check_run_id(run_id), NODES_FILE))
        try:
            return {} if raw is None else RunNodes.model_validate(raw).nodes
        except ValidationError:
            return {}

    def forget_run(self, run_id: str) -> int:
        """Remove the entries run `run_id` recorded (those a later run has not taken over);
        how many. Retention calls it before removing the run's artifacts."""
        forgotten = 0
        for record in self.read_nodes(run_id).values():
            if record.key is None:
                continue
            raw = self._read(self.entry_key(record.key))
            if isinstance(raw, dict) and raw.get("run_id") == run_id:
                try:
                    self.store.delete(self.entry_key(record.key))
                except ArtifactError:
                    continue
                forgotten += 1
        return forgotten
