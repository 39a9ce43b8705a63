"""The operation palette: built-ins, plug-ins, the problems of broken plug-ins, notebooks."""

from fastapi import APIRouter, Request

from api.deps import CatalogDep, DagsterDep
from api.schemas import (
    NotebookInfo,
    NotebookList,
    OperationInfo,
    OperationList,
    PluginProblemInfo,
)
from orchestrator.catalog.registry import Catalog
from orchestrator.operations.notebooks import list_notebooks

router = APIRouter(tags=["operations"])


def palette(catalog: Catalog) -> OperationList:
    problems = getattr(catalog, "problems", [])
    return OperationList(
        operations=[OperationInfo(**op) for op in catalog.describe()],
        problems=[PluginProblemInfo(**problem.as_dict()) for problem in problems],
    )


@router.get("/operations", response_model=OperationList)
async def list_operations(catalog: CatalogDep) -> OperationList:
    """Every operation with the JSON Schema of its parameters and its output type, and
    the plug-ins that could not be loaded (`problems`: file, line, message)."""
    return palette(catalog)


@router.post("/operations/reload", response_model=OperationList)
async def reload_operations(
    request: Request, catalog: CatalogDep, dagster: DagsterDep
) -> OperationList:
    """Load the plug-ins again, here and in Dagster's code location (its Reload button):
    added, changed and removed plug-in files take effect without a restart."""
    await dagster.reload_location()
    reload = getattr(catalog, "reload", None)
    if reload is not None:
        reload()
        request.app.openapi_schema = None  # its request schemas come from the catalog
    return palette(catalog)


@router.get("/notebooks", response_model=NotebookList)
async def list_notebook_operations() -> NotebookList:
    """The notebooks `run_notebook` can run (CONSTELLATION_NOTEBOOKS_DIR, each with a cell
    tagged `parameters`), with the parameters they declare as a JSON Schema."""
    notebooks, problems = list_notebooks()
    return NotebookList(
        notebooks=[NotebookInfo(**notebook.describe()) for notebook in notebooks],
        problems=[PluginProblemInfo(**problem.as_dict()) for problem in problems],
    )
