"""orchestrator.paths: the one check every name from outside goes through."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from orchestrator.errors import UnsafePath
from orchestrator.paths import NameLimits, relative_path, resolve_inside, shown


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "a.txt"),
        ("./sub//b.txt", "sub/b.txt"),
        ("sub\\c.txt", "sub/c.txt"),
        ("ünï-写真/名前.txt", "ünï-写真/名前.txt"),
        ("a~b/~c", "a~b/~c"),
    ],
)
def test_safe_names_are_normalised(name: str, expected: str) -> None:
    assert relative_path(name) == PurePosixPath(expected)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty name"),
        ("./", "empty name"),
        ("../x", "'..' would leave the target folder"),
        ("a/../../x", "'..' would leave the target folder"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("C:\\x", "absolute paths are not allowed"),
        ("~/x", "a leading '~' would read as a home folder"),
        ("a\x00b", "the name contains a control character (U+0000)"),
        ("a\x7fb", "the name contains a control character (U+007F)"),
        ("a\x85b", "the name contains a control character (U+0085)"),
        ("bad\udcffbyte", "the name is not valid UTF-8"),
        ("x" * 256, "is 256 bytes long (UTF-8), more than the file system's limit of 255"),
        ("写" * 86, "is 258 bytes long (UTF-8), more than the file system's limit of 255"),
        ("/".join(["y" * 255] * 17), "the path is 4351 bytes long (UTF-8), more than the 4096"),
    ],
)
def test_unsafe_names_are_refused_with_a_reason(name: str, reason: str) -> None:
    with pytest.raises(UnsafePath) as caught:
        relative_path(name)
    assert reason in caught.value.reason


def test_limits_below_a_folder_leave_room_for_the_folder(tmp_path: Path) -> None:
    limits = NameLimits.below(tmp_path)
    assert limits.name_bytes == 255
    assert limits.path_bytes == 4096 - len(str(tmp_path.resolve()).encode()) - 2


def test_resolve_inside_follows_links(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "out").symlink_to(tmp_path)
    assert resolve_inside(tmp_path / "root", "a/b") == (tmp_path / "root" / "a" / "b").resolve()
    with pytest.raises(UnsafePath, match="resolves outside its folder"):
        resolve_inside(tmp_path / "root", "out/secret")
    with pytest.raises(UnsafePath):
        resolve_inside(tmp_path / "root", "../x")


def test_long_names_are_shown_cut_short() -> None:
    assert shown("a.txt") == "'a.txt'"
    assert shown("é" * 5000) == repr("é" * 60 + "…") + " (5000 characters)"
