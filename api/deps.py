"""Dependencies as Annotated aliases, so route signatures read like prose."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from api.config import Settings
from api.dagster import DagsterClient
from api.errors import Unauthorized
from api.submissions import Submitter
from orchestrator.catalog.registry import Catalog


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_dagster(request: Request) -> DagsterClient:
    dagster: DagsterClient = request.app.state.dagster
    return dagster


def get_submitter(request: Request) -> Submitter:
    submitter: Submitter = request.app.state.submitter
    return submitter


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


SettingsDep = Annotated[Settings, Depends(get_settings)]
DagsterDep = Annotated[DagsterClient, Depends(get_dagster)]
SubmitterDep = Annotated[Submitter, Depends(get_submitter)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]


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
