"""The Dagster UI as an operator uses it, in headless Chromium (Debian's, driven by Playwright).

`tests/e2e/install_browser.sh` installs /usr/bin/chromium; no browser is downloaded.
Screenshots land in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from orchestrator.samples import load_samples
from stack import Stack
from stack.__main__ import seed_examples
from testkit.dagster_stack import ApiClient, start_stack

playwright_api = pytest.importorskip("playwright.sync_api")
Page = playwright_api.Page
expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCHPAD = "/locations/__repository__@orchestrator/jobs/build_execute_job/playground"
RUN_URL = re.compile(r"/runs/([0-9a-f-]{36})")
# One timeout for every page action and every expectation: a busy machine makes the UI
# slow, never wrong, so nothing here waits a fixed time or less than the page may take.
PAGE_TIMEOUT_MS = 60_000
RUN_TIMEOUT_MS = 180_000


def launchpad_config(instructions_json: str) -> str:
    """Run config with the instructions pasted under raw_input (JSON is YAML flow style)."""
    pasted = textwrap.indent(instructions_json, " " * 8).lstrip()
    return f"ops:\n  generate_dynamic_job_configs:\n    config:\n      raw_input: {pasted}\n"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One SQLite stack for these tests: the UI does not depend on the storage.

    Stack.start() creates the storage before the services start, and its instance
    (deploy/dagster.yaml) turns Dagster's first-visit community dialog off.
    """
    with ExitStack() as exits:
        yield start_stack(tmp_path_factory.mktemp("ui-stack"), "sqlite", exits)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: run tests/e2e/install_browser.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    expect.set_options(timeout=PAGE_TIMEOUT_MS)  # Playwright's default is 5 s
    with playwright_api.sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Page]:
    """A fresh browser profile, as an operator's first visit (no dialog: nux is off)."""
    context = browser.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        headless=True,
        viewport={"width": 1400, "height": 900},
    )
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.pages[0] if context.pages else context.new_page()
    try:
        yield page
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def editor(page: Page) -> Any:
    return page.locator(".CodeMirror").first


def replace_config(page: Page, config: str) -> None:
    """Select everything in the CodeMirror editor and paste `config` over it."""
    editor(page).click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(config)
    expect(page.get_by_text("No errors")).to_be_visible()


def launch(page: Page) -> str:
    page.get_by_role("button", name="Launch Run").click()
    page.wait_for_url(RUN_URL)
    match = RUN_URL.search(page.url)
    assert match is not None
    return match[1]


def find_in_logs(page: Page, text: str) -> None:
    """Filter the run's event log as a person would, and see `text` in it."""
    box = page.get_by_placeholder("Filter…")
    box.fill(text)
    box.press("Escape")  # close the filter's suggestions
    expect(page.get_by_text(text).first).to_be_visible()


def test_default_config_documents_itself_and_runs(stack: Stack, api: ApiClient, page: Page) -> None:
    seed_examples(stack.data_root)
    page.goto(stack.dagster_url + LAUNCHPAD)

    expect(editor(page)).to_contain_text("raw_input")
    default = editor(page).inner_text()
    for operation in ("batch_formatted_data", "resize_image", "import_from_local"):
        assert operation in default
    expect(page.get_by_text("No errors")).to_be_visible()
    run_id = launch(page)

    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    detail = api.wait(run_id)
    assert detail["status"] == "SUCCESS", detail
    assert [i["status"] for i in detail["instructions"]] == ["succeeded"]
    # A whole run later, Dagster's first-visit dialog would have opened by now.
    expect(page.get_by_text("Join the Dagster community")).to_have_count(0)


def test_sample_pasted_in_the_launchpad_runs_as_the_api_runs_it(
    stack: Stack, api: ApiClient, page: Page
) -> None:
    seed_examples(stack.data_root)
    page.goto(stack.dagster_url + LAUNCHPAD)
    replace_config(page, launchpad_config(load_samples()["local-images"].text))
    screenshot(page, "launchpad-local-images-config")

    run_id = launch(page)

    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    find_in_logs(page, "instructions[0] batch_formatted_data succeeded")
    screenshot(page, "launchpad-local-images-run")
    from_launchpad = api.wait(run_id)
    from_api = api.wait(api.execute(load_samples()["local-images"].document).json()["run_id"])

    def shape(detail: dict[str, Any]) -> list[Any]:
        return [
            (i["path"], i["operation"], i["status"], i["output"]["batch_sizes"],
             [(s["path"], s["operation"], s["status"]) for s in i["steps"]])
            for i in detail["instructions"]
        ]  # fmt: skip

    assert from_launchpad["status"] == from_api["status"] == "SUCCESS"
    assert shape(from_launchpad) == shape(from_api)


def test_run_page_of_an_api_run_shows_each_instruction(
    stack: Stack, api: ApiClient, page: Page
) -> None:
    seed_examples(stack.data_root)
    run_id = api.execute(load_samples()["local-images"].document).json()["run_id"]
    detail = api.wait(run_id)
    assert detail["status"] == "SUCCESS", detail
    steps = [(s["path"], s["operation"]) for i in detail["instructions"] for s in i["steps"]]
    steps += [(i["path"], i["operation"]) for i in detail["instructions"]]

    page.goto(f"{stack.dagster_url}/runs/{run_id}")

    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    for path, operation in steps:
        find_in_logs(page, f"{path} {operation} succeeded")
    screenshot(page, "api-run-logs")


def test_invalid_config_fails_with_every_problem_in_the_log(stack: Stack, page: Page) -> None:
    bad = '{"instructions": [{"operation": "dict_to_lst", "parameters": {}},\n' + (
        ' {"operation": "resize_image", "parameters": {"width": "wide", "data": 3}}]}'
    )
    page.goto(stack.dagster_url + LAUNCHPAD)
    replace_config(page, launchpad_config(bad))

    launch(page)

    expect(page.get_by_text("Failure", exact=True).first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    for path in (
        "instructions[0].operation",
        "instructions[1].parameters.data",
        "instructions[1].parameters.width",
    ):
        find_in_logs(page, f"{path}:")
    find_in_logs(page, "did you mean 'dict_to_list'?")
    screenshot(page, "launchpad-invalid-config-run")


def test_finished_run_page_reads_like_the_api(stack: Stack, api: ApiClient, page: Page) -> None:
    """Each instruction event is a sentence (path, operation, status, time, output in
    words), and the run's output carries a Markdown table of every instruction."""
    seed_examples(stack.data_root)
    run_id = api.execute(load_samples()["local-images"].document).json()["run_id"]
    detail = api.wait(run_id)
    assert detail["status"] == "SUCCESS", detail
    first = detail["instructions"][0]

    page.goto(f"{stack.dagster_url}/runs/{run_id}")

    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    count = first["output"]["items"]
    find_in_logs(page, f"{first['path']} {first['operation']} succeeded in")
    expect(
        page.get_by_text(
            re.compile(rf"succeeded in [0-9.]+ s: batches, \d+ batch(es)?, {count} item")
        )
    ).to_be_visible()
    screenshot(page, "finished-run-sentences")
    find_in_logs(page, "instructions")  # the op's output event, with its metadata
    page.get_by_placeholder("Filter…").fill("")
    expect(page.get_by_text("[Show Markdown]").first).to_be_visible()
    page.get_by_text("[Show Markdown]").first.click()
    expect(page.get_by_role("table").last).to_contain_text(first["operation"])
    screenshot(page, "finished-run-instructions-table")
