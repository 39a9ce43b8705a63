"""Instruction events as the Dagster UI shows them, and progress reports, throttled."""

from __future__ import annotations

from orchestrator.context import ProgressThrottle
from orchestrator.events import InstructionEvent, parse_message
from orchestrator.jobs import instructions_table
from orchestrator.report import RunDetail


def event(**fields: object) -> InstructionEvent:
    base = {"path": "instructions[1]", "operation": "model_inference", "root": "instructions[1]"}
    return InstructionEvent.model_validate({"at": 0.0, **base, **fields})


def test_an_event_reads_as_a_sentence_and_still_parses() -> None:
    done = event(
        kind="succeeded",
        duration_s=2.314,
        output={"type": "predictions", "count": 40, "rows": 40, "requests": 1},
    )
    headline = (
        "instructions[1] model_inference succeeded in 2.31 s: "
        "predictions, 40 items, 40 rows in 1 request"
    )
    message = done.to_message()
    assert message.splitlines()[0] == headline
    assert parse_message(message) == done
    failed = event(kind="failed", attempt=2, duration_s=0.5, error="the model is not ready")
    assert failed.headline() == (
        "instructions[1] model_inference failed (attempt 2) in 0.50 s: the model is not ready"
    )
    progress = event(kind="progress", done=120, total=400, unit="rows")
    assert progress.headline() == "instructions[1] model_inference: 120 of 400 rows done"
    assert parse_message(progress.to_message()) == progress


def test_a_message_of_an_older_run_still_parses() -> None:
    old = (
        "instructions[0] dict_to_list succeeded in 0.010 s -> list\nconstellation-event: "
        '{"kind":"succeeded","path":"instructions[0]","operation":"dict_to_list",'
        '"root":"instructions[0]","at":1.0,"duration_s":0.01}'
    )
    parsed = parse_message(old)
    assert parsed is not None and parsed.kind == "succeeded" and parsed.duration_s == 0.01


def test_progress_is_throttled_but_the_last_report_always_goes_out() -> None:
    now = [0.0]
    sent: list[tuple[int, int | None, str]] = []
    throttle = ProgressThrottle(lambda *report: sent.append(report), 0.25, lambda: now[0])
    for done in range(1, 11):  # ten reports in 0.1 s steps
        throttle(done, 10, "items")
        now[0] += 0.1
    assert [done for done, _, _ in sent] == [1, 4, 7, 10]


def test_the_run_page_table_has_a_row_per_instruction_and_step() -> None:
    detail = RunDetail.model_validate(
        {
            "run_id": "r1",
            "status": "FAILURE",
            "created_at": 0.0,
            "instructions": [
                {
                    "path": "instructions[0]",
                    "operation": "dict_to_list",
                    "status": "failed",
                    "duration_s": 1.5,
                    "error": "bad | input\nsecond line",
                    "steps": [
                        {
                            "path": "instructions[0].parameters.data",
                            "operation": "import_from_local",
                            "status": "succeeded",
                        }
                    ],
                }
            ],
        }
    )
    assert instructions_table(detail).splitlines() == [
        "| instruction | operation | status | time | outcome |",
        "|---|---|---|---|---|",
        "| instructions[0] | `dict_to_list` | **failed** | 1.50&nbsp;s "
        "| bad \\| input second line |",
        "| &nbsp;&nbsp;└ instructions[0].parameters.data | `import_from_local` | succeeded |  |  |",
    ]
