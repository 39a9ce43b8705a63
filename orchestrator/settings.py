"""Orchestrator settings, read from CONSTELLATION_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.catalog.validation import Limits


class OrchestratorSettings(BaseSettings):
    """Defaults for resources left blank in run config, and the tree limits."""

    model_config = SettingsConfigDict(env_prefix="CONSTELLATION_", extra="ignore")

    artifact_root: Path = Field(Path("var/artifacts"), description="Folder for run artifacts.")
    data_root: Path | None = Field(None, description="Folder import_from_local may read.")
    workers: int = Field(2, ge=1, description="Threads for CPU-bound work in one operation.")
    max_parallel: int = Field(4, ge=1, description="Nested instructions run at once.")
    max_depth: int = Field(32, ge=1)
    max_nodes: int = Field(10_000, ge=1)

    @property
    def limits(self) -> Limits:
        return Limits(max_depth=self.max_depth, max_nodes=self.max_nodes)
