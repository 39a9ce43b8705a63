"""docs/kubernetes.md, as far as it can be checked without a cluster: every YAML block
parses, the Helm values use only keys of the Dagster chart's schema, they restate
deploy/dagster.yaml, Kubernetes names are valid, and every setting it names exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from api.config import Settings
from orchestrator.resources import (
    ArtifactStoreResource,
    DataRootResource,
    GoogleDriveResource,
    ModelServerResource,
    S3Resource,
)
from orchestrator.settings import OrchestratorSettings

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "kubernetes.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

# Field names of the chart's schema (dagster-io/dagster, helm/dagster/schema/schema/charts:
# dagster/values.py and subschema/, dagster_user_deployments/subschema/user_deployments.py),
# and the run_monitoring keys templates/configmap-instance.yaml renders.
CHART: dict[str, set[str]] = {
    "values": {
        "dagsterWebserver", "dagster-user-deployments", "postgresql",
        "generatePostgresqlPasswordSecret", "generateCeleryConfigSecret", "rabbitmq", "redis",
        "flower", "ingress", "imagePullSecrets", "computeLogManager", "scheduler", "runLauncher",
        "pythonLogs", "dagsterDaemon", "busybox", "migrate", "telemetry", "serviceAccount",
        "global", "retention", "additionalInstanceConfig",
    },
    "global": {
        "postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName",
    },
    "postgresql": {
        "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
        "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service",
    },
    "dagsterWebserver": {
        "replicaCount", "image", "nameOverride", "pathPrefix", "service", "workspace", "env",
        "envConfigMaps", "envSecrets", "deploymentLabels", "labels", "nodeSelector", "affinity",
        "tolerations", "podSecurityContext", "securityContext", "resources", "readinessProbe",
        "livenessProbe", "startupProbe", "annotations", "enableReadOnly", "dbStatementTimeout",
        "dbPoolRecycle", "logLevel", "schedulerName", "volumeMounts", "volumes",
    },
    "dagster-user-deployments": {"enabled", "enableSubchart", "imagePullSecrets", "deployments"},
    "deployment": {
        "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
        "port", "env", "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity",
        "tolerations", "podSecurityContext", "securityContext", "resources", "livenessProbe",
        "readinessProbe", "startupProbe", "labels", "volumeMounts", "volumes", "schedulerName",
    },
    "dagsterDaemon": {
        "schedulerName", "volumeMounts", "volumes", "enabled", "image", "runCoordinator",
        "heartbeatTolerance", "env", "envConfigMaps", "envSecrets", "deploymentLabels", "labels",
        "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext",
        "resources", "livenessProbe", "readinessProbe", "startupProbe", "annotations",
        "runMonitoring", "runRetries", "sensors", "schedules",
    },
    "runCoordinator": {"enabled", "type", "config"},
    "queuedRunCoordinator": {
        "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds",
        "dequeueNumWorkers", "dequeueUseThreads",
    },
    "tagConcurrencyLimit": {"key", "value", "limit"},
    "runMonitoring": {
        "enabled", "startTimeoutSeconds", "cancelTimeoutSeconds", "maxResumeRunAttempts",
        "pollIntervalSeconds", "freeSlotsAfterRunEndSeconds",
    },
    "runLauncher": {"type", "config"},
    "runLauncher.type": {"K8sRunLauncher", "CeleryK8sRunLauncher", "CustomRunLauncher"},
    "customRunLauncher": {"module", "class", "config"},
    "k8sRunLauncher": {
        "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
        "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
        "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
    },
    "image": {"repository", "tag", "pullPolicy"},
}  # fmt: skip


def blocks() -> list[Any]:
    """Every document of every YAML block of the page, in order."""
    return [
        document
        for block in YAML_BLOCK.findall(PAGE.read_text())
        for document in yaml.safe_load_all(block)
    ]


def helm_values() -> dict[str, Any]:
    (values,) = [b for b in blocks() if isinstance(b, dict) and "dagster-user-deployments" in b]
    return values


def run_launchers() -> dict[str, dict[str, Any]]:
    """The page's runLauncher blocks, by type."""
    found = [b["runLauncher"] for b in blocks() if isinstance(b, dict) and "runLauncher" in b]
    return {launcher["type"]: launcher for launcher in found}


def keys_outside(mapping: dict[str, Any], schema: str) -> set[str]:
    return set(mapping) - CHART[schema]


def test_every_yaml_block_parses() -> None:
    assert len(blocks()) >= 11
    resources = [b for b in blocks() if isinstance(b, dict) and "kind" in b]
    assert {r["kind"] for r in resources} >= {
        "Deployment", "Service", "ScaledObject", "ServiceMonitor", "ConfigMap",
        "InferenceService", "HTTPRoute",
    }  # fmt: skip
    for resource in resources:
        assert resource["apiVersion"] and resource["metadata"]["name"], resource
        assert DNS_LABEL.fullmatch(resource["metadata"]["name"]), resource["metadata"]["name"]


def test_the_helm_values_use_only_the_charts_keys() -> None:
    values = helm_values()
    assert keys_outside(values, "values") == set()
    assert keys_outside(values["global"], "global") == set()
    assert keys_outside(values["postgresql"], "postgresql") == set()
    assert keys_outside(values["dagsterWebserver"], "dagsterWebserver") == set()
    users = values["dagster-user-deployments"]
    assert keys_outside(users, "dagster-user-deployments") == set()
    for deployment in users["deployments"]:
        assert keys_outside(deployment, "deployment") == set()
        assert keys_outside(deployment["image"], "image") == set()
    daemon = values["dagsterDaemon"]
    assert keys_outside(daemon, "dagsterDaemon") == set()
    assert keys_outside(daemon["runCoordinator"], "runCoordinator") == set()
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert keys_outside(queued, "queuedRunCoordinator") == set()
    for limit in queued["tagConcurrencyLimits"]:
        assert keys_outside(limit, "tagConcurrencyLimit") == set()
    assert keys_outside(daemon["runMonitoring"], "runMonitoring") == set()
    launchers = run_launchers()
    assert set(launchers) == {"CustomRunLauncher", "K8sRunLauncher"}
    for kind, launcher in launchers.items():
        assert keys_outside(launcher, "runLauncher") == set()
        config_key = kind[0].lower() + kind[1:]
        (section,) = launcher["config"]
        assert section == config_key
        assert keys_outside(launcher["config"][section], section) == set()


def test_the_api_finds_the_code_location_the_chart_names() -> None:
    (deployment,) = helm_values()["dagster-user-deployments"]["deployments"]
    assert deployment["name"] == Settings(allow_open_access=True).dagster_location
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "orchestrator.definitions"]


def test_the_values_restate_the_production_instance() -> None:
    instance = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    daemon = helm_values()["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    coordinator = instance["run_coordinator"]["config"]
    assert queued["dequeueIntervalSeconds"] == coordinator["dequeue_interval_seconds"]
    assert queued["dequeueUseThreads"] == coordinator["dequeue_use_threads"]
    monitoring = instance["run_monitoring"]
    assert daemon["runMonitoring"]["startTimeoutSeconds"] == monitoring["start_timeout_seconds"]
    assert daemon["runMonitoring"]["cancelTimeoutSeconds"] == monitoring["cancel_timeout_seconds"]
    assert daemon["runMonitoring"]["maxResumeRunAttempts"] == monitoring["max_resume_run_attempts"]
    launcher = instance["run_launcher"]
    if launcher["module"] != "workers.launcher":
        pytest.skip(f"deploy/dagster.yaml's run launcher is {launcher['class']}")
    custom = run_launchers()["CustomRunLauncher"]["config"]["customRunLauncher"]
    assert custom == launcher
    assert daemon["runMonitoring"]["pollIntervalSeconds"] == monitoring["poll_interval_seconds"]


def known_settings() -> set[str]:
    """Every CONSTELLATION_* variable the code reads: the API's Settings (by prefix), the
    orchestrator's settings, and each resource field's variable (its description names it)."""
    names = {f"CONSTELLATION_{name.upper()}" for name in Settings.model_fields}
    names |= {f"CONSTELLATION_{name.upper()}" for name in OrchestratorSettings.model_fields}
    resources: list[type[BaseModel]] = [
        ArtifactStoreResource,
        DataRootResource,
        GoogleDriveResource,
        ModelServerResource,
        S3Resource,
    ]
    for resource in resources:
        for field in resource.model_fields.values():
            names |= set(re.findall(r"\$(CONSTELLATION_[A-Z0-9_]+)", field.description or ""))
    compose = (ROOT / "docker-compose.yml").read_text() + (ROOT / ".env.example").read_text()
    return names | set(re.findall(r"CONSTELLATION_[A-Z0-9_]+", compose))


def test_every_setting_the_page_names_exists() -> None:
    named = set(re.findall(r"CONSTELLATION_[A-Z0-9_]+", PAGE.read_text()))
    assert named - known_settings() == set()
