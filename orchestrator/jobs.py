"""build_execute_job: validate and plan the instructions, then execute the plan."""

import threading
from typing import Any

import dagster as dg

from orchestrator.catalog.validation import validate
from orchestrator.errors import InstructionsInvalid
from orchestrator.events import InstructionEvent, output_words, plan_message
from orchestrator.execution import run_plan
from orchestrator.operations import CATALOG
from orchestrator.plan import Plan, PlanNode
from orchestrator.report import RunDetail
from orchestrator.rerun import rerun_options
from orchestrator.resources import (
    ArtifactStoreResource,
    DataRootResource,
    GoogleDriveResource,
    ModelServerResource,
    S3Resource,
    services_from_resources,
)
from orchestrator.settings import OrchestratorSettings

RAW_INPUT_DESCRIPTION = """\
The pipeline: {"instructions": [INSTRUCTION, ...]} (or just the list), the same
document POST /execute takes. An instruction is
{"operation": NAME, "parameters": {NAME: VALUE}}; a parameter value that is itself
an instruction runs first and feeds that parameter. An instruction may carry
"id": "photos"; {"ref": "photos"} as a parameter value elsewhere uses its output,
which runs once. Top-level instructions run in order; after a failure only cleanup
operations (delete_model) still run.
Paste a pipeline from sample_dags.txt here as it is (JSON is YAML too); a bad one
fails this step with every problem and its JSON path in the run's log.
Operations and their parameters: GET /operations on the API, or
`constellation operations`."""

EXAMPLE_INSTRUCTIONS: dict[str, Any] = {
    "instructions": [
        {
            "operation": "batch_formatted_data",
            "parameters": {
                "batch_size": 2,
                "data": {
                    "operation": "resize_image",
                    "parameters": {
                        "width": 64,
                        "height": 64,
                        "data": {
                            "operation": "import_from_local",
                            "parameters": {"path": "examples"},
                        },
                    },
                },
            },
        }
    ]
}


@dg.op(
    config_schema={
        "raw_input": dg.Field(
            dg.Any,
            is_required=False,
            default_value=EXAMPLE_INSTRUCTIONS,
            description=RAW_INPUT_DESCRIPTION,
        )
    },
    out=dg.Out(dict, description="The validated plan."),
)
def generate_dynamic_job_configs(context: dg.OpExecutionContext) -> dict[str, Any]:
    """Validate the instructions against the operation catalog and plan them."""
    settings = OrchestratorSettings()
    CATALOG.refresh()  # a worker that outlives runs (warm) sees plug-in edits too
    for problem in CATALOG.problems:  # why an operation a pipeline names may be missing
        context.log.warning(f"plug-in not loaded: {problem}")
    try:
        plan = validate(context.op_config["raw_input"], CATALOG, settings.limits)
    except InstructionsInvalid as exc:
        # The UI shows a Failure's description only when its event is opened, and its
        # log filter does not search it: log the problems, one JSON path per line.
        context.log.error(str(exc))
        raise dg.Failure(
            description=str(exc),
            metadata={"problems": dg.MetadataValue.json([p.as_dict() for p in exc.problems])},
            allow_retries=False,
        ) from exc
    headline = (
        f"planned {len(plan.roots)} instruction(s), {len(plan.nodes)} operation(s): "
        + ", ".join(_named(plan.nodes[root]) for root in plan.roots)
    )
    context.log.info(plan_message(headline, plan))  # GET /runs/{id} reads the plan here
    return plan.model_dump()


def _named(node: PlanNode) -> str:
    """An instruction in the plan's headline: its operation, and its id if it has one."""
    return node.operation if node.label is None else f"{node.operation} (id {node.label})"


@dg.op(out=dg.Out(dict, description="Each top-level instruction's status and output summary."))
def parse_and_execute_job(
    context: dg.OpExecutionContext,
    plan: dict[str, Any],
    artifact_store: ArtifactStoreResource,
    data_root: DataRootResource,
    s3: S3Resource,
    google_drive: GoogleDriveResource,
    model_server: ModelServerResource,
) -> dict[str, Any]:
    """Execute the plan: nested first, top level in order, cleanup always."""
    settings = OrchestratorSettings()
    lock = threading.Lock()
    rerun_of, use_cache = rerun_options(context.run.tags)

    def emit(event: InstructionEvent) -> None:
        with lock:
            if event.kind == "failed":
                context.log.error(event.to_message())
            elif event.kind == "progress":  # a few a second: below the UI's INFO lines
                context.log.debug(event.to_message())
            else:
                context.log.info(event.to_message())

    with services_from_resources(
        settings, artifact_store, data_root, s3, google_drive, model_server
    ) as services:
        outcome = run_plan(
            Plan.model_validate(plan),
            CATALOG,
            services,
            context.run_id,
            emit=emit,
            log=context.log,
            max_parallel=settings.max_parallel,
            # What Dagster raises in the op when the run is terminated.
            interrupts=(dg.DagsterExecutionInterruptedError, KeyboardInterrupt),
            rerun_of=rerun_of,
            use_cache=use_cache and settings.cache,
        )
    results = outcome.run_results().model_dump(mode="json")
    metadata = {
        "instructions": dg.MetadataValue.md(instructions_table(outcome.detail)),
        "results": dg.MetadataValue.json(results),
    }
    if not outcome.succeeded:
        raise dg.Failure(description=outcome.first_error, metadata=metadata, allow_retries=False)
    context.add_output_metadata(metadata)
    return results


def instructions_table(detail: RunDetail) -> str:
    """Every instruction with its outcome, as a Markdown table for the run's page."""
    rows = ["| instruction | operation | status | time | outcome |", "|---|---|---|---|---|"]
    for instruction in detail.instructions:
        for step in [instruction, *reversed(instruction.steps)]:  # parents before children
            nested = step is not instruction
            outcome = step.error or (
                output_words(instruction.output) if not nested and instruction.output else ""
            )
            took = "" if step.duration_s is None else f"{step.duration_s:.2f}&nbsp;s"
            cells = [
                ("&nbsp;&nbsp;└ " if nested else "") + step.path,
                f"`{step.operation}`",
                f"**{step.status}**" if step.status == "failed" else step.status,
                took,
                outcome,
            ]
            rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: one line, no column breaks."""
    return " ".join(text.split()).replace("|", "\\|")


@dg.job(
    executor_def=dg.in_process_executor,
    description="Run a Constellation pipeline given as nested JSON instructions.",
    tags={"constellation/job": "execute"},
)
def build_execute_job() -> None:
    parse_and_execute_job(generate_dynamic_job_configs())
