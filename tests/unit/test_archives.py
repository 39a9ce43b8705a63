"""Safe extraction: every hostile archive is refused, and nothing lands outside the target."""

from __future__ import annotations

import io
import random
import re
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from orchestrator.archives import ArchiveLimits, extract_archive, is_archive_name
from orchestrator.errors import UnsafeArchive

LIMITS = ArchiveLimits(max_entries=10, max_total_bytes=8 * 2**20, max_ratio=50)


def make_zip(path: Path, entries: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def add_tar_entry(archive: tarfile.TarFile, name: str, data: bytes = b"", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    archive.addfile(info, io.BytesIO(data) if data else None)


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, Path]:
    """(archive folder, target folder): a target nested two levels down, so escapes show."""
    target = tmp_path / "node" / "files"
    (tmp_path / "archives").mkdir()
    return tmp_path / "archives", target


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


def test_zip_is_extracted_with_folders(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    archive = make_zip(folder / "a.zip", {"a.txt": b"alpha", "sub/b.txt": b"beta", "sub/": b""})
    extracted = extract_archive(archive, target, LIMITS)
    assert sorted((f.name, f.size) for f in extracted) == [("a.txt", 5), ("sub/b.txt", 4)]
    assert (target / "sub" / "b.txt").read_bytes() == b"beta"


def test_tar_gz_is_extracted(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    with tarfile.open(folder / "a.tar.gz", "w:gz") as archive:
        add_tar_entry(archive, "dir", type=tarfile.DIRTYPE)
        add_tar_entry(archive, "dir/c.txt", b"gamma")
    extracted = extract_archive(folder / "a.tar.gz", target, LIMITS)
    assert [(f.name, f.size) for f in extracted] == [("dir/c.txt", 5)]
    assert (target / "dir" / "c.txt").read_bytes() == b"gamma"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../evil.txt", "entry '../evil.txt': '..' would leave the target folder"),
        ("ok/../../evil.txt", "entry 'ok/../../evil.txt': '..' would leave the target folder"),
        ("/tmp/evil.txt", "entry '/tmp/evil.txt': absolute paths are not allowed"),
        ("C:/evil.txt", "entry 'C:/evil.txt': absolute paths are not allowed"),
        ("..\\evil.txt", "entry '..\\\\evil.txt': '..' would leave the target folder"),
    ],
)
def test_zip_slip_is_refused(sandbox: tuple[Path, Path], name: str, message: str) -> None:
    folder, target = sandbox
    archive = make_zip(folder / "slip.zip", {"fine.txt": b"x", name: b"evil"})
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(archive, target, LIMITS)
    assert message in str(caught.value)
    assert not target.exists()  # checked before anything was written
    assert files_under(target.parent.parent) == {"archives/slip.zip"}


def test_tar_slip_and_absolute_path_are_refused(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    for name in ("../../evil.txt", "/etc/evil.txt"):
        with tarfile.open(folder / "slip.tar", "w") as archive:
            add_tar_entry(archive, name, b"evil")
        with pytest.raises(UnsafeArchive, match=r"would leave the target|absolute paths"):
            extract_archive(folder / "slip.tar", target, LIMITS)
        assert files_under(target.parent.parent) == {"archives/slip.tar"}


def test_zip_symlink_is_refused(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    archive = make_zip(folder / "link.zip", {}, symlinks={"passwd": "/etc/passwd"})
    with pytest.raises(
        UnsafeArchive, match="entry 'passwd': symbolic link entries are not allowed"
    ):
        extract_archive(archive, target, LIMITS)
    assert not target.exists()


@pytest.mark.parametrize(
    ("attrs", "kind"),
    [
        ({"type": tarfile.SYMTYPE, "linkname": "/etc/passwd"}, "symbolic link"),
        ({"type": tarfile.LNKTYPE, "linkname": "/etc/passwd"}, "hard link"),
        ({"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, "character device"),
        ({"type": tarfile.BLKTYPE, "devmajor": 8, "devminor": 0}, "block device"),
        ({"type": tarfile.FIFOTYPE}, "named pipe"),
    ],
)
def test_tar_links_and_devices_are_refused(
    sandbox: tuple[Path, Path], attrs: dict[str, object], kind: str
) -> None:
    folder, target = sandbox
    with tarfile.open(folder / "special.tar", "w") as archive:
        add_tar_entry(archive, "special", **attrs)
    with pytest.raises(UnsafeArchive, match=f"entry 'special': {kind} entries are not allowed"):
        extract_archive(folder / "special.tar", target, LIMITS)
    assert not target.exists()
    assert files_under(target.parent.parent) == {"archives/special.tar"}


def test_zip_bomb_ratio_is_refused_before_writing(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    archive = make_zip(folder / "bomb.zip", {"zeros.bin": bytes(4 * 2**20)})
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(archive, target, LIMITS)
    assert "entry 'zeros.bin': compression ratio" in str(caught.value)
    assert "exceeds the limit of 50 (archive_max_ratio)" in str(caught.value)
    assert not target.exists()


def test_tar_gz_bomb_is_stopped_while_streaming(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    with tarfile.open(folder / "bomb.tar.gz", "w:gz") as archive:
        add_tar_entry(archive, "zeros.bin", bytes(6 * 2**20))
    with pytest.raises(UnsafeArchive, match=r"entry 'zeros.bin': bomb.tar.gz expands \d+ times"):
        extract_archive(folder / "bomb.tar.gz", target, LIMITS)
    assert not target.exists()  # the partial output is removed


def test_too_many_entries_are_refused(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    archive = make_zip(folder / "many.zip", {f"f{i}.txt": b"x" for i in range(11)})
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(archive, target, LIMITS)
    assert str(caught.value) == (
        "entry 'f10.txt': many.zip has more than 10 entries (archive_max_entries)"
    )
    assert not target.exists()


def test_total_size_limit_is_refused(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    data = {f"part{i}.bin": random.Random(i).randbytes(3 * 2**20) for i in range(3)}
    archive = make_zip(folder / "big.zip", data)
    with pytest.raises(UnsafeArchive, match=r"big.zip: expands to 9437184 bytes, more than the "):
        extract_archive(archive, target, LIMITS)
    assert not target.exists()


def test_total_size_is_enforced_on_bytes_written_in_tar(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    with tarfile.open(folder / "big.tar", "w") as archive:
        for i in range(3):
            add_tar_entry(archive, f"part{i}.bin", bytes(range(256)) * 4096 * 3)
    with pytest.raises(
        UnsafeArchive, match=re.escape("entry 'part2.bin': big.tar expands to more than")
    ):
        extract_archive(folder / "big.tar", target, LIMITS)
    assert not target.exists()


def test_duplicate_and_file_folder_clash_are_refused(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    with tarfile.open(folder / "dup.tar", "w") as archive:
        add_tar_entry(archive, "a.txt", b"one")
        add_tar_entry(archive, "./a.txt", b"two")
    with pytest.raises(
        UnsafeArchive, match=re.escape("entry './a.txt': appears twice in the archive")
    ):
        extract_archive(folder / "dup.tar", target, LIMITS)
    with tarfile.open(folder / "clash.tar", "w") as archive:
        add_tar_entry(archive, "a", b"file")
        add_tar_entry(archive, "a/b.txt", b"under a file")
    with pytest.raises(
        UnsafeArchive, match=re.escape("entry 'a/b.txt': 'a' is a file, not a folder")
    ):
        extract_archive(folder / "clash.tar", target, LIMITS)


def test_damaged_archive_is_a_clear_error(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    whole = make_zip(folder / "whole.zip", {"a.txt": b"alpha" * 1000}).read_bytes()
    (folder / "cut.tar.gz").write_bytes(b"\x1f\x8b" + whole[:100])
    with pytest.raises(UnsafeArchive, match=re.escape("cut.tar.gz: ")):
        extract_archive(folder / "cut.tar.gz", target, LIMITS)


def test_archive_names() -> None:
    assert all(is_archive_name(n) for n in ("a.zip", "A.TAR.GZ", "b.tgz", "c.tar.xz", "d.tar"))
    assert not any(is_archive_name(n) for n in ("a.docx", "b.gz", "c.jar", "zip"))
