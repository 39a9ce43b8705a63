"""docker-compose.yml, deploy/ and stack/production.SERVICES describe one topology;
the embedded stack (stack/instance.py) runs the same Dagster instance on SQLite.

The native tests prove stack/production.py; these tests keep the compose file from
drifting away from it: same services, same commands, same environment variables.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack import Stack
from stack.instance import DEPLOY, PostgresStorage, render_home, write_instance
from stack.production import INSTANCE_ENV, SERVICES, WORKSPACE_ENV

ROOT = DEPLOY.parent
COMPOSE_HOME = "/opt/dagster/dagster_home"
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[?-][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def env_references(node: Any) -> set[str]:
    """Every `{env: NAME}` in a Dagster YAML document."""
    if isinstance(node, dict):
        found = {node["env"]} if set(node) == {"env"} else set()
        return found.union(*(env_references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(env_references(v) for v in node))
    return set()


def test_same_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_same_command(compose: dict[str, Any], name: str) -> None:
    spec = SERVICES[name]
    service = compose["services"][name]
    expected = spec.argv(host="0.0.0.0", port=spec.port, workspace=f"{COMPOSE_HOME}/workspace.yaml")
    assert service.get("command", []) == expected


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_same_environment_variable_names(compose: dict[str, Any], name: str) -> None:
    assert set(compose["services"][name].get("environment", {})) == set(SERVICES[name].env)


def test_env_lists_match_deploy_files() -> None:
    assert env_references(yaml.safe_load((DEPLOY / "dagster.yaml").read_text())) == set(
        INSTANCE_ENV
    )
    assert env_references(yaml.safe_load((DEPLOY / "workspace.yaml").read_text())) == set(
        WORKSPACE_ENV
    )


def test_every_interpolated_variable_is_in_env_example() -> None:
    used = set(INTERPOLATION.findall((ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert used <= documented, f"missing from .env.example: {sorted(used - documented)}"


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "KEY")):
                assert value is None or str(value).startswith("${"), f"{name}: {key} is inline"


def test_services_wait_for_healthy_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name} -> {dependency}"
    assert set(services["webserver"]["depends_on"]) == {"postgres", "redis", "user-code"}
    assert set(services["daemon"]["depends_on"]) == {"postgres", "redis", "user-code"}
    assert set(services["worker"]["depends_on"]) == {"postgres", "redis", "user-code"}


def test_artifacts_are_in_s3_and_the_api_shares_no_volume(compose: dict[str, Any]) -> None:
    def mounts(name: str) -> set[str]:
        return {v.split(":")[0] for v in compose["services"][name].get("volumes", [])}

    services = compose["services"]
    for name in ("worker", "api"):
        assert services[name]["environment"]["CONSTELLATION_ARTIFACT_STORE"].startswith(
            "${CONSTELLATION_ARTIFACT_STORE:?"
        )
    assert "s3://" in (ROOT / ".env.example").read_text()
    # Results come from the store, not a worker's disk: the API mounts only the plug-in and
    # notebook folders (code it validates and lists), read-only.
    api_volumes = compose["services"]["api"].get("volumes", [])
    assert {":".join(v.rsplit(":", 2)[1:]) for v in api_volumes} == {
        "/var/lib/constellation/plugins:ro",
        "/var/lib/constellation/notebooks:ro",
    }
    assert not mounts("api") & set(compose["volumes"])  # no named (writable) volume
    assert "dagster-storage" in mounts("worker")  # run workers' compute logs ...
    assert "dagster-storage" in mounts("webserver")  # ... shown in the UI
    assert "postgres-data" in mounts("postgres")
    assert {"postgres-data", "dagster-storage", "models"} <= set(compose["volumes"])


def test_rendered_home_is_the_deploy_files_unchanged(tmp_path: Path) -> None:
    instance, workspace = render_home(tmp_path)
    assert instance.read_text() == (DEPLOY / "dagster.yaml").read_text()
    assert workspace.read_text() == (DEPLOY / "workspace.yaml").read_text()


def test_overrides_change_only_what_they_name(tmp_path: Path) -> None:
    instance, _ = render_home(tmp_path, {"run_monitoring": {"poll_interval_seconds": 2}})
    rendered = yaml.safe_load(instance.read_text())
    original = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert rendered["run_monitoring"] == original["run_monitoring"] | {"poll_interval_seconds": 2}
    assert {k: v for k, v in rendered.items() if k != "run_monitoring"} == {
        k: v for k, v in original.items() if k != "run_monitoring"
    }


def test_dagster_accepts_the_production_instance_config() -> None:
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors or []]


def test_embedded_instance_is_the_deploy_instance_but_for_sqlite_storage(tmp_path: Path) -> None:
    """make run and the tests run deploy/dagster.yaml; only the storage differs, because
    the embedded stack has no PostgreSQL unless one is given."""
    embedded = yaml.safe_load(write_instance(tmp_path).read_text())
    original = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert embedded["storage"] == {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    assert {k: v for k, v in embedded.items() if k != "storage"} == {
        k: v for k, v in original.items() if k != "storage"
    }


def test_embedded_instance_on_postgres_is_the_deploy_instance(tmp_path: Path) -> None:
    embedded = yaml.safe_load(write_instance(tmp_path, PostgresStorage("db")).read_text())
    assert embedded == yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


def test_the_embedded_stack_fills_every_env_reference(tmp_path: Path) -> None:
    for postgres in (None, PostgresStorage("db")):
        embedded = yaml.safe_load(write_instance(tmp_path, postgres).read_text())
        stack = Stack(tmp_path, postgres=postgres, dagster_port=1, api_port=2)
        assert env_references(embedded) <= set(stack.environment())


def test_no_instance_opens_the_first_visit_dialog(tmp_path: Path) -> None:
    for config in (
        yaml.safe_load((DEPLOY / "dagster.yaml").read_text()),
        yaml.safe_load(write_instance(tmp_path).read_text()),
    ):
        assert config["nux"] == {"enabled": False}
        assert config["telemetry"] == {"enabled": False}


def test_dagster_accepts_the_embedded_instance_config(tmp_path: Path) -> None:
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    config = yaml.safe_load(write_instance(tmp_path).read_text())
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors or []]
