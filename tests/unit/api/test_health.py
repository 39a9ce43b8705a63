"""/healthz never asks Dagster, yet names the version /readyz learned from it."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from typing import Any

import httpx

from api.config import Settings
from api.main import create_app


class ReadyDagster:
    async def check_ready(self) -> str:
        return "9.9.9"


def test_healthz_reports_the_version_readyz_saw() -> None:
    app = create_app(Settings(api_keys=[], allow_open_access=True))

    async def calls() -> list[Any]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                before = (await client.get("/healthz")).json()
                app.state.dagster = ReadyDagster()
                ready = (await client.get("/readyz")).json()
                after = (await client.get("/healthz")).json()
        return [before, ready, after]

    before, ready, after = asyncio.run(calls())
    assert before == {"status": "ok", "dagster_version": version("dagster")}
    assert ready == {"status": "ready", "dagster_version": "9.9.9"}
    assert after == {"status": "ok", "dagster_version": "9.9.9"}
