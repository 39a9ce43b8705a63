"""`constellation pipelines ...` and `constellation schedules ...`: saved pipelines and
their cron schedules through the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
import httpx
from pydantic import BaseModel

from api.saved_schemas import (
    PipelineList,
    PipelinePublic,
    PipelineRunResponse,
    ScheduleList,
    SchedulePublic,
    VersionList,
)
from cli.client import ApiUnreachable, ConstellationClient, InputProblem, refusal
from cli.display import Display
from cli.documents import read_document

as_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the API's JSON answer instead of text."
)
argument_option = click.option(
    "--arg",
    "-a",
    "args",
    multiple=True,
    metavar="NAME=VALUE",
    help="An argument (repeat); VALUE is read as JSON if it is JSON, else as text.",
)


class SavedClient(ConstellationClient):
    """The saved-pipeline and schedule routes."""

    def __enter__(self) -> SavedClient:
        return self

    def pipelines(self) -> PipelineList:
        return PipelineList.model_validate(self._call("GET", "/pipelines"))

    def pipeline(self, name: str, version: int | None = None) -> PipelinePublic:
        params = {"version": version} if version else {}
        return PipelinePublic.model_validate(self._call("GET", f"/pipelines/{name}", params=params))

    def versions(self, name: str) -> VersionList:
        return VersionList.model_validate(self._call("GET", f"/pipelines/{name}/versions"))

    def save(self, name: str, body: Any) -> PipelinePublic:
        return PipelinePublic.model_validate(self._call("PUT", f"/pipelines/{name}", json=body))

    def delete(self, path: str) -> None:
        self._call_empty("DELETE", path)

    def run_pipeline(
        self, name: str, arguments: dict[str, Any], version: int | None, key: str | None
    ) -> PipelineRunResponse:
        headers = {"Idempotency-Key": key} if key else None
        body: dict[str, Any] = {"arguments": arguments}
        if version:
            body["version"] = version
        return PipelineRunResponse.model_validate(
            self._call("POST", f"/pipelines/{name}/runs", json=body, headers=headers)
        )

    def schedules(self, pipeline: str | None) -> ScheduleList:
        params = {"pipeline": pipeline} if pipeline else {}
        return ScheduleList.model_validate(self._call("GET", "/schedules", params=params))

    def schedule(self, name: str) -> SchedulePublic:
        return SchedulePublic.model_validate(self._call("GET", f"/schedules/{name}"))

    def create_schedule(self, body: dict[str, Any]) -> SchedulePublic:
        return SchedulePublic.model_validate(self._call("POST", "/schedules", json=body))

    def set_paused(self, name: str, paused: bool) -> SchedulePublic:
        action = "pause" if paused else "resume"
        return SchedulePublic.model_validate(self._call("POST", f"/schedules/{name}/{action}"))

    def _call_empty(self, method: str, path: str) -> None:
        """A route that answers 204 with no body."""
        try:
            response = self.http.request(method, path)
        except httpx.TransportError as exc:
            raise ApiUnreachable(
                f"cannot reach the API at {self.base_url} ({exc}); is it running?"
            ) from exc
        if response.is_error:
            raise refusal(response)


def answer_out(answer: BaseModel, as_json: bool, human: Callable[[Display], object]) -> None:
    """The API's answer as JSON (`--json`), or as `human` writes it for a person."""
    display = Display()
    if as_json:
        display.json(answer.model_dump(mode="json"))
    else:
        human(display)


def client_of(ctx: click.Context) -> SavedClient:
    settings = ctx.find_root().obj
    return SavedClient(settings.api_url, settings.api_key, settings.timeout)


def parse_arguments(pairs: tuple[str, ...]) -> dict[str, Any]:
    arguments: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise InputProblem(f"--arg {pair!r}: expected NAME=VALUE")
        try:
            arguments[name] = json.loads(text)
        except json.JSONDecodeError:
            arguments[name] = text
    return arguments


@click.group()
def pipelines() -> None:
    """Saved pipelines: versioned documents with {"param": NAME} placeholders."""


@pipelines.command("list")
@as_json_option
@click.pass_context
def list_pipelines(ctx: click.Context, as_json: bool) -> None:
    """List the saved pipelines at their latest version."""
    with client_of(ctx) as client:
        answer = client.pipelines()

    def human(display: Display) -> None:
        rows = [
            (p.name, str(p.version), ", ".join(p.parameters), p.description)
            for p in answer.pipelines
        ]
        display.table(["pipeline", "version", "parameters", "description"], rows,
                      title=f"{len(rows)} pipeline(s)")  # fmt: skip

    answer_out(answer, as_json, human)


@pipelines.command()
@click.argument("name")
@click.option("--version", type=click.IntRange(min=1), help="Default: the latest.")
@as_json_option
@click.pass_context
def show(ctx: click.Context, name: str, version: int | None, as_json: bool) -> None:
    """Show a pipeline: its parameters and instructions."""
    with client_of(ctx) as client:
        answer = client.pipeline(name, version)

    def human(display: Display) -> None:
        display.line(f"{answer.name}  version {answer.version} of {answer.latest_version}")
        if answer.description:
            display.line(answer.description)
        for param, spec in answer.parameters.items():
            default = f" = {json.dumps(spec['default'])}" if "default" in spec else " (required)"
            display.line(f"  {param}: {spec['type']}{default}  {spec.get('description', '')}")
        display.json({"instructions": answer.instructions})

    answer_out(answer, as_json, human)


@pipelines.command()
@click.argument("file")
@click.option("--name", help='Default: the file\'s "name".')
@as_json_option
@click.pass_context
def save(ctx: click.Context, file: str, name: str | None, as_json: bool) -> None:
    """Save FILE (JSON or YAML: name, parameters, instructions) as a new version."""
    body = read_document(file)
    if not isinstance(body, dict):
        raise InputProblem(f"{file}: expected a pipeline object with name and instructions")
    name = name or body.get("name")
    if not isinstance(name, str):
        raise InputProblem(f'{file}: no "name" in it; pass --name')
    with client_of(ctx) as client:
        answer = client.save(name, {**body, "name": name})
    answer_out(answer, as_json, lambda d: d.line(f"{answer.name} version {answer.version}"))


@pipelines.command()
@click.argument("name")
@argument_option
@click.option("--version", type=click.IntRange(min=1), help="Default: the latest.")
@click.option("--idempotency-key", help="Retrying with the same key returns the same run.")
@as_json_option
@click.pass_context
def run(
    ctx: click.Context,
    name: str,
    args: tuple[str, ...],
    version: int | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Run a saved pipeline with arguments; print the run id (`constellation status` follows)."""
    with client_of(ctx) as client:
        answer = client.run_pipeline(name, parse_arguments(args), version, idempotency_key)
    answer_out(answer, as_json, lambda d: d.line(answer.run_id))


@pipelines.command()
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, name: str) -> None:
    """Delete a pipeline (its runs keep naming their version)."""
    with client_of(ctx) as client:
        client.delete(f"/pipelines/{name}")
    Display().line(f"deleted {name}")


@click.group()
def schedules() -> None:
    """Cron schedules of saved pipelines, run by Dagster's daemon (sensor saved_schedules)."""


def show_schedule(display: Display, schedule: SchedulePublic) -> None:
    pinned = f"version {schedule.version}" if schedule.version else "latest version"
    display.line(
        f"{schedule.name}  {schedule.status}  {schedule.pipeline} ({pinned})  "
        f"'{schedule.cron}' {schedule.timezone}  arguments {json.dumps(schedule.arguments)}"
    )
    for tick in schedule.next_ticks:
        display.line(f"  next: {tick.isoformat()}")
    for failure in schedule.failed_ticks:
        display.line(f"  FAILED {failure.tick_at.isoformat()}: {failure.message}")


@schedules.command("list")
@click.option("--pipeline", help="Only this pipeline's schedules.")
@as_json_option
@click.pass_context
def list_schedules(ctx: click.Context, pipeline: str | None, as_json: bool) -> None:
    """List the schedules."""
    with client_of(ctx) as client:
        answer = client.schedules(pipeline)

    def human(display: Display) -> None:
        for schedule in answer.schedules:
            show_schedule(display, schedule)

    answer_out(answer, as_json, human)


@schedules.command("show")
@click.argument("name")
@as_json_option
@click.pass_context
def show_one(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show a schedule, its next ticks and the ticks that could not run."""
    with client_of(ctx) as client:
        answer = client.schedule(name)
    answer_out(answer, as_json, lambda d: show_schedule(d, answer))


@schedules.command()
@click.argument("name")
@click.option("--pipeline", required=True)
@click.option("--cron", required=True, help="5 fields, e.g. '0 3 * * *'.")
@click.option("--timezone", default="UTC", show_default=True)
@argument_option
@click.option("--version", type=click.IntRange(min=1), help="Pin a version; default: latest.")
@click.option("--paused", is_flag=True, help="Create it paused.")
@as_json_option
@click.pass_context
def create(
    ctx: click.Context,
    name: str,
    pipeline: str,
    cron: str,
    timezone: str,
    args: tuple[str, ...],
    version: int | None,
    paused: bool,
    as_json: bool,
) -> None:
    """Run PIPELINE on a cron schedule in a timezone, with arguments."""
    body = {
        "name": name,
        "pipeline": pipeline,
        "cron": cron,
        "timezone": timezone,
        "arguments": parse_arguments(args),
        "version": version,
        "paused": paused,
    }
    with client_of(ctx) as client:
        answer = client.create_schedule(body)
    answer_out(answer, as_json, lambda d: show_schedule(d, answer))


@schedules.command()
@click.argument("name")
@click.pass_context
def pause(ctx: click.Context, name: str) -> None:
    """Stop running the schedule's ticks."""
    with client_of(ctx) as client:
        show_schedule(Display(), client.set_paused(name, True))


@schedules.command()
@click.argument("name")
@click.pass_context
def resume(ctx: click.Context, name: str) -> None:
    """Run the schedule's ticks again, from now on."""
    with client_of(ctx) as client:
        show_schedule(Display(), client.set_paused(name, False))


@schedules.command("delete")
@click.argument("name")
@click.pass_context
def delete_schedule(ctx: click.Context, name: str) -> None:
    """Delete a schedule (its runs stay)."""
    with client_of(ctx) as client:
        client.delete(f"/schedules/{name}")
    Display().line(f"deleted schedule {name}")
