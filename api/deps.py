"""Dependencies as Annotated aliases, so route signatures read like prose."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine

from api.config import Settings
from api.dagster import DagsterClient
from api.errors import Unauthorized
from api.submissions import Submitter
from orchestrator.catalog.registry import Catalog


def from_app_state(name: str) -> Callable[[Request], Any]:
    """A dependency returning what the app factory and lifespan put on `app.state`."""

    def get(request: Request) -> Any:
        return getattr(request.app.state, name)

    return get


SettingsDep = Annotated[Settings, Depends(from_app_state("settings"))]
DagsterDep = Annotated[DagsterClient, Depends(from_app_state("dagster"))]
SubmitterDep = Annotated[Submitter, Depends(from_app_state("submitter"))]


def current_catalog(request: Request) -> Catalog:
    """The app's catalog; a plug-in catalog first re-reads the plug-in files that changed."""
    catalog: Catalog = request.app.state.catalog
    refresh = getattr(catalog, "refresh", None)
    if refresh is not None and refresh():
        request.app.openapi_schema = None  # its request schemas come from the catalog
    return catalog


CatalogDep = Annotated[Catalog, Depends(current_catalog)]
DatabaseDep = Annotated[Engine, Depends(from_app_state("database"))]


def require_api_key(request: Request, settings: SettingsDep) -> None:
    """Bearer API key, compared in constant time against every configured key."""
    if settings.allow_open_access:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    presented = token.strip().encode()
    matches = [
        hmac.compare_digest(presented, k.get_secret_value().encode()) for k in settings.api_keys
    ]
    if not any(matches):
        raise Unauthorized("invalid API key")
