"""Who is calling and what they may do: API keys with scopes, agent tokens, and rate limits.

Credentials (docs/security.md):
- `X-API-Key`: an integration's key from the store (`baton keys create`), with its scopes; or the gateway's
  own BATON_GATEWAY_API_KEY, the bootstrap key, which has every scope.
- `X-Agent-Token`: an agent token signed for one agent (credentials.py). Alone it acts with the `agent` scope
  for that agent only; next to a key it binds the key's agent actions to that agent.

With neither a bootstrap key nor BATON_GATEWAY_REQUIRE_KEY the gateway is open, as before keys existed (it then
serves only on loopback unless told otherwise, server.py): every caller has every scope.

Each route declares the scopes that may call it (`scoped`); a caller without one gets 403 naming them.
Requests are rate-limited per key, and wrong credentials per client address, both with 429 and Retry-After.
The store's keys are read at most every BATON_GATEWAY_KEY_CACHE_SECONDS, so a revoked key stops within that.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from fastapi import Depends, HTTPException, Request, status

from baton.apps.gateway.credentials import (
    SCOPES,
    BadToken,
    hash_matches,
    key_id_of,
    read_agent_token,
)
from baton.apps.gateway.rate_limit import TokenBuckets
from baton.logging import get_logger
from baton.settings import Settings

log = get_logger("baton.gateway")

API_KEY_HEADER = "X-API-Key"
AGENT_TOKEN_HEADER = "X-Agent-Token"
BOOTSTRAP = "bootstrap"
OPEN = "open"


@dataclass(frozen=True)
class Caller:
    name: str  # the integration's key name; "bootstrap" for BATON_GATEWAY_API_KEY; "open" without keys
    key_id: str | None
    scopes: frozenset[str]
    agent_id: str | None = None  # an agent token's agent: the only agent this caller may act as

    def allows(self, scopes: Sequence[str]) -> bool:
        return any(scope in self.scopes for scope in scopes)


OPEN_CALLER = Caller(OPEN, None, frozenset(SCOPES))


class KeyLike(Protocol):
    key_id: str
    name: str
    scopes: tuple[str, ...]
    secret_hash: str


Loader = Callable[[], Awaitable[Sequence[KeyLike]]]


def store_loader(database_url: str) -> Loader:
    """Read the active keys from the store (imported on first use: the gateway loads no SQLAlchemy at import)."""
    engine: list[Any] = []

    async def load() -> Sequence[KeyLike]:
        from baton.store.api_keys import active_keys
        from baton.store.database import create_engine, session_factory

        if not engine:
            engine.append(create_engine(database_url))
        async with session_factory(engine[0])() as session:
            return await active_keys(session)

    return load


class KeyRing:
    """The bootstrap key and the store's active keys, re-read at most every `ttl` seconds."""

    def __init__(self, settings: Settings, load: Loader | None = None, *, ttl: float | None = None) -> None:
        self._bootstrap = (settings.gateway_api_key or "").encode()
        self.open = not self._bootstrap and not settings.gateway_require_key
        self._load = load or store_loader(settings.database_url)
        self._ttl = settings.gateway_key_cache_seconds if ttl is None else ttl
        self._keys: dict[str, KeyLike] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        secret = settings.gateway_signing_secret.get_secret_value() if settings.gateway_signing_secret else ""
        self.token_secret = secret.encode() or None
        # /ops sessions: signed by the signing secret, else the bootstrap key, else a secret of this process.
        self.session_secret = self.token_secret or self._bootstrap or secrets.token_bytes(32)

    async def _refresh(self) -> None:
        now = time.monotonic()
        if self._loaded_at is not None and now - self._loaded_at < self._ttl:
            return
        async with self._lock:
            if self._loaded_at is not None and time.monotonic() - self._loaded_at < self._ttl:
                return
            try:
                keys = await self._load()
            except Exception as err:  # the store is down: keep what was read last (or no store keys at all)
                log.warning("api_keys_unavailable", error=type(err).__name__)
                if self._loaded_at is None:
                    return
            else:
                self._keys = {key.key_id: key for key in keys}
            self._loaded_at = time.monotonic()

    async def caller_for_key(self, key: str) -> Caller | None:
        if self._bootstrap and hmac.compare_digest(key.encode(), self._bootstrap):
            return Caller(BOOTSTRAP, BOOTSTRAP, frozenset(SCOPES))
        key_id = key_id_of(key)
        if key_id is None:
            return None
        await self._refresh()
        stored = self._keys.get(key_id)
        if stored is None or not hash_matches(key, stored.secret_hash):
            return None
        return Caller(stored.name, stored.key_id, frozenset(stored.scopes))

    async def is_active(self, key_id: str) -> bool:
        """Whether a key (by id) still works: /ops sessions end when their key is revoked."""
        if key_id == BOOTSTRAP:
            return bool(self._bootstrap)
        await self._refresh()
        return key_id in self._keys

    def caller_for_token(self, token: str) -> Caller | None:
        if self.token_secret is None:
            return None
        try:
            vouched = read_agent_token(self.token_secret, token, time.time())
        except BadToken as err:
            log.info("agent_token_refused", reason=str(err))
            return None
        return Caller(vouched.integration, None, frozenset({"agent"}), vouched.agent_id)


class Guard:
    """Authentication and rate limits for one app: `authenticate` on every protected route, then `scoped`."""

    def __init__(self, settings: Settings, ring: KeyRing | None = None) -> None:
        self.ring = ring or KeyRing(settings)
        self.per_key = TokenBuckets(settings.gateway_rate_per_second, settings.gateway_rate_burst)
        self.failures = TokenBuckets(settings.gateway_failed_auth_per_second, settings.gateway_failed_auth_burst)

    @property
    def open(self) -> bool:
        return self.ring.open

    async def identify(self, request: Request) -> Caller | None:
        """The caller the request's credentials name (None: none given, or wrong ones); no limit applied."""
        if self.ring.open:
            return OPEN_CALLER
        key = request.headers.get(API_KEY_HEADER)
        token = request.headers.get(AGENT_TOKEN_HEADER)
        by_token = self.ring.caller_for_token(token) if token is not None else None
        if token is not None and by_token is None:
            return None
        if key is None:
            return by_token
        by_key = await self.ring.caller_for_key(key)
        if by_key is None or by_token is None:
            return by_key
        # A key and a token: the key's scopes, its agent actions bound to the token's agent.
        return Caller(by_key.name, by_key.key_id, by_key.scopes, by_token.agent_id)

    def refused(self, request: Request) -> HTTPException:
        """A wrong or missing credential: 401, or 429 once the client address has sent too many."""
        address = request.client.host if request.client else "unknown"
        wait = self.failures.take(address)
        if wait:
            return HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many requests with a missing or wrong key from this address",
                headers={"Retry-After": str(wait)},
            )
        log.info("auth_refused", client=address, path=request.url.path)
        return HTTPException(
            status.HTTP_401_UNAUTHORIZED, f"missing or wrong {API_KEY_HEADER} (or {AGENT_TOKEN_HEADER}) header"
        )

    def limited(self, caller: Caller) -> HTTPException | None:
        if caller.name == OPEN:
            return None
        bucket = caller.key_id or f"agent:{caller.name}:{caller.agent_id}"
        wait = self.per_key.take(bucket)
        if not wait:
            return None
        log.warning("rate_limited", integration=caller.name, key_id=caller.key_id)
        return HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"this key's rate limit ({self.per_key.per_second:g} requests per second) is used up",
            headers={"Retry-After": str(wait)},
        )

    async def authenticate(self, request: Request) -> Caller:
        caller = await self.identify(request)
        if caller is None:
            raise self.refused(request)
        too_many = self.limited(caller)
        if too_many is not None:
            raise too_many
        request.state.caller = caller
        # Each request runs in its own task: the integration is named on every line this request logs.
        structlog.contextvars.bind_contextvars(integration=caller.name)
        return caller


def caller_of(request: Request) -> Caller:
    """The caller `Guard.authenticate` found for this request (its router runs it before any route)."""
    return request.state.caller  # type: ignore[no-any-return]


def scoped(*scopes: str) -> Any:
    """A route's dependency: the caller must hold one of `scopes` (403 naming them otherwise)."""
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"scopes: {unknown or 'none given'}; each must be one of {SCOPES}")

    def check(request: Request) -> Caller:
        caller = caller_of(request)
        if not caller.allows(scopes):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this key may not do that: it needs the {' or '.join(scopes)} scope "
                f"(it has {', '.join(sorted(caller.scopes)) or 'none'})",
            )
        return caller

    check.scopes = scopes  # type: ignore[attr-defined]  # read by tests: every route declares its scopes
    return Depends(check)


def check_agent(caller: Caller, agent_id: str | None, field: str = "agent_id") -> None:
    """An agent action: the caller holds the agent scope, and an agent token's agent is the one acting."""
    if "agent" not in caller.scopes:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "an agent's action needs the agent scope")
    if caller.agent_id is not None and agent_id != caller.agent_id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{field}: the agent token is for another agent than {agent_id!r}"
        )


def check_message_role(caller: Caller, role: str, agent_id: str | None) -> None:
    """Customer and bot messages come from a chat backend (messages scope); agent messages from an agent."""
    if role == "agent":
        check_agent(caller, agent_id, "message.agent_id")
    elif "messages" not in caller.scopes:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"message.role: a {role} message needs the messages scope")
