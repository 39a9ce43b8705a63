"""Reading an instruction file: JSON or YAML, from a path or `-` for stdin."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from cli.client import InputProblem

YAML_SUFFIXES = {".yaml", ".yml"}


def read_document(source: str) -> Any:
    """The document in `source`: YAML for .yaml/.yml, else JSON, else YAML (a superset)."""
    name = "standard input" if source == "-" else source
    if source == "-":
        text = sys.stdin.read()
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputProblem(f"cannot read {name}: {exc}") from exc
    if not text.strip():
        raise InputProblem(f"{name} is empty; expected a JSON or YAML instruction document")
    if Path(source).suffix.lower() in YAML_SUFFIXES:
        return _yaml(text, name)
    try:
        return json.loads(text)
    except json.JSONDecodeError as json_error:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            raise InputProblem(f"{name} is neither JSON nor YAML: {json_error}") from json_error


def _yaml(text: str, name: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputProblem(f"{name} is not valid YAML: {exc}") from exc
