"""The Dagster code location loads, and its job runs in process."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from orchestrator.definitions import defs
from orchestrator.jobs import EXAMPLE_INSTRUCTIONS
from orchestrator.resources import ArtifactStoreResource, DataRootResource
from tests.fixtures.dagster_stack import make_images


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("build_execute_job")
    assert [node.name for node in job.nodes_in_topological_order] == [
        "generate_dynamic_job_configs",
        "parse_and_execute_job",
    ]


def test_the_launchpad_default_config_is_a_working_example(tmp_path: Path) -> None:
    make_images(tmp_path / "data" / "examples", 3)
    job = defs.resolve_job_def("build_execute_job")
    result = job.execute_in_process(
        resources={
            "artifact_store": ArtifactStoreResource(root=str(tmp_path / "artifacts")),
            "data_root": DataRootResource(root=str(tmp_path / "data")),
        }
    )
    assert result.success
    (outcome,) = result.output_for_node("parse_and_execute_job")["results"]
    assert outcome["status"] == "succeeded"
    assert outcome["output"]["batch_sizes"] == [2, 1]
    assert EXAMPLE_INSTRUCTIONS["instructions"][0]["operation"] == "batch_formatted_data"


def test_a_bad_launchpad_config_fails_with_the_json_path_problems(tmp_path: Path) -> None:
    job = defs.resolve_job_def("build_execute_job")
    config = {
        "ops": {
            "generate_dynamic_job_configs": {
                "config": {"raw_input": [{"operation": "dict_to_lst"}]}
            }
        }
    }
    with pytest.raises(dg.Failure) as caught:
        job.execute_in_process(run_config=config)
    assert "instructions[0].operation: unknown operation 'dict_to_lst'" in str(
        caught.value.description
    )
