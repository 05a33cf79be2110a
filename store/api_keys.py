"""Gateway API keys in the store: add one (its hash), list them, revoke one, read the active ones.

The functions run on the caller's session and do not commit. Keys are made and checked in
apps/gateway/credentials.py; the store never sees a key, only its SHA-256.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from baton.store.models import ApiKey


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None


def _stored(row: ApiKey) -> StoredKey:
    return StoredKey(row.key_id, row.name, tuple(row.scopes), row.secret_hash, row.created_at, row.revoked_at)


async def add_key(
    session: AsyncSession, key_id: str, name: str, scopes: list[str], secret_hash: str, now: datetime
) -> None:
    session.add(ApiKey(key_id=key_id, name=name, scopes=scopes, secret_hash=secret_hash, created_at=now))
    await session.flush()


async def list_keys(session: AsyncSession) -> list[StoredKey]:
    rows = await session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.key_id))
    return [_stored(row) for row in rows]


async def active_keys(session: AsyncSession) -> list[StoredKey]:
    rows = await session.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None)))
    return [_stored(row) for row in rows]


async def revoke_key(session: AsyncSession, key_id: str, now: datetime) -> bool:
    """Revoke a key; False when there is no such key or it was revoked already (the first time stays)."""
    result = await session.execute(
        update(ApiKey).where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None)).values(revoked_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
