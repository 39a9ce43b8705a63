"""`constellation`: validate, run and follow pipelines through the Constellation API.

Exit codes: 0 success, 1 the run failed or the instructions are invalid,
2 usage error (bad option, unreadable file), 3 the run was canceled,
4 the API refused the request (401, 404, 409, ...), 5 the API or Dagster is
unreachable or unavailable, 130 interrupted while waiting (the run goes on).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from api.schemas import PlannedRef
from cli.client import DEFAULT_API_URL, CliError, ConstellationClient
from cli.display import Display, follow, follow_events
from cli.documents import read_document
from cli.pipelines import pipelines, schedules

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELED = 3
EXIT_INTERRUPTED = 130
EXIT_BY_STATUS = {"SUCCESS": EXIT_OK, "FAILURE": EXIT_FAILED, "CANCELED": EXIT_CANCELED}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    api_url: str
    api_key: str | None
    timeout: float

    def client(self) -> ConstellationClient:
        return ConstellationClient(self.api_url, self.api_key, self.timeout)


pass_settings = click.make_pass_decorator(Settings)


def json_option(fn: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print the API's JSON answer instead of text."
    )(fn)


@click.group(epilog=__doc__.split("\n\n", 1)[1], context_settings={"max_content_width": 100})
@click.option(
    "--api-url",
    envvar="CONSTELLATION_API_URL",
    default=DEFAULT_API_URL,
    show_default=True,
    help="The API's base URL [env: CONSTELLATION_API_URL].",
)
@click.option(
    "--api-key",
    envvar="CONSTELLATION_API_KEY",
    help="Bearer API key [env: CONSTELLATION_API_KEY].",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for each API answer.",
)
@click.version_option(package_name="constellation")
@click.pass_context
def cli(ctx: click.Context, api_url: str, api_key: str | None, timeout: float) -> None:
    """Validate, run and follow Constellation pipelines.

    FILE is a JSON or YAML instruction document ({"instructions": [...]}), or - for
    standard input.
    """
    ctx.obj = Settings(api_url, api_key or None, timeout)


@cli.command()
@click.argument("file")
@json_option
@pass_settings
def validate(settings: Settings, file: str, as_json: bool) -> None:
    """Check FILE without running it; list every problem with its JSON path."""
    document = read_document(file)
    with settings.client() as client:
        plan = client.validate(document)
    display = Display()
    if as_json:
        display.json(plan.model_dump(mode="json"))
        return

    def show(node: Any, depth: int) -> None:
        label = f"  (id {node.id})" if node.id else ""
        display.line(f"{'  ' * depth}{node.path}  {node.operation}{label}")
        for fed in node.inputs.values():
            for child in fed if isinstance(fed, list) else [fed]:
                if isinstance(child, PlannedRef):
                    display.line(f"{'  ' * (depth + 1)}ref {child.ref} -> {child.path}")
                else:
                    show(child, depth + 1)

    display.line(f"valid: {len(plan.instructions)} top-level instruction(s)")
    for instruction in plan.instructions:
        show(instruction, 1)


@cli.command()
@click.argument("file")
@click.option("--wait", "-w", is_flag=True, help="Follow the run until it ends; exit by outcome.")
@click.option("--idempotency-key", help="Retrying with the same key returns the same run.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=0.5,
    show_default=True,
    help="Seconds between status checks with --wait --no-stream.",
)
@click.option(
    "--stream/--no-stream",
    default=True,
    show_default=True,
    help="With --wait, follow the run's event stream (live progress bars) rather than polling.",
)
@json_option
@pass_settings
def run(
    settings: Settings,
    file: str,
    wait: bool,
    idempotency_key: str | None,
    interval: float,
    stream: bool,
    as_json: bool,
) -> int:
    """Start FILE as a run and print its id; with --wait, show its progress until it ends."""
    document = read_document(file)
    display = Display()
    with settings.client() as client:
        started = client.execute(document, idempotency_key)
        if not wait:
            if as_json:
                display.json(started.model_dump(mode="json"))
            else:
                display.line(started.run_id)
            return EXIT_OK
        click.echo(f"started run {started.run_id}", err=True)
        try:
            progress = None if as_json else display
            run_id = started.run_id
            fetch = lambda: client.run(run_id)  # noqa: E731
            if stream:
                events = lambda after: client.events(run_id, after)  # noqa: E731
                detail = follow_events(fetch, events, progress, interval)
            else:
                detail = follow(fetch, progress, interval)
        except KeyboardInterrupt:
            click.echo(
                f"\nstopped following; the run goes on: constellation status {started.run_id}",
                err=True,
            )
            return EXIT_INTERRUPTED
    if as_json:
        display.json(detail.model_dump(mode="json"))
    return EXIT_BY_STATUS.get(detail.status, EXIT_FAILED)


@cli.command()
@click.argument("run_id")
@json_option
@pass_settings
def status(settings: Settings, run_id: str, as_json: bool) -> None:
    """Show a run's status and each instruction's status, timings and error."""
    with settings.client() as client:
        detail = client.run(run_id)
    display = Display()
    if as_json:
        display.json(detail.model_dump(mode="json"))
    else:
        display.run(detail)


@cli.command()
@click.argument("run_id")
@click.option("--instruction", default="", help="Index, path or id; default: every one.")
@click.option("--items", "list_items", is_flag=True, help="List the files of each output.")
@click.option("--predictions", is_flag=True, help="Print predictions as JSON Lines.")
@click.option(
    "--download",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each output's files into DIR/INSTRUCTION/.",
)
@pass_settings
def results(
    settings: Settings,
    run_id: str,
    instruction: str,
    list_items: bool,
    predictions: bool,
    download: Path | None,
) -> None:
    """Print each top-level instruction's output; --items, --predictions or --download
    read its contents through the API."""
    from orchestrator.artifacts import safe_relative_path

    display = Display()
    with settings.client() as client:
        answer = client.results(run_id)
        if not (list_items or predictions or download):
            display.json(answer.model_dump(mode="json"))
            return
        chosen = (
            [instruction]
            if instruction
            else [str(i) for i, r in enumerate(answer.results) if (r.output or {}).get("artifact")]
        )
        for which in chosen:
            base = f"/runs/{run_id}/results/{which}"
            if predictions:
                if (
                    not instruction
                    and (answer.results[int(which)].output or {}).get("type") != "predictions"
                ):
                    continue
                for record in client.pages(f"{base}/predictions", "records"):
                    display.line(json.dumps(record))
                continue
            for item in client.pages(f"{base}/items", "items"):
                if download is not None:
                    target = download / which / safe_relative_path(item["name"])
                    target.parent.mkdir(parents=True, exist_ok=True)
                    client.download(item["url"], target)
                    display.line(f"{target}  {item['size']} bytes")
                else:
                    display.line(f"{which}\t{item['name']}\t{item['size']}\t{item['media_type']}")


@cli.command()
@click.argument("run_id")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Run every instruction again (and read no cache); default: from the failure.",
)
@click.option("--wait", "-w", is_flag=True, help="Follow the new run until it ends.")
@json_option
@pass_settings
def rerun(settings: Settings, run_id: str, everything: bool, wait: bool, as_json: bool) -> int:
    """Run RUN_ID's instructions again as a new run; print its id. From the failure, what
    the old run finished (and still has the artifacts of) is reused and shows `cached`."""
    display = Display()
    with settings.client() as client:
        started = client.rerun(run_id, "all" if everything else "failure")
        if not wait:
            if as_json:
                display.json(started.model_dump(mode="json", by_alias=True))
            else:
                display.line(started.run_id)
            return EXIT_OK
        click.echo(f"started run {started.run_id}, a rerun of {run_id}", err=True)
        new_run = started.run_id
        try:
            detail = follow_events(
                lambda: client.run(new_run),
                lambda after: client.events(new_run, after),
                None if as_json else display,
                0.5,
            )
        except KeyboardInterrupt:
            click.echo(
                f"\nstopped following; the run goes on: constellation status {new_run}", err=True
            )
            return EXIT_INTERRUPTED
    if as_json:
        display.json(detail.model_dump(mode="json"))
    return EXIT_BY_STATUS.get(detail.status, EXIT_FAILED)


@cli.command()
@click.argument("run_id")
@json_option
@pass_settings
def cancel(settings: Settings, run_id: str, as_json: bool) -> None:
    """Ask a run to stop; cleanup operations (delete_model) still run."""
    with settings.client() as client:
        answer = client.cancel(run_id)
    display = Display()
    if as_json:
        display.json(answer.model_dump(mode="json"))
    else:
        display.line(f"run {answer.run_id} {answer.status}")


@cli.command()
@click.option("--status", "statuses", multiple=True, help="Only runs with this status (repeat).")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
@json_option
@pass_settings
def runs(settings: Settings, statuses: tuple[str, ...], limit: int, as_json: bool) -> None:
    """List recent runs, newest first."""
    with settings.client() as client:
        answer = client.runs(list(statuses), limit)
    display = Display()
    if as_json:
        display.json(answer.model_dump(mode="json"))
        return
    rows = [(r.run_id, r.status) for r in answer.runs]
    display.table(["run", "status"], rows, title=f"{len(rows)} run(s)")


@cli.command()
@json_option
@pass_settings
def operations(settings: Settings, as_json: bool) -> None:
    """List the operations with their inputs, output and description."""
    with settings.client() as client:
        answer = client.operations()
    display = Display()
    if as_json:
        display.json(answer.model_dump(mode="json"))
        return
    rows = [
        (
            op.name,
            "(" + ", ".join(op.parameters.get("properties", {})) + ")",
            f"-> {op.output}",
            first_paragraph(op.description),
        )
        for op in answer.operations
    ]
    display.table(
        ["operation", "parameters", "output", "description"],
        rows,
        title=f"{len(rows)} operations",
    )
    for problem in answer.problems:  # plug-ins that could not be loaded
        where = problem.file if problem.line is None else f"{problem.file}:{problem.line}"
        display.line(f"plug-in not loaded: {where}: {problem.message}")


cli.add_command(pipelines)
cli.add_command(schedules)


def first_paragraph(text: str) -> str:
    return " ".join(text.split("\n\n", 1)[0].split())


def main(argv: Sequence[str] | None = None) -> int:
    """The `constellation` command: its exit code, never a traceback for an API error."""
    try:
        code = cli.main(args=argv, prog_name="constellation", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except CliError as exc:
        Display().error(exc.message, exc.problems)
        return exc.exit_code
    return code if isinstance(code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
