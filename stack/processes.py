"""Child processes of the stack, each in its own process group, stopped cleanly."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from stack.instance import (
    Broker,
    Launcher,
    PostgresStorage,
    instance_environment,
    write_instance,
    write_workspace,
)

BIN = Path(sys.executable).parent
# The broker and the warm run worker, as the embedded stack and the production topology
# (stack/production.py, docker-compose.yml) start them. `{host}`, `{port}`, `{name}`:
# address, port, worker name (Celery adds @hostname). Redis keeps nothing on disk: a run
# waiting in it when it stops is failed by run monitoring, never silently resumed.
REDIS_COMMAND = ("redis-server", "--bind", "{host}", "--port", "{port}", "--save", "",
                 "--appendonly", "no")  # fmt: skip
WORKER_COMMAND = ("celery", "-A", "workers.app", "worker", "--hostname", "{name}@%h",
                  "--queues", "dagster", "--without-gossip", "--without-mingle",
                  "--loglevel", "INFO")  # fmt: skip


def executable(name: str) -> str:
    """This venv's console script `name`, else the one on PATH (redis-server)."""
    own = BIN / name
    if own.exists():
        return str(own)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found; install it (Debian: apt install redis-server) "
            "or set CONSTELLATION_RUN_LAUNCHER=default"
        )
    return found


def formatted(command: tuple[str, ...], **values: object) -> list[str]:
    argv = [part.format(**values) for part in command]
    argv[0] = executable(argv[0])
    return argv


def celery_worker_name(name: str) -> str:
    """The Celery node name `{name}@%h` becomes on this machine (what a ping addresses)."""
    return f"{name}@{socket.gethostname()}"


def worker_answers(broker_url: str, name: str) -> Callable[[], bool]:
    """Whether the Celery worker `name` answers a ping through the broker."""

    def check() -> bool:
        from celery import Celery

        from workers.launcher import worker_alive

        app = Celery(broker=broker_url)
        try:
            return worker_alive(app, celery_worker_name(name), timeout=1.0)
        except OSError:
            return False
        finally:
            app.close()

    return check


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the one helper for it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored inside the block (main thread only; elsewhere a no-op).

    A signal sent to a process group reaches the launcher more than once (`make`
    relays it, the terminal sends it too); the second must not interrupt a stop
    half-way and leave services running.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _prepare_child() -> None:
    # A process started from a non-interactive shell in the background inherits
    # SIGINT/SIGTERM ignored; dagster then never stops. Reset both first.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform == "linux":  # and stop with the launcher, even if it is killed
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Service:
    """One long-running child process with a log file and a readiness check."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_prepare_child,
        )
        log.close()

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
            if ready():
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f} s; see {self.log_path}")

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left."""
        if self.process is None or self.process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError):  # children left in the group
            os.killpg(self.process.pid, signal.SIGKILL)


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def database_url_for(postgres: PostgresStorage | None, workdir: Path) -> str:
    """CONSTELLATION_DATABASE_URL of a stack: its PostgreSQL server (the `constellation`
    schema of Dagster's database), else a SQLite file in its work folder."""
    if postgres is None:
        return f"sqlite:///{workdir / 'constellation.db'}"
    from sqlalchemy.engine import URL

    return URL.create(
        "postgresql+psycopg2",
        username=postgres.username,
        password=postgres.password or None,
        host=postgres.hostname,
        port=postgres.port,
        database=postgres.db_name,
    ).render_as_string(hide_password=False)


def create_storage(env: dict[str, str], logs: Path) -> None:
    """Create (or migrate) Dagster's storage once, before the services start: left to
    them, webserver, daemon and code server race to create the same SQLite schema."""
    with (logs / "instance-migrate.log").open("ab") as log:
        subprocess.run(
            [str(BIN / "dagster"), "instance", "migrate"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=True,
            timeout=300,
        )


class ServiceGroup:
    """Services started together and stopped together, in reverse order."""

    services: dict[str, Service]

    def lay_out(
        self, workdir: Path, data_root: Path | None, artifact_root: Path | None = None
    ) -> None:
        """The folders under one work folder: Dagster's home, artifacts, data, logs."""
        self.workdir = workdir.resolve()
        self.home = self.workdir / "dagster_home"
        self.artifact_root = (artifact_root or self.workdir / "artifacts").resolve()
        self.data_root = (data_root or self.workdir / "data").resolve()
        self.logs = self.workdir / "logs"

    def start(self) -> Self:
        raise NotImplementedError

    def wait_ready(self, name: str) -> None:
        raise NotImplementedError

    def restart(self, name: str) -> None:
        """Stop one service and start it again on the same port."""
        self.services[name].stop()
        self.services[name].start()
        self.wait_ready(name)

    def stop(self) -> None:
        """Stop every service, last started first. Safe to call again; SIGINT and
        SIGTERM are ignored meanwhile, so a repeated signal cannot cut it short."""
        with stop_signals_ignored():
            for service in reversed(list(self.services.values())):
                service.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Stack(ServiceGroup):
    """Dagster webserver + daemon + the API, on loopback, under one work folder; with the
    warm launcher (the default) also Redis and one Celery run worker."""

    def __init__(
        self,
        workdir: Path,
        *,
        postgres: PostgresStorage | None = None,
        dagster_port: int | None = None,
        api_port: int | None = None,
        api_keys: list[str] | None = None,
        data_root: Path | None = None,
        artifact_root: Path | None = None,
        env: dict[str, str] | None = None,
        max_concurrent_runs: int = 10,
        launcher: Launcher = Launcher.WARM,
        worker_concurrency: int | None = None,
    ):
        self.lay_out(workdir, data_root, artifact_root)
        self.launcher = launcher
        self.worker_concurrency = worker_concurrency
        self.broker_port = free_port()
        self.postgres = postgres
        self.dagster_port = dagster_port or free_port()
        self.api_port = api_port or free_port()
        self.api_keys = api_keys or []
        self.extra_env = env or {}
        self.max_concurrent_runs = max_concurrent_runs
        self.services: dict[str, Service] = {}

    @property
    def dagster_url(self) -> str:
        return f"http://127.0.0.1:{self.dagster_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def storage_dir(self) -> Path:
        """Dagster's step outputs and compute logs (DAGSTER_STORAGE_DIR), beside SQLite."""
        return self.home / "storage"

    @property
    def broker(self) -> Broker | None:
        if self.launcher is Launcher.DEFAULT:
            return None
        return Broker.redis("127.0.0.1", self.broker_port)

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "DAGSTER_HOME": str(self.home),
            **instance_environment(
                self.postgres, self.max_concurrent_runs, self.storage_dir, self.broker
            ),
            "CONSTELLATION_ARTIFACT_ROOT": str(self.artifact_root),
            "CONSTELLATION_DATA_ROOT": str(self.data_root),
            "CONSTELLATION_DAGSTER_URL": self.dagster_url,
            "CONSTELLATION_DATABASE_URL": database_url_for(self.postgres, self.workdir),
            "CONSTELLATION_API_KEYS": ",".join(self.api_keys),
            "CONSTELLATION_ALLOW_OPEN_ACCESS": "false" if self.api_keys else "true",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(self.extra_env)
        return env

    def start(self) -> Stack:
        for folder in (self.home, self.artifact_root, self.data_root, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        write_instance(self.home, self.postgres, self.launcher)
        workspace = str(write_workspace(self.home))
        env = self.environment()
        create_storage(env, self.logs)
        self.services = self.run_services(env)
        self.services |= {
            "webserver": Service(
                "webserver",
                [
                    str(BIN / "dagster-webserver"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.dagster_port),
                    "-w",
                    workspace,
                ],
                env,
                self.logs,
            ),
            "daemon": Service(
                "daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], env, self.logs
            ),
            "api": Service("api", self.api_argv(), env, self.logs),
        }
        try:
            for service in self.services.values():
                service.start()
            self.services["webserver"].wait_until(
                http_ok(f"{self.dagster_url}/server_info"), timeout=120
            )
            if "worker" in self.services:
                self.wait_ready("worker")
            self.wait_api_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def run_services(self, env: dict[str, str]) -> dict[str, Service]:
        """Redis and the warm worker (started first, stopped last), unless DEFAULT."""
        if self.broker is None:
            return {}
        worker = formatted(WORKER_COMMAND, name="worker")
        if self.worker_concurrency:
            worker += ["--concurrency", str(self.worker_concurrency)]
        redis = formatted(REDIS_COMMAND, host="127.0.0.1", port=self.broker_port)
        return {
            "redis": Service("redis", redis, env, self.logs),
            "worker": Service("worker", worker, env, self.logs),
        }

    def api_argv(self) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(self.api_port), "--no-access-log",
        ]  # fmt: skip

    def wait_api_ready(self, timeout: float = 120) -> None:
        self.services["api"].wait_until(http_ok(f"{self.api_url}/healthz"), timeout)
        headers = {"Authorization": f"Bearer {self.api_keys[0]}"} if self.api_keys else {}

        def ready() -> bool:
            try:
                return httpx.get(f"{self.api_url}/readyz", headers=headers, timeout=5).is_success
            except httpx.HTTPError:
                return False

        self.services["api"].wait_until(ready, timeout)

    def wait_ready(self, name: str) -> None:
        if name == "api":
            self.wait_api_ready()
        elif name == "webserver":
            self.services[name].wait_until(http_ok(f"{self.dagster_url}/server_info"), 120)
        elif name == "worker" and self.broker is not None:
            self.services[name].wait_until(worker_answers(self.broker.url, "worker"), 120)
