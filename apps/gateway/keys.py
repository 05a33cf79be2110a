"""Key endpoints (the `admin` scope): list, make and revoke integrations' API keys over HTTP, as `baton keys`
does on the command line. The store is imported on first use: importing the gateway loads no SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from baton.apps.gateway.auth import scoped
from baton.apps.gateway.credentials import Scope, new_key
from baton.apps.gateway.models import StorableText, error_responses
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger("baton.gateway")


class KeyBody(StorableText):
    name: Annotated[str, Field(min_length=1, max_length=200, description="The integration, e.g. zendesk")]
    scopes: list[Scope] = Field(min_length=1, max_length=4)


class KeyOut(BaseModel):
    key_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None


class NewKeyOut(KeyOut):
    key: str = Field(description="Shown this once; the store keeps only its SHA-256")


def router(settings: Settings) -> APIRouter:
    routes = APIRouter(dependencies=[scoped("admin")], tags=["keys"])
    engine: list[Any] = []

    def sessions() -> Any:
        from baton.store.database import create_engine, session_factory

        if not engine:
            engine.append(create_engine(settings.database_url))
        return session_factory(engine[0])

    @routes.get("/keys", response_model=list[KeyOut], summary="Every API key: id, name, scopes, made, revoked")
    async def list_all() -> list[KeyOut]:
        from baton.store.api_keys import list_keys

        async with sessions()() as session:
            keys = await list_keys(session)
        return [KeyOut(**{**key.__dict__, "scopes": list(key.scopes)}) for key in keys]

    @routes.post(
        "/keys", response_model=NewKeyOut, status_code=status.HTTP_201_CREATED, summary="Make a key for an integration"
    )
    async def create(body: KeyBody) -> NewKeyOut:
        from baton.store.api_keys import add_key

        made, now = new_key(), datetime.now(UTC)
        scopes = list(dict.fromkeys(body.scopes))
        async with sessions().begin() as session:
            await add_key(session, made.key_id, body.name, scopes, made.secret_hash, now)
        log.warning("api_key_created", key_id=made.key_id, name=body.name, scopes=scopes)
        return NewKeyOut(key_id=made.key_id, name=body.name, scopes=scopes, created_at=now, key=made.key)

    @routes.delete(
        "/keys/{key_id}", response_model=KeyOut, responses=error_responses(404), summary="Revoke a key by its id"
    )
    async def revoke(key_id: str) -> KeyOut:
        from baton.store.api_keys import list_keys, revoke_key

        async with sessions().begin() as session:
            revoked = await revoke_key(session, key_id, datetime.now(UTC))
            found = [key for key in await list_keys(session) if key.key_id == key_id]
        if not revoked or not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"key_id: no active key {key_id!r}")
        log.warning("api_key_revoked", key_id=key_id)
        key = found[0]
        return KeyOut(**{**key.__dict__, "scopes": list(key.scopes)})

    return routes
