"""The one client for Dagster: GraphQL documents over httpx, every result mapped.

Each document asks for `__typename` and every error member of its union; each
typename is mapped to a return value or a specific ApiError. Transport errors
become DagsterUnavailable with the URL and a hint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from api.errors import DagsterError, DagsterUnavailable, RunNotCancelable, RunNotFound

RUN_FIELDS = "runId status creationTime startTime endTime tags { key value }"

LAUNCH_RUN = """
mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on PresetNotFoundError { message }
    ... on ConflictingExecutionParamsError { message }
    ... on RunConflict { message }
    ... on NoModeProvidedError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}
"""

GET_RUN = f"""
query GetRun($runId: ID!) {{
  runOrError(runId: $runId) {{
    __typename
    ... on Run {{ {RUN_FIELDS} runConfigYaml }}
    ... on RunNotFoundError {{ message }}
    ... on PythonError {{ message }}
  }}
}}
"""

# The same without the run config: what a poll of GET /runs/{id} needs.
GET_RUN_STATUS = f"""
query GetRunStatus($runId: ID!) {{
  runOrError(runId: $runId) {{
    __typename
    ... on Run {{ {RUN_FIELDS} }}
    ... on RunNotFoundError {{ message }}
    ... on PythonError {{ message }}
  }}
}}
"""

RUN_LOGS = """
query RunLogs($runId: ID!, $cursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on MessageEvent { message timestamp stepKey }
        ... on ExecutionStepFailureEvent { error { message } }
        ... on RunFailureEvent { pipelineFailureError: error { message } }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

LIST_RUNS = f"""
query ListRuns($filter: RunsFilter, $cursor: String, $limit: Int) {{
  runsOrError(filter: $filter, cursor: $cursor, limit: $limit) {{
    __typename
    ... on Runs {{ results {{ {RUN_FIELDS} }} }}
    ... on InvalidPipelineRunsFilterError {{ message }}
    ... on PythonError {{ message }}
  }}
}}
"""

TERMINATE_RUN = """
mutation TerminateRun($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunSuccess { run { runId } }
    ... on TerminateRunFailure { message }
    ... on RunNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}
"""

JOB_EXISTS = """
query JobExists($selector: PipelineSelector!) {
  version
  pipelineOrError(params: $selector) {
    __typename
    ... on PipelineNotFoundError { message }
    ... on InvalidSubsetError { message }
    ... on PythonError { message }
  }
}
"""

# What /metrics shows of the instance (api/metrics.py): runs not yet ended by status,
# the daemons' heartbeats and the code locations; one request, whatever scrapes.
ACTIVE_RUN_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
_COUNT = """
  {alias}: runsOrError(filter: {{statuses: [{status}]}}) {{
    __typename
    ... on Runs {{ count }}
    ... on InvalidPipelineRunsFilterError {{ message }}
    ... on PythonError {{ message }}
  }}"""
INSTANCE_HEALTH = (
    "query InstanceHealth {"
    + "".join(_COUNT.format(alias=s.lower(), status=s) for s in ACTIVE_RUN_STATUSES)
    + """
  instance {
    daemonHealth { allDaemonStatuses { daemonType required healthy lastHeartbeatTime } }
  }
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
    ... on PythonError { message }
  }
}
"""
)

RELOAD_LOCATION = """
mutation ReloadLocation($location: String!) {
  reloadRepositoryLocation(repositoryLocationName: $location) {
    __typename
    ... on WorkspaceLocationEntry {
      loadStatus
      locationOrLoadError { __typename ... on PythonError { message } }
    }
    ... on ReloadNotSupported { message }
    ... on RepositoryLocationNotFound { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}
"""

LOG_PAGE = 1000


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    status: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    tags: dict[str, str]
    run_config_yaml: str | None = None

    @classmethod
    def from_graphql(cls, run: dict[str, Any]) -> RunRecord:
        return cls(
            run_id=run["runId"],
            status=run["status"],
            created_at=run["creationTime"],
            started_at=run.get("startTime"),
            ended_at=run.get("endTime"),
            tags={t["key"]: t["value"] for t in run.get("tags", [])},
            run_config_yaml=run.get("runConfigYaml"),
        )


@dataclass(frozen=True)
class DaemonStatus:
    """One Dagster daemon (QUEUED_RUN_COORDINATOR, MONITORING, ...) as its heartbeats say."""

    name: str
    healthy: bool
    last_heartbeat: float | None


@dataclass(frozen=True)
class LocationStatus:
    """A code location of the workspace: loaded, or the error it failed to load with."""

    name: str
    loaded: bool
    error: str | None = None


@dataclass(frozen=True)
class InstanceHealth:
    """Runs not yet ended, by status (every job), the daemons and the code locations."""

    active_runs: dict[str, int]
    daemons: list[DaemonStatus]
    locations: list[LocationStatus]


@dataclass(frozen=True)
class LogLine:
    message: str
    timestamp: float
    step_key: str | None
    kind: str = "LogMessageEvent"  # the event's GraphQL __typename
    error: str | None = None  # set for step and run failures


@dataclass(frozen=True)
class LogPage:
    """Message events of a run after a cursor; pass `cursor` back for the next ones."""

    lines: list[LogLine]
    cursor: str | None
    has_more: bool


class DagsterClient:
    """Dagster's GraphQL API, as the API needs it."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        url: str,
        location: str,
        repository: str,
        job: str,
    ):
        self.http = http
        self.url = url.rstrip("/")
        self.selector = {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "jobName": job,
        }

    async def _query(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        endpoint = f"{self.url}/graphql"
        try:
            response = await self.http.post(
                endpoint, json={"query": document, "variables": variables}
            )
        except httpx.TimeoutException as exc:
            raise DagsterUnavailable(
                f"Dagster at {self.url} did not answer in time ({type(exc).__name__}); if this "
                "was a submission, retry it with the same Idempotency-Key"
            ) from exc
        except httpx.TransportError as exc:
            raise DagsterUnavailable(
                f"Dagster at {self.url} cannot be reached ({type(exc).__name__}); "
                "is the Dagster webserver running?"
            ) from exc
        if response.status_code >= 500:
            raise DagsterUnavailable(
                f"Dagster at {self.url} answered HTTP {response.status_code}; try again shortly"
            )
        try:
            payload = response.json()
        except json.JSONDecodeError as exc:
            raise DagsterError(f"Dagster at {endpoint} answered with non-JSON") from exc
        if payload.get("errors"):
            messages = "; ".join(e.get("message", "?") for e in payload["errors"])
            raise DagsterError(f"Dagster rejected a GraphQL request: {messages}")
        return dict(payload["data"])

    async def launch_run(
        self, run_config: dict[str, Any], tags: dict[str, str], job: str | None = None
    ) -> str:
        """Launch the pipeline job (or another `job` of the same code location)."""
        selector = {**self.selector, "jobName": job} if job else self.selector
        data = await self._query(
            LAUNCH_RUN,
            {
                "executionParams": {
                    "selector": selector,
                    "runConfigData": run_config,
                    "executionMetadata": {
                        "tags": [{"key": k, "value": v} for k, v in tags.items()]
                    },
                }
            },
        )
        result = data["launchRun"]
        kind = result["__typename"]
        if kind == "LaunchRunSuccess":
            return str(result["run"]["runId"])
        if kind == "RunConfigValidationInvalid":
            detail = "; ".join(e["message"] for e in result["errors"])
            raise DagsterError(f"Dagster refused the run config: {detail}")
        if kind == "PipelineNotFoundError":
            raise DagsterUnavailable(
                f"Dagster at {self.url} has no job {selector['jobName']!r} in code location "
                f"{self.selector['repositoryLocationName']!r}: is the code location loaded?"
            )
        raise DagsterError(f"Dagster could not launch the run: {kind}: {_detail(result)}")

    async def get_run(self, run_id: str, *, config: bool = False) -> RunRecord:
        """The run's record; with its run config (`run_config_yaml`) only if `config`."""
        data = await self._query(GET_RUN if config else GET_RUN_STATUS, {"runId": run_id})
        result = data["runOrError"]
        kind = result["__typename"]
        if kind == "Run":
            return RunRecord.from_graphql(result)
        if kind == "RunNotFoundError":
            raise RunNotFound(f"no run with id {run_id!r}")
        raise DagsterError(f"Dagster could not read run {run_id!r}: {_detail(result)}")

    async def run_logs(self, run_id: str) -> list[LogLine]:
        """Every message event of a run, following the cursor."""
        lines: list[LogLine] = []
        cursor = None
        while True:
            page = await self.run_log_page(run_id, cursor)
            lines.extend(page.lines)
            cursor = page.cursor
            if not page.has_more:
                return lines

    async def run_log_page(self, run_id: str, cursor: str | None, limit: int = LOG_PAGE) -> LogPage:
        """The message events of a run after `cursor` (None: from the start), up to `limit`."""
        data = await self._query(RUN_LOGS, {"runId": run_id, "cursor": cursor, "limit": limit})
        result = data["logsForRun"]
        kind = result["__typename"]
        if kind == "RunNotFoundError":
            raise RunNotFound(f"no run with id {run_id!r}")
        if kind != "EventConnection":
            raise DagsterError(f"Dagster could not read the log of {run_id!r}: {_detail(result)}")
        lines: list[LogLine] = []
        for event in result["events"]:
            if "message" not in event:
                continue
            failure = event.get("error") or event.get("pipelineFailureError")
            lines.append(
                LogLine(
                    message=event["message"],
                    timestamp=float(event["timestamp"]) / 1000,
                    step_key=event.get("stepKey"),
                    kind=event["__typename"],
                    error=failure["message"] if failure else None,
                )
            )
        return LogPage(lines, result["cursor"] or cursor, bool(result["hasMore"]))

    async def list_runs(
        self,
        statuses: list[str] | None = None,
        tags: dict[str, str] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        updated_after: float | None = None,
    ) -> list[RunRecord]:
        """The job's runs, newest first; `updated_after`: only those changed since then."""
        run_filter: dict[str, Any] = {"pipelineName": self.selector["jobName"]}
        if statuses:
            run_filter["statuses"] = statuses
        if updated_after is not None:
            run_filter["updatedAfter"] = updated_after
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        data = await self._query(
            LIST_RUNS, {"filter": run_filter, "cursor": cursor, "limit": limit}
        )
        result = data["runsOrError"]
        if result["__typename"] != "Runs":
            raise DagsterError(f"Dagster could not list runs: {_detail(result)}")
        return [RunRecord.from_graphql(run) for run in result["results"]]

    async def terminate_run(self, run_id: str) -> None:
        data = await self._query(TERMINATE_RUN, {"runId": run_id})
        result = data["terminateRun"]
        kind = result["__typename"]
        if kind == "TerminateRunSuccess":
            return
        if kind == "RunNotFoundError":
            raise RunNotFound(f"no run with id {run_id!r}")
        if kind == "TerminateRunFailure":
            raise RunNotCancelable(f"run {run_id!r} cannot be canceled: {result['message']}")
        raise DagsterError(f"Dagster could not cancel run {run_id!r}: {_detail(result)}")

    async def instance_health(self) -> InstanceHealth:
        """Runs not yet ended by status, daemon heartbeats and code locations, at once."""
        data = await self._query(INSTANCE_HEALTH, {})
        active: dict[str, int] = {}
        for status in ACTIVE_RUN_STATUSES:
            result = data[status.lower()]
            if result["__typename"] != "Runs":
                raise DagsterError(f"Dagster could not count {status} runs: {_detail(result)}")
            active[status] = int(result["count"])
        daemons = [
            DaemonStatus(d["daemonType"], bool(d["healthy"]), d["lastHeartbeatTime"])
            for d in data["instance"]["daemonHealth"]["allDaemonStatuses"]
        ]
        workspace = data["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            raise DagsterError(f"Dagster could not list its code locations: {_detail(workspace)}")
        locations = []
        for entry in workspace["locationEntries"]:
            loaded = entry["locationOrLoadError"] or {}
            error = _detail(loaded) if loaded.get("__typename") == "PythonError" else None
            ok = (
                entry["loadStatus"] == "LOADED" and loaded.get("__typename") == "RepositoryLocation"
            )
            locations.append(LocationStatus(entry["name"], ok, error))
        return InstanceHealth(active, daemons, locations)

    async def reload_location(self) -> None:
        """Reload the code location (what the UI's Reload button does): plug-ins load anew."""
        location = self.selector["repositoryLocationName"]
        data = await self._query(RELOAD_LOCATION, {"location": location})
        result = data["reloadRepositoryLocation"]
        kind = result["__typename"]
        if kind != "WorkspaceLocationEntry":
            raise DagsterError(f"Dagster could not reload {location!r}: {kind}: {_detail(result)}")
        loaded = result["locationOrLoadError"] or {}
        if loaded.get("__typename") == "PythonError":
            raise DagsterError(f"code location {location!r} failed to load: {loaded['message']}")

    async def check_ready(self) -> str:
        """Dagster's version, once the job is loaded; DagsterUnavailable otherwise."""
        selector = {
            "repositoryLocationName": self.selector["repositoryLocationName"],
            "repositoryName": self.selector["repositoryName"],
            "pipelineName": self.selector["jobName"],
        }
        data = await self._query(JOB_EXISTS, {"selector": selector})
        kind = data["pipelineOrError"]["__typename"]
        if kind != "Pipeline":
            raise DagsterUnavailable(
                f"Dagster at {self.url} is up but job {selector['pipelineName']!r} is not "
                f"loaded ({kind}: {_detail(data['pipelineOrError'])})"
            )
        return str(data["version"])


def _detail(result: dict[str, Any]) -> str:
    return str(result.get("message") or result.get("__typename"))
