"""`/healthz`, outside /v1 and without the API key: 200 only when Temporal and the store answer.

A gateway that cannot reach Temporal cannot answer one message, so it must not look healthy; the
store is checked too, since the operator endpoints and reports read it. Each check is bounded, and
the answer names what failed (never a password or a URL).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, Field
from temporalio.client import Client

from baton.logging import get_logger
from baton.settings import Settings

log = get_logger("baton.gateway")

CHECK_TIMEOUT_SECONDS = 3.0

CheckResult = Literal["ok", "failed"]


class HealthReport(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, CheckResult] = Field(description="temporal, database: ok or failed")


async def temporal_ok(client: Client) -> bool:
    try:
        return await client.service_client.check_health(timeout=timedelta(seconds=CHECK_TIMEOUT_SECONDS))
    except Exception as err:  # any failure to answer is a failed check
        log.warning("health_check_failed", check="temporal", error=type(err).__name__)
        return False


async def database_ok(url: str) -> bool:
    # Imported here: importing the gateway loads no SQLAlchemy (tests/import_contracts.py); a check pays for it.
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    # No pool: each check opens and closes one connection, as a new request would.
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return True
    except Exception as err:
        log.warning("health_check_failed", check="database", error=type(err).__name__)
        return False
    finally:
        await engine.dispose()


def router(client: Client, settings: Settings) -> APIRouter:
    routes = APIRouter(tags=["health"])

    @routes.get(
        "/healthz",
        response_model=HealthReport,
        responses={503: {"model": HealthReport, "description": "Temporal or the store did not answer"}},
        summary="Healthy when Temporal and the store answer",
    )
    async def healthz(response: Response) -> HealthReport:
        temporal, database = await asyncio.gather(temporal_ok(client), database_ok(settings.database_url))
        checks: dict[str, CheckResult] = {
            "temporal": "ok" if temporal else "failed",
            "database": "ok" if database else "failed",
        }
        healthy = temporal and database
        if not healthy:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return HealthReport(status="ok" if healthy else "unavailable", checks=checks)

    return routes
