"""Reading sample_dags.txt: blocks of "# NAME: description" followed by one JSON document."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.plugins import PluginCatalog

HEADER = re.compile(r"^# ([a-z0-9-]+): (.+)$")
SAMPLES_FILE = Path(__file__).resolve().parent.parent / "sample_dags.txt"
SAMPLE_PLUGINS = SAMPLES_FILE.parent / "samples" / "plugins"
SAMPLE_NOTEBOOKS = SAMPLES_FILE.parent / "samples" / "notebooks"


@dataclass(frozen=True)
class Sample:
    name: str
    description: str
    document: Any
    text: str  # the JSON exactly as the file has it (what an operator copies)


def load_samples(path: Path = SAMPLES_FILE) -> dict[str, Sample]:
    samples: dict[str, Sample] = {}
    for block in re.split(r"\n\s*\n", path.read_text()):
        lines = block.strip().splitlines()
        if not lines or not (match := HEADER.match(lines[0])):
            continue
        body = "\n".join(line for line in lines[1:] if not line.startswith("#"))
        samples[match[1]] = Sample(match[1], match[2], json.loads(body), body)
    return samples


def sample_catalog() -> PluginCatalog:
    """The catalog `make run` serves: the built-ins and the sample plug-ins (samples/plugins),
    whatever CONSTELLATION_PLUGINS_DIR says."""
    from orchestrator.operations import CATALOG
    from orchestrator.plugins import PluginCatalog

    builtins = [CATALOG[name] for name in CATALOG.names if name not in CATALOG.plugin_names]
    return PluginCatalog(builtins, lambda: [SAMPLE_PLUGINS])
