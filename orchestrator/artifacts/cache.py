"""A worker's bounded local copy of published folders, least recently used out first.

Entries are whole published folders (`RUN_ID/NNN-OPERATION`), counted in bytes; an
entry checked out by a running operation is pinned and never evicted. A folder is an
entry once it carries the `.published` marker, so a half-downloaded or still-written
folder is never taken for one, and a restarted worker finds its entries again.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter, OrderedDict
from pathlib import Path

PUBLISHED_MARKER = ".published"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class LocalCache:
    """Folders under `root` keyed like the store, at most `capacity_bytes` in all
    (besides the pinned ones, which a running operation needs whatever their size)."""

    def __init__(self, root: Path, capacity_bytes: int):
        self.root = root.resolve()
        self.capacity_bytes = capacity_bytes
        self.lock = threading.RLock()
        self._entries: OrderedDict[str, int] = OrderedDict()  # key -> bytes, oldest first
        self._pins: Counter[str] = Counter()
        found = sorted(self.root.glob(f"*/*/{PUBLISHED_MARKER}"), key=lambda p: p.stat().st_mtime)
        for marker in found:
            folder = marker.parent
            self._entries[folder.relative_to(self.root).as_posix()] = folder_bytes(folder)

    def folder(self, key: str) -> Path:
        return self.root / key

    @property
    def total_bytes(self) -> int:
        return sum(self._entries.values())

    def has(self, key: str) -> bool:
        with self.lock:
            return key in self._entries and (self.folder(key) / PUBLISHED_MARKER).exists()

    def add(self, key: str) -> None:
        """Record the complete folder at `folder(key)` as the newest entry; evict."""
        with self.lock:
            folder = self.folder(key)
            (folder / PUBLISHED_MARKER).touch()
            self._entries[key] = folder_bytes(folder)
            self._entries.move_to_end(key)
            self.evict()

    def pin(self, key: str) -> None:
        with self.lock:
            self._pins[key] += 1
            if key in self._entries:
                self._entries.move_to_end(key)

    def unpin(self, key: str) -> None:
        with self.lock:
            self._pins[key] -= 1
            if self._pins[key] <= 0:
                del self._pins[key]
            self.evict()

    def evict(self) -> None:
        with self.lock:
            total = self.total_bytes
            for key in list(self._entries):
                if total <= self.capacity_bytes:
                    return
                if self._pins[key] > 0:
                    continue
                total -= self._entries.pop(key)
                shutil.rmtree(self.folder(key), ignore_errors=True)

    def drop_run(self, run_id: str) -> None:
        with self.lock:
            for key in [k for k in self._entries if k.split("/", 1)[0] == run_id]:
                del self._entries[key]
            shutil.rmtree(self.root / run_id, ignore_errors=True)
