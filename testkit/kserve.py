"""KServe's Python model server on a free loopback port: a V2 server independent of MLServer.

KServe 0.21.0 runs from its own virtual environment (kserve_venv.sh, PyPI only) and serves
the ViT-shaped fire detector (testkit.v2_runtimes.kserve_image) as `vit-fire` and
`EdBianchi--vit-fire-detection`, both ready from the start. Session fixture: `kserve`.

What KServe 0.21.0 implements of the Open Inference Protocol over REST (read from its
source, kserve/protocol/rest/v2_endpoints.py and dataplane.py, and checked by
tests/integration/test_image_models.py):
- health (`/v2/health/live`, `/v2/health/ready`), `GET /v2/models/{name}/ready`, and
  `POST /v2/models/{name}/infer` (JSON, or the binary tensor extension: a request body of
  JSON then raw tensors with `Inference-Header-Content-Length`, inputs marked
  `binary_data_size`; outputs come back binary when the request's parameters say
  `binary_data_output: true`, with the same header on the answer).
- model metadata, `GET /v2/models/{name}`: inputs and outputs as the model's
  `get_input_types()`/`get_output_types()` return them (empty lists unless a model
  overrides them, as this one does); `versions` is null. Versioned routes
  (`/versions/{v}/...`) answer 501 "Model versioning not supported yet".
- server metadata, `GET /v2`: `{"name": "kserve", "version": "0.21.0", "extensions":
  ["model_repository_extension"]}` (the list is hard-coded; no binary extension named).
- repository extension, partly: `POST /v2/repository/models/{name}/load` and `/unload` exist;
  `POST /v2/repository/index` does not (404 Not Found). Unload removes the model from the
  registry (then its metadata and infer answer 404 "Model with name ... does not exist");
  a stock server's load of a model it does not hold fails (503, its repository's load is a
  stub), so the peer's repository re-creates the model; load of a loaded model is a no-op.
- also `GET /v2/models` (a list of names, not in the protocol) and the V1 API (`/v1/...`).
Errors are JSON `{"error": "..."}`: 400 for invalid input, 404 unknown model, 503 not ready.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from stack.processes import free_port
from testkit import peers

FIXTURES = Path(__file__).parent
ROOT = FIXTURES.parent
VENV_SCRIPT = FIXTURES / "kserve_venv.sh"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60


def ensure_venv() -> Path:
    """The KServe virtual environment, created on first use."""
    return peers.ensure_venv(VENV_SCRIPT, "KServe")


@dataclass
class KServe:
    """One KServe model server process; `start()` and `stop()` may be called again."""

    venv: Path
    folder: Path
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.folder / f"kserve-{self.http_port}.log"

    def start(self) -> None:
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        command = [str(self.venv / "bin" / "python"), "-m", "testkit.v2_runtimes.kserve_image"]
        self.process = peers.launch(
            [*command, str(self.http_port)],
            cwd=self.folder,
            env=env,
            log_path=self.log_path,
            url=self.url,
            timeout_s=START_TIMEOUT_S,
            what="KServe",
        )

    def stop(self) -> None:
        peers.stop(self.process)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        return peers.log_tail(self.log_path, lines)


@pytest.fixture(scope="session")
def kserve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KServe]:
    """A running KServe model server shared by the session, its models ready."""
    server = KServe(ensure_venv(), tmp_path_factory.mktemp("kserve"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
