"""DAGSTER_HOME contents: dagster.yaml rendered from deploy/dagster.yaml, and workspace.yaml.

deploy/dagster.yaml is the one description of the Dagster instance. Production
(docker-compose.yml, stack/production.py) uses it as it is. The embedded stack
(`make run`, most tests) renders it with one difference: SQLite storage under
DAGSTER_HOME instead of PostgreSQL when no PostgreSQL is given. Everything else —
queued coordinator, warm run launcher, run monitoring, artifact and compute-log
storage, telemetry and the first-visit dialog off — is the same file, with its `env:`
references filled by `instance_environment()`. Only a comparison (bench/) asks for
Dagster's DefaultRunLauncher instead (`Launcher.DEFAULT`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOY = PROJECT_ROOT / "deploy"
LOCATION_NAME = "orchestrator"


class Launcher(StrEnum):
    """How runs start: on warm Celery workers (deploy/dagster.yaml), or as Dagster starts
    them by default (a new process per run, started by the code server, dequeued by
    Dagster's own QueuedRunCoordinator; kept for comparison)."""

    WARM = "warm"
    DEFAULT = "default"


DEFAULT_RUN_LAUNCHER = {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}
# With it, Dagster's own coordinator: the configuration before warm workers, for comparison.
QUEUED_RUN_COORDINATOR = {
    "module": "dagster._core.run_coordinator",
    "class": "QueuedRunCoordinator",
}


@dataclass(frozen=True)
class Broker:
    """Where the Celery broker and result backend of the warm launcher are (Redis)."""

    url: str
    backend_url: str

    @classmethod
    def redis(cls, host: str, port: int) -> Broker:
        return cls(f"redis://{host}:{port}/0", f"redis://{host}:{port}/1")

    def environment(self) -> dict[str, str]:
        """The values of deploy/dagster.yaml's `env:` references to the broker."""
        return {
            "DAGSTER_CELERY_BROKER_URL": self.url,
            "DAGSTER_CELERY_BACKEND_URL": self.backend_url,
        }


@dataclass(frozen=True)
class PostgresStorage:
    """Where dagster-postgres keeps runs, events and schedules."""

    db_name: str
    hostname: str = "127.0.0.1"
    port: int = 5432
    username: str = "postgres"
    password: str = ""

    def environment(self) -> dict[str, str]:
        """The values of deploy/dagster.yaml's `env:` references to PostgreSQL."""
        return {
            "DAGSTER_POSTGRES_USER": self.username,
            "DAGSTER_POSTGRES_PASSWORD": self.password,
            "DAGSTER_POSTGRES_HOST": self.hostname,
            "DAGSTER_POSTGRES_PORT": str(self.port),
            "DAGSTER_POSTGRES_DB": self.db_name,
        }


def instance_environment(
    postgres: PostgresStorage | None,
    max_concurrent_runs: int,
    storage_dir: Path,
    broker: Broker | None = None,
) -> dict[str, str]:
    """The values of every `env:` reference of deploy/dagster.yaml the instance needs."""
    return {
        **(postgres.environment() if postgres else {}),
        **(broker.environment() if broker else {}),
        "DAGSTER_MAX_CONCURRENT_RUNS": str(max_concurrent_runs),
        "DAGSTER_STORAGE_DIR": str(storage_dir),
    }


def deploy_instance() -> dict[str, Any]:
    """deploy/dagster.yaml, parsed."""
    return dict(yaml.safe_load((DEPLOY / "dagster.yaml").read_text()))


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` laid over it, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def sqlite_storage(home: Path) -> dict[str, Any]:
    """The storage section of an embedded instance without PostgreSQL."""
    return {"sqlite": {"base_dir": str(home / "storage")}}


def embedded_instance(
    home: Path, postgres: PostgresStorage | None, launcher: Launcher = Launcher.WARM
) -> dict[str, Any]:
    """deploy/dagster.yaml with SQLite storage under `home` unless PostgreSQL is given
    (and Dagster's DefaultRunLauncher if asked for)."""
    config = deploy_instance()
    if postgres is None:
        config["storage"] = sqlite_storage(home)  # replaced whole, not merged
    if launcher is Launcher.DEFAULT:
        config["run_launcher"] = DEFAULT_RUN_LAUNCHER
        config["run_coordinator"] = config["run_coordinator"] | QUEUED_RUN_COORDINATOR
    return config


def write_instance(
    home: Path, postgres: PostgresStorage | None = None, launcher: Launcher = Launcher.WARM
) -> Path:
    """DAGSTER_HOME/dagster.yaml of the embedded stack (see `embedded_instance`)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    config = embedded_instance(home, postgres, launcher)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def render_home(
    home: Path, instance_overrides: Mapping[str, Any] | None = None
) -> tuple[Path, Path]:
    """DAGSTER_HOME with deploy/dagster.yaml and deploy/workspace.yaml (production).

    The files are copied as they are; `instance_overrides` (for tests: short
    run-monitoring timeouts, which Dagster does not read from `env:`) are laid
    over dagster.yaml only when given.
    """
    home.mkdir(parents=True, exist_ok=True)
    instance = home / "dagster.yaml"
    text = (DEPLOY / "dagster.yaml").read_text()
    if instance_overrides:
        text = yaml.safe_dump(merge(yaml.safe_load(text), instance_overrides), sort_keys=False)
    instance.write_text(text)
    workspace = home / "workspace.yaml"
    workspace.write_text((DEPLOY / "workspace.yaml").read_text())
    return instance, workspace


def write_workspace(home: Path) -> Path:
    """workspace.yaml loading the `orchestrator` code location from this checkout."""
    path = home / "workspace.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "orchestrator.definitions",
                            "location_name": LOCATION_NAME,
                            "working_directory": str(PROJECT_ROOT),
                        }
                    }
                ]
            }
        )
    )
    return path
