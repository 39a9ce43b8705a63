"""The installed `constellation` command against a real stack, as a person (or a script) uses it.

Output is captured, so stdout is not a terminal: progress must come as plain lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack import Service, Stack, free_port
from stack.processes import BIN, http_ok
from testkit.dagster_stack import API_KEY, ApiClient, make_images, slow_resize

pytestmark = pytest.mark.integration

CONSTELLATION = BIN / "constellation"
ANSI_ESCAPE = "\x1b["


def constellation(
    api_url: str, *args: str, key: str = API_KEY, stdin: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONSTELLATION_API_URL": api_url, "CONSTELLATION_API_KEY": key}
    return subprocess.run(
        [str(CONSTELLATION), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def images_pipeline(folder: str) -> dict:
    resize = {
        "operation": "resize_image",
        "parameters": {
            "width": 32,
            "height": 24,
            "data": {"operation": "import_from_local", "parameters": {"path": folder}},
        },
    }
    return {
        "instructions": [
            {"operation": "batch_formatted_data", "parameters": {"batch_size": 2, "data": resize}},
            {"operation": "dict_to_list", "parameters": {"data": resize}},
        ]
    }


@pytest.fixture
def images(stack: Stack) -> str:
    make_images(stack.data_root / "cli-three", 3, size=(64, 48))
    return "cli-three"


def test_the_command_is_installed_with_the_package() -> None:
    assert CONSTELLATION.exists(), "run `pip install -e .` (make install) first"
    done = subprocess.run([str(CONSTELLATION), "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    for command in ("validate", "run", "status", "results", "cancel", "operations", "runs"):
        assert command in done.stdout


def test_operations_lists_the_catalog(stack: Stack) -> None:
    from orchestrator.operations import CATALOG

    done = constellation(stack.api_url, "operations")
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()[1:]]
    assert names == CATALOG.names
    assert "resize_image  (data, width, height" in done.stdout

    as_json = constellation(stack.api_url, "operations", "--json")
    assert [op["name"] for op in json.loads(as_json.stdout)["operations"]] == CATALOG.names


def test_validate_accepts_yaml_and_shows_the_plan(stack: Stack, tmp_path: Path) -> None:
    import yaml

    file = tmp_path / "pipeline.yaml"
    file.write_text(yaml.safe_dump(images_pipeline("anything")))

    done = constellation(stack.api_url, "validate", str(file))

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "valid: 2 top-level instruction(s)",
        "  instructions[0]  batch_formatted_data",
        "    instructions[0].parameters.data  resize_image",
        "      instructions[0].parameters.data.parameters.data  import_from_local",
        "  instructions[1]  dict_to_list",
        "    instructions[1].parameters.data  resize_image",
        "      instructions[1].parameters.data.parameters.data  import_from_local",
    ]


def test_validate_lists_every_problem_with_its_path_and_exits_1(stack: Stack) -> None:
    document = {
        "instructions": [
            {"operation": "dict_to_lst", "parameters": {}},
            {"operation": "resize_image", "parameters": {"width": "wide", "data": 3}},
        ]
    }

    done = constellation(stack.api_url, "validate", "-", stdin=json.dumps(document))

    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == "error: 422 Unprocessable Entity: the instructions have 3 problems"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "instructions[0].operation",
        "instructions[1].parameters.data",
        "instructions[1].parameters.width",
    ]
    assert "did you mean 'dict_to_list'?" in lines[1]
    assert "Traceback" not in done.stderr


def test_run_wait_shows_plain_progress_then_status_and_results(
    stack: Stack, api: ApiClient, images: str, tmp_path: Path
) -> None:
    file = tmp_path / "pipeline.json"
    file.write_text(json.dumps(images_pipeline(images)))

    done = constellation(stack.api_url, "run", str(file), "--wait", "--interval", "0.2")

    assert done.returncode == 0, done.stdout + done.stderr
    run_id = done.stderr.split("started run ")[1].split()[0]
    lines = done.stdout.splitlines()
    assert ANSI_ESCAPE not in done.stdout, "not a terminal: no colours, no cursor moves"
    assert all(line.startswith("[") and "s] " in line for line in lines), lines
    assert lines[-1].endswith(f"run {run_id} SUCCESS")
    finished = [line.split("] ", 1)[1] for line in lines if "  succeeded" in line]
    assert {line.split("  ")[1] for line in finished} == {
        "import_from_local",
        "resize_image",
        "batch_formatted_data",
        "dict_to_list",
    }
    assert any(
        line.startswith("instructions[0]  batch_formatted_data  succeeded")
        and line.endswith("batches count=2")
        for line in finished
    )

    status = constellation(stack.api_url, "status", run_id)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[0].startswith(f"run {run_id}  SUCCESS")
    assert "    instructions[0].parameters.data  resize_image  succeeded" in status.stdout

    results = constellation(stack.api_url, "results", run_id)
    assert results.returncode == 0, results.stderr
    assert json.loads(results.stdout) == api.http.get(f"/runs/{run_id}/results").json()


def test_run_without_wait_prints_the_run_id_only(stack: Stack, api: ApiClient, images: str) -> None:
    document = json.dumps({"instructions": [{"operation": "import_from_local",
                                             "parameters": {"path": images}}]})  # fmt: skip
    done = constellation(stack.api_url, "run", "-", stdin=document)

    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    assert api.wait(run_id)["status"] == "SUCCESS"


def test_a_failed_run_exits_1_with_the_first_error(stack: Stack, images: str) -> None:
    document = {
        "instructions": [
            {"operation": "import_from_local", "parameters": {"path": "no-such-folder"}},
            {"operation": "import_from_local", "parameters": {"path": images}},
        ]
    }
    done = constellation(stack.api_url, "run", "-", "--wait", stdin=json.dumps(document))

    assert done.returncode == 1
    assert "instructions[1]  import_from_local  skipped" in done.stdout
    assert done.stdout.splitlines()[-1] == (
        "error: instructions[0] (import_from_local): path 'no-such-folder' does not exist "
        "under the data root"
    )


def test_cancel_stops_a_followed_run_which_exits_3(
    stack: Stack, api: ApiClient, tmp_path: Path
) -> None:
    make_images(stack.data_root / "cli-big", 20, size=(1920, 1080))
    step = slow_resize("cli-big")
    env = {**os.environ, "CONSTELLATION_API_URL": stack.api_url, "CONSTELLATION_API_KEY": API_KEY}
    file = tmp_path / "long.json"
    file.write_text(json.dumps({"instructions": [step] * 30}))
    follower = subprocess.Popen(
        [str(CONSTELLATION), "run", str(file), "--wait", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert follower.stderr is not None
        run_id = follower.stderr.readline().split("started run ")[1].strip()
        deadline = time.monotonic() + 90
        while api.run(run_id)["instructions"][0]["status"] != "succeeded":
            assert time.monotonic() < deadline, "the first instruction never finished"
            time.sleep(0.2)

        cancel = constellation(stack.api_url, "cancel", run_id)
        assert cancel.returncode == 0, cancel.stderr
        assert cancel.stdout.strip() in {f"run {run_id} CANCELING", f"run {run_id} CANCELED"}

        stdout, _ = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 3, stdout
    assert f"run {run_id} CANCELED" in stdout
    assert "  canceled" in stdout, "the instructions that never ran are shown as canceled"

    again = constellation(stack.api_url, "cancel", run_id)
    assert again.returncode == 4
    assert again.stderr.startswith("error: 409 Conflict: ")


def test_api_errors_are_messages_with_exit_codes_never_tracebacks(
    stack: Stack, tmp_path: Path
) -> None:
    wrong_key = constellation(stack.api_url, "operations", key="x" * len(API_KEY))
    unknown_run = constellation(stack.api_url, "status", "no-such-run")
    nobody_there = constellation(f"http://127.0.0.1:{free_port()}", "operations")
    missing_file = constellation(stack.api_url, "validate", str(tmp_path / "missing.json"))
    not_a_document = constellation(stack.api_url, "validate", "-", stdin="{not: [json")
    bad_option = constellation(stack.api_url, "run", "--no-such-option", "x.json")

    assert (wrong_key.returncode, wrong_key.stderr) == (
        4,
        "error: 401 Unauthorized: invalid API key (pass --api-key or set CONSTELLATION_API_KEY)\n",
    )
    assert unknown_run.returncode == 4
    assert unknown_run.stderr.startswith("error: 404 Not Found: no run with id 'no-such-run'")
    assert nobody_there.returncode == 5
    assert "cannot reach the API at http://127.0.0.1:" in nobody_there.stderr
    assert missing_file.returncode == 2
    assert missing_file.stderr.startswith(f"error: cannot read {tmp_path / 'missing.json'}")
    assert not_a_document.returncode == 2
    assert not_a_document.stderr.startswith("error: standard input is neither JSON nor YAML")
    assert bad_option.returncode == 2
    assert "No such option '--no-such-option'" in bad_option.stderr
    for done in (wrong_key, unknown_run, nobody_there, missing_file, not_a_document, bad_option):
        assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def api_without_dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The API alone, pointed at a Dagster that is not there."""
    port = free_port()
    env = {
        **os.environ,
        "CONSTELLATION_DAGSTER_URL": f"http://127.0.0.1:{free_port()}",
        "CONSTELLATION_API_KEYS": API_KEY,
    }
    argv = [sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    service = Service("api-alone", argv, env, tmp_path_factory.mktemp("api-alone"))
    service.start()
    try:
        service.wait_until(http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=120)
        yield f"http://127.0.0.1:{port}"
    finally:
        service.stop()


def test_dagster_down_is_a_clear_503_and_exit_5(api_without_dagster: str) -> None:
    document = {"instructions": [{"operation": "import_from_local", "parameters": {"path": "x"}}]}

    done = constellation(api_without_dagster, "run", "-", stdin=json.dumps(document))

    assert done.returncode == 5
    assert done.stderr.startswith("error: 503 Service Unavailable: ")
    assert "Traceback" not in done.stderr
