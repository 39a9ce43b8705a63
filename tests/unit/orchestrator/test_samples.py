"""Every example in sample_dags.txt validates against the catalog."""

from __future__ import annotations

import json

import pytest

from orchestrator.catalog import validate
from orchestrator.operations import CATALOG
from orchestrator.plugins import PluginCatalog
from orchestrator.samples import SAMPLES_FILE, load_samples

SAMPLES = load_samples()
# what `make run` serves: the built-ins and the sample plug-in (samples/plugins)
WITH_SAMPLES = PluginCatalog(
    [CATALOG[name] for name in CATALOG.names], lambda: [SAMPLES_FILE.parent / "samples" / "plugins"]
)


def test_the_samples_file_has_the_documented_examples() -> None:
    assert {"local-images", "local-import", "fire-detection", "s3-resize-export"} <= set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_validates(name: str) -> None:
    plan = validate(SAMPLES[name].document, WITH_SAMPLES)
    assert plan.roots


def test_a_sample_keeps_its_text_as_the_file_has_it() -> None:
    sample = SAMPLES["local-images"]
    assert json.loads(sample.text) == sample.document
    assert sample.text in SAMPLES_FILE.read_text()
