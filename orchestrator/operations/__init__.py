"""The catalog of operations: the built-ins, plus the plug-ins of CONSTELLATION_PLUGINS_DIR.

Adding a built-in: write its module, add it to CATALOG. Adding a plug-in: drop a file
in the plug-in folder (docs/adding-an-operation.md); it is loaded on first use.
"""

from orchestrator.operations.compare import compare_predictions
from orchestrator.operations.google_drive import import_from_google_drive
from orchestrator.operations.images import resize_image
from orchestrator.operations.local import import_from_local
from orchestrator.operations.model import delete_model, deploy_model, model_inference
from orchestrator.operations.notebooks import run_notebook
from orchestrator.operations.s3 import export_to_s3, import_from_s3
from orchestrator.operations.transform import batch_formatted_data, dict_to_list
from orchestrator.plugins import PluginCatalog

CATALOG = PluginCatalog(
    [
        import_from_local,
        import_from_google_drive,
        import_from_s3,
        export_to_s3,
        dict_to_list,
        resize_image,
        batch_formatted_data,
        deploy_model,
        model_inference,
        delete_model,
        compare_predictions,
        run_notebook,
    ]
)

__all__ = ["CATALOG"]
