"""The production topology of docker-compose.yml, started natively on loopback.

`SERVICES` is the one description of that topology: each service's command and
the environment variables it reads. docker-compose.yml must agree with it
(tests/unit/stack/test_compose_matches_topology.py), and `ProductionStack` starts the
same commands as local processes: Redis (the Celery broker), the user-code gRPC
server, the webserver and the daemon (both reading deploy/dagster.yaml and
deploy/workspace.yaml as they are), warm run workers (`celery -A workers.app worker`,
as many as asked, each with folders of its own, as if on its own machine), and the
API. PostgreSQL and the model server are given, not started.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator.samples import SAMPLE_NOTEBOOKS, SAMPLE_PLUGINS
from stack.instance import Broker, PostgresStorage, instance_environment, render_home
from stack.processes import (
    REDIS_COMMAND,
    WORKER_COMMAND,
    Service,
    ServiceGroup,
    database_url_for,
    executable,
    free_port,
    http_ok,
    worker_answers,
)

LOOPBACK = "127.0.0.1"

# Environment variables each kind of process reads (docker-compose.yml sets exactly these).
DAGSTER_HOME_ENV = ("DAGSTER_HOME",)
INSTANCE_ENV = (  # the `env:` references of deploy/dagster.yaml
    "DAGSTER_POSTGRES_USER",
    "DAGSTER_POSTGRES_PASSWORD",
    "DAGSTER_POSTGRES_HOST",
    "DAGSTER_POSTGRES_PORT",
    "DAGSTER_POSTGRES_DB",
    "DAGSTER_MAX_CONCURRENT_RUNS",
    "DAGSTER_STORAGE_DIR",
    "DAGSTER_CELERY_BROKER_URL",
    "DAGSTER_CELERY_BACKEND_URL",
)
WORKSPACE_ENV = ("DAGSTER_CODE_SERVER_HOST", "DAGSTER_CODE_SERVER_PORT")  # deploy/workspace.yaml
# The artifact store (an S3 prefix) and where S3 is: the run worker writes it, the API reads it;
# each keeps its own cache folder, so the two share no folder at all.
STORE_ENV = (
    "CONSTELLATION_ARTIFACT_STORE",
    "CONSTELLATION_ARTIFACT_CACHE",
    "CONSTELLATION_S3_ENDPOINT_URL",
    "CONSTELLATION_S3_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)
# Plug-in operations and notebooks: where the runs execute them and the API validates them.
EXTENSION_ENV = ("CONSTELLATION_PLUGINS_DIR", "CONSTELLATION_NOTEBOOKS_DIR")
# Saved pipelines, schedules and Idempotency-Keys: the API writes, the sensor reads.
DATABASE_ENV = ("CONSTELLATION_DATABASE_URL",)
PIPELINE_ENV = (  # what the operations read (orchestrator/settings.py, orchestrator/resources/)
    *STORE_ENV,
    "CONSTELLATION_DATA_ROOT",
    "CONSTELLATION_MODEL_SERVER_URL",
    "CONSTELLATION_GOOGLE_CREDENTIALS_FILE",
    "CONSTELLATION_CACHE",
    *EXTENSION_ENV,
)
API_ENV = (
    "CONSTELLATION_DAGSTER_URL",
    "CONSTELLATION_API_KEYS",
    *STORE_ENV,
    *DATABASE_ENV,
    *EXTENSION_ENV,
    "DAGSTER_CELERY_BROKER_URL",  # /metrics pings the warm run workers
)
# Names this module owns: they reach a process only when its service declares them.
OWNED_PREFIXES = ("DAGSTER_", "CONSTELLATION_", "AWS_", "MLSERVER_", "POSTGRES_")


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the topology: its command and the environment variables it reads.

    `command` may hold `{host}` (address to bind), `{port}` (its port),
    `{workspace}` (path of workspace.yaml) and `{name}` (a worker's name, by default
    the service's); empty means the image's own command.
    `native` is False for services given from outside natively (PostgreSQL, MLServer).
    """

    name: str
    command: tuple[str, ...]
    env: tuple[str, ...]
    port: int
    native: bool = True

    def argv(self, *, host: str, port: int, workspace: str = "", name: str = "") -> list[str]:
        values = {"host": host, "port": port, "workspace": workspace, "name": name or self.name}
        return [part.format(**values) for part in self.command]


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("postgres", (), ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"), 5432,
                    native=False),
        ServiceSpec("redis", REDIS_COMMAND, (), 6379),
        ServiceSpec(
            "user-code",
            ("dagster", "api", "grpc", "-h", "{host}", "-p", "{port}",
             "-m", "orchestrator.definitions"),
            DAGSTER_HOME_ENV + INSTANCE_ENV + PIPELINE_ENV + DATABASE_ENV,
            4000,
        ),
        ServiceSpec(
            "webserver",
            ("dagster-webserver", "-h", "{host}", "-p", "{port}", "-w", "{workspace}"),
            DAGSTER_HOME_ENV + INSTANCE_ENV + WORKSPACE_ENV,
            3000,
        ),
        ServiceSpec(
            "daemon",
            ("dagster-daemon", "run", "-w", "{workspace}"),
            DAGSTER_HOME_ENV + INSTANCE_ENV + WORKSPACE_ENV,
            0,
        ),
        ServiceSpec("worker", WORKER_COMMAND, DAGSTER_HOME_ENV + INSTANCE_ENV + PIPELINE_ENV, 0),
        ServiceSpec(
            "api",
            ("uvicorn", "api.main:create_app", "--factory", "--host", "{host}", "--port",
             "{port}"),
            API_ENV,
            8000,
        ),
        ServiceSpec(
            "model-server",
            ("mlserver", "start", "/mnt/models"),
            ("MLSERVER_HOST", "MLSERVER_HTTP_PORT", "MLSERVER_GRPC_PORT",
             "MLSERVER_LOAD_MODELS_AT_STARTUP", "MLSERVER_PARALLEL_WORKERS"),
            8080,
            native=False,
        ),
    )
}  # fmt: skip


def grpc_serving(host: str, port: int) -> bool:
    """The gRPC health check `dagster api grpc-health-check` makes."""
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def redis_answers(host: str, port: int) -> bool:
    """What compose's `redis-cli ping` healthcheck checks."""
    import redis

    try:
        return bool(redis.Redis(host=host, port=port, socket_timeout=2).ping())
    except redis.RedisError:
        return False


def http_ok_with(url: str, headers: Mapping[str, str]) -> Callable[[], bool]:
    """Like processes.http_ok, with headers (the API's /readyz needs a key)."""

    def check() -> bool:
        try:
            return httpx.get(url, headers=dict(headers), timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    return check


@dataclass(frozen=True)
class S3Artifacts:
    """The S3 prefix artifacts live under (`s3://bucket/artifacts`) and how to reach it."""

    uri: str
    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def values(self) -> dict[str, str]:
        return {
            "CONSTELLATION_ARTIFACT_STORE": self.uri,
            "CONSTELLATION_S3_ENDPOINT_URL": self.endpoint_url,
            "CONSTELLATION_S3_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


DAEMON_HEALTH = """
{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }
"""


class ProductionStack(ServiceGroup):
    """Redis + user-code gRPC server + webserver + daemon + `workers` run workers + API,
    on PostgreSQL, on loopback.

    Artifacts are in `artifacts` (an S3 prefix), as in compose: the API and each run
    worker get their own cache folder and no artifact folder in common. Each worker
    (`worker-1`, `worker-2`, ...) also has its own DAGSTER_HOME and Dagster storage
    folder, so the workers share no folder with each other or with the webserver.
    """

    def __init__(
        self,
        workdir: Path,
        postgres: PostgresStorage,
        *,
        artifacts: S3Artifacts,
        api_keys: list[str],
        data_root: Path | None = None,
        max_concurrent_runs: int = 4,
        instance_overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        workers: int = 2,
    ):
        self.lay_out(workdir, data_root)
        self.worker_names = [f"worker-{index}" for index in range(1, workers + 1)]
        self.postgres = postgres
        self.artifacts = artifacts
        self.storage = self.workdir / "dagster-storage"  # compute logs: webserver + worker
        self.caches = {
            "user-code": self.workdir / "code-server-cache",
            "api": self.workdir / "api-cache",
            **{name: self.workdir / name / "cache" for name in self.worker_names},
        }
        self.api_keys = api_keys
        self.max_concurrent_runs = max_concurrent_runs
        self.instance_overrides = instance_overrides
        self.extra_env = dict(env or {})
        self.ports = {
            "redis": free_port(),
            "user-code": free_port(),
            "webserver": free_port(),
            "api": free_port(),
        }
        self.services: dict[str, Service] = {}

    @property
    def dagster_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['webserver']}"

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.ports['api']}"

    @property
    def broker(self) -> Broker:
        return Broker.redis(LOOPBACK, self.ports["redis"])

    def values(self) -> dict[str, str]:
        """The value of every variable of the topology, for loopback."""
        return {
            "DAGSTER_HOME": str(self.home),
            **instance_environment(
                self.postgres, self.max_concurrent_runs, self.storage, self.broker
            ),
            "DAGSTER_CODE_SERVER_HOST": LOOPBACK,
            "DAGSTER_CODE_SERVER_PORT": str(self.ports["user-code"]),
            **self.artifacts.values(),
            "CONSTELLATION_DATA_ROOT": str(self.data_root),
            "CONSTELLATION_DAGSTER_URL": self.dagster_url,
            "CONSTELLATION_DATABASE_URL": database_url_for(self.postgres, self.workdir),
            "CONSTELLATION_API_KEYS": ",".join(self.api_keys),
            "CONSTELLATION_PLUGINS_DIR": str(SAMPLE_PLUGINS),
            "CONSTELLATION_NOTEBOOKS_DIR": str(SAMPLE_NOTEBOOKS),
            **self.extra_env,
        }

    def environment(self, spec: ServiceSpec, name: str = "") -> dict[str, str]:
        """The process environment minus the topology's names, plus those `spec` declares.

        So a variable missing from SERVICES (and thus from docker-compose.yml)
        is missing here too, and the tests notice. `name` is a worker's own name.
        """
        name = name or spec.name
        values = self.values()
        if name in self.caches:
            values["CONSTELLATION_ARTIFACT_CACHE"] = str(self.caches[name])
        if name in self.worker_names:
            values["DAGSTER_HOME"] = str(self.workdir / name / "dagster_home")
            values["DAGSTER_STORAGE_DIR"] = str(self.workdir / name / "dagster-storage")
        base = {k: v for k, v in os.environ.items() if not k.startswith(OWNED_PREFIXES)}
        declared = {name: values[name] for name in spec.env if name in values}
        return base | declared | {"PYTHONUNBUFFERED": "1"}

    def service(self, name: str, workspace: Path) -> Service:
        spec = SERVICES["worker" if name in self.worker_names else name]
        argv = spec.argv(
            host=LOOPBACK, port=self.ports.get(name, 0), workspace=str(workspace), name=name
        )
        argv[0] = executable(argv[0])  # the console script of this venv, or redis-server
        return Service(name, argv, self.environment(spec, name), self.logs)

    def start(self) -> ProductionStack:
        """Start in compose's order, each once the ones it depends on are healthy."""
        for folder in (self.storage, self.data_root, self.logs, *self.caches.values()):
            folder.mkdir(parents=True, exist_ok=True)
        _, workspace = render_home(self.home, self.instance_overrides)
        for name in self.worker_names:  # the same files, in the worker's own folder
            render_home(self.workdir / name / "dagster_home", self.instance_overrides)
        names = [n for n, spec in SERVICES.items() if spec.native and n != "worker"]
        names[names.index("api") : names.index("api")] = self.worker_names
        self.services = {name: self.service(name, workspace) for name in names}
        later = ["webserver", "daemon", *self.worker_names, "api"]
        try:
            for name in ("redis", "user-code"):
                self.services[name].start()
                self.wait_ready(name)
            for name in later:
                self.services[name].start()
            for name in later:
                self.wait_ready(name)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, name: str, timeout: float = 180) -> None:
        """What each compose healthcheck checks."""
        service = self.services[name]
        if name == "redis":
            service.wait_until(lambda: redis_answers(LOOPBACK, self.ports[name]), timeout)
        elif name in self.worker_names:
            service.wait_until(worker_answers(self.broker.url, name), timeout)
        elif name == "user-code":
            service.wait_until(lambda: grpc_serving(LOOPBACK, self.ports[name]), timeout)
        elif name == "webserver":
            service.wait_until(http_ok(f"{self.dagster_url}/server_info"), timeout)
        elif name == "daemon":
            service.wait_until(self.daemon_healthy, timeout)
        elif name == "api":
            service.wait_until(http_ok(f"{self.api_url}/healthz"), timeout)
            headers = {"Authorization": f"Bearer {self.api_keys[0]}"}
            service.wait_until(http_ok_with(f"{self.api_url}/readyz", headers), timeout)

    def daemon_healthy(self) -> bool:
        """The daemons that launch and watch runs have sent a heartbeat."""
        try:
            response = httpx.post(
                f"{self.dagster_url}/graphql", json={"query": DAEMON_HEALTH}, timeout=5
            )
        except httpx.HTTPError:
            return False
        statuses = response.json()["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]
        healthy = {s["daemonType"] for s in statuses if s["healthy"]}
        return {"QUEUED_RUN_COORDINATOR", "MONITORING"} <= healthy
