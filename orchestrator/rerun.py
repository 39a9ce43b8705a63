"""Rerunning a run: the same instructions again, as a new run linked to the old one by tags.

- `failure` (the default): each instruction the old run finished whose artifacts are still
  there is reused (event "cached", from the old run); the rest runs again, with the cache.
- `all`: every instruction runs again, the cache is not read (its outputs still enter it).

Operations with side effects (deploy_model, delete_model, export_to_s3) always run again.
The API (`POST /runs/{id}/rerun`) sets the tags; the job reads them (`rerun_options`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

RERUN_OF_TAG = "constellation/rerun-of"  # the run this one reruns
RERUN_MODE_TAG = "constellation/rerun"  # "failure" or "all"
RerunMode = Literal["failure", "all"]
RERUN_MODES: tuple[RerunMode, ...] = ("failure", "all")


def rerun_tags(run_id: str, mode: RerunMode) -> dict[str, str]:
    return {RERUN_OF_TAG: run_id, RERUN_MODE_TAG: mode}


def rerun_options(tags: Mapping[str, str]) -> tuple[str | None, bool]:
    """(the run whose finished nodes to reuse or None, whether to read the cache)."""
    of = tags.get(RERUN_OF_TAG)
    if of is None:
        return None, True
    if tags.get(RERUN_MODE_TAG) == "all":
        return None, False
    return of, True
