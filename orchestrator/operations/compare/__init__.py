"""compare_predictions: several models' predictions over the same items, side by side.

One module per concept, in the order data flows:

- `predicted`: each model's label per item, read from its predictions.jsonl;
- `truth`: the true labels, from a CSV or JSON file;
- `metrics`: accuracy, per-class precision/recall/F1, confusion, agreement, disagreements;
- `charts`: bars and heat grids as inline SVG;
- `report`: report.html, one self-contained page;
- `operation`: the compare_predictions operation and its parameters.
"""

from orchestrator.operations.compare.operation import (
    ComparePredictionsParams,
    compare_predictions,
)

__all__ = ["ComparePredictionsParams", "compare_predictions"]
