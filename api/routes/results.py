"""Results contents: each instruction's items, their bytes, predictions, a comparison."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.contents import Item, Output, RunContents, byte_range, stream
from api.deps import SettingsDep
from api.errors import InvalidRequest
from api.routes.runs import RunReportsDep
from api.schemas import ErrorBody, ItemPage, ItemPublic, PredictionPage
from orchestrator.artifacts import ArtifactStore

router = APIRouter(prefix="/runs/{run_id}/results/{instruction}", tags=["results"])

INSTRUCTION = "An index (0, 1, ...), a path (instructions[1]) or an instruction's id."
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "An item name that could leave its folder"},
    404: {"model": ErrorBody, "description": "No such run, instruction or item"},
    410: {"model": ErrorBody, "description": "The run's artifacts were removed"},
}


def artifact_store(request: Request) -> ArtifactStore:
    """The app's store (given to create_app, else the one the environment configures)."""
    state = request.app.state
    if getattr(state, "artifacts", None) is None:
        from orchestrator.resources import ArtifactStoreResource

        state.artifacts = ArtifactStoreResource().store()
    store: ArtifactStore = state.artifacts
    return store


def run_contents(
    reports: RunReportsDep, store: Annotated[ArtifactStore, Depends(artifact_store)]
) -> RunContents:
    return RunContents(store, reports)


ContentsDep = Annotated[RunContents, Depends(run_contents)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Most entries in one page.")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page.")]


def items_url(run_id: str, instruction: str) -> str:
    return f"/runs/{quote(run_id)}/results/{quote(instruction, safe='')}/items"


def offset_of(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise InvalidRequest(f"cursor {cursor!r} is not one this route sent (a number)")
    return int(cursor)


@router.get("/items", response_model=ItemPage, responses=ERRORS)
async def list_items(
    run_id: str, instruction: str, contents: ContentsDep, limit: Limit = 100, cursor: Cursor = None
) -> ItemPage:
    """The files of an instruction's output (name, size, media type), a page at a time."""
    output = await contents.output(run_id, instruction)
    items = await contents.items(output)
    start = offset_of(cursor)
    page = items[start : start + limit]
    base = items_url(run_id, instruction)
    return ItemPage(
        run_id=run_id,
        instruction=output.path,
        operation=output.operation,
        type=output.type,
        artifact=output.key,
        items=[
            ItemPublic(
                name=i.name, size=i.size, media_type=i.media_type, url=f"{base}/{quote(i.name)}"
            )
            for i in page
        ],
        next_cursor=str(start + limit) if start + limit < len(items) else None,
    )


@router.get(
    "/items/{name:path}",
    response_class=StreamingResponse,
    responses={
        **ERRORS,
        200: {"content": {"application/octet-stream": {}}, "description": "The bytes"},
        206: {"description": "The bytes of the Range asked for"},
        307: {"description": "With an S3 store and redirects on: a presigned URL"},
        416: {"model": ErrorBody, "description": "A Range outside the item"},
    },
)
async def get_item(
    run_id: str,
    instruction: str,
    name: str,
    contents: ContentsDep,
    settings: SettingsDep,
    range: Annotated[str | None, Header(description="bytes=START-END")] = None,
) -> Response:
    """An item's bytes, streamed, with its media type; `Range: bytes=...` gives a 206."""
    output = await contents.output(run_id, instruction)
    item = await contents.item(output, name)
    return await send(contents, item, range, settings.results_redirect_seconds)


async def send(contents: RunContents, item: Item, header: str | None, redirect_s: int) -> Response:
    if redirect_s > 0:
        url = await run_in_threadpool(
            contents.store.presigned_url, item.key, item.media_type, redirect_s
        )
        if url is not None:
            return RedirectResponse(url, status_code=307)
    asked = byte_range(header, item.size)
    start, end = asked or (0, item.size)
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start)}
    status = 200
    if asked is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{item.size}"
    return StreamingResponse(
        stream(contents.store, item.key, start, end),
        status_code=status,
        media_type=item.media_type,
        headers=headers,
    )


@router.get("/predictions", response_model=PredictionPage, responses=ERRORS)
async def get_predictions(
    run_id: str, instruction: str, contents: ContentsDep, limit: Limit = 100, cursor: Cursor = None
) -> PredictionPage:
    """A model_inference output's predictions.jsonl as JSON records, a page at a time."""
    output = await contents.output(run_id, instruction)
    item = await contents.named_file(output, "path", "predictions")
    records, after = await run_in_threadpool(contents.records, item, offset_of(cursor), limit)
    return PredictionPage(
        run_id=run_id,
        instruction=output.path,
        model=output.manifest.get("model"),
        records=records,
        next_cursor=None if after is None else str(after),
    )


@router.get("/table", responses={**ERRORS, 200: {"content": {"application/json": {}}}})
async def get_table(
    run_id: str,
    instruction: str,
    contents: ContentsDep,
    range: Annotated[str | None, Header()] = None,
) -> Response:
    """A comparison's comparison.json: every figure and every item."""
    return await _comparison_file(run_id, instruction, contents, "table", range)


@router.get("/report", responses={**ERRORS, 200: {"content": {"text/html": {}}}})
async def get_report(
    run_id: str,
    instruction: str,
    contents: ContentsDep,
    range: Annotated[str | None, Header()] = None,
) -> Response:
    """A comparison's report.html, the page a person opens."""
    return await _comparison_file(run_id, instruction, contents, "report", range)


async def _comparison_file(
    run_id: str, instruction: str, contents: RunContents, field: str, header: str | None
) -> Response:
    output: Output = await contents.output(run_id, instruction)
    item = await contents.named_file(output, field, "comparison")
    return await send(contents, item, header, 0)
