"""import_from_google_drive with the real client library against a loopback Drive server."""

from __future__ import annotations

import io
import json
import random
import zipfile
from pathlib import Path
from typing import Any

import pytest

from orchestrator.connectors.google_drive import DriveClient
from orchestrator.errors import InstructionsInvalid, OperationError
from orchestrator.events import InstructionEvent
from orchestrator.resources import GoogleDriveResource
from testkit.drive_server import DriveServer, new_service_account
from testkit.pipelines import run_pipeline

pytestmark = pytest.mark.integration

CHUNK = 64 * 1024


def drive_client(server: DriveServer, credentials: Path | None, **overrides: Any) -> DriveClient:
    settings: dict[str, Any] = {
        "credentials_file": str(credentials) if credentials is not None else "",
        "endpoint": server.endpoint,
        "max_attempts": 4,
        "backoff_s": 0.01,
        "chunk_bytes": CHUNK,
    }
    return GoogleDriveResource(**(settings | overrides)).client()


def import_drive(file_id: str, **parameters: Any) -> dict[str, Any]:
    return {
        "operation": "import_from_google_drive",
        "parameters": {"file_id": file_id, **parameters},
    }


def items(outcome: Any) -> dict[str, bytes]:
    dataset = outcome.values["instructions[0]"]
    return {item.name: dataset.path_of(item).read_bytes() for item in dataset.items}


@pytest.fixture
def drive(drive_server: DriveServer, google_credentials: Path) -> DriveClient:
    return drive_client(drive_server, google_credentials)


def test_file_is_downloaded_in_ranged_chunks(
    drive_server: DriveServer, drive: DriveClient, tmp_path: Path
) -> None:
    data = random.Random(1).randbytes(3 * CHUNK + 100)
    drive_server.add_file("1aniasD6RcD3Zr7K8DSWiiqtXCRbFx7gU", "scan 01.tif", data, "image/tiff")

    outcome = run_pipeline(
        [import_drive("1aniasD6RcD3Zr7K8DSWiiqtXCRbFx7gU")], tmp_path, drive=drive
    )

    assert outcome.succeeded, outcome.first_error
    assert items(outcome) == {"scan 01.tif": data}
    assert outcome.values["instructions[0]"].items[0].media_type == "image/tiff"
    assert drive_server.media_ranges == [
        f"bytes={start}-{start + CHUNK - 1}" for start in range(0, len(data), CHUNK)
    ]


def test_archive_is_extracted(
    drive_server: DriveServer, drive: DriveClient, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("fire/001.jpg", b"flames")
        archive.writestr("no_fire/002.jpg", b"forest")
    drive_server.add_file("zipId_1", "photos.zip", buffer.getvalue(), "application/zip")

    outcome = run_pipeline([import_drive("zipId_1")], tmp_path, drive=drive)
    kept = run_pipeline(
        [import_drive("zipId_1", extract_archives=False)], tmp_path / "kept", drive=drive
    )

    assert outcome.succeeded, outcome.first_error
    assert items(outcome) == {"fire/001.jpg": b"flames", "no_fire/002.jpg": b"forest"}
    assert items(kept) == {"photos.zip": buffer.getvalue()}


def test_unsafe_archive_fails_and_writes_nothing_outside(
    drive_server: DriveServer, drive: DriveClient, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../../../escaped.txt", b"evil")
    drive_server.add_file("slipId", "slip.zip", buffer.getvalue())

    outcome = run_pipeline([import_drive("slipId")], tmp_path, drive=drive)

    assert "entry '../../../../escaped.txt': '..' would leave the target folder" in str(
        outcome.first_error
    )
    assert not list(tmp_path.glob("**/escaped.txt"))
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_server_error_then_success(
    drive_server: DriveServer, drive: DriveClient, tmp_path: Path
) -> None:
    drive_server.add_file("flaky", "a.txt", b"eventually")
    drive_server.fail_media(503, times=2)

    outcome = run_pipeline([import_drive("flaky")], tmp_path, drive=drive)

    assert outcome.succeeded, outcome.first_error
    assert items(outcome) == {"a.txt": b"eventually"}
    assert len(drive_server.media_ranges) == 3


def test_connection_dropped_mid_file_resumes_at_the_chunk(
    drive_server: DriveServer, drive: DriveClient, tmp_path: Path
) -> None:
    data = random.Random(2).randbytes(3 * CHUNK)
    drive_server.add_file("dropper", "big.bin", data)
    drive_server.drop_media(after_bytes=1000, after_requests=1)  # cut the second chunk

    outcome = run_pipeline([import_drive("dropper")], tmp_path, drive=drive)

    assert outcome.succeeded, outcome.first_error
    assert items(outcome) == {"big.bin": data}
    ranges = drive_server.media_ranges
    assert ranges.count(f"bytes=0-{CHUNK - 1}") == 1  # not started over
    assert ranges.count(f"bytes={CHUNK}-{2 * CHUNK - 1}") == 2  # the cut chunk, again


def test_persistent_faults_give_a_clear_error(
    drive_server: DriveServer, drive: DriveClient, tmp_path: Path
) -> None:
    drive_server.add_file("down", "a.txt", b"never")
    drive_server.fail_media(503, times=100)

    outcome = run_pipeline([import_drive("down")], tmp_path, drive=drive)

    assert outcome.first_error == (
        "instructions[0] (import_from_google_drive): cannot download Google Drive file 'down': "
        "Drive answered 503 (backendError) (after 4 attempts)"
    )
    assert len(drive_server.media_ranges) == 4  # the connector's attempts, once


def test_missing_file_fails_at_once_with_a_clear_error(
    drive_server: DriveServer, drive: DriveClient, tmp_path: Path
) -> None:
    events: list[InstructionEvent] = []
    outcome = run_pipeline([import_drive("missing-file_42")], tmp_path, events, drive=drive)

    assert outcome.first_error == (
        "instructions[0] (import_from_google_drive): cannot read the metadata of Google Drive "
        "file 'missing-file_42': Drive answered 404: file not found, or not shared with the "
        "service account"
    )
    assert [e.kind for e in events if e.kind in ("retrying", "failed")] == ["failed"]
    # the cache key's version check asks for the metadata first, then the import once
    assert sum("missing-file_42" in path for path, _ in drive_server.state.requests) == 2


@pytest.mark.parametrize(
    "file_id", ["../../etc/passwd", "abc/def", "id?alt=media", "evil.example.com", "a b", ""]
)
def test_bad_file_id_is_refused_before_any_request(
    drive_server: DriveServer, drive: DriveClient, tmp_path: Path, file_id: str
) -> None:
    with pytest.raises(InstructionsInvalid) as caught:
        run_pipeline([import_drive(file_id)], tmp_path, drive=drive)
    assert caught.value.problems[0].path == "instructions[0].parameters.file_id"
    with pytest.raises(OperationError, match="is not a Google Drive file id"):
        drive.metadata(file_id)
    assert drive_server.state.requests == []


def test_corrupt_download_is_detected(
    drive_server: DriveServer, drive: DriveClient, tmp_path: Path
) -> None:
    drive_server.add_file("corrupt", "a.txt", b"payload", md5="0" * 32)
    outcome = run_pipeline([import_drive("corrupt")], tmp_path, drive=drive)
    assert "download of Google Drive file 'corrupt' is corrupt: MD5" in str(outcome.first_error)


def test_google_docs_and_missing_configuration_are_explained(
    drive_server: DriveServer, drive: DriveClient, tmp_path: Path
) -> None:
    drive_server.add_file("docId", "Notes", b"", "application/vnd.google-apps.document")
    outcome = run_pipeline([import_drive("docId")], tmp_path, drive=drive)
    assert "is a application/vnd.google-apps.document item" in str(outcome.first_error)

    unconfigured = drive_client(drive_server, None)
    outcome = run_pipeline([import_drive("docId")], tmp_path, drive=unconfigured)
    assert "Google Drive is not configured: set CONSTELLATION_GOOGLE_CREDENTIALS_FILE" in str(
        outcome.first_error
    )


def test_credentials_the_server_refuses(drive_server: DriveServer, tmp_path: Path) -> None:
    info, _ = new_service_account(f"{drive_server.url}/token")  # a key the server never saw
    path = tmp_path / "stranger.json"
    path.write_text(json.dumps(info))
    drive_server.add_file("fileA", "a.txt", b"x")

    outcome = run_pipeline(
        [import_drive("fileA")], tmp_path, drive=drive_client(drive_server, path)
    )

    assert "the service-account credentials were refused" in str(outcome.first_error)
