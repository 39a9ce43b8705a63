"""Settings read from CONSTELLATION_* environment variables.

Two kinds. A run's own settings (`OrchestratorSettings`: threads, and the limits
of one instruction tree and of one archive) are pydantic settings. The settings of
an outside system (S3, Google Drive, the model server, the local folders) are the
fields of its Dagster resource (orchestrator/resources/), the one place they are
written; `env_field` gives such a field its environment variable.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.archives import ArchiveLimits
from orchestrator.catalog.validation import Limits


def _from_env(name: str, default: Any) -> Any:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_field(env: str, default: Any, *, description: str, **constraints: Any) -> Any:
    """A resource field that defaults to `$env` when it is set and not empty, else `default`.

    The variable is read when the resource is made (the code location loading, or
    `services_from_resources`); its text is validated like a value from run config,
    and run config still overrides it. The description names the variable.
    """
    shown = f"${env}, else {default!r}" if default not in ("", None) else f"${env}"
    return Field(
        default_factory=functools.partial(_from_env, env, default),
        validate_default=True,
        description=f"{description} Default: {shown}.",
        **constraints,
    )


class TreeLimits(BaseSettings):
    """The bounds of one instruction tree, for the API's validation and the job's alike."""

    model_config = SettingsConfigDict(env_prefix="CONSTELLATION_", extra="ignore")

    max_depth: int = Field(Limits.max_depth, ge=1, description="Deepest nesting of instructions.")
    max_nodes: int = Field(Limits.max_nodes, ge=1, description="Most instructions in one tree.")

    @property
    def limits(self) -> Limits:
        return Limits(max_depth=self.max_depth, max_nodes=self.max_nodes)


class OrchestratorSettings(TreeLimits):
    """A run's own settings: threads, and what one tree and one archive may hold."""

    workers: int = Field(2, ge=1, description="Threads for CPU-bound work in one operation.")
    max_parallel: int = Field(4, ge=1, description="Nested instructions run at once.")
    cache: bool = Field(
        True,
        description="Reuse an earlier run's output of the same instruction (same inputs, "
        "parameters and source version: orchestrator/cache.py); false: every run runs all.",
    )
    # Archive extraction (orchestrator/archives.py).
    archive_max_entries: int = Field(
        ArchiveLimits.max_entries,
        ge=1,
        description="Most entries (files and folders) one archive may hold.",
    )
    archive_max_total_bytes: int = Field(
        ArchiveLimits.max_total_bytes, ge=1, description="Most bytes one archive may expand to."
    )
    archive_max_ratio: float = Field(
        ArchiveLimits.max_ratio,
        gt=1,
        description="Highest compression ratio (expanded / compressed) an archive or one of its "
        "entries may have; entries under 1 MiB are exempt (the total limit caps them).",
    )

    @property
    def archive_limits(self) -> ArchiveLimits:
        return ArchiveLimits(
            max_entries=self.archive_max_entries,
            max_total_bytes=self.archive_max_total_bytes,
            max_ratio=self.archive_max_ratio,
        )
