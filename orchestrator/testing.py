"""Helpers for testing an operation in a few lines, with a throwaway artifact store.

    from orchestrator.testing import make_dataset, run_operation

    def test_my_operation(tmp_path):
        photos = make_dataset(tmp_path / "in", {"a.txt": "hello"})
        output = run_operation(my_operation, {"suffix": "!"}, inputs={"data": photos},
                               artifact_root=tmp_path)
        assert ...

`run_operation` calls the operation the way the executor does (parameters
validated by its pydantic model, its own folder in a run's artifact store),
but directly: its errors reach the test unchanged. To test it inside a whole
pipeline, use `orchestrator.local_run.run_instructions(..., operations=[my_operation])`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.artifacts import DatasetWriter, LocalStore
from orchestrator.catalog.registry import Operation
from orchestrator.catalog.values import Dataset, Value
from orchestrator.context import OperationContext, Services

TEST_RUN_ID = "test-run"


def make_dataset(folder: Path | str, files: Mapping[str, bytes | str]) -> Dataset:
    """A data set of `files` (name -> content) written under `folder`, manifest included."""
    writer = DatasetWriter(Path(folder))
    for name, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        writer.path_for(name).write_bytes(data)
        writer.add(name)
    return writer.finish(order=list(files))


def run_operation(
    operation: Operation,
    params: Mapping[str, Any] | None = None,
    *,
    inputs: Mapping[str, Value] | None = None,
    artifact_root: Path | str | None = None,
    data_root: Path | str | None = None,
    services: Services | None = None,
    run_id: str = TEST_RUN_ID,
) -> Value:
    """Run one operation with literal `params` and nested outputs `inputs`; return its output.

    The operation writes under `artifact_root/run_id/` (a new temporary folder
    when not given, left in place because the output points into it). Pass
    `services` to give it connectors (s3=, drive=, model_server=).
    """
    if services is None:
        root = Path(artifact_root) if artifact_root else Path(tempfile.mkdtemp("-constellation"))
        services = Services(
            artifacts=LocalStore(root),
            data_root=Path(data_root) if data_root is not None else None,
        )
    arguments = operation.params.model_validate({**(params or {}), **(inputs or {})})
    context = OperationContext(
        run_id=run_id,
        node_id="instructions[0]",
        folder=services.artifacts.node_folder(run_id, 0, operation.name),
        services=services,
        log=logging.getLogger(f"constellation.operations.{operation.name}"),
    )
    value = operation.fn(arguments, context)
    if not isinstance(value, operation.output):
        raise TypeError(
            f"{operation.name} returned {type(value).__name__}, "
            f"but declares output={operation.output.__name__}"
        )
    return value
