"""Safe extraction: every hostile archive is refused, and nothing lands outside the target."""

from __future__ import annotations

import bz2
import gzip
import io
import random
import re
import stat
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from orchestrator import archives
from orchestrator.archives import ArchiveLimits, extract_archive, is_archive_name
from orchestrator.errors import ArtifactError, UnsafeArchive
from orchestrator.paths import NameLimits

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


# Hostile archives of our own: each is refused, names no server path, leaves nothing behind.

NUL_NAME = "ünï-写真\x00name.txt"


def zip_with_raw_name(path: Path, name: str, data: bytes = b"x") -> Path:
    """A zip whose stored entry name is `name` byte for byte (zipfile cuts names at a NUL)."""
    encoded = name.encode()
    stand_in = b"Z" * len(encoded)
    make_zip(path, {"fine.txt": b"ok", stand_in.decode(): data})
    path.write_bytes(path.read_bytes().replace(stand_in, encoded))
    return path


def tar_with(path: Path, mode: str, entries: dict[str, bytes]) -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as archive:
        for name, data in entries.items():
            add_tar_entry(archive, name, data)
    return path


LONG_NAME = "é" * 2500 + ".txt"  # 5,000 characters of 2 bytes, 5,004 bytes: over 255
DEEP_NAME = "/".join(["d" * 200] * 25) + "/f.txt"  # every part fits, the whole path does not

HOSTILE = {
    "zip NUL": (lambda f: zip_with_raw_name(f / "nul.zip", NUL_NAME), "control character (U+0000)"),
    "tar NUL": (
        lambda f: tar_with(f / "nul.tar", "w", {"fine.txt": b"ok", NUL_NAME: b"x"}),
        "control character (U+0000)",
    ),
    "zip newline": (
        lambda f: make_zip(f / "nl.zip", {"a\nb.txt": b"x"}),
        "control character (U+000A)",
    ),
    "tar.gz escape code": (
        lambda f: tar_with(f / "esc.tar.gz", "w:gz", {"ok.txt": b"ok", "\x1b[31mred": b"x"}),
        "control character (U+001B)",
    ),
    "zip long name": (
        lambda f: make_zip(f / "long.zip", {"fine.txt": b"ok", LONG_NAME: b"x"}),
        "is 5004 bytes long (UTF-8), more than the file system's limit of 255 bytes",
    ),
    "tar.gz long name": (
        lambda f: tar_with(f / "long.tar.gz", "w:gz", {"fine.txt": b"ok", LONG_NAME: b"x"}),
        "is 5004 bytes long (UTF-8), more than the file system's limit of 255 bytes",
    ),
    "zip deep path": (
        lambda f: make_zip(f / "deep.zip", {DEEP_NAME: b"x"}),
        "the path is 5030 bytes long (UTF-8), more than the",
    ),
    "tar deep path": (
        lambda f: tar_with(f / "deep.tar", "w", {"fine.txt": b"ok", DEEP_NAME: b"x"}),
        "the path is 5030 bytes long (UTF-8), more than the",
    ),
    "tar home folder": (
        lambda f: tar_with(f / "home.tar", "w", {"~/.bashrc": b"x"}),
        "a leading '~' would read as a home folder",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_names_are_refused_without_server_paths(
    sandbox: tuple[Path, Path], tmp_path: Path, case: str
) -> None:
    folder, target = sandbox
    build, expected = HOSTILE[case]
    archive = build(folder)
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(archive, target, LIMITS, source=f"s3://bucket/{archive.name}")
    message = str(caught.value)
    assert expected in message
    assert message.startswith("entry '")
    assert str(tmp_path) not in message
    assert len(message) < 400  # a long name is shown cut short
    assert not target.exists()  # nothing kept, in particular not the NUL-cut 'ünï-写真'
    assert files_under(tmp_path) == {f"archives/{archive.name}"}


def test_whole_archive_messages_name_the_source(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    archive = make_zip(folder / "archive", {f"f{i}.txt": b"x" for i in range(11)})
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(archive, target, LIMITS, source="s3://photos/2024/set.zip")
    assert str(caught.value) == (
        "entry 'f10.txt': s3://photos/2024/set.zip has more than 10 entries (archive_max_entries)"
    )
    (folder / "junk").write_bytes(b"not an archive")
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(folder / "junk", target, LIMITS, source="Google Drive file abc ('x.zip')")
    assert str(caught.value) == "Google Drive file abc ('x.zip'): not a zip or tar archive"


def test_a_file_system_error_names_no_server_path(
    sandbox: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the file system refuses what the checks let through, the message keeps its paths."""
    folder, target = sandbox
    monkeypatch.setattr(NameLimits, "below", classmethod(lambda cls, folder: cls(10**6, 10**6)))
    archive = tar_with(folder / "long.tar", "w", {"fine.txt": b"ok", LONG_NAME: b"x"})
    with pytest.raises(ArtifactError) as caught:
        extract_archive(archive, target, LIMITS, source="s3://b/long.tar")
    assert str(caught.value).startswith("s3://b/long.tar: entry 'éééé")
    assert str(caught.value).endswith("could not be written: File name too long")
    assert str(tmp_path) not in str(caught.value)
    assert not target.exists()


def test_a_failed_extraction_empties_a_target_it_did_not_make(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    target.mkdir(parents=True)
    archive = tar_with(folder / "late.tar", "w", {"a/one.txt": b"1", "b.txt": b"2", "../x": b"3"})
    with pytest.raises(UnsafeArchive, match=re.escape("'..' would leave")):
        extract_archive(archive, target, LIMITS)
    assert target.is_dir() and not any(target.iterdir())


def write_bomb(path: Path, mode: str, size: int) -> Path:
    """A tar whose one member is `size` zero bytes, written without holding them in memory."""

    class Zeros(io.RawIOBase):
        def __init__(self) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            n = min(len(buffer), self.left)
            buffer[:n] = bytes(n)
            self.left -= n
            return n

    with tarfile.open(path, mode) as archive:
        info = tarfile.TarInfo("zeros.bin")
        info.size = size
        archive.addfile(info, Zeros())
    return path


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_compressed_tar_bomb_stops_within_bounded_disk_and_memory(
    sandbox: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    """Before: tarfile expanded its whole read buffer at once (the 150 MiB tar.gz bomb took
    465 MiB of memory and wrote 30 MiB). Now: counted piece by piece, nothing written."""
    folder, target = sandbox
    bomb = write_bomb(folder / f"bomb.tar.{compression}", f"w:{compression}", 64 * 2**20)
    on_disk: list[int] = []
    remove = archives._remove_output

    def measured(target: Path, created: bool) -> None:
        on_disk.append(sum(p.stat().st_size for p in target.rglob("*") if p.is_file()))
        remove(target, created)

    monkeypatch.setattr(archives, "_remove_output", measured)
    tracemalloc.start()
    try:
        with pytest.raises(UnsafeArchive, match=r"entry 'zeros.bin': bomb.tar.\w+ expands \d+ t"):
            extract_archive(bomb, target, LIMITS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert on_disk == [0]  # refused before the first piece was written
    assert peak < 16 * 2**20, peak  # xz's own dictionary is 8 MiB; the bomb expands to 64
    assert not target.exists()


def test_concatenated_streams_and_trailing_padding_are_read(sandbox: tuple[Path, Path]) -> None:
    """pbzip2 writes several bzip2 streams; some writers pad a .tar.gz with zeros."""
    folder, target = sandbox
    plain = io.BytesIO()
    with tarfile.open(fileobj=plain, mode="w") as archive:
        for i in range(3):
            add_tar_entry(archive, f"part{i}.bin", random.Random(i).randbytes(300_000))
    data = plain.getvalue()
    thirds = [data[: len(data) // 3], data[len(data) // 3 : 2 * len(data) // 3]]
    thirds.append(data[2 * len(data) // 3 :])
    (folder / "multi.tar.bz2").write_bytes(b"".join(bz2.compress(t) for t in thirds))
    (folder / "padded.tar.gz").write_bytes(gzip.compress(data) + bytes(10_000))
    for name in ("multi.tar.bz2", "padded.tar.gz"):
        extracted = extract_archive(folder / name, target / name, LIMITS)
        assert [(f.name, f.size) for f in extracted] == [
            (f"part{i}.bin", 300_000) for i in range(3)
        ]
        assert (target / name / "part2.bin").read_bytes() == random.Random(2).randbytes(300_000)


def test_cut_compressed_tar_is_damaged_and_leaves_nothing(sandbox: tuple[Path, Path]) -> None:
    folder, target = sandbox
    whole = tar_with(
        folder / "whole.tar.gz", "w:gz", {"a.bin": random.Random(0).randbytes(200_000)}
    )
    (folder / "cut.tar.gz").write_bytes(whole.read_bytes()[:100_000])
    with pytest.raises(UnsafeArchive, match=re.escape("s3://b/cut.tar.gz: damaged archive: ")):
        extract_archive(folder / "cut.tar.gz", target, LIMITS, source="s3://b/cut.tar.gz")
    assert not target.exists()
