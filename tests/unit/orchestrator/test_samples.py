"""Every example in sample_dags.txt validates against the catalog."""

from __future__ import annotations

import json

import pytest

from orchestrator.catalog import validate
from orchestrator.samples import SAMPLES_FILE, load_samples, sample_catalog

SAMPLES = load_samples()
WITH_SAMPLES = sample_catalog()  # the built-ins and the sample plug-in, as `make run` serves


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
