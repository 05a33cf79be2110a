"""The HTTP gateway over real HTTP: uvicorn in the test's event loop, a real worker behind it."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from baton.apps.client import workflow_id
from baton.apps.gateway import create_app, serve, serve_app
from baton.contract.messages import ConversationSummary, Phase
from baton.settings import Settings


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def _running(
    settings: Settings, client: Any, app: FastAPI | None = None, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    sock = _socket()
    port = sock.getsockname()[1]
    ready, stop = asyncio.Event(), asyncio.Event()
    if app is None:
        server = asyncio.create_task(serve(settings, client, ready, stop, sock=sock))
    else:
        server = asyncio.create_task(serve_app(app, "127.0.0.1", port, sock=sock, ready=ready, stop=stop))
    started = asyncio.create_task(ready.wait())
    await asyncio.wait([server, started], timeout=10, return_when=asyncio.FIRST_COMPLETED)
    assert ready.is_set(), f"gateway did not start: {server.exception() if server.done() else 'timeout'}"
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers) as http:
            yield http
    finally:
        stop.set()
        await asyncio.wait_for(server, 10)
        sock.close()


@pytest.fixture
async def http(client: Client, settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with _running(settings, client) as http:
        yield http


def _conversation() -> str:
    return f"conv-{uuid.uuid4().hex[:10]}"


def _body(text: str, message_id: str | None = None, role: str = "customer", **extra: Any) -> dict[str, Any]:
    return {
        "customer_id": "cust-1",
        "message": {"message_id": message_id or uuid.uuid4().hex, "role": role, "text": text},
        **extra,
    }


def _locs(response: httpx.Response) -> list[list[Any]]:
    return [error["loc"] for error in response.json()["detail"]]


async def test_customer_message_gets_a_decision(http: httpx.AsyncClient) -> None:
    conversation = _conversation()
    response = await http.post(
        f"/v1/conversations/{conversation}/messages", json=_body("How do I reset my password?", "m1")
    )
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["message_id"] == "m1"
    assert decision["action"] == "continue"
    assert decision["phase"] == "bot"


async def test_explicit_human_request_escalates_immediately(http: httpx.AsyncClient) -> None:
    conversation = _conversation()
    response = await http.post(f"/v1/conversations/{conversation}/messages", json=_body("I want to talk to a human"))
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["action"] == "escalate"
    assert decision["urgency"] == "immediate"
    assert "explicit_human_request" in [t["id"] for t in decision["triggers"]]
    assert decision["phase"] == "escalated"


async def test_duplicate_message_id_returns_same_decision_and_is_stored_once(http: httpx.AsyncClient) -> None:
    conversation = _conversation()
    url = f"/v1/conversations/{conversation}/messages"
    first = await http.post(url, json=_body("Where is my invoice?", "dup-1"))
    again = await http.post(url, json=_body("Where is my invoice?", "dup-1"))
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()

    state = (await http.get(f"/v1/conversations/{conversation}")).json()
    assert [entry["message_id"] for entry in state["transcript"]] == ["dup-1"]
    assert state["customer_messages"] == 1


async def test_state_returns_the_transcript(http: httpx.AsyncClient) -> None:
    conversation = _conversation()
    url = f"/v1/conversations/{conversation}/messages"
    await http.post(
        url, json=_body("Hi, how do I export my reports?", "a", channel="email", customer={"tier": "enterprise"})
    )
    await http.post(url, json=_body("Let me check that for you.", "b", role="bot"))

    response = await http.get(f"/v1/conversations/{conversation}")
    assert response.status_code == 200, response.text
    state = response.json()
    assert state["start"]["conversation_id"] == conversation
    assert state["start"]["channel"] == "email"
    assert state["start"]["customer"]["tier"] == "enterprise"
    assert [(e["message_id"], e["role"], e["text"]) for e in state["transcript"]] == [
        ("a", "customer", "Hi, how do I export my reports?"),
        ("b", "bot", "Let me check that for you."),
    ]
    assert set(state["decisions"]) == {"a", "b"}


async def test_empty_text_is_rejected_naming_the_field(http: httpx.AsyncClient) -> None:
    response = await http.post(f"/v1/conversations/{_conversation()}/messages", json=_body("   "))
    assert response.status_code == 422
    assert _locs(response) == [["body", "message", "text"]]
    assert "empty" in response.json()["detail"][0]["msg"]


async def test_text_over_the_contract_limit_is_rejected_before_temporal(http: httpx.AsyncClient) -> None:
    conversation = _conversation()
    response = await http.post(f"/v1/conversations/{conversation}/messages", json=_body("x" * 9000))
    assert response.status_code == 422
    assert _locs(response) == [["body", "message", "text"]]
    # Rejected in the gateway, so no conversation was started.
    assert (await http.get(f"/v1/conversations/{conversation}")).status_code == 404


async def test_text_over_the_policy_limit_is_rejected_by_the_workflow(http: httpx.AsyncClient) -> None:
    conversation = _conversation()
    url = f"/v1/conversations/{conversation}/messages"
    assert (await http.post(url, json=_body("hello", "first"))).status_code == 200

    response = await http.post(url, json=_body("x" * 4001, "long"))
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "message", "text"]
    assert "limit of 4000" in error["msg"]

    state = (await http.get(f"/v1/conversations/{conversation}")).json()
    assert [e["message_id"] for e in state["transcript"]] == ["first"]


async def test_first_message_over_the_policy_limit_is_rejected(http: httpx.AsyncClient) -> None:
    response = await http.post(f"/v1/conversations/{_conversation()}/messages", json=_body("x" * 4001))
    assert response.status_code == 422
    assert _locs(response) == [["body", "message", "text"]]


async def test_unknown_role_is_rejected(http: httpx.AsyncClient) -> None:
    response = await http.post(f"/v1/conversations/{_conversation()}/messages", json=_body("hi", role="robot"))
    assert response.status_code == 422
    assert _locs(response) == [["body", "message", "role"]]


async def test_unknown_policy_is_rejected_naming_the_field(http: httpx.AsyncClient) -> None:
    response = await http.post(f"/v1/conversations/{_conversation()}/messages", json=_body("hi", policy="no-such"))
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "policy"]
    assert "no-such" in error["msg"]
    assert "/" not in error["msg"]  # no server paths


@pytest.mark.parametrize("conversation", ["has space", "semi;colon", "x" * 201])
async def test_bad_conversation_id_is_rejected(http: httpx.AsyncClient, conversation: str) -> None:
    response = await http.post(f"/v1/conversations/{conversation}/messages", json=_body("hi"))
    assert response.status_code == 422
    assert _locs(response) == [["path", "conversation_id"]]
    assert (await http.get(f"/v1/conversations/{conversation}")).status_code == 422


async def test_close_completes_the_conversation(http: httpx.AsyncClient, client: Client) -> None:
    conversation = _conversation()
    url = f"/v1/conversations/{conversation}"
    await http.post(f"{url}/messages", json=_body("thanks, that fixed it", "m1"))

    response = await http.post(f"{url}/close", json={"reason": "resolved by bot"})
    assert response.status_code == 202
    assert response.json() == {"conversation_id": conversation, "status": "closing"}

    summary = await client.get_workflow_handle(workflow_id(conversation), result_type=ConversationSummary).result()
    assert summary.closed_reason == "resolved by bot"

    # A completed workflow still answers the query (the worker replays it).
    state = (await http.get(url)).json()
    assert state["phase"] == Phase.CLOSED.value
    assert state["closed_reason"] == "resolved by bot"
    assert [e["message_id"] for e in state["transcript"]] == ["m1"]

    # A retried close is answered, not reported as unknown.
    again = await http.post(f"{url}/close")
    assert again.status_code == 202
    assert again.json()["status"] == "already_closed"

    # A late message is refused with a reason, not taken into a fresh, empty conversation.
    late = await http.post(f"{url}/messages", json=_body("one more thing", "m2"))
    assert late.status_code == 409
    assert "closed" in late.json()["detail"]
    assert [e["message_id"] for e in (await http.get(url)).json()["transcript"]] == ["m1"]


async def test_close_without_body_uses_default_reason(http: httpx.AsyncClient, client: Client) -> None:
    conversation = _conversation()
    await http.post(f"/v1/conversations/{conversation}/messages", json=_body("hello"))
    assert (await http.post(f"/v1/conversations/{conversation}/close")).status_code == 202
    summary = await client.get_workflow_handle(workflow_id(conversation), result_type=ConversationSummary).result()
    assert summary.closed_reason == "closed"


async def test_unknown_conversation_is_404(http: httpx.AsyncClient) -> None:
    conversation = _conversation()
    response = await http.get(f"/v1/conversations/{conversation}")
    assert response.status_code == 404
    assert conversation in response.json()["detail"]
    assert (await http.post(f"/v1/conversations/{conversation}/close")).status_code == 404


async def test_health_and_openapi(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok", "checks": {"temporal": "ok", "database": "ok"}}
    schema = (await http.get("/openapi.json")).json()
    assert set(schema["paths"]) >= {
        "/v1/conversations/{conversation_id}/messages",
        "/v1/conversations/{conversation_id}",
        "/v1/conversations/{conversation_id}/close",
        "/healthz",
    }
    post = schema["paths"]["/v1/conversations/{conversation_id}/messages"]["post"]
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Decision")
    assert (await http.get("/docs")).status_code == 200


async def test_api_key_is_required_when_set(client: Client, task_queue: str, worker: None) -> None:
    keyed = Settings(task_queue=task_queue, gateway_api_key="k")
    conversation = _conversation()
    url = f"/v1/conversations/{conversation}/messages"
    async with _running(keyed, client) as http:
        missing = await http.post(url, json=_body("hello"))
        wrong = await http.post(url, json=_body("hello"), headers={"X-API-Key": "nope"})
        assert missing.status_code == wrong.status_code == 401
        assert (await http.get(f"/v1/conversations/{conversation}")).status_code == 401
        assert (await http.get("/healthz")).status_code == 200

        right = await http.post(url, json=_body("hello"), headers={"X-API-Key": "k"})
        assert right.status_code == 200, right.text
        assert right.json()["action"] == "continue"
        assert (await http.get(f"/v1/conversations/{conversation}", headers={"X-API-Key": "k"})).status_code == 200


class _Unreachable:
    """A client whose every call fails the way the SDK fails when the server is down."""

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    async def execute_update_with_start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        self._fail()

    async def query(self, *args: Any, **kwargs: Any) -> Any:
        self._fail()

    async def signal(self, *args: Any, **kwargs: Any) -> Any:
        self._fail()

    def get_workflow_handle(self, *args: Any, **kwargs: Any) -> _Unreachable:
        return self


async def test_temporal_unavailable_is_503(settings: Settings) -> None:
    conversation = _conversation()
    async with _running(settings, _Unreachable()) as http:
        responses = [
            await http.post(f"/v1/conversations/{conversation}/messages", json=_body("hello")),
            await http.get(f"/v1/conversations/{conversation}"),
            await http.post(f"/v1/conversations/{conversation}/close"),
        ]
    assert [r.status_code for r in responses] == [503, 503, 503]
    assert all("connection refused" in r.json()["detail"] for r in responses)


class _Failing(_Unreachable):
    """A client whose add_message update fails inside the workflow with `cause`."""

    def __init__(self, cause: BaseException) -> None:
        self._cause = cause

    async def execute_update_with_start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        raise WorkflowUpdateFailedError(self._cause)


@pytest.mark.parametrize(
    ("cause", "code", "detail"),
    [
        # Closing between the close signal and the end of the run.
        (ApplicationError("conversation: already closed", type="ConversationClosed"), 409, "already closed"),
        (ApplicationError("text: must not be empty; message_id: must not be blank"), 422, None),
        (ApplicationError("boom", type="RuntimeError"), 500, "boom"),
        (ApplicationError("/srv/policies/default.yaml: cannot read", type="PolicyError"), 500, "default policy"),
    ],
)
async def test_failed_updates_map_to_a_status_with_a_reason(
    settings: Settings, cause: BaseException, code: int, detail: str | None
) -> None:
    async with _running(settings, _Failing(cause)) as http:
        response = await http.post(f"/v1/conversations/{_conversation()}/messages", json=_body("hello"))
    assert response.status_code == code, response.text
    if detail is None:
        assert _locs(response) == [["body", "message", "text"], ["body", "message", "message_id"]]
    else:
        assert detail in response.json()["detail"]


async def test_no_worker_times_out_with_a_reason(client: Client, settings: Settings) -> None:
    # No worker on this task queue: the update is never answered.
    conversation = _conversation()
    app = create_app(client, settings, decision_timeout=0.5)
    try:
        async with _running(settings, client, app=app) as http:
            response = await http.post(f"/v1/conversations/{conversation}/messages", json=_body("hello"))
        # Not a 504: the message may still be applied; the client retries with the same message_id.
        assert response.status_code == 503
        assert response.headers["Retry-After"].isdigit()
        assert "message_id" in response.json()["detail"]
    finally:
        await client.get_workflow_handle(workflow_id(conversation)).terminate("test cleanup")


async def test_logs_carry_ids_and_never_the_text(http: httpx.AsyncClient) -> None:
    conversation = _conversation()
    secret = f"my card number is {uuid.uuid4().hex}"
    with structlog.testing.capture_logs() as logs:
        response = await http.post(f"/v1/conversations/{conversation}/messages", json=_body(secret, "m-log"))
    assert response.status_code == 200
    [decided] = [event for event in logs if event["event"] == "message_decided"]
    assert decided["conversation_id"] == conversation
    assert decided["message_id"] == "m-log"
    assert decided["workflow_id"] == workflow_id(conversation)
    assert secret not in repr(logs)


async def test_agent_pickup_message_and_resolve_over_http(http: httpx.AsyncClient) -> None:
    conversation = _conversation()
    url = f"/v1/conversations/{conversation}"
    decision = (await http.post(f"{url}/messages", json=_body("I want to speak to a person", "m1"))).json()
    assert decision["action"] == "escalate"

    picked = await http.post(f"{url}/pickup", json={"agent_id": "alice", "agent_name": "Alice"})
    assert picked.status_code == 200, picked.text
    handoff = picked.json()
    assert handoff["note"]["summary"] and handoff["transcript"][0]["message_id"] == "m1"
    taken = await http.post(f"{url}/pickup", json={"agent_id": "bob"})
    assert taken.status_code == 409 and "agent_id: the conversation already belongs to agent alice" in taken.text

    reply = await http.post(
        f"{url}/messages",
        json={
            "customer_id": "cus_1",
            "message": {"message_id": "a1", "role": "agent", "agent_id": "alice", "text": "Hi, Alice here."},
        },
    )
    assert reply.status_code == 200 and reply.json()["action"] == "human"
    customer = (await http.post(f"{url}/messages", json=_body("thanks Alice", "m2"))).json()
    assert customer["action"] == "human"
    bot = await http.post(f"{url}/messages", json=_body("Can I help?", "b1", role="bot"))
    assert bot.status_code == 422 and "the bot may not reply" in bot.text

    resolved = await http.post(
        f"{url}/resolve", json={"agent_id": "alice", "necessary": True, "csat": 4, "handback": True}
    )
    assert resolved.status_code == 200
    assert resolved.json()["phase"] == "bot" and resolved.json()["past_escalations"][0]["csat"] == 4
    again = await http.post(f"{url}/resolve", json={"agent_id": "alice", "necessary": True})
    assert again.status_code == 409 and "phase:" in again.text
    assert (await http.post(f"/v1/conversations/{_conversation()}/pickup", json={"agent_id": "a"})).status_code == 404


async def test_operator_declares_and_ends_an_incident_over_http(http: httpx.AsyncClient) -> None:
    assert (await http.get("/v1/operations")).json()["surge"] is False
    declared = await http.post("/v1/incidents", json={"description": "Payments API outage", "declared_by": "ops"})
    assert declared.status_code == 200, declared.text
    assert declared.json()["surge"] is True and declared.json()["reason"] == "incident"
    assert (await http.get("/v1/operations")).json()["incident"]["description"] == "Payments API outage"
    bad = await http.post("/v1/incidents", json={"description": ""})
    assert bad.status_code == 422 and "description" in bad.text
    ended = await http.delete("/v1/incidents/current")
    assert ended.status_code == 200 and ended.json()["surge"] is False
    again = await http.delete("/v1/incidents/current")
    assert again.status_code == 409 and "incident: there is no declared incident" in again.text
