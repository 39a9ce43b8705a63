"""Results contents: what a run's instructions wrote, read from the artifact store by key.

An instruction's output summary names its folder in the store (`artifact`, e.g.
`RUN_ID/002-resize_image`); the folder's `manifest.json` says what the files are.
The API process reads them through the same store the run workers wrote to (a local
folder, or S3 when they run elsewhere), never through a path of the worker's machine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool

from api.dagster import RunRecord
from api.errors import ArtifactsRemoved, InvalidItemName, RangeNotSatisfiable, ResultNotFound
from api.run_views import RunReports
from orchestrator.artifacts import MANIFEST, ArtifactStore, join
from orchestrator.errors import UnsafePath
from orchestrator.paths import relative_path, shown
from orchestrator.report import DONE_STATES, RunDetail, StepStatus
from orchestrator.retention import artifacts_removed

_INDEX = re.compile(r"\d+")
_PATH = re.compile(r"instructions\[(\d+)\]")
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
SEND_BYTES = 4 * 2**20


@dataclass(frozen=True)
class Item:
    """One file of an instruction's output, as a reader of the store finds it."""

    name: str
    size: int
    media_type: str
    key: str


@dataclass(frozen=True)
class Output:
    """A succeeded instruction's output: its folder's key and its manifest."""

    run_id: str
    path: str
    operation: str
    key: str
    manifest: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.manifest.get("type", "value"))

    def file_key(self, relative: str) -> str:
        return join(str(self.manifest.get("root", self.key)), relative)


class RunContents:
    """Finds instructions' outputs in a run and reads their files from `store`."""

    def __init__(self, store: ArtifactStore, reports: RunReports):
        self.store = store
        self.reports = reports

    async def output(self, run_id: str, instruction: str) -> Output:
        """The output of `instruction` (an index, a path such as `instructions[1]`, or an
        id); RunNotFound, ResultNotFound, or ArtifactsRemoved (410)."""
        check_artifacts_kept(await self.reports.check(run_id))
        detail = await self.reports.detail(run_id)
        step, output = find_instruction(detail, instruction)
        if step.status not in DONE_STATES:
            raise ResultNotFound(f"{step.path} ({step.operation}) has no output: it {step.status}")
        key = (output or {}).get("artifact")
        if not isinstance(key, str):
            raise ResultNotFound(f"{step.path} ({step.operation}) keeps no files in the store")
        raw = await run_in_threadpool(self.store.read_bytes, join(key, MANIFEST))
        if raw is None:
            raise ResultNotFound(f"{step.path} ({step.operation}): its files are not in the store")
        return Output(run_id, step.path, step.operation, key, json.loads(raw))

    async def items(self, output: Output) -> list[Item]:
        """Every file of the output, in manifest order."""
        kind, manifest = output.type, output.manifest
        if kind == "batches":
            entries = [item for batch in manifest["batches"] for item in batch]
        elif "items" in manifest and isinstance(manifest["items"], list):
            entries = manifest["items"]
        else:
            files = [manifest.get(field) for field in ("path", "table", "report")]
            names = [name for name in files if isinstance(name, str)]
            return [await self._file_item(output, name) for name in names]
        return [
            Item(
                e["name"],
                e["size"],
                e.get("media_type", "application/octet-stream"),
                output.file_key(e["path"]),
            )
            for e in entries
        ]

    async def _file_item(self, output: Output, name: str) -> Item:
        from orchestrator.artifacts import media_type_of

        key = output.file_key(name)
        size = await run_in_threadpool(self.store.size, key)
        media = "application/x-ndjson" if name.endswith(".jsonl") else media_type_of(name)
        return Item(name, size or 0, media, key)

    async def item(self, output: Output, name: str) -> Item:
        check_name(name)
        for item in await self.items(output):
            if item.name == name:
                return item
        raise ResultNotFound(f"{output.path} ({output.operation}) has no item {shown(name)}")

    async def named_file(self, output: Output, field: str, kind: str) -> Item:
        """The output's file named by manifest `field` (predictions' path, a comparison's
        table or report); ResultNotFound for an output of another type."""
        name = output.manifest.get(field)
        if output.type != kind or not isinstance(name, str):
            raise ResultNotFound(
                f"{output.path} ({output.operation}) is a {output.type}, not a {kind}"
            )
        return await self._file_item(output, name)

    def records(self, item: Item, cursor: int, limit: int) -> tuple[list[Any], int | None]:
        """Up to `limit` JSON Lines records from byte `cursor` on; the next cursor or None."""
        records: list[Any] = []
        offset, buffer = cursor, b""
        chunks = self.store.read(item.key, cursor)
        try:
            for chunk in chunks:
                buffer += chunk
                while len(records) < limit and b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    offset += len(line) + 1
                    if line.strip():
                        records.append(json.loads(line))
                if len(records) >= limit:
                    break
            else:
                if buffer.strip() and len(records) < limit:
                    records.append(json.loads(buffer))
                    offset += len(buffer)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return records, (offset if offset < item.size else None)


def check_artifacts_kept(run: RunRecord) -> None:
    """ArtifactsRemoved (410) once retention or DELETE /runs/{id}/artifacts removed them."""
    if artifacts_removed(run):
        raise ArtifactsRemoved(
            f"the artifacts of run {run.run_id!r} were removed (artifact retention or "
            "DELETE /runs/{id}/artifacts); its status stays readable at GET /runs/{id}, "
            "its results are gone: run the instructions again to get them"
        )


def find_instruction(
    detail: RunDetail, instruction: str
) -> tuple[StepStatus, dict[str, Any] | None]:
    """The top-level instruction (or nested one, by id) that `instruction` names."""
    tops = detail.instructions
    index = None
    if _INDEX.fullmatch(instruction):
        index = int(instruction)
    elif match := _PATH.fullmatch(instruction):
        index = int(match.group(1))
    if index is not None and index < len(tops):
        return tops[index], tops[index].output
    for top in tops:
        if top.id is not None and top.id == instruction:
            return top, top.output
        for step in top.steps:
            if step.id is not None and step.id == instruction:
                return step, step.output
    ids = sorted({s.id for t in tops for s in [t, *t.steps] if s.id is not None})
    expected = f"an index 0 to {len(tops) - 1}, a path such as 'instructions[0]'"
    expected += f", or an id ({', '.join(map(repr, ids))})" if ids else ""
    raise ResultNotFound(
        f"run {detail.run_id!r} has no instruction {shown(instruction)}: expected {expected}"
    )


def check_name(name: str) -> None:
    """Refuse an item name that could leave its folder, also once more percent-decoded."""
    for candidate in (name, unquote(name)):
        try:
            if str(relative_path(candidate)) != candidate.rstrip("/") or "\\" in candidate:
                raise UnsafePath("it is not in normal form")
        except UnsafePath as exc:
            raise InvalidItemName(f"item name {shown(name)} is refused: {exc.reason}") from exc


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (start, end exclusive) a `Range` header asks for; None for the whole item.
    RangeNotSatisfiable when it lies outside the item; other forms are ignored (RFC 9110)."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable(f"range {header!r} asks for no bytes", size)
        return max(0, size - length), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable(f"range {header!r} is outside the item's {size} bytes", size)
    return start, end


def stream(
    store: ArtifactStore, key: str, start: int, end: int, block: int = SEND_BYTES
) -> Iterator[bytes]:
    """The bytes in blocks of at least `block`: the response takes each one in a thread
    hop, and S3 reads come in 256 KiB chunks (bench_results: 1 GiB from S3 through the
    API in 1.64 s rather than 1.77 s)."""
    parts: list[bytes] = []
    size = 0
    for chunk in store.read(key, start, end):
        parts.append(chunk)
        size += len(chunk)
        if size >= block:
            yield parts[0] if len(parts) == 1 else b"".join(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts)
