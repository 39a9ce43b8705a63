"""The compare-models sample's HTML report as a person opens it: headless Chromium, no network.

The run goes through the API on a real Dagster stack against MLServer; the report's path is
the one GET /runs/{id}/results shows. The screenshot lands in test-artifacts/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.samples import load_samples
from stack import Stack
from stack.__main__ import FIRE_LABELS, FIRE_PHOTOS
from testkit.dagster_stack import ApiClient
from testkit.photos import PhotoSet

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PAGE_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def report(model_stack: Stack, photos: PhotoSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compare-models sample run over the photos: its report.html, fetched through the API."""
    folder = model_stack.data_root / FIRE_PHOTOS
    folder.mkdir(parents=True, exist_ok=True)
    for path in photos.paths:
        shutil.copy(path, folder / path.name)
    shutil.copy(photos.labels_file, model_stack.data_root / FIRE_LABELS)
    api = ApiClient(model_stack)
    try:
        response = api.execute(load_samples()["compare-models"].document)
        assert response.status_code == 201, response.text
        detail = api.wait(response.json()["run_id"], timeout=300)
        assert detail["status"] == "SUCCESS", detail
        results = api.http.get(f"/runs/{detail['run_id']}/results").json()["results"]
        (comparison,) = [r for r in results if r["operation"] == "compare_predictions"]
        html = api.content(detail["run_id"], comparison["path"], "report")
    finally:
        api.http.close()
    report = tmp_path_factory.mktemp("report") / "report.html"  # as a browser saves it
    report.write_bytes(html)
    return report


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run tests/e2e/install_browser.sh")
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 900})
        finally:
            browser.close()


def test_the_comparison_report_opens_in_a_browser_without_network(report: Path, page: Any) -> None:
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))

    page.goto(report.as_uri())

    expect(page.get_by_role("heading", name="At a glance")).to_be_visible()
    expect(page.get_by_role("heading", name="Confusion matrices")).to_be_visible()
    expect(page.get_by_text("vit-fire").first).to_be_visible()
    expect(page.get_by_text("uint8-fire").first).to_be_visible()
    assert page.locator("svg").count() > 0, "charts are inline SVG"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare-models-report.png"), full_page=True)
    assert [url for url in asked if not url.startswith("file:")] == [], "self-contained"
