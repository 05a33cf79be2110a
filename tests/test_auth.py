"""API keys per integration, scopes, agent identity, rate limits, /docs and CORS: through the real gateway on
loopback, a real worker and Temporal test server behind it, keys in a real store (SQLite; PostgreSQL too when
BATON_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from temporalio.client import Client

from baton.apps.gateway import create_app
from baton.apps.gateway.credentials import agent_token, key_hash, key_id_of, new_key, read_agent_token
from baton.apps.gateway.rate_limit import TokenBuckets
from baton.settings import Settings
from baton.store.api_keys import active_keys, add_key, list_keys, revoke_key
from baton.store.database import create_engine, migrate_async, session_factory
from tests.test_gateway import _body, _conversation, _running
from tests.test_store import db_url, postgres_prefix  # noqa: F401  (fixtures: SQLite, and PostgreSQL when set)

BOOTSTRAP = "bootstrap-" + uuid.uuid4().hex
SIGNING = "signing-" + uuid.uuid4().hex
CACHE_SECONDS = 0.5


async def _add(url: str, name: str, *scopes: str) -> str:
    made = new_key()
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            await add_key(session, made.key_id, name, list(scopes), made.secret_hash, datetime.now(UTC))
    finally:
        await engine.dispose()
    return made.key


async def _revoke(url: str, key: str) -> bool:
    engine = create_engine(url)
    try:
        async with session_factory(engine).begin() as session:
            return await revoke_key(session, key_id_of(key) or "", datetime.now(UTC))
    finally:
        await engine.dispose()


@pytest.fixture
async def store(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}"
    await migrate_async(url)
    return url


@pytest.fixture
def keyed_settings(task_queue: str, store: str) -> Settings:
    return Settings(
        task_queue=task_queue,
        database_url=store,
        gateway_api_key=BOOTSTRAP,
        gateway_signing_secret=SIGNING,
        gateway_key_cache_seconds=CACHE_SECONDS,
    )


@pytest.fixture
async def gateway(client: Client, keyed_settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with _running(keyed_settings, client) as http:
        yield http


def _as(key: str | None = None, token: str | None = None) -> dict[str, str]:
    headers = {}
    if key is not None:
        headers["X-API-Key"] = key
    if token is not None:
        headers["X-Agent-Token"] = token
    return headers


def _token(agent: str, integration: str = "zendesk", seconds: int = 600, secret: str = SIGNING) -> str:
    return agent_token(secret.encode(), integration, agent, int(time.time()) + seconds)


async def _escalated(http: httpx.AsyncClient, key: str) -> str:
    conversation = _conversation()
    response = await http.post(
        f"/v1/conversations/{conversation}/messages", json=_body("I want to speak to a person", "m1"), headers=_as(key)
    )
    assert response.status_code == 200, response.text
    assert response.json()["action"] == "escalate"
    return conversation


def _agent_message(agent: str, message_id: str = "a1") -> dict[str, Any]:
    message = {"message_id": message_id, "role": "agent", "agent_id": agent, "text": "Hi, here to help."}
    return {"customer_id": "cust-1", "message": message}


# --- Scopes ------------------------------------------------------------------------------------------------


async def test_a_chat_backend_key_sends_messages_but_cannot_act_as_agent_or_operator(
    gateway: httpx.AsyncClient, store: str
) -> None:
    chat = await _add(store, "chat-backend", "messages")
    conversation = await _escalated(gateway, chat)  # customer messages and their decisions: yes
    url = f"/v1/conversations/{conversation}"
    refused = {
        "pickup": await gateway.post(f"{url}/pickup", json={"agent_id": "mallory"}, headers=_as(chat)),
        "resolve": await gateway.post(
            f"{url}/resolve", json={"agent_id": "mallory", "necessary": False}, headers=_as(chat)
        ),
        "agent message": await gateway.post(f"{url}/messages", json=_agent_message("mallory"), headers=_as(chat)),
        "incident": await gateway.post(
            "/v1/incidents", json={"description": "fake outage", "declared_by": "x"}, headers=_as(chat)
        ),
        "end incident": await gateway.delete("/v1/incidents/current", headers=_as(chat)),
        "operations": await gateway.get("/v1/operations", headers=_as(chat)),
        "read transcript": await gateway.get(url, headers=_as(chat)),
    }
    for what, response in refused.items():
        assert response.status_code == 403, (what, response.status_code, response.text)
        assert "scope" in response.json()["detail"], what
    assert "needs the agent scope" in refused["pickup"].json()["detail"]
    assert "(it has messages)" in refused["incident"].json()["detail"]
    # Reports: /ops and its chart need an operator key, as a header or at sign-in.
    assert (await gateway.get("/ops", headers=_as(chat))).status_code == 401
    assert (await gateway.get("/ops/chart.png", headers=_as(chat))).status_code == 401
    login = await gateway.post("/ops/login", data={"key": chat})
    assert login.status_code == 401 and "baton_ops" not in login.cookies
    # Nothing happened: still waiting, no incident.
    state = (await gateway.get(url, headers=_as(BOOTSTRAP))).json()
    assert state["phase"] == "escalated" and state["escalation"]["agent_id"] is None
    assert (await gateway.get("/v1/operations", headers=_as(BOOTSTRAP))).json()["surge"] is False
    closed = await gateway.post(f"{url}/close", headers=_as(chat))  # a chat backend closes its conversations
    assert closed.status_code == 202


async def test_an_agent_key_acts_for_any_agent_and_a_token_for_its_agent_only(
    gateway: httpx.AsyncClient, store: str
) -> None:
    chat = await _add(store, "chat-backend", "messages")
    helpdesk = await _add(store, "zendesk", "agent")
    first = await _escalated(gateway, chat)
    picked = await gateway.post(f"/v1/conversations/{first}/pickup", json={"agent_id": "carol"}, headers=_as(helpdesk))
    assert picked.status_code == 200, picked.text
    assert (await gateway.get(f"/v1/conversations/{first}", headers=_as(helpdesk))).status_code == 200
    customer = await gateway.post(f"/v1/conversations/{first}/messages", json=_body("hi", "m2"), headers=_as(helpdesk))
    assert customer.status_code == 403 and "message.role" in customer.text  # an agent key is not a chat backend
    incident = await gateway.post("/v1/incidents", json={"description": "x", "declared_by": "y"}, headers=_as(helpdesk))
    assert incident.status_code == 403

    # A token vouches for alice alone: she may act, nobody else through it.
    second = await _escalated(gateway, chat)
    url = f"/v1/conversations/{second}"
    alice = _token("alice")
    as_bob = await gateway.post(f"{url}/pickup", json={"agent_id": "bob"}, headers=_as(token=alice))
    assert as_bob.status_code == 403 and "agent_id: the agent token is for another agent" in as_bob.text
    as_alice = await gateway.post(f"{url}/pickup", json={"agent_id": "alice"}, headers=_as(token=alice))
    assert as_alice.status_code == 200, as_alice.text
    spoofed = await gateway.post(f"{url}/messages", json=_agent_message("bob"), headers=_as(token=alice))
    assert spoofed.status_code == 403 and "message.agent_id" in spoofed.text
    said = await gateway.post(f"{url}/messages", json=_agent_message("alice"), headers=_as(token=alice))
    assert said.status_code == 200 and said.json()["action"] == "human"
    # With the helpdesk's key, the token still binds the action to alice.
    bound = await gateway.post(
        f"{url}/resolve", json={"agent_id": "bob", "necessary": True}, headers=_as(helpdesk, alice)
    )
    assert bound.status_code == 403
    marked = await gateway.post(f"{url}/missed", json={"agent_id": "bob", "message_id": "m1"}, headers=_as(token=alice))
    assert marked.status_code == 403 and "agent_id" in marked.text
    missed = await gateway.post(f"{url}/missed", json={"agent_id": "bob", "message_id": "m1"}, headers=_as(chat))
    assert missed.status_code == 403  # a chat backend marks nothing as an agent
    operations = await gateway.get("/v1/operations", headers=_as(token=alice))
    assert operations.status_code == 403  # a token is the agent scope only
    resolved = await gateway.post(
        f"{url}/resolve", json={"agent_id": "alice", "necessary": True}, headers=_as(token=alice)
    )
    assert resolved.status_code == 200, resolved.text

    for bad in (
        _token("alice", seconds=-5),  # expired
        _token("alice", secret="another-secret"),  # not signed by the gateway's secret
        _token("alice", seconds=3 * 24 * 3600),  # longer-lived than a token may be
        "v1.garbage",
    ):
        response = await gateway.get(f"/v1/conversations/{second}", headers=_as(token=bad))
        assert response.status_code == 401, bad


async def test_an_operator_key_declares_incidents_reads_conversations_and_opens_ops(
    gateway: httpx.AsyncClient, store: str
) -> None:
    chat = await _add(store, "chat-backend", "messages")
    lead = await _add(store, "support-lead", "operator")
    conversation = await _escalated(gateway, chat)
    assert (await gateway.get(f"/v1/conversations/{conversation}", headers=_as(lead))).status_code == 200
    sent = await gateway.post(f"/v1/conversations/{conversation}/messages", json=_body("x", "m9"), headers=_as(lead))
    assert sent.status_code == 403  # an operator does not speak for the customer
    declared = await gateway.post(
        "/v1/incidents", json={"description": "Payments down", "declared_by": "lead"}, headers=_as(lead)
    )
    assert declared.status_code == 200 and declared.json()["surge"] is True
    assert (await gateway.delete("/v1/incidents/current", headers=_as(lead))).status_code == 200
    assert (await gateway.get("/ops", headers=_as(lead))).status_code == 200
    signed_in = await gateway.post("/ops/login", data={"key": lead})
    assert signed_in.status_code == 303 and lead not in signed_in.headers["set-cookie"]
    assert (await gateway.get("/ops")).status_code == 200  # the session cookie
    # Revoking the key ends its /ops sessions too.
    assert await _revoke(store, lead)
    await asyncio.sleep(CACHE_SECONDS + 0.2)
    assert (await gateway.get("/ops")).status_code == 303
    gateway.cookies.clear()
    # The bootstrap key keeps every scope.
    for method, path in (("GET", "/v1/operations"), ("GET", f"/v1/conversations/{conversation}"), ("GET", "/ops")):
        assert (await gateway.request(method, path, headers=_as(BOOTSTRAP))).status_code == 200, path


async def test_a_revoked_key_is_refused_within_the_cache_time(gateway: httpx.AsyncClient, store: str) -> None:
    lead = await _add(store, "support-lead", "operator")
    assert (await gateway.get("/v1/operations", headers=_as(lead))).status_code == 200
    assert await _revoke(store, lead)
    revoked_at = time.monotonic()
    while (await gateway.get("/v1/operations", headers=_as(lead))).status_code == 200:
        assert time.monotonic() - revoked_at < CACHE_SECONDS + 2, "the revoked key still works"
        await asyncio.sleep(0.05)
    assert time.monotonic() - revoked_at < CACHE_SECONDS + 2
    assert (await gateway.get("/v1/operations", headers=_as(lead))).status_code == 401
    assert not await _revoke(store, lead)  # revoked once


async def test_without_a_bootstrap_key_require_key_still_closes_the_gateway(
    client: Client, task_queue: str, store: str, worker: None
) -> None:
    settings = Settings(task_queue=task_queue, database_url=store, gateway_require_key=True)
    chat = await _add(store, "chat-backend", "messages")
    async with _running(settings, client) as http:
        url = f"/v1/conversations/{_conversation()}/messages"
        assert (await http.post(url, json=_body("hello"))).status_code == 401
        assert (await http.post(url, json=_body("hello"), headers=_as(chat))).status_code == 200
        assert (await http.get("/openapi.json")).status_code == 401


def _v1_routes(app: Any) -> Iterator[Any]:
    """Every /v1 route as FastAPI serves it (nested routers flattened), with its dependencies."""
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        found = contexts() if contexts is not None else [route] if isinstance(route, APIRoute) else []
        for context in found:
            if getattr(context, "path_format", context.path).startswith("/v1/"):
                yield context


def _scopes(dependant: Any) -> Iterator[tuple[str, ...]]:
    for dependency in dependant.dependencies:
        if getattr(dependency.call, "scopes", None):
            yield dependency.call.scopes
        yield from _scopes(dependency)


def test_every_v1_route_declares_its_scopes(client: Client, keyed_settings: Settings) -> None:
    app = create_app(client, keyed_settings)
    declared: dict[str, tuple[str, ...]] = {}
    for route in _v1_routes(app):
        path = getattr(route, "path_format", route.path)
        found = list(_scopes(route.dependant))
        assert len(found) == 1, f"{route.methods} {path} declares {found}, not one set of scopes"
        for method in route.methods:
            declared[f"{method} {path}"] = found[0]
    assert len(declared) >= 9
    assert declared["POST /v1/conversations/{conversation_id}/pickup"] == ("agent",)
    assert declared["POST /v1/conversations/{conversation_id}/resolve"] == ("agent",)
    assert declared["POST /v1/incidents"] == ("operator",)
    assert declared["GET /v1/operations"] == ("operator",)
    assert declared["GET /v1/conversations/{conversation_id}"] == ("operator", "agent")
    assert declared["POST /v1/conversations/{conversation_id}/messages"] == ("messages", "agent")
    assert declared["POST /v1/keys"] == declared["GET /v1/keys"] == ("admin",)


async def test_an_admin_key_manages_keys_over_http_and_nothing_else_does(
    gateway: httpx.AsyncClient, store: str
) -> None:
    admin = await _add(store, "key-admin", "admin")
    lead = await _add(store, "support-lead", "operator")
    assert (await gateway.get("/v1/keys", headers=_as(lead))).status_code == 403
    assert (
        await gateway.post("/v1/keys", json={"name": "x", "scopes": ["admin"]}, headers=_as(lead))
    ).status_code == 403
    bad = await gateway.post("/v1/keys", json={"name": "x", "scopes": ["root"]}, headers=_as(admin))
    assert bad.status_code == 422 and "scopes" in bad.text
    made = await gateway.post("/v1/keys", json={"name": "chat", "scopes": ["messages"]}, headers=_as(admin))
    assert made.status_code == 201, made.text
    new = made.json()
    assert new["scopes"] == ["messages"] and key_id_of(new["key"]) == new["key_id"]
    listed = (await gateway.get("/v1/keys", headers=_as(admin))).json()
    assert new["key_id"] in [key["key_id"] for key in listed] and new["key"] not in str(listed)
    await asyncio.sleep(CACHE_SECONDS + 0.1)  # a new key is read within the cache time
    url = f"/v1/conversations/{_conversation()}/messages"
    assert (await gateway.post(url, json=_body("hello"), headers=_as(new["key"]))).status_code == 200
    assert (await gateway.get("/v1/keys", headers=_as(new["key"]))).status_code == 403
    revoked = await gateway.delete(f"/v1/keys/{new['key_id']}", headers=_as(admin))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await gateway.delete(f"/v1/keys/{new['key_id']}", headers=_as(admin))).status_code == 404
    await asyncio.sleep(CACHE_SECONDS + 0.1)
    assert (await gateway.post(url, json=_body("again"), headers=_as(new["key"]))).status_code == 401


# --- Rate limits ------------------------------------------------------------------------------------------


async def test_600_wrong_key_requests_meet_429_with_retry_after(gateway: httpx.AsyncClient, store: str) -> None:
    lead = await _add(store, "support-lead", "operator")
    statuses: list[int] = []
    retry_after: set[str] = set()

    async def wrong(i: int) -> None:
        key = f"baton_{uuid.uuid4().hex[:12]}_{'x' * 43}" if i % 2 else f"guess-{i}"
        response = await gateway.get("/v1/operations", headers=_as(key))
        statuses.append(response.status_code)
        if response.status_code == 429:
            retry_after.add(response.headers["retry-after"])

    started = time.monotonic()
    for batch in range(0, 600, 50):
        await asyncio.gather(*(wrong(i) for i in range(batch, batch + 50)))
    seconds = time.monotonic() - started
    # The burst (20) is answered 401, plus what refills at 0.5 per second while the 600 are sent.
    allowed = 20 + int(seconds * 0.5) + 1
    assert statuses.count(401) <= allowed, (statuses.count(401), seconds)
    assert statuses.count(429) >= 600 - allowed and set(statuses) == {401, 429}
    assert retry_after and all(int(value) >= 1 for value in retry_after)
    # The right key from the same address still works.
    assert (await gateway.get("/v1/operations", headers=_as(lead))).status_code == 200
    assert (await gateway.get("/v1/operations", headers=_as(BOOTSTRAP))).status_code == 200


async def test_each_key_has_its_own_rate_limit(
    client: Client, keyed_settings: Settings, store: str, worker: None
) -> None:
    settings = keyed_settings.model_copy(update={"gateway_rate_per_second": 1.0, "gateway_rate_burst": 5})
    busy = await _add(store, "busy", "operator")
    quiet = await _add(store, "quiet", "operator")
    async with _running(settings, client) as http:
        statuses = [(await http.get("/v1/operations", headers=_as(busy))) for _ in range(8)]
        codes = [response.status_code for response in statuses]
        assert codes[:5] == [200] * 5 and 429 in codes[5:], codes
        limited = next(response for response in statuses if response.status_code == 429)
        assert int(limited.headers["retry-after"]) >= 1 and "rate limit" in limited.json()["detail"]
        assert (await http.get("/v1/operations", headers=_as(quiet))).status_code == 200


def test_token_buckets_refill_at_their_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(2.0, 3, clock=lambda: now[0], max_buckets=2)
    assert [buckets.take("a") for _ in range(4)] == [0, 0, 0, 1]
    now[0] = 0.5  # one token back
    assert buckets.take("a") == 0 and buckets.take("a") == 1
    assert buckets.take("b") == 0 and buckets.take("c") == 0  # "a" is forgotten: a full bucket again
    assert buckets.take("a") == 0
    assert TokenBuckets(0, 1).take("x") == 0  # 0 per second: no limit


# --- /docs, /openapi.json and CORS --------------------------------------------------------------------------


async def test_docs_and_schema_need_a_key_outside_dev(gateway: httpx.AsyncClient, store: str) -> None:
    chat = await _add(store, "chat-backend", "messages")
    for path in ("/docs", "/openapi.json"):
        assert (await gateway.get(path)).status_code == 401, path
        assert (await gateway.get(path, headers=_as("wrong"))).status_code == 401, path
        assert (await gateway.get(path, headers=_as(chat))).status_code == 200, path  # any scope
    schema = (await gateway.get("/openapi.json", headers=_as(chat))).json()
    assert {"X-API-Key", "X-Agent-Token"} <= {
        scheme.get("name") for scheme in schema["components"]["securitySchemes"].values()
    }


async def test_docs_are_open_in_dev(client: Client, keyed_settings: Settings) -> None:
    app = create_app(client, keyed_settings.model_copy(update={"dev": True}))
    async with _running(keyed_settings, client, app=app) as http:
        assert (await http.get("/openapi.json")).status_code == 200
        assert (await http.get("/v1/operations")).status_code == 401  # only the docs


async def test_cors_is_off_unless_origins_are_configured(client: Client, keyed_settings: Settings) -> None:
    preflight = {"Origin": "https://helpdesk.example", "Access-Control-Request-Method": "POST"}
    async with _running(keyed_settings, client) as http:
        response = await http.options("/v1/operations", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    allowed = keyed_settings.model_copy(update={"gateway_cors_origins": ["https://helpdesk.example"]})
    async with _running(allowed, client) as http:
        response = await http.options(
            "/v1/operations", headers={**preflight, "Access-Control-Request-Headers": "x-api-key"}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://helpdesk.example"
        other = await http.options("/v1/operations", headers={**preflight, "Origin": "https://evil.example"})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


# --- Keys in the store and on the command line --------------------------------------------------------------


async def test_keys_are_stored_hashed_and_revocable(db_url: str) -> None:  # noqa: F811
    await migrate_async(db_url)
    key = await _add(db_url, "chat-backend", "messages", "agent")
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as session:
            [stored] = await list_keys(session)
        assert stored.secret_hash == key_hash(key) and key not in str(stored)
        assert stored.scopes == ("messages", "agent") and stored.revoked_at is None
        assert stored.key_id == key_id_of(key)
        assert await _revoke(db_url, key)
        async with session_factory(engine)() as session:
            assert await active_keys(session) == []
            [revoked] = await list_keys(session)
        assert revoked.revoked_at is not None
    finally:
        await engine.dispose()


def test_baton_keys_create_list_revoke(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from baton.apps.cli import build_parser

    def run(*argv: str) -> tuple[int, str, str]:
        # The command as `baton` runs it, without main()'s logging set-up (which would keep the captured stream).
        args = build_parser().parse_args(list(argv))
        code = args.func(args)
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("keys", "create", "zendesk", "--scope", "agent,operator", "--database-url", store)
    assert code == 0
    key = next(line.split()[-1] for line in out.splitlines() if line.startswith("key:"))
    key_id = key_id_of(key)
    assert key_id is not None and "agent, operator" in out
    code, out, _ = run("keys", "list", "--database-url", store)
    assert code == 0 and key_id in out and "agent,operator" in out and key not in out
    code, _, err = run("keys", "create", "x", "--scope", "root", "--database-url", store)
    assert code == 2 and "scope: 'root' is not one of messages, agent, operator, admin" in err
    assert run("keys", "revoke", key_id, "--database-url", store)[0] == 0
    code, _, err = run("keys", "revoke", key_id, "--database-url", store)
    assert code == 1 and "no active key" in err

    monkeypatch.setenv("BATON_GATEWAY_SIGNING_SECRET", SIGNING)
    from baton.settings import get_settings

    get_settings.cache_clear()
    try:
        code, out, _ = run("keys", "agent-token", "--integration", "zendesk", "--agent", "alice", "--ttl", "60")
    finally:
        get_settings.cache_clear()
    vouched = read_agent_token(SIGNING.encode(), out.strip(), time.time())
    assert code == 0 and (vouched.integration, vouched.agent_id) == ("zendesk", "alice")


def test_a_gateway_that_requires_store_keys_may_listen_beyond_loopback() -> None:
    from baton.apps.gateway.server import UnsafeGatewayConfig, check_exposure

    check_exposure(Settings(gateway_host="0.0.0.0", gateway_require_key=True))
    with pytest.raises(UnsafeGatewayConfig):
        check_exposure(Settings(gateway_host="0.0.0.0"))
