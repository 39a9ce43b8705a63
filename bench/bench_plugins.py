"""Plug-ins and notebooks, each beside its baseline.

(a) loading the catalog: the built-ins alone vs the built-ins plus the sample plug-in, and
    plus 20 step_fn plug-in files (what each code location load and run worker pays)
(b) run_notebook on samples/notebooks/summarise.ipynb over 50 files vs the same summary
    computed in this process (the kernel's start and papermill's bookkeeping)
"""

from __future__ import annotations

import json
import mimetypes
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.stats import describe_ms, row
from orchestrator.catalog.registry import Catalog
from orchestrator.operations import CATALOG
from orchestrator.operations.notebooks import run_notebook
from orchestrator.plugins import PluginCatalog
from orchestrator.samples import SAMPLE_NOTEBOOKS, SAMPLE_PLUGINS
from orchestrator.testing import make_dataset, run_operation

LOAD_ROUNDS = int(os.environ.get("BENCH_PLUGIN_ROUNDS", "20"))
NOTEBOOK_ROUNDS = int(os.environ.get("BENCH_NOTEBOOK_ROUNDS", "5"))
FILES = 50

STEP = '''
from orchestrator.catalog.values import Dataset
from orchestrator.context import OperationContext


def step_fn(data: Dataset, ctx: OperationContext, factor: float = 1.0, label: str = "x") -> Dataset:
    """A plug-in of the benchmark."""
    return data
'''


def timed(action: object, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return times


def summary_in_process(files: list[Path], top: int) -> dict[str, object]:
    sizes = {path.name: path.stat().st_size for path in files}
    kinds = Counter(mimetypes.guess_type(path.name)[0] or "unknown" for path in files)
    largest = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:top]
    return {"files": len(files), "types": dict(kinds), "largest": largest}


def main() -> None:
    builtins = [CATALOG[name] for name in CATALOG.names if name not in CATALOG.plugin_names]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        many = root / "plugins"
        many.mkdir()
        for index in range(20):
            (many / f"step_{index:02d}.py").write_text(STEP)

        def load(folders: list[Path]) -> None:
            PluginCatalog(builtins, lambda: folders).reload()

        print(f"(a) loading the catalog ({len(builtins)} built-ins), {LOAD_ROUNDS} rounds")
        row("built-ins only (Catalog)", describe_ms(timed(lambda: Catalog(builtins), LOAD_ROUNDS)))
        row("+ the sample plug-in", describe_ms(timed(lambda: load([SAMPLE_PLUGINS]), LOAD_ROUNDS)))
        row("+ 20 step_fn files", describe_ms(timed(lambda: load([many]), LOAD_ROUNDS)))

        data = make_dataset(root / "in", {f"f{i:02d}.txt": "x" * (i + 1) for i in range(FILES)})
        files = [data.path_of(item) for item in data.items]
        os.environ["CONSTELLATION_NOTEBOOKS_DIR"] = str(SAMPLE_NOTEBOOKS)
        print(f"\n(b) summarise {FILES} files, {NOTEBOOK_ROUNDS} rounds")
        row(
            "the same code in this process",
            describe_ms(timed(lambda: json.dumps(summary_in_process(files, 5)), NOTEBOOK_ROUNDS)),
        )

        def notebook() -> None:
            run_operation(
                run_notebook,
                {"notebook": "summarise.ipynb"},
                inputs={"data": data},
                artifact_root=root / "artifacts",
            )

        row("run_notebook (kernel + papermill)", describe_ms(timed(notebook, NOTEBOOK_ROUNDS)))


if __name__ == "__main__":
    main()
