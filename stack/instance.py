"""DAGSTER_HOME contents for the embedded stack: dagster.yaml and workspace.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCATION_NAME = "orchestrator"


@dataclass(frozen=True)
class PostgresStorage:
    """Where dagster-postgres keeps runs, events and schedules."""

    db_name: str
    hostname: str = "127.0.0.1"
    port: int = 5432
    username: str = "postgres"
    password: str = ""

    def config(self) -> dict[str, Any]:
        return {
            "postgres_db": {
                "username": self.username,
                "password": self.password,
                "hostname": self.hostname,
                "db_name": self.db_name,
                "port": self.port,
                # SQLAlchemy 2.1 no longer defaults to psycopg2 for "postgresql://".
                "scheme": "postgresql+psycopg2",
            }
        }


def instance_config(
    home: Path, postgres: PostgresStorage | None, max_concurrent_runs: int
) -> dict[str, Any]:
    """dagster.yaml: fast queued coordinator, run monitoring, chosen storage."""
    storage = (
        {"postgres": postgres.config()}
        if postgres
        else {"sqlite": {"base_dir": str(home / "storage")}}
    )
    return {
        "storage": storage,
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                "max_concurrent_runs": max_concurrent_runs,
                # Measured here: the default 5 s poll dominates a short run.
                "dequeue_interval_seconds": 1,
                "dequeue_use_threads": True,
            },
        },
        "run_monitoring": {
            "enabled": True,
            "start_timeout_seconds": 180,
            "cancel_timeout_seconds": 60,
            "poll_interval_seconds": 5,
        },
        "telemetry": {"enabled": False},
    }


def write_instance(
    home: Path, postgres: PostgresStorage | None = None, max_concurrent_runs: int = 10
) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    path.write_text(yaml.safe_dump(instance_config(home, postgres, max_concurrent_runs)))
    return path


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
