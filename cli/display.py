"""What the user sees: rich tables on a terminal, plain lines anywhere else (pipes, CI logs)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from api.schemas import InstructionStatus, Problem, RunDetail, StepStatus
from cli.client import ApiUnreachable, RunEvent
from orchestrator.report import TERMINAL_RUN_STATUSES

STYLES = {
    "succeeded": "green",
    "cached": "green",
    "SUCCESS": "bold green",
    "failed": "red",
    "FAILURE": "bold red",
    "running": "cyan",
    "STARTED": "cyan",
    "retrying": "yellow",
    "skipped": "dim",
    "canceled": "yellow",
    "CANCELED": "bold yellow",
}


def seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.2f} s"


def output_note(output: dict[str, Any] | None) -> str:
    """A few words on an instruction's output: its type and size."""
    if not output:
        return ""
    facts = [str(output.get("type", "output"))]
    for key in ("count", "items", "bytes", "batch_sizes"):
        value = output.get(key)
        if isinstance(value, int | list):
            facts.append(f"{key}={value if not isinstance(value, list) else len(value)}")
            break
    return " ".join(facts)


def depth_of(step: StepStatus) -> int:
    """0 for a top-level instruction, 1 for what feeds it, and so on."""
    return step.path.count(".parameters.")


def rows_of(detail: RunDetail) -> list[StepStatus]:
    """Each top-level instruction, then what feeds it, parents before children."""
    rows: list[StepStatus] = []
    for instruction in detail.instructions:
        rows.append(instruction)
        rows.extend(reversed(instruction.steps))  # steps come children first
    return rows


def note_of(step: StepStatus) -> str:
    if step.error:
        return step.error
    if isinstance(step, InstructionStatus):
        return output_note(step.output)
    return ""


def run_duration(detail: RunDetail) -> float | None:
    if detail.started_at is None:
        return None
    return (detail.ended_at or time.time()) - detail.started_at


class Display:
    """Writes to stdout (tables or lines) and stderr (errors)."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False)

    @property
    def rich(self) -> bool:
        return self.console.is_terminal

    def line(self, text: str) -> None:
        click.echo(text)

    def error(self, message: str, problems: Sequence[Problem] = ()) -> None:
        click.echo(f"error: {message}", err=True)
        for problem in problems:
            click.echo(f"  {problem_line(problem)}", err=True)

    def json(self, value: Any) -> None:
        click.echo(json.dumps(value, indent=2))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], title: str) -> None:
        if self.rich:
            table = Table(*headers, title=Text(title), title_justify="left")
            for row in rows:
                table.add_row(*(Text(cell) for cell in row))
            self.console.print(table)
            return
        self.line(title)
        for row in rows:
            self.line("  ".join(cell for cell in row if cell))

    def run(self, detail: RunDetail) -> None:
        """A run's status with every instruction and nested step."""
        if self.rich:
            self.console.print(run_table(detail))
        else:
            for text in run_lines(detail):
                self.line(text)


def problem_line(problem: Problem) -> str:
    text = f"{problem.path}: {problem.message}"
    details = []
    if problem.expected:
        details.append(f"expected {problem.expected}")
    if problem.received:
        details.append(f"received {problem.received}")
    return text + (f" ({'; '.join(details)})" if details else "")


def run_title(detail: RunDetail) -> str:
    took = run_duration(detail)
    return f"run {detail.run_id}  {detail.status}" + (f"  {seconds(took)}" if took else "")


def run_lines(detail: RunDetail) -> list[str]:
    lines = [run_title(detail)]
    for step in rows_of(detail):
        cells = [step.path, step.operation, step.status, seconds(step.duration_s), note_of(step)]
        lines.append("  " * (depth_of(step) + 1) + "  ".join(c for c in cells if c))
    if detail.error:
        lines.append(f"error: {detail.error}")
    return lines


@dataclass(frozen=True)
class Progress:
    """How far a running instruction is, from its latest `progress` event."""

    done: int
    total: int | None
    unit: str

    def bar(self, width: int = 20) -> str:
        """`[#########-----------] 45/100 items`, or `45 items` without a total."""
        if not self.total:
            return f"{self.done} {self.unit}"
        filled = round(min(1.0, self.done / self.total) * width)
        return f"[{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total} {self.unit}"


def run_table(detail: RunDetail, progress: dict[str, Progress] | None = None) -> Table:
    """The run as a table, with a progress bar for each running instruction that
    reports one; every text is literal (no rich markup from user data)."""
    progress = progress or {}
    title = Text(f"run {detail.run_id}  ")
    title.append(detail.status, style=STYLES.get(detail.status, ""))
    if detail.started_at:
        title.append(f"  {seconds(run_duration(detail))}")
    table = Table("instruction", "operation", "status", "time", "note", title=title,
                  title_justify="left")  # fmt: skip
    for step in rows_of(detail):
        depth = depth_of(step)
        table.add_row(
            Text("" if depth else step.path),
            Text(f"{'  ' * (depth - 1)}└ {step.operation}" if depth else step.operation),
            Text(step.status, style=STYLES.get(step.status, "")),
            Text(seconds(step.duration_s)),
            Text(
                progress[step.path].bar()
                if step.status == "running" and step.path in progress
                else note_of(step),
                style="red" if step.error else "",
            ),
        )
    if detail.error:
        table.caption = Text(f"error: {detail.error}", style="red")
        table.caption_justify = "left"
    return table


class ChangeLog:
    """Plain progress: one line each time the run or one of its steps changes status."""

    def __init__(self, echo: Callable[[str], None]):
        self.echo = echo
        self.started = time.monotonic()
        self.seen: dict[str, str] = {}
        self.printed: dict[str, float] = {}  # path -> when its last progress line was written

    def update(self, detail: RunDetail) -> None:
        stamp = f"[{time.monotonic() - self.started:6.1f}s]"
        ended = detail.status in TERMINAL_RUN_STATUSES
        if not ended:
            self._run_line(stamp, detail)
        for step in (s for i in detail.instructions for s in [*i.steps, i]):
            if self.seen.get(step.path, "pending") == step.status:
                continue
            self.seen[step.path] = step.status
            cells = [step.path, step.operation, step.status, seconds(step.duration_s)]
            text = f"{stamp} " + "  ".join(c for c in cells if c)
            note = note_of(step)
            self.echo(text + (f": {note}" if step.error else f"  {note}" if note else ""))
        if ended:
            self._run_line(stamp, detail)

    def progress(self, event: RunEvent, progress: Progress, every: float = 1.0) -> None:
        """A progress line per instruction at most every `every` seconds, and its last one;
        none once its end was shown (the run's status may be ahead of the stream)."""
        now = time.monotonic()
        path = str(event.data.get("path"))
        if self.seen.get(path) != "running" or self.seen.get("run") in TERMINAL_RUN_STATUSES:
            return
        last = self.printed.get(path)
        final = progress.total is not None and progress.done >= progress.total
        if not final and last is not None and now - last < every:
            return
        self.printed[path] = now
        stamp = f"[{now - self.started:6.1f}s]"
        self.echo(f"{stamp} {path}  {event.data.get('operation')}  {progress.bar()}")

    def _run_line(self, stamp: str, detail: RunDetail) -> None:
        if self.seen.get("run") != detail.status:
            self.seen["run"] = detail.status
            self.echo(f"{stamp} run {detail.run_id} {detail.status}")


def follow(
    fetch: Callable[[], RunDetail], display: Display | None, interval: float = 0.5
) -> RunDetail:
    """Poll the run until it ends, showing its progress on `display` (None: silently)."""
    detail = fetch()
    if display is not None and display.rich:
        with Live(run_table(detail), console=display.console, refresh_per_second=8) as live:
            while detail.status not in TERMINAL_RUN_STATUSES:
                time.sleep(interval)
                detail = fetch()
                live.update(run_table(detail))
        return detail
    changes = ChangeLog(display.line) if display is not None else None
    while True:
        if changes is not None:
            changes.update(detail)
        if detail.status in TERMINAL_RUN_STATUSES:
            break
        time.sleep(interval)
        detail = fetch()
    if display is not None and detail.error:
        display.line(f"error: {detail.error}")
    return detail


RECONNECTS = 5  # times a broken event stream is resumed before `run --wait` gives up on it


def follow_events(
    fetch: Callable[[], RunDetail],
    events: Callable[[str | None], Iterator[RunEvent]],
    display: Display | None,
    interval: float = 0.5,
) -> RunDetail:
    """Follow the run from its event stream (GET /runs/{id}/events): the table (or the
    change lines) redrawn at each instruction event, a progress bar per running
    instruction; a broken stream is resumed after its last event id."""
    progress: dict[str, Progress] = {}
    detail = fetch()
    live = display is not None and display.rich
    changes = ChangeLog(display.line) if display is not None and not live else None
    last_id: str | None = None
    screen = (
        Live(run_table(detail), console=display.console, refresh_per_second=8)
        if display is not None and live
        else None
    )
    with screen or nullcontext():
        if changes is not None:
            changes.update(detail)
        for attempt in range(RECONNECTS + 1):
            try:
                for event in events(last_id):
                    last_id = event.id or last_id
                    if event.event == "progress":
                        data = event.data
                        bar = Progress(int(data["done"]), data.get("total"), str(data["unit"]))
                        progress[str(data["path"])] = bar
                        if changes is not None:
                            changes.progress(event, bar)
                    elif event.event in {"run", "instruction", "end"}:
                        detail = fetch()
                        if changes is not None:
                            changes.update(detail)
                    if screen is not None:
                        screen.update(run_table(detail, progress))
                break  # the stream ended with the run
            except ApiUnreachable:
                if attempt == RECONNECTS:
                    raise
                time.sleep(interval)
        while detail.status not in TERMINAL_RUN_STATUSES:  # its record may lag its log
            time.sleep(interval)
            detail = fetch()
        if screen is not None:
            screen.update(run_table(detail, progress))
        elif changes is not None:
            changes.update(detail)
    if changes is not None and detail.error:
        changes.echo(f"error: {detail.error}")
    return detail
