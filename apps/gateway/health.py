"""Liveness, outside /v1 and without the API key."""

from __future__ import annotations

from fastapi import APIRouter

from baton.apps.gateway.models import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    return Health()
