"""The Python blocks of the docs run as written: defined in order, their tests called."""

from __future__ import annotations

import inspect
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def load_page(path: Path) -> types.ModuleType:
    """The page's Python blocks executed, in order, as one module."""
    name = f"docs_{path.stem.replace('-', '_')}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module  # pydantic resolves annotations through sys.modules
    for number, block in enumerate(PYTHON_BLOCK.findall(path.read_text()), start=1):
        exec(compile(block, f"{path.name} (python block {number})", "exec"), module.__dict__)
    return module


def page_tests(path: Path) -> list[Any]:
    """Each `test_*` function the page defines, as a pytest parameter named after it."""
    module = load_page(path)
    return [
        pytest.param(function, id=name)
        for name, function in vars(module).items()
        if name.startswith("test_") and callable(function)
    ]


ADDING = DOCS / "adding-an-operation.md"


def test_adding_an_operation_page_has_code_and_tests() -> None:
    assert len(page_tests(ADDING)) >= 3


@pytest.mark.parametrize("snippet_test", page_tests(ADDING))
def test_adding_an_operation_snippet(snippet_test: Callable[..., None], tmp_path: Path) -> None:
    parameters = inspect.signature(snippet_test).parameters
    assert set(parameters) <= {"tmp_path"}, "a test on the page asks for fixtures we lack"
    snippet_test(**({"tmp_path": tmp_path} if "tmp_path" in parameters else {}))
