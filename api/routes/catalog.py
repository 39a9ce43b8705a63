"""The operation palette."""

from fastapi import APIRouter

from api.deps import CatalogDep
from api.schemas import OperationInfo, OperationList

router = APIRouter(tags=["operations"])


@router.get("/operations", response_model=OperationList)
async def list_operations(catalog: CatalogDep) -> OperationList:
    """Every operation with the JSON Schema of its parameters and its output type."""
    return OperationList(operations=[OperationInfo(**op) for op in catalog.describe()])
