"""import_from_local references files in place; readers fail if a file changed since."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.catalog import Dataset
from orchestrator.errors import PathOutsideDataRoot
from orchestrator.operations import CATALOG
from orchestrator.testing import run_operation


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "notes" / "deep").mkdir(parents=True)
    (root / "notes" / "a.txt").write_text("ay")
    (root / "notes" / "deep" / "b.txt").write_text("bee" * 1000)
    return root


def import_notes(data_root: Path, artifacts: Path, path: str = "notes") -> Dataset:
    value = run_operation(
        CATALOG["import_from_local"], {"path": path}, data_root=data_root, artifact_root=artifacts
    )
    assert isinstance(value, Dataset)
    return value


def files_under(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()
    }


def test_files_are_hard_linked_into_the_run_with_size_and_mtime(
    data_root: Path, tmp_path: Path
) -> None:
    data = import_notes(data_root, tmp_path / "artifacts")

    assert Path(data.root).is_relative_to(tmp_path / "artifacts")
    assert [(i.name, i.size) for i in data.items] == [("a.txt", 2), ("deep/b.txt", 3000)]
    originals = [data_root / "notes" / "a.txt", data_root / "notes" / "deep" / "b.txt"]
    assert [i.mtime for i in data.items] == [p.stat().st_mtime for p in originals]
    assert data.path_of(data.items[1]).read_text() == "bee" * 1000
    # No bytes copied: each item is the original file under a second name.
    for item, original in zip(data.items, originals, strict=True):
        assert data.path_of(item).stat().st_ino == original.stat().st_ino


def test_a_single_file(data_root: Path, tmp_path: Path) -> None:
    data = import_notes(data_root, tmp_path / "artifacts", "notes/deep/b.txt")
    assert [(i.name, i.path) for i in data.items] == [("b.txt", "files/b.txt")]


def test_a_link_inside_the_root_names_its_target(data_root: Path, tmp_path: Path) -> None:
    (data_root / "elsewhere.txt").write_text("far")
    (data_root / "notes" / "link.txt").symlink_to(data_root / "elsewhere.txt")
    data = import_notes(data_root, tmp_path / "artifacts")
    link = next(i for i in data.items if i.name == "link.txt")
    assert (link.path, link.size) == ("files/link.txt", 3)
    assert data.path_of(link).read_text() == "far"
    assert not data.path_of(link).is_symlink(), "the run holds the target, not the link"


def test_a_link_leading_outside_the_root_is_refused(data_root: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("no")
    (data_root / "notes" / "secret.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(PathOutsideDataRoot, match="resolves outside the data root"):
        import_notes(data_root, tmp_path / "artifacts")


def test_a_removed_or_replaced_original_leaves_the_run_what_it_imported(
    data_root: Path, tmp_path: Path
) -> None:
    data = import_notes(data_root, tmp_path / "artifacts")
    (data_root / "notes" / "deep" / "b.txt").unlink()
    (data_root / "notes" / "a.txt").unlink()
    (data_root / "notes" / "a.txt").symlink_to(tmp_path)
    assert [data.path_of(i).read_text() for i in data.items] == ["ay", "bee" * 1000]
