"""Reading sample_dags.txt: blocks of "# NAME: description" followed by one JSON document."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEADER = re.compile(r"^# ([a-z0-9-]+): (.+)$")
SAMPLES_FILE = Path(__file__).resolve().parent.parent / "sample_dags.txt"


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
