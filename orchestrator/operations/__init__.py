"""The catalog of operations. Adding one: write its module, add it to CATALOG."""

from orchestrator.catalog.registry import Catalog
from orchestrator.operations.images import resize_image
from orchestrator.operations.local import import_from_local
from orchestrator.operations.transform import batch_formatted_data, dict_to_list

CATALOG = Catalog(
    [
        import_from_local,
        dict_to_list,
        resize_image,
        batch_formatted_data,
    ]
)

__all__ = ["CATALOG"]
