"""Prometheus metrics (api/metrics.py): what the API counted and last read of Dagster."""

from fastapi import APIRouter, Request, Response
from prometheus_client.exposition import choose_encoder

from api.metrics import Metrics

router = APIRouter(tags=["operating"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    """Submissions by answer, runs by outcome, turnaround and per-operation durations,
    the queue and the workers' health, in Prometheus' text format (or OpenMetrics if
    asked for). Rendered from memory: a scrape asks Dagster nothing."""
    registry: Metrics = request.app.state.metrics
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(registry.registry), media_type=content_type)
