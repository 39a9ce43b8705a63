"""The command-line client's parts, without a server: errors, input files, plain progress."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from api.schemas import RunDetail
from cli.client import (
    ApiRefused,
    ApiUnavailable,
    ApiUnreachable,
    CliError,
    ConstellationClient,
    InputProblem,
    InstructionsRejected,
    RunEvent,
    parse_sse,
)
from cli.display import ChangeLog, Display, Progress, follow_events, run_table
from cli.documents import read_document


def client_answering(status: int, body: object = None, text: str = "") -> ConstellationClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if body is not None:
            return httpx.Response(status, json=body)
        return httpx.Response(status, text=text)

    return ConstellationClient("http://api.test", "key", transport=httpx.MockTransport(answer))


@pytest.mark.parametrize(
    ("status", "error", "exit_code"),
    [
        (401, ApiRefused, 4),
        (404, ApiRefused, 4),
        (409, ApiRefused, 4),
        (422, InstructionsRejected, 1),
        (502, ApiUnavailable, 5),
        (503, ApiUnavailable, 5),
    ],
)
def test_each_error_status_maps_to_an_error_and_exit_code(
    status: int, error: type[CliError], exit_code: int
) -> None:
    body = {"error": "x", "message": "what went wrong"}
    with pytest.raises(error) as caught:
        client_answering(status, body).operations()
    assert type(caught.value) is error and caught.value.exit_code == exit_code
    assert f"{status} " in caught.value.message and "what went wrong" in caught.value.message


def test_problems_of_a_422_are_kept() -> None:
    problem = {"path": "instructions[0].operation", "message": "unknown operation 'x'"}
    body = {"error": "invalid_instructions", "message": "1 problem", "problems": [problem]}
    with pytest.raises(InstructionsRejected) as caught:
        client_answering(422, body).validate({"instructions": []})
    assert [p.path for p in caught.value.problems] == ["instructions[0].operation"]


def test_a_body_that_is_not_json_is_shown_as_text() -> None:
    with pytest.raises(ApiUnavailable, match="502 Bad Gateway: upstream is down"):
        client_answering(502, text="upstream is down").operations()


def test_a_connection_failure_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = ConstellationClient("http://api.test/", transport=httpx.MockTransport(refuse))
    with pytest.raises(ApiUnreachable, match=re.escape("cannot reach the API at http://api.test ")):
        client.operations()


def test_documents_are_json_or_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.json").write_text('{"instructions": []}')
    (tmp_path / "b.yaml").write_text("instructions: []\n")
    (tmp_path / "c.txt").write_text("# a comment\ninstructions: []\n")
    monkeypatch.setattr("sys.stdin", io.StringIO('{"instructions": [1]}'))

    assert read_document(str(tmp_path / "a.json")) == {"instructions": []}
    assert read_document(str(tmp_path / "b.yaml")) == {"instructions": []}
    assert read_document(str(tmp_path / "c.txt")) == {"instructions": []}
    assert read_document("-") == {"instructions": [1]}


def test_unreadable_documents_are_input_problems(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("  \n")
    (tmp_path / "bad.yml").write_text("a: [b\n")
    with pytest.raises(InputProblem, match=r"empty\.json is empty"):
        read_document(str(tmp_path / "empty.json"))
    with pytest.raises(InputProblem, match=r"bad\.yml is not valid YAML"):
        read_document(str(tmp_path / "bad.yml"))
    with pytest.raises(InputProblem, match="cannot read"):
        read_document(str(tmp_path / "missing.json"))


def detail(status: str, step: str, root: str, error: str | None = None) -> RunDetail:
    return RunDetail.model_validate(
        {
            "run_id": "r1",
            "status": status,
            "created_at": 0.0,
            "started_at": 1.0,
            "ended_at": 3.0 if status in {"SUCCESS", "FAILURE"} else None,
            "error": error,
            "instructions": [
                {
                    "path": "instructions[0]",
                    "operation": "dict_to_list",
                    "status": root,
                    "error": error,
                    "steps": [
                        {
                            "path": "instructions[0].parameters.data",
                            "operation": "import_from_local",
                            "status": step,
                        }
                    ],
                }
            ],
        }
    )


def test_plain_progress_prints_a_line_per_change_only() -> None:
    lines: list[str] = []
    changes = ChangeLog(lines.append)

    changes.update(detail("QUEUED", "pending", "pending"))
    changes.update(detail("STARTED", "running", "pending"))
    changes.update(detail("STARTED", "running", "pending"))
    changes.update(detail("FAILURE", "succeeded", "failed", error="boom [x]"))

    texts = [line.split("] ", 1)[1] for line in lines]
    assert texts == [
        "run r1 QUEUED",
        "run r1 STARTED",
        "instructions[0].parameters.data  import_from_local  running",
        "instructions[0].parameters.data  import_from_local  succeeded",
        "instructions[0]  dict_to_list  failed: boom [x]",
        "run r1 FAILURE",
    ]


def test_the_terminal_table_shows_user_text_literally() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    console.print(run_table(detail("FAILURE", "succeeded", "failed", error="boom [/] [red]")))
    assert "boom [/] [red]" in out.getvalue()
    assert "└ import_from_local" in out.getvalue()
    assert Display(console).rich


# run --wait follows GET /runs/{id}/events


def test_an_event_stream_is_parsed_into_events_comments_skipped() -> None:
    text = (
        "retry: 1000\n\n: keep-alive\n\n"
        'id: 3\nevent: progress\ndata: {"path": "p", "done": 2,\ndata:  "total": 4}\n\n'
        'id: 9\nevent: end\ndata: {"status": "SUCCESS"}\n\n'
    )
    events = list(parse_sse(iter(text.split("\n"))))
    assert events == [
        RunEvent("3", "progress", {"path": "p", "done": 2, "total": 4}),
        RunEvent("9", "end", {"status": "SUCCESS"}),
    ]


def progress_event(event_id: str, done: int) -> RunEvent:
    data = {"path": "instructions[0].parameters.data", "operation": "import_from_local"}
    return RunEvent(event_id, "progress", {**data, "done": done, "total": 4, "unit": "items"})


def test_run_wait_draws_progress_bars_and_resumes_a_broken_stream() -> None:
    details = iter(
        [detail("STARTED", "running", "pending")] * 3
        + [detail("SUCCESS", "succeeded", "succeeded")] * 2
    )
    asked: list[str | None] = []

    def events(after: str | None) -> Iterator[RunEvent]:
        asked.append(after)
        if after is None:
            yield RunEvent("1", "run", {"status": "STARTED"})
            yield progress_event("2", 1)
            raise ApiUnreachable("the stream broke")
        yield progress_event("3", 4)
        yield RunEvent("4", "end", {"status": "SUCCESS"})

    lines: list[str] = []

    class Plain(Display):
        def line(self, text: str) -> None:
            lines.append(text)

    plain = Plain(Console(file=io.StringIO(), force_terminal=False))
    final = follow_events(lambda: next(details), events, plain, interval=0)

    assert final.status == "SUCCESS"
    assert asked == [None, "2"], "resumed after the last event received"
    bars = [line.split("] ", 1)[1] for line in lines if "items" in line]
    # the step was shown running (from GET /runs) before its bars
    assert bars == [
        "instructions[0].parameters.data  import_from_local  [#####---------------] 1/4 items",
        "instructions[0].parameters.data  import_from_local  [####################] 4/4 items",
    ]
    assert lines[-1].endswith("run r1 SUCCESS")


def test_the_terminal_table_shows_a_bar_for_a_running_instruction() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=140, color_system=None)
    bar = {"instructions[0].parameters.data": Progress(3, 4, "rows")}
    console.print(run_table(detail("STARTED", "running", "pending"), bar))
    assert "[###############-----] 3/4 rows" in out.getvalue()


def test_no_progress_line_after_the_step_was_shown_ended() -> None:
    lines: list[str] = []
    changes = ChangeLog(lines.append)
    changes.update(detail("SUCCESS", "succeeded", "succeeded"))  # GET /runs ahead of the stream
    shown = len(lines)
    changes.progress(progress_event("5", 4), Progress(4, 4, "items"))
    assert len(lines) == shown


def test_rerun_posts_the_mode_and_reads_the_new_run() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = {"run_id": "new", "status_url": "/runs/new", "rerun_of": "old", "from": "all"}
        return httpx.Response(201, json=body)

    client = ConstellationClient("http://api.test", "key", transport=httpx.MockTransport(answer))
    started = client.rerun("old", "all")

    assert (started.run_id, started.rerun_of, started.from_) == ("new", "old", "all")
    assert seen[0].method == "POST" and seen[0].url.path == "/runs/old/rerun"
    assert seen[0].content == b'{"from":"all"}'
