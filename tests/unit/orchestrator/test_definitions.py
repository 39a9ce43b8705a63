"""The Dagster code location loads, and its job runs in process."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from pydantic import ValidationError

from orchestrator.catalog.validation import Limits
from orchestrator.definitions import defs, secrets
from orchestrator.jobs import EXAMPLE_INSTRUCTIONS
from orchestrator.resources import (
    ArtifactStoreResource,
    DataRootResource,
    GoogleDriveResource,
    ModelServerResource,
    S3Resource,
    services_from_resources,
)
from orchestrator.settings import OrchestratorSettings
from testkit.dagster_stack import make_images


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("build_execute_job")
    assert [node.name for node in job.nodes_in_topological_order] == [
        "generate_dynamic_job_configs",
        "parse_and_execute_job",
    ]


def test_the_launchpad_default_config_is_a_working_example(tmp_path: Path) -> None:
    make_images(tmp_path / "data" / "examples", 3)
    job = defs.resolve_job_def("build_execute_job")
    result = job.execute_in_process(
        resources={
            "artifact_store": ArtifactStoreResource(root=str(tmp_path / "artifacts")),
            "data_root": DataRootResource(root=str(tmp_path / "data")),
        }
    )
    assert result.success
    (outcome,) = result.output_for_node("parse_and_execute_job")["results"]
    assert outcome["status"] == "succeeded"
    assert outcome["output"]["batch_sizes"] == [2, 1]
    assert EXAMPLE_INSTRUCTIONS["instructions"][0]["operation"] == "batch_formatted_data"


def test_a_bad_launchpad_config_fails_with_the_json_path_problems(tmp_path: Path) -> None:
    job = defs.resolve_job_def("build_execute_job")
    config = {
        "ops": {
            "generate_dynamic_job_configs": {
                "config": {"raw_input": [{"operation": "dict_to_lst"}]}
            }
        }
    }
    with pytest.raises(dg.Failure) as caught:
        job.execute_in_process(run_config=config)
    assert "instructions[0].operation: unknown operation 'dict_to_lst'" in str(
        caught.value.description
    )


# Every variable the README documents for the orchestrator, with a value and the field it sets.
DOCUMENTED = {
    "CONSTELLATION_ARTIFACT_ROOT": ("artifact_store", "root", "/srv/artifacts"),
    "CONSTELLATION_DATA_ROOT": ("data_root", "root", "/srv/data"),
    "CONSTELLATION_S3_ENDPOINT_URL": ("s3", "endpoint_url", "http://minio:9000"),
    "CONSTELLATION_S3_REGION": ("s3", "region", "eu-west-1"),
    "CONSTELLATION_S3_ALLOWED_BUCKETS": ("s3", "allowed_buckets", "team-*"),
    "CONSTELLATION_S3_MULTIPART_THRESHOLD_BYTES": ("s3", "multipart_threshold_bytes", 2**23),
    "CONSTELLATION_S3_MULTIPART_CHUNK_BYTES": ("s3", "multipart_chunk_bytes", 2**23),
    "CONSTELLATION_TRANSFER_MAX_ATTEMPTS": ("s3", "max_attempts", 7),
    "CONSTELLATION_TRANSFER_BACKOFF_SECONDS": ("google_drive", "backoff_s", 0.25),
    "CONSTELLATION_TRANSFER_CHUNK_BYTES": ("google_drive", "chunk_bytes", 2**20),
    "CONSTELLATION_GOOGLE_CREDENTIALS_FILE": ("google_drive", "credentials_file", "/k.json"),
    "CONSTELLATION_GOOGLE_DRIVE_ENDPOINT": ("google_drive", "endpoint", "http://d/drive/v3/"),
    "CONSTELLATION_MODEL_SERVER_URL": ("model_server", "url", "http://model-server:8080"),
    "CONSTELLATION_MODEL_SERVER_CONNECT_TIMEOUT_S": ("model_server", "connect_timeout_s", 1.5),
    "CONSTELLATION_MODEL_SERVER_READ_TIMEOUT_S": ("model_server", "read_timeout_s", 9.0),
    "CONSTELLATION_MODEL_SERVER_LOAD_TIMEOUT_S": ("model_server", "load_timeout_s", 99.0),
    "CONSTELLATION_MODEL_SERVER_MAX_ATTEMPTS": ("model_server", "max_attempts", 2),
    "CONSTELLATION_MODEL_SERVER_BACKOFF_S": ("model_server", "backoff_s", 0.1),
    "CONSTELLATION_MODEL_SERVER_MAX_BACKOFF_S": ("model_server", "max_backoff_s", 3.0),
    "CONSTELLATION_MODEL_SERVER_BATCH_SIZE": ("model_server", "batch_size", 64),
    "CONSTELLATION_MODEL_SERVER_CONCURRENCY": ("model_server", "concurrency", 2),
}
RESOURCES = {
    "artifact_store": ArtifactStoreResource,
    "data_root": DataRootResource,
    "s3": S3Resource,
    "google_drive": GoogleDriveResource,
    "model_server": ModelServerResource,
}


def test_each_documented_variable_sets_its_resource_field(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    for name, (_, _, value) in DOCUMENTED.items():
        short = name.removeprefix("CONSTELLATION_MODEL_SERVER_")
        assert name in readme or f"`{short}`" in readme, f"{name} is not in the README"
        monkeypatch.setenv(name, str(value))
    made = {key: cls() for key, cls in RESOURCES.items()}
    for name, (key, field, value) in DOCUMENTED.items():
        assert getattr(made[key], field) == value, name
    # Run config (here: a field given) still wins over the environment.
    assert ModelServerResource(batch_size=8).batch_size == 8


def test_a_bad_value_in_the_environment_is_refused_with_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSTELLATION_MODEL_SERVER_BATCH_SIZE", "0")
    with pytest.raises(ValidationError, match="batch_size"):
        ModelServerResource()


def test_run_settings_and_limits_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "CONSTELLATION_WORKERS": "3",
        "CONSTELLATION_MAX_DEPTH": "5",
        "CONSTELLATION_ARCHIVE_MAX_ENTRIES": "10",
    }.items():
        monkeypatch.setenv(name, value)
    settings = OrchestratorSettings()
    assert settings.limits == Limits(max_depth=5, max_nodes=10_000)
    assert settings.archive_limits.max_entries == 10
    services = services_from_resources(settings, model_server=ModelServerResource(url=""))
    assert services.workers == 3 and services.archive_limits == settings.archive_limits
    assert services.s3 is not None and services.s3.max_concurrency == 6
    assert services.model_server is None


def test_secrets_are_bound_with_env_var_only_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    bound = secrets(access_key_id="AWS_ACCESS_KEY_ID", secret_access_key="AWS_SECRET_ACCESS_KEY")
    assert bound == {"access_key_id": dg.EnvVar("AWS_ACCESS_KEY_ID")}
    assert isinstance(bound["access_key_id"], dg.EnvVar)
    assert "AKIAEXAMPLE" not in repr(S3Resource(access_key_id="AKIAEXAMPLE"))
