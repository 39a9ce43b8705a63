"""report.html: one self-contained, well-formed page that reads well in a browser."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from orchestrator.operations.compare.metrics import Table, compare
from orchestrator.operations.compare.predicted import read_labels
from orchestrator.operations.compare.report import DISAGREEMENT_ROWS, render
from tests.unit.orchestrator.operations.compare.made_up import photo_set, write_predictions

ARTIFACTS = Path(__file__).resolve().parents[5] / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
VOID = {"meta", "br", "rect", "link", "img", "input", "hr"}  # rect: drawn with "/>"


class Structure(HTMLParser):
    """Checks that every element is closed in order; collects text and attribute values."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []
        self.tags: set[str] = set()
        self.attributes: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += [value or "" for _, value in attrs]
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += [value or "" for _, value in attrs]

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Structure:
    parser = Structure()
    parser.feed(page)
    parser.close()
    assert parser.problems == [] and parser.open == []
    return parser


def fire_table(tmp_path: Path) -> Table:
    truth, labels = photo_set()
    del labels[2]["photos/007.jpg"]
    names = ["google/vit-base-patch16-224", "resnet-50", "mobilenet-v3-small"]
    models = [
        read_labels(write_predictions(tmp_path / f"m{i}", name, found, seconds), name, "label")
        for i, (name, found, seconds) in enumerate(zip(names, labels, [4.2, 2.1, 0.8], strict=True))
    ]
    return compare(models, truth)


def test_the_report_is_well_formed_and_names_no_url(tmp_path: Path) -> None:
    page = render(fire_table(tmp_path))
    parser = parse(page)
    assert "http" not in page.lower() and "url(" not in page and "@import" not in page
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert {"svg", "table", "style"} <= parser.tags
    text = " ".join(parser.text)
    for expected in [
        "google/vit-base-patch16-224",
        "95.0 %",
        "Confusion matrices",
        "photos/007.jpg",
    ]:
        assert expected in text


def test_names_from_outside_are_escaped(tmp_path: Path) -> None:
    hostile = '<script>alert("x")</script>'
    models = [
        read_labels(write_predictions(tmp_path / "a", hostile, {hostile: "a&b"}), hostile, "label"),
        read_labels(write_predictions(tmp_path / "b", "b", {hostile: "<i>"}), "b", "label"),
    ]
    page = render(compare(models, {hostile: "<i>"}))
    parser = parse(page)
    assert "script" not in parser.tags and "i" not in parser.tags
    assert hostile in " ".join(parser.text)


def test_without_truth_the_report_shows_agreement_and_label_counts(tmp_path: Path) -> None:
    models = [
        read_labels(write_predictions(tmp_path / "a", "a", {"x": "1", "y": "2"}), "a", "label"),
        read_labels(write_predictions(tmp_path / "b", "b", {"x": "1", "y": "3"}), "b", "label"),
    ]
    text = " ".join(parse(render(compare(models, None))).text)
    assert "no truth labels given" in text and "Predicted labels" in text
    assert "Confusion" not in text and "Accuracy" not in text and "Per class" not in text


def test_many_classes_and_disagreements_are_cut_short(tmp_path: Path) -> None:
    items = {f"{i}.jpg": str(i % 30) for i in range(300)}
    shifted = {name: str((int(label) + 1) % 30) for name, label in items.items()}
    models = [
        read_labels(write_predictions(tmp_path / "a", "a", items), "a", "label"),
        read_labels(write_predictions(tmp_path / "b", "b", shifted), "b", "label"),
    ]
    page = render(compare(models, items))
    text = " ".join(parse(page).text)
    assert "Most frequent confusions" in text and "Confusion matrices" not in text
    assert f"The first {DISAGREEMENT_ROWS} of 300 are shown" in text


@pytest.mark.browser
def test_the_report_in_headless_chromium(tmp_path: Path) -> None:
    """A screenshot under test-artifacts/ for a person to look at."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: run tests/e2e/install_browser.sh")
    page = tmp_path / "report.html"
    page.write_text(render(fire_table(tmp_path)), encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "compare-report.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,2600",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
