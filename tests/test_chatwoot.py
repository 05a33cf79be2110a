"""Chatwoot end to end: a loopback Chatwoot (its application API, checking every call's path, JSON shape and
api_access_token), a loopback bot endpoint, the real gateway on loopback, a real worker on the test server.

The script: a customer message answered by the bot -> a message that escalates (customer message, private
note, team, labels, open) -> the dead-zone ladder's wait update -> the agent's assignment (pickup) ->
resolved in Chatwoot, then the CSAT survey's answer -> the customer writes again, escalates, is picked up
and set back to pending (handback). Chatwoot answers some calls with a 500 after doing their work (the
answer lost), and delivers some webhooks twice: nothing is posted or toggled twice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from baton.activities.chatwoot import ChatwootApi
from baton.apps.gateway import chatwoot as gateway_chatwoot
from baton.apps.gateway import create_app
from baton.contract import chatwoot
from baton.contract.messages import ConversationState, Phase
from baton.contract.records import ConversationEndRecord
from baton.settings import Settings
from baton.store import records
from baton.store.models import Conversation
from baton.worker.wiring import build_worker
from tests.clock import skip_time
from tests.conftest import STORE_URL
from tests.loopback import serving
from tests.test_store import db_url, engine, postgres_prefix, sessions  # noqa: F401 (fixtures)

TOKEN = "agent-access-token"
SECRET = "chatwoot-webhook-secret"
BOT_SECRET = "chatwoot-agent-bot-secret"  # an Agent Bot signs with its own
ACCOUNT = 1
TEAMS = {"support": 3, "priority": 5}
CONTACT = {
    "id": 55,
    "name": "Dana Customer",
    "email": "dana@example.com",
    "type": "contact",
    "custom_attributes": {"tier": "pro"},
}
_numbers = itertools.count(1000)


# --- a loopback Chatwoot ----------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any] | None
    status: int


@dataclass
class FakeChatwoot:
    """Chatwoot's application API for conversations, as documented: it checks every request and keeps state."""

    status: dict[int, str] = field(default_factory=dict)
    messages: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    labels: dict[int, list[str]] = field(default_factory=dict)
    team: dict[int, int | None] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    keeps_source_id: bool = True  # older Chatwoot versions drop the field
    # (method, path ending) -> how many times to do the work and then answer 500, as if the answer were lost.
    lose_answers: dict[tuple[str, str], int] = field(default_factory=dict)

    def effective(self, method: str, ending: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.endswith(ending) and c.status in (200, 500)]

    def posted(self, conversation: int) -> list[dict[str, Any]]:
        return [m for m in self.messages.get(conversation, []) if m["message_type"] == 1]

    def app(self) -> FastAPI:
        app = FastAPI()
        base = "/api/v1/accounts/{account}/conversations/{conversation}"

        def check(request: Request, account: int, body: dict[str, Any] | None, shape: dict[str, Any]) -> str | None:
            if request.headers.get("api_access_token") != TOKEN:
                return "api_access_token header missing or wrong"
            if account != ACCOUNT:
                return f"account {account}"
            if body is None:
                return None if not shape else "no JSON body"
            for name, kind in shape.items():
                if name not in body or not isinstance(body[name], kind):
                    return f"{name}: expected {kind}, got {body.get(name)!r}"
            return None

        async def handle(
            request: Request, account: int, shape: dict[str, Any], act: Callable[[dict[str, Any]], Any]
        ) -> JSONResponse:
            raw = await request.body()
            body = json.loads(raw) if raw else None
            problem = check(request, account, body, shape)
            path, method = request.url.path, request.method
            if problem:
                self.problems.append(f"{method} {path}: {problem}")
                self.calls.append(Call(method, path, body, 401 if "api_access_token" in problem else 422))
                return JSONResponse({"error": problem}, status_code=self.calls[-1].status)
            answer = act(body or {})
            lost = next((k for k in self.lose_answers if k[0] == method and path.endswith(k[1])), None)
            if lost is not None and self.lose_answers[lost] > 0:
                self.lose_answers[lost] -= 1
                self.calls.append(Call(method, path, body, 500))
                return JSONResponse({"error": "upstream timeout"}, status_code=500)
            self.calls.append(Call(method, path, body, 200))
            return JSONResponse(answer)

        @app.get(base + "/messages")
        async def list_messages(request: Request, account: int, conversation: int) -> JSONResponse:
            return await handle(
                request, account, {}, lambda _: {"meta": {}, "payload": self.messages.get(conversation, [])[-20:]}
            )

        @app.post(base + "/messages")
        async def create_message(request: Request, account: int, conversation: int) -> JSONResponse:
            def act(body: dict[str, Any]) -> dict[str, Any]:
                if body.get("message_type") != "outgoing":
                    self.problems.append(f"message_type {body.get('message_type')!r}")
                message = {
                    "id": next(_numbers),
                    "content": body["content"],
                    "message_type": 1,
                    "private": body["private"],
                    "source_id": body.get("source_id") if self.keeps_source_id else None,
                    "content_type": body.get("content_type", "text"),
                    "created_at": int(time.time()),
                    "conversation_id": conversation,
                    "sender": {"id": 99, "name": "Baton", "type": "user"},
                }
                self.messages.setdefault(conversation, []).append(message)
                return message

            shape = {"content": str, "message_type": str, "private": bool, "source_id": str}
            return await handle(request, account, shape, act)

        @app.get(base)
        async def show(request: Request, account: int, conversation: int) -> JSONResponse:
            def act(_: dict[str, Any]) -> dict[str, Any]:
                team = self.team.get(conversation)
                return {
                    "id": conversation,
                    "status": self.status.get(conversation, "pending"),
                    "meta": {"team": {"id": team, "name": f"team {team}"} if team else None, "assignee": None},
                    "labels": self.labels.get(conversation, []),
                }

            return await handle(request, account, {}, act)

        @app.post(base + "/assignments")
        async def assign(request: Request, account: int, conversation: int) -> JSONResponse:
            def act(body: dict[str, Any]) -> dict[str, Any]:
                self.team[conversation] = body["team_id"]
                return {"id": body["team_id"], "name": f"team {body['team_id']}"}

            return await handle(request, account, {"team_id": int}, act)

        @app.get(base + "/labels")
        async def get_labels(request: Request, account: int, conversation: int) -> JSONResponse:
            return await handle(request, account, {}, lambda _: {"payload": self.labels.get(conversation, [])})

        @app.post(base + "/labels")
        async def set_labels(request: Request, account: int, conversation: int) -> JSONResponse:
            def act(body: dict[str, Any]) -> dict[str, Any]:
                if not all(isinstance(label, str) for label in body["labels"]):
                    self.problems.append(f"labels {body['labels']!r}")
                self.labels[conversation] = list(body["labels"])
                return {"payload": self.labels[conversation]}

            return await handle(request, account, {"labels": list}, act)

        @app.post(base + "/toggle_status")
        async def toggle(request: Request, account: int, conversation: int) -> JSONResponse:
            def act(body: dict[str, Any]) -> dict[str, Any]:
                if body["status"] not in ("open", "pending", "resolved", "snoozed"):
                    self.problems.append(f"status {body['status']!r}")
                self.status[conversation] = body["status"]
                payload = {"success": True, "current_status": body["status"], "conversation_id": conversation}
                return {"meta": {}, "payload": payload}

            return await handle(request, account, {"status": str}, act)

        return app


@dataclass
class FakeBot:
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/bot")
        async def reply(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append(body)
            if request.headers.get("Authorization") != "Bearer bot-token":
                return JSONResponse({"error": "token"}, status_code=401)
            return JSONResponse({"reply": f"Here is how to do that ({body['text'][:20]})."})

        return app


# --- Chatwoot's webhook payloads (the documented shapes) ------------------------------------------------


def conversation_payload(number: int, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": number,
        "inbox_id": 2,
        "status": status,
        "channel": "Channel::WebWidget",
        "meta": {"sender": CONTACT, "assignee": None, "team": None},
        "labels": [],
        **extra,
    }


def message_event(
    conversation: int,
    message: int,
    content: str,
    *,
    message_type: str = "incoming",
    event: str = "message_created",
    sender: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "event": event,
        "id": message,
        "content": content,
        "created_at": "2026-11-30T01:00:00.000Z",
        "message_type": message_type,
        "content_type": "text",
        "content_attributes": {},
        "private": False,
        "source_id": None,
        "sender": sender or CONTACT,
        "inbox": {"id": 2, "name": "Website"},
        "conversation": conversation_payload(conversation, "pending"),
        "account": {"id": ACCOUNT, "name": "Acme"},
        **extra,
    }


def assigned_event(conversation: int, agent: int, name: str) -> dict[str, Any]:
    assignee = {"id": agent, "name": name, "type": "user"}
    body = conversation_payload(conversation, "open", meta={"sender": CONTACT, "assignee": assignee, "team": None})
    return {**body, "event": "conversation_updated", "changed_attributes": [{"assignee_id": {
        "previous_value": None, "current_value": agent}}]}  # fmt: skip


def status_event(conversation: int, status: str, labels: list[str] | None = None) -> dict[str, Any]:
    body = conversation_payload(conversation, status, labels=labels or [])
    change = [{"status": {"previous_value": "open", "current_value": status}}]
    return {**body, "event": "conversation_status_changed", "changed_attributes": change}


def csat_event(conversation: int, message: int, rating: int) -> dict[str, Any]:
    survey = {"submitted_values": {"csat_survey_response": {"rating": rating, "feedback_message": "quick"}}}
    return message_event(
        conversation,
        message,
        "Please rate the conversation",
        message_type="template",
        event="message_updated",
        content_type="input_csat",
        content_attributes=survey,
    )


async def send(http: httpx.AsyncClient, payload: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    body = json.dumps(payload).encode()
    timestamp = int(time.time())
    signed = {
        gateway_chatwoot.TIMESTAMP_HEADER: str(timestamp),
        gateway_chatwoot.SIGNATURE_HEADER: gateway_chatwoot.sign(secret, timestamp, body),
        gateway_chatwoot.DELIVERY_HEADER: f"delivery-{next(_numbers)}",
        "Content-Type": "application/json",
    }
    return await http.post("/chatwoot/events", content=body, headers=signed)


# --- fixtures ----------------------------------------------------------------------------------------


@dataclass
class Stack:
    http: httpx.AsyncClient
    chatwoot: FakeChatwoot
    bot: FakeBot
    client: Client
    env: WorkflowEnvironment

    async def reply_done(self, conversation_id: str, message_id: str) -> list[str]:
        handle = self.client.get_workflow_handle(chatwoot.reply_workflow_id(conversation_id, message_id))
        with self.env.auto_time_skipping_disabled():
            return await asyncio.wait_for(handle.result(), 60)

    async def state(self, conversation_id: str) -> ConversationState:
        handle = self.client.get_workflow_handle(f"conversation-{conversation_id}")
        return await handle.query("state", result_type=ConversationState)


async def eventually(check: Callable[[], Any], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


@asynccontextmanager
async def running(env: WorkflowEnvironment, task_queue: str, with_bot_endpoint: bool) -> AsyncIterator[Stack]:
    fake, bot = FakeChatwoot(), FakeBot()
    async with serving(fake.app()) as chatwoot_url, serving(bot.app()) as bot_url:
        settings = Settings(
            task_queue=task_queue,
            chatwoot_base_url=chatwoot_url,
            chatwoot_api_token=TOKEN,
            chatwoot_account_id=ACCOUNT,
            chatwoot_webhook_secret=f"{BOT_SECRET}, {SECRET}",
            chatwoot_teams=TEAMS,
            chatwoot_bot_url=f"{bot_url}/bot" if with_bot_endpoint else None,
            chatwoot_bot_token="bot-token",
            chatwoot_baton_user_id=99,
        )
        app = create_app(env.client, settings)
        async with (
            build_worker(env.client, settings),
            serving(app) as gateway_url,
            httpx.AsyncClient(base_url=gateway_url, timeout=60) as http,
        ):
            yield Stack(http, fake, bot, env.client, env)


@pytest.fixture
async def stack(env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[Stack]:
    """Baton forwards customer messages to the bot endpoint and posts its replies."""
    async with running(env, task_queue, with_bot_endpoint=True) as running_stack:
        yield running_stack


@pytest.fixture
async def agent_bot_stack(env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[Stack]:
    """No bot endpoint: an Agent Bot in Chatwoot replies, Baton only decides."""
    async with running(env, task_queue, with_bot_endpoint=False) as running_stack:
        yield running_stack


# --- the tests ---------------------------------------------------------------------------------------


async def test_a_chatwoot_conversation_from_bot_to_handback(stack: Stack) -> None:
    fake, http = stack.chatwoot, stack.http
    number = next(_numbers)
    cid = chatwoot.conversation_id(ACCOUNT, number)
    fake.status[number] = "pending"  # an Agent Bot inbox: conversations start with the bot

    # 1. The bot answers; a duplicate delivery of the webhook changes nothing.
    first = message_event(number, 1, "How do I export my invoices to CSV?")
    answer = await send(http, first)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"event": "message_created", "outcome": "continue", "conversation_id": cid, "detail": ""}
    assert await stack.reply_done(cid, "cw-1") == ["bot", "bot_recorded"]
    assert (await send(http, first)).json()["outcome"] == "continue"
    await stack.reply_done(cid, "cw-1")
    assert stack.bot.requests == [
        {
            "conversation_id": cid,
            "message_id": "cw-1",
            "text": "How do I export my invoices to CSV?",
            "channel": "chatwoot",
        }
    ]
    [bot_reply] = fake.posted(number)
    assert bot_reply["source_id"] == "baton:cw-1:bot" and bot_reply["private"] is False
    assert bot_reply["content"].startswith("Here is how to do that")
    # Chatwoot's echo of Baton's own post is ignored.
    baton_user = {"id": 99, "name": "Baton", "type": "user"}
    echo = message_event(number, bot_reply["id"], bot_reply["content"], message_type="outgoing", sender=baton_user,
                         source_id=bot_reply["source_id"])  # fmt: skip
    assert (await send(http, echo)).json()["detail"] == "Baton's own message"
    dropped = {**echo, "id": bot_reply["id"] + 1000, "source_id": None}  # a Chatwoot that drops source ids
    assert (await send(http, dropped)).json()["detail"] == "Baton's own message"
    state = await stack.state(cid)
    assert [(e.message_id, e.role) for e in state.transcript] == [("cw-1", "customer"), ("cw-1:bot", "bot")]
    assert state.start.customer_id == f"chatwoot-{ACCOUNT}-55" and state.start.customer.tier == "pro"

    # 2. An explicit request for a person escalates. Chatwoot loses the answers to the first note post
    #    and the first toggle (it did the work): the retries post and toggle nothing again.
    # The answers lost: the escalation message's, the note's and the first toggle's.
    fake.lose_answers = {("POST", "/messages"): 2, ("POST", "/toggle_status"): 1}
    escalating = message_event(number, 2, "This is useless. I want to talk to a human agent now!")
    answer = await send(http, escalating)
    assert answer.json()["outcome"] == "escalate"
    await stack.reply_done(cid, "cw-2")
    assert (await send(http, escalating)).json()["outcome"] == "escalate"  # a duplicate webhook
    await stack.reply_done(cid, "cw-2")
    state = await stack.state(cid)
    assert state.phase == Phase.ESCALATED and state.escalation is not None
    posted = fake.posted(number)
    assert [m["source_id"] for m in posted] == ["baton:cw-1:bot", "baton:cw-2:escalation", "baton:cw-2:note"]
    escalation_message, note = posted[1], posted[2]
    assert (
        escalation_message["private"] is False
        and escalation_message["content"] == state.decisions["cw-2"].customer_text
    )
    assert note["private"] is True and note["content"].startswith("**Baton handoff**")
    assert f"Summary: {state.escalation.note.summary}" in note["content"]  # the conversation's own note
    assert "Urgency: immediate" in note["content"]
    assert fake.team[number] == TEAMS[state.escalation.queue or ""]
    trigger_ids = [t.id for t in state.decisions["cw-2"].triggers]
    assert trigger_ids and set(fake.labels[number]) == {*trigger_ids, "urgency-immediate"}
    assert fake.status[number] == "open"
    # Each lost answer was retried, and the retry found the work done.
    assert fake.lose_answers == {("POST", "/messages"): 0, ("POST", "/toggle_status"): 0}
    assert [c.status for c in fake.effective("POST", "/toggle_status")] == [500]  # done once, its answer lost
    assert len(fake.effective("POST", "/assignments")) == 1
    assert len(fake.effective("POST", "/labels")) == 1

    # 3. The dead-zone ladder's wait update reaches Chatwoot.
    await skip_time(stack.env, timedelta(seconds=65))
    wait_update = await eventually(lambda: [m for m in fake.posted(number) if "wait-update" in (m["source_id"] or "")])
    assert wait_update[0]["content"].startswith("Thanks for waiting.")

    # The customer writes while waiting: Baton tells them where they stand; the bot stays silent.
    waiting = await send(http, message_event(number, 21, "Hello? Is anyone there?"))
    assert waiting.json()["outcome"] == "human"
    assert await stack.reply_done(cid, "cw-21") == ["status"]
    [status] = [m for m in fake.posted(number) if m["source_id"] == "baton:cw-21:status"]
    assert status["content"].startswith("A member of our support team will reply here.")
    assert len(stack.bot.requests) == 1

    # 4. An agent is assigned in Chatwoot: Baton's pickup; the duplicate webhook is harmless.
    assigned = assigned_event(number, 7, "Alice")
    assert (await send(http, assigned)).json()["outcome"] == "pickup"
    assert (await send(http, assigned)).json()["outcome"] == "pickup"  # the same agent again: the same pickup
    state = await stack.state(cid)
    assert state.phase == Phase.WITH_AGENT and state.escalation is not None
    assert state.escalation.agent_id == "chatwoot-user-7" and state.escalation.agent_name == "Alice"
    joined = await eventually(lambda: [m for m in fake.posted(number) if "agent-joined" in (m["source_id"] or "")])
    assert len(joined) == 1 and joined[0]["content"].startswith("Alice from our support team")
    # The agent's own reply in Chatwoot is neither a pickup by someone else nor posted again by Baton.
    reply = message_event(number, 3, "Hi Dana, I'm on it.", message_type="outgoing",
                          sender={"id": 7, "name": "Alice", "type": "user"})  # fmt: skip
    assert (await send(http, reply)).json()["outcome"] == "pickup"

    # 5. Resolved in Chatwoot; the CSAT survey's answer arrives afterwards (twice).
    resolved = await send(http, status_event(number, "resolved"))
    assert resolved.json()["outcome"] == "resolved"
    state = await stack.state(cid)
    assert state.phase == Phase.RESOLVED and state.escalation is not None and state.escalation.necessary is True
    for _ in range(2):
        assert (await send(http, csat_event(number, 4, 4))).json()["outcome"] == "csat"
    csat = stack.client.get_workflow_handle(chatwoot.csat_workflow_id(cid, 4, 4))
    with stack.env.auto_time_skipping_disabled():
        recorded = await asyncio.wait_for(csat.result(), 30)
    assert recorded["escalation_id"] == f"{cid}:cw-2"
    with sqlite3.connect(STORE_URL.split("///", 1)[1]) as db:
        rows = db.execute("SELECT csat, necessary FROM escalations WHERE conversation_id = ?", (cid,)).fetchall()
        conversation_csat = db.execute(
            "SELECT conversation_csat FROM conversations WHERE conversation_id = ?", (cid,)
        ).fetchone()
    assert rows == [(4, 1)] and conversation_csat == (4,)

    # 6. The customer writes again and escalates; the agent picks up, then sets it back to pending: handback.
    fake.status[number] = "pending"  # Chatwoot reopens a resolved conversation with the bot
    again = message_event(number, 5, "Sorry, I need to speak to a person again please.")
    assert (await send(http, again)).json()["outcome"] == "escalate"
    await stack.reply_done(cid, "cw-5")
    assert fake.status[number] == "open"
    # This time the pickup is the agent's first reply, without an assignment.
    first_reply = message_event(number, 6, "Hello again, Bo here.", message_type="outgoing",
                                sender={"id": 8, "name": "Bo", "type": "user"})  # fmt: skip
    assert (await send(http, first_reply)).json()["outcome"] == "pickup"
    state = await stack.state(cid)
    assert state.phase == Phase.WITH_AGENT and state.escalation is not None
    assert state.escalation.agent_id == "chatwoot-user-8"
    handback = await send(http, status_event(number, "pending"))
    assert handback.json()["outcome"] == "handback"
    state = await stack.state(cid)
    assert state.phase == Phase.BOT and [e.handback for e in state.past_escalations] == [False, True]
    back = await eventually(lambda: [m for m in fake.posted(number) if "handback" in (m["source_id"] or "")])
    assert back[0]["content"].startswith("You're back with our assistant")

    # Nothing went out twice, and every call had the token and the documented shape.
    keys = [m["source_id"] for m in fake.posted(number)]
    assert len(keys) == len(set(keys)), keys
    assert len(fake.effective("POST", "/toggle_status")) == 2
    assert fake.problems == []


async def test_unsigned_stale_or_forged_events_are_refused(stack: Stack) -> None:
    number = next(_numbers)
    payload = message_event(number, 1, "I want a human")
    body = json.dumps(payload).encode()
    now = int(time.time())
    cases = {
        "unsigned": {},
        "forged": {
            gateway_chatwoot.TIMESTAMP_HEADER: str(now),
            gateway_chatwoot.SIGNATURE_HEADER: gateway_chatwoot.sign("another secret", now, body),
        },
        "stale": {
            gateway_chatwoot.TIMESTAMP_HEADER: str(now - 3600),
            gateway_chatwoot.SIGNATURE_HEADER: gateway_chatwoot.sign(SECRET, now - 3600, body),
        },
        "body changed": {
            gateway_chatwoot.TIMESTAMP_HEADER: str(now),
            gateway_chatwoot.SIGNATURE_HEADER: gateway_chatwoot.sign(SECRET, now, body + b" "),
        },
    }
    for name, headers in cases.items():
        answer = await stack.http.post(
            "/chatwoot/events", content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert answer.status_code == 401, name
    # Nothing reached Baton: the conversation was never started.
    with pytest.raises(RPCError) as missing:
        await stack.state(chatwoot.conversation_id(ACCOUNT, number))
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    assert (await send(stack.http, payload)).status_code == 200  # the same event, signed by the webhook
    assert (await send(stack.http, payload, BOT_SECRET)).status_code == 200  # or by the agent bot


async def test_what_baton_does_not_act_on(stack: Stack) -> None:
    http, number = stack.http, next(_numbers)
    private = message_event(number, 1, "internal remark", private=True, sender={"id": 7, "type": "user"})
    activity = message_event(number, 2, "Conversation was marked resolved", message_type="activity")
    other_account = {**message_event(number, 3, "hello"), "account": {"id": ACCOUNT + 1, "name": "Other"}}
    unknown = {"event": "contact_created", "id": 5}
    outcomes = [(await send(http, p)).json() for p in (private, activity, other_account, unknown)]
    assert [o["outcome"] for o in outcomes] == ["ignored"] * 4
    assert [o["detail"] for o in outcomes] == [
        "private note",
        "activity message",
        f"account {ACCOUNT + 1} is not served here",
        "event not used",
    ]
    # An assignment in a conversation Baton never saw is not an error either.
    assert (await send(http, assigned_event(number, 7, "Alice"))).json()["detail"] == "not a Baton conversation"
    assert stack.chatwoot.calls == []


async def test_with_an_agent_bot_baton_decides_and_records_the_bots_replies(agent_bot_stack: Stack) -> None:
    stack, number = agent_bot_stack, next(_numbers)
    cid = chatwoot.conversation_id(ACCOUNT, number)
    answer = await send(stack.http, message_event(number, 1, "Where can I change my billing address?"))
    assert answer.json() == {"event": "message_created", "outcome": "continue", "conversation_id": cid,
                             "detail": "agent bot"}  # fmt: skip
    bot = {"id": 4, "name": "Helper", "type": "agent_bot"}
    reply = message_event(number, 2, "Go to Settings > Billing.", message_type="outgoing", sender=bot)
    for _ in range(2):  # delivered twice, recorded once
        assert (await send(stack.http, reply)).json()["outcome"] == "bot_reply"
    state = await stack.state(cid)
    assert [(e.message_id, e.role) for e in state.transcript] == [("cw-1", "customer"), ("cw-2", "bot")]
    assert stack.chatwoot.calls == [] and stack.bot.requests == []


async def test_v1_cannot_write_into_a_chatwoot_conversation(stack: Stack) -> None:
    body = {"customer_id": "c-1", "message": {"message_id": "cw-1", "role": "customer", "text": "hello"}}
    answer = await stack.http.post(f"/v1/conversations/{chatwoot.conversation_id(ACCOUNT, 9)}/messages", json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["path", "conversation_id"]
    assert (await stack.http.post("/v1/conversations/my-chatwoot-1/messages", json=body)).status_code == 200


async def test_a_retry_finds_its_post_where_chatwoot_drops_source_ids() -> None:
    fake = FakeChatwoot(keeps_source_id=False)
    async with serving(fake.app()) as url:
        api = ChatwootApi(Settings(chatwoot_base_url=url, chatwoot_api_token=TOKEN))
        target = chatwoot.ChatwootConversation(account_id=ACCOUNT, conversation_id=7)
        first_scheduled = datetime.now(UTC)
        post = chatwoot.ChatwootPost(chatwoot=target, key="c:wait-update:m1:1", content="Thanks for waiting.")
        first = await api.post_once(post, first_scheduled)
        retry = await api.post_once(post, first_scheduled)  # the same activity's retry: same key, same schedule
        assert first.posted and not retry.posted and retry.message == first.message
        # The same words as a later step (its own key, scheduled later) are a new message.
        later = chatwoot.ChatwootPost(chatwoot=target, key="c:wait-update:m1:2", content="Thanks for waiting.")
        assert (await api.post_once(later, first_scheduled + timedelta(minutes=5))).posted
        assert len(fake.posted(7)) == 2

        wrong = ChatwootApi(Settings(chatwoot_base_url=url, chatwoot_api_token="not-the-token"))
        with pytest.raises(ApplicationError) as refused:
            await wrong.post_once(post, first_scheduled)
        assert refused.value.type == "ChatwootRejected" and refused.value.non_retryable
        assert "BATON_CHATWOOT_API_TOKEN" in refused.value.message
        await api.aclose()
        await wrong.aclose()


async def test_after_baton_closed_a_conversation_chatwoot_goes_on_in_a_new_run(agent_bot_stack: Stack) -> None:
    stack, number = agent_bot_stack, next(_numbers)
    first = chatwoot.conversation_id(ACCOUNT, number)
    assert (await send(stack.http, message_event(number, 1, "Hi, quick question"))).json()["conversation_id"] == first
    handle = stack.client.get_workflow_handle(f"conversation-{first}")
    await handle.signal("close", {"reason": "idle"})
    with stack.env.auto_time_skipping_disabled():
        await asyncio.wait_for(handle.result(), 30)
    # Chatwoot keeps the conversation: its next message continues in Baton's next run, and so do later events.
    again = await send(stack.http, message_event(number, 2, "One more thing: I want to talk to a person"))
    assert again.json()["conversation_id"] == f"{first}.r2" and again.json()["outcome"] == "escalate"
    picked = await send(stack.http, assigned_event(number, 7, "Alice"))
    assert picked.json() == {"event": "conversation_updated", "outcome": "pickup", "conversation_id": f"{first}.r2",
                             "detail": ""}  # fmt: skip


def test_the_worker_registers_every_chatwoot_activity_and_workflow() -> None:
    from temporalio import activity

    from baton.worker.wiring import WORKFLOWS, build_activities

    class _Client:  # build_activities only stores the client for later calls
        pass

    registered = {
        activity._Definition.must_from_callable(fn).name
        for fn in build_activities(_Client(), Settings(), "q")  # type: ignore[arg-type]
    }
    declared = {name for name, value in vars(chatwoot.Chatwoot).items() if callable(value) and not name.startswith("_")}
    assert declared and declared <= registered
    assert {w.__name__ for w in WORKFLOWS} >= {chatwoot.REPLY_WORKFLOW, chatwoot.CSAT_WORKFLOW}


async def test_a_late_csat_is_the_conversations_newest_rating_and_survives_its_end_record(
    sessions: async_sessionmaker[AsyncSession],  # noqa: F811 (the store's fixture, on SQLite and PostgreSQL)
) -> None:
    cid = "chatwoot-1-77"
    async with sessions.begin() as session:
        await records.record_conversation_csat(session, cid, 3)  # before any other row: a stub
    async with sessions.begin() as session:
        await records.record_conversation_csat(session, cid, 5)  # the customer changed the rating
    end = ConversationEndRecord(
        conversation_id=cid, closed_at=datetime.now(UTC), outcome="escalated", customer_messages=2
    )
    async with sessions.begin() as session:
        await records.record_conversation_end(session, end)  # no rating of its own: keeps the survey's
    async with sessions() as session:
        row = await session.get(Conversation, cid)
    assert row is not None and row.conversation_csat == 5 and row.outcome == "escalated"


async def test_chatwoot_conversations_get_no_generic_helpdesk_ticket_and_no_agent_echo() -> None:
    from baton.activities.delivery import DeliveryActivities
    from baton.contract.messages import HandoffNote, HelpdeskTicket, OutboundMessage

    fake = FakeChatwoot()
    async with serving(fake.app()) as url:
        settings = Settings(
            chatwoot_base_url=url, chatwoot_api_token=TOKEN, helpdesk_webhook_url=f"{url}/must-not-be-called"
        )
        delivery = DeliveryActivities(settings)
        note = HandoffNote(
            summary="s", customer_wants="w", sentiment_trajectory="t", account="a", suggested_first_reply="r"
        )
        ticket = HelpdeskTicket(
            idempotency_key="k", conversation_id="chatwoot-1-8", customer_id="chatwoot-1-55", channel="email",
            subject="s", priority="high", urgency="queued", reply_within_seconds=3600, note=note,
        )  # fmt: skip
        assert (await delivery.post_helpdesk_ticket(ticket)).detail == "the handoff is in the Chatwoot conversation"
        agent = OutboundMessage(conversation_id="chatwoot-1-8", channel="chat", message_id="x", kind="agent", text="hi")
        assert (await delivery.deliver_to_customer(agent)).delivered is False  # the agent wrote it in Chatwoot
        await delivery.aclose()
    assert fake.calls == []


async def test_a_message_baton_refuses_is_answered_422_naming_the_field(agent_bot_stack: Stack) -> None:
    """In an Agent Bot inbox, Chatwoot answers a failed bot event by opening the conversation: a person sees it."""
    number = next(_numbers)
    answer = await send(agent_bot_stack.http, message_event(number, 1, "x" * 9000))
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["loc"][-1] == "text" and "limit of 8000" in problem["msg"]
    assert agent_bot_stack.chatwoot.calls == []
